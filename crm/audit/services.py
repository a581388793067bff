"""Writing and reading the audit log."""

from typing import Any

from flask import g, has_request_context
from sqlalchemy import select

from crm.audit.models import AuditEvent
from crm.extensions import db


def _jsonable(value: Any) -> Any:
    """A value as it can be stored in the JSON column."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, list | tuple | set):
        return [_jsonable(v) for v in value]
    return str(value)


def record(action: str, entity_type: str, entity_id: int | None, *, user_id: int | None = None,
           summary: str = "", before: dict | None = None, after: dict | None = None) -> AuditEvent:
    """Add an audit event to the session (committed with the change it describes)."""
    changes: dict[str, Any] = {}
    before = before or {}
    after = after or {}
    for key in sorted(set(before) | set(after)):
        old, new = _jsonable(before.get(key)), _jsonable(after.get(key))
        if old != new:
            changes[key] = [old, new]
    event = AuditEvent(action=action, entity_type=entity_type, entity_id=entity_id, user_id=user_id,
                       summary=summary[:2000], changes=changes)
    db.session.add(event)
    if action == "export" and has_request_context():
        g.export_audited = True  # the download hook (crm.audit.downloads) need not record it again
    return event


def commit_audited(action: str, entity_type: str, entity_id: int | None, *, user_id: int | None = None,
                   summary: str = "", before: dict | None = None, after: dict | None = None) -> AuditEvent:
    """Record an audit event and commit it with the change it describes, in one transaction."""
    event = record(action, entity_type, entity_id, user_id=user_id, summary=summary, before=before, after=after)
    db.session.commit()
    return event


def events_for(entity_type: str, entity_id: int, limit: int = 100) -> list[AuditEvent]:
    """The newest events of one record."""
    query = (select(AuditEvent).where(AuditEvent.entity_type == entity_type, AuditEvent.entity_id == entity_id)
             .order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).limit(limit))
    return list(db.session.scalars(query))


def last_change(entity_type: str, entity_id: int) -> AuditEvent | None:
    """The newest audit event of a record (who changed it last, for conflict messages)."""
    return db.session.scalar(
        select(AuditEvent)
        .where(AuditEvent.entity_type == entity_type, AuditEvent.entity_id == entity_id)
        .order_by(AuditEvent.id.desc())
        .limit(1)
    )


def recent_events(page: int, per_page: int):
    """A page of the whole log, newest first."""
    return db.paginate(select(AuditEvent).order_by(AuditEvent.id.desc()), page=page, per_page=per_page,
                       error_out=False)
