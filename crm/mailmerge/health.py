"""`/healthz`: whether this process reaches its database, and what its embedded outbox worker is doing.

For load balancers and monitoring, so it is public: it says a state, since when and the kind of the last error,
never the error's text (which can name hosts). The outbox page shows the full state to signed-in users.
"""

from flask import Blueprint, current_app, jsonify
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from crm.common.access import access
from crm.extensions import db
from crm.mailmerge.embedded import worker_health

bp = Blueprint("health", __name__)


def _iso(value) -> str | None:
    """A timestamp as ISO 8601 (None stays None)."""
    return value.isoformat() if value is not None else None


@bp.get("/healthz")
@access("public")
def healthz():
    """200 when the database answers, 503 when it does not; the embedded worker's state either way."""
    try:
        db.session.execute(text("SELECT 1"))
        database = "ok"
    except SQLAlchemyError:
        db.session.rollback()
        database = "unreachable"
    worker = worker_health(current_app)
    body = {
        "status": "ok" if database == "ok" else "unavailable",
        "database": database,
        "mail_worker": {
            "state": worker["state"],
            "since": _iso(worker.get("since")),
            "last_error": (worker.get("last_error") or "").split(":", 1)[0] or None,
            "last_error_at": _iso(worker.get("last_error_at")),
        },
    }
    response = jsonify(body)
    response.status_code = 200 if database == "ok" else 503
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.app_context_processor
def _outbox_worker_state():
    """`outbox_worker_state()` for the outbox page (called only there)."""
    return {"outbox_worker_state": lambda: worker_health(current_app)}
