"""Optimistic locking of audited records: refuse a save made at an old version, and say who saved in between."""

from collections.abc import Callable
from typing import Any

from sqlalchemy import inspect
from sqlalchemy.orm.exc import StaleDataError

from crm.audit.services import last_change
from crm.common.errors import ConflictError
from crm.extensions import db

Loader = Callable[[int], Any]


def conflict(record, entity_type: str, load: Loader | None = None) -> ConflictError:
    """The ConflictError for a record: as saved now (read by `load`, else by its class and id), with its newest
    audit event. The session is rolled back first, so nothing of the refused save stays in it."""
    record_class, record_id = type(record), inspect(record).identity[0]  # read without SQL: the session may be failed
    db.session.rollback()
    db.session.expire_all()
    current = load(record_id) if load else db.session.get(record_class, record_id)
    return ConflictError(current, last_change(entity_type, record_id))


def check_version(record, version: int | None, entity_type: str, load: Loader | None = None) -> None:
    """Raise the record's ConflictError unless `version` is its current one (None never is)."""
    if version is None or version != record.version:
        raise conflict(record, entity_type, load)


def commit_versioned(record, entity_type: str, load: Loader | None = None) -> None:
    """Commit; a save that got there first (the versioned UPDATE matched no row) becomes the same ConflictError."""
    try:
        db.session.commit()
    except StaleDataError:
        raise conflict(record, entity_type, load) from None
