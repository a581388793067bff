"""RFC 9457 problem details, and the 409 of a versioned write."""

import marshmallow as ma
from flask import jsonify
from flask_smorest import abort
from werkzeug.http import HTTP_STATUS_CODES


class ProblemSchema(ma.Schema):
    """application/problem+json body (RFC 9457); extension members (e.g. `current` on a 409) are allowed."""

    class Meta:
        unknown = ma.INCLUDE

    type = ma.fields.String(metadata={"description": "A URI reference identifying the problem type"})
    title = ma.fields.String(metadata={"description": "Short summary of the problem type"})
    status = ma.fields.Integer(metadata={"description": "HTTP status code"})
    detail = ma.fields.String(metadata={"description": "Explanation of this occurrence"})
    errors = ma.fields.Dict(metadata={"description": "Field-level errors, by parameter or field name"})
    current = ma.fields.Dict(metadata={"description": "On a 409 conflict: the record as it is saved now"})


def problem_response(status: int, detail: str | None = None, errors: dict | None = None, headers: dict | None = None):
    """A problem+json response."""
    body = {"type": "about:blank", "title": HTTP_STATUS_CODES.get(status, "Error"), "status": status}
    if detail:
        body["detail"] = detail
    if errors:
        body["errors"] = errors
    response = jsonify(body)
    response.status_code = status
    response.mimetype = "application/problem+json"
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response



def conflict_response(exc, schema: ma.Schema):
    """409 problem+json for a ConflictError, with the record as it is saved now (`current`), so the client can merge
    and retry."""
    if exc.current is None:
        abort(404, message="No such record.")
    body = {
        "type": "about:blank",
        "title": "Conflict",
        "status": 409,
        "detail": f"This record was changed after you read it: it is at version {exc.current.version}. "
        "Re-read it, apply your change and send the new version.",
        "errors": {"version": [f"The current version is {exc.current.version}."]},
        "current": schema.dump(exc.current),
    }
    response = jsonify(body)
    response.status_code = 409
    response.mimetype = "application/problem+json"
    return response
