"""How the API answers a write to a versioned record (organizations, contacts): 404, 400 per field, 409 with it now."""

import marshmallow as ma
from flask_smorest import abort

from crm.api.errors import conflict_response
from crm.common.errors import ConflictError, NotFound
from crm.common.validation import InvalidData
from crm.contacts.services import PrimaryTaken


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
        return conflict_response(exc, schema)
