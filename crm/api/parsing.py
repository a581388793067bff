"""Reading JSON request bodies with bounds: size and nesting depth are checked, so no body can make a 500.

webargs parses bodies with the standard json module, which raises RecursionError on deeply nested input (a 500
on every API write before this). Bodies here are small records; anything deeper or larger is a 400 or 413.
"""

import json

from flask import current_app
from flask_smorest import abort
from webargs.flaskparser import FlaskParser, is_json_request

MAX_DEPTH = 32  # the deepest real body (a segment filter inside a merge) is 4 levels
MAX_JSON_BYTES = 2 * 1024 * 1024


def too_deep(value, limit: int = MAX_DEPTH) -> bool:
    """Whether a parsed JSON value nests deeper than `limit` (checked without recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                return True
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return False


def load_json_body(data: bytes):
    """A request body as JSON, or a 400/413 problem saying what is wrong with it."""
    limit = current_app.config.get("API_MAX_JSON_BYTES", MAX_JSON_BYTES)
    if len(data) > limit:
        abort(413, message=f"The JSON body is larger than {limit // 1024} KiB.")
    try:
        value = json.loads(data.decode("utf-8"))
    except RecursionError:
        abort(400, message=f"The JSON body nests deeper than {MAX_DEPTH} levels.",
              errors={"json": ["Nested too deeply."]})
    except (UnicodeDecodeError, ValueError):
        abort(400, message="The body is not valid JSON.", errors={"json": ["Invalid JSON body."]})
    if too_deep(value):
        abort(400, message=f"The JSON body nests deeper than {MAX_DEPTH} levels.",
              errors={"json": ["Nested too deeply."]})
    return value


class BoundedParser(FlaskParser):
    """webargs' Flask parser with bounded JSON bodies."""

    def _raw_load_json(self, req):
        """The JSON body, bounded in size and depth ('missing' for other content types, as webargs does)."""
        if not is_json_request(req):
            return super()._raw_load_json(req)
        limit = current_app.config.get("API_MAX_JSON_BYTES", MAX_JSON_BYTES)
        if req.content_length is not None and req.content_length > limit:
            abort(413, message=f"The JSON body is larger than {limit // 1024} KiB.")
        return load_json_body(req.get_data(cache=True))
