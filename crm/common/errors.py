"""Errors the services of every feature raise and the views and the API translate (404, 409, 503)."""

from sqlalchemy.exc import OperationalError


class NotFound(LookupError):
    """The record asked for does not exist."""


class ConflictError(Exception):
    """The record changed since the form (or API client) read it; `current` is the record as saved now and
    `last_change` the audit event (crm.audit.models.AuditEvent) of that change, when there is one."""

    def __init__(self, current, last_change=None):
        super().__init__("This record was changed by someone else after you opened it.")
        self.current = current
        self.last_change = last_change


def database_busy(error: BaseException) -> bool:
    """Whether a database error is another writer holding a lock (retrying later can succeed)."""
    if not isinstance(error, OperationalError):
        return False
    code = getattr(error.orig, "sqlstate", None) or getattr(error.orig, "pgcode", None)
    # SQLite: the busy timeout ran out; PostgreSQL: lock_not_available, deadlock_detected, serialization_failure.
    return "database is locked" in str(error.orig) or "database table is locked" in str(error.orig) or \
        code in {"55P03", "40P01", "40001"}
