"""How the API answers a write to a versioned record (organizations, contacts): 404, 400 per field, 409 with it now."""

import marshmallow as ma
from flask import jsonify
from flask_smorest import abort

from crm.common.errors import ConflictError, NotFound
from crm.common.validation import InvalidData
from crm.contacts.services import PrimaryTaken


def conflict(exc: ConflictError, schema: ma.Schema):
    """409 problem+json with the record as it is saved now (`current`), so the client can merge and retry."""
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


def answer_write(change, schema: ma.Schema, not_found: str):
    """Run a service write and answer its errors the same way for every versioned record.

    NotFound is a 404 saying `not_found`, InvalidData a 400 naming each field at fault, ConflictError a 409 carrying
    the record as it is saved now, dumped with `schema`.
    """
    try:
        return change()
    except NotFound:
        abort(404, message=not_found)
    except InvalidData as exc:
        abort(400, message="Some fields are not valid.", errors=exc.errors)
    except PrimaryTaken as exc:
        abort(409, message=str(exc), errors={"is_primary": [str(exc)]})
    except ConflictError as exc:
        return conflict(exc, schema)
