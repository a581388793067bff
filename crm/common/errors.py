"""Error pages in the site's layout."""

from flask import Flask, render_template, request
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import DataError, OperationalError
from werkzeug.exceptions import HTTPException, InternalServerError

from crm.api.errors import problem_response
from crm.extensions import db

_TITLES = {
    400: "That request could not be understood",
    401: "Please log in",
    403: "You do not have access to this",
    404: "Nothing here",
    405: "Not allowed",
    413: "That upload is too large",
    429: "Too many attempts",
    503: "Busy for a moment",
    500: "Something went wrong on our side",
}


def install_error_pages(app: Flask) -> None:
    """HTML error pages for the site; the API installs its own problem+json handlers."""

    @app.errorhandler(CSRFError)
    def _csrf_error(error):
        return _render(400, "The form expired or was not sent from this site. Go back, reload and try again.")

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException):
        if request.blueprint == "api" or request.path.startswith("/api/"):
            data = getattr(error, "data", None) or {}
            if error.code == 422:  # webargs: a parameter or field failed validation
                return problem_response(400, "Some parameters are not valid.", _flatten(data.get("messages")))
            return problem_response(error.code or 500, data.get("message") or error.description,
                                    data.get("errors") or _flatten(data.get("messages")))
        return _render(error.code or 500, error.description if error.code != 404 else None)

    @app.errorhandler(DataError)
    @app.errorhandler(OverflowError)
    def _data_error(error):
        # A value the database cannot hold (a number out of range, say) that validation let through: the request
        # was bad, not the server. Roll back so the session stays usable.
        db.session.rollback()
        detail = "A value is out of the range this field accepts."
        if request.path.startswith("/api/"):
            return problem_response(400, detail)
        return _render(400, detail)

    @app.errorhandler(OperationalError)
    def _database_busy(error: OperationalError):
        # SQLite has one writer at a time: a write that waited the whole busy timeout for another (a long import,
        # a backup) is a moment's congestion, not a fault. Nothing was changed; the client may simply retry.
        if not database_busy(error):
            raise error
        db.session.rollback()
        detail = "The database is busy with another task (an import, perhaps); nothing was changed. Try again in " \
                 "a few seconds."
        response = problem_response(503, detail) if request.path.startswith("/api/") else _render(503, detail)
        response = app.make_response(response)
        response.headers["Retry-After"] = "5"
        return response

    @app.errorhandler(InternalServerError)
    def _server_error(error):
        if request.path.startswith("/api/"):
            return problem_response(500, "Internal error.")
        return _render(500, None)


def database_busy(error: BaseException) -> bool:
    """Whether a database error is another writer holding a lock (retrying later can succeed)."""
    if not isinstance(error, OperationalError):
        return False
    code = getattr(error.orig, "sqlstate", None) or getattr(error.orig, "pgcode", None)
    # SQLite: the busy timeout ran out; PostgreSQL: lock_not_available, deadlock_detected, serialization_failure.
    return "database is locked" in str(error.orig) or "database table is locked" in str(error.orig) or \
        code in {"55P03", "40P01", "40001"}


def _render(code: int, detail: str | None):
    """The error template with a title and an optional explanation."""
    return render_template("error.html", code=code, title=_TITLES.get(code, "Error"), detail=detail), code


def _flatten(messages) -> dict | None:
    """webargs nests messages by location ({"query": {"page": [...]}}); problem details list them by field."""
    if not messages:
        return None
    flat: dict = {}
    for location, fields in messages.items():
        if isinstance(fields, dict) and location in {"query", "json", "form", "headers", "files", "view_args"}:
            flat.update(fields)
        else:
            flat[location] = fields
    return flat
