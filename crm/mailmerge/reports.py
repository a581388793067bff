"""Reading merges: the list, one merge, its progress and per-recipient report, the outbox, an organization's
merges."""

from datetime import timedelta

from sqlalchemy import func, select

from crm.common.types import utcnow
from crm.extensions import db
from crm.mailmerge.models import MailMerge, Message

COUNT_STATUSES = (
    "queued",
    "claimed",
    "sending",
    "sent",
    "outbox",
    "failed",
    "suppressed",
    "uncertain",
    "cancelled",
)


def list_merges() -> list[tuple[MailMerge, dict[str, int]]]:
    """Every merge, newest first, with message counts per status."""
    merges = list(db.session.scalars(select(MailMerge).order_by(MailMerge.id.desc())))
    counts: dict[int, dict[str, int]] = {}
    if merges:
        rows = db.session.execute(
            select(Message.merge_id, Message.status, func.count())
            .where(Message.merge_id.in_([m.id for m in merges]))
            .group_by(Message.merge_id, Message.status)
        )
        for merge_id, status, count in rows:
            counts.setdefault(merge_id, {})[status] = count
    return [(m, counts.get(m.id, {})) for m in merges]


def get_merge(merge_id: int) -> MailMerge | None:
    """One merge."""
    return db.session.get(MailMerge, merge_id)


def outbox_page(page: int, per_page: int = 50):
    """Messages, newest first."""
    return db.paginate(
        select(Message).order_by(Message.id.desc()), page=page, per_page=per_page, error_out=False
    )


def get_message(message_id: int) -> Message | None:
    """One outbox row."""
    return db.session.get(Message, message_id)


def merges_for_organization(org_id: int, limit: int = 50) -> list[tuple[MailMerge, Message]]:
    """The merges this organization's contacts were sent (or queued), newest first."""
    return list(
        db.session.execute(
            select(MailMerge, Message)
            .join(Message, Message.merge_id == MailMerge.id)
            .where(Message.organization_id == org_id)
            .order_by(Message.id.desc())
            .limit(limit)
        ).all()
    )


def merge_counts(merge_id: int) -> dict:
    """Counts per status, plus total, remaining, done percentage and the rate over the last minute."""
    counts = dict.fromkeys(COUNT_STATUSES, 0)
    for status, count in db.session.execute(
        select(Message.status, func.count()).where(Message.merge_id == merge_id).group_by(Message.status)
    ):
        counts[status] = count
    total = sum(counts.values())
    remaining = counts["queued"] + counts["claimed"] + counts["sending"]
    delivered = counts["sent"] + counts["outbox"]
    since = utcnow() - timedelta(seconds=60)
    per_minute = db.session.scalar(
        select(func.count()).where(Message.merge_id == merge_id, Message.sent_at >= since)
    )
    finished = total - remaining
    return {
        **counts,
        "total": total,
        "remaining": remaining,
        "delivered": delivered,
        "percent": round(100 * finished / total) if total else 0,
        "per_minute": per_minute or 0,
    }


def report_page(merge_id: int, page: int, per_page: int = 100, status: str | None = None):
    """Every recipient's row of a merge, with status and SMTP response."""
    query = select(Message).where(Message.merge_id == merge_id).order_by(Message.id)
    if status == "sending":  # one word for both: a worker took it, or is handing it to SMTP
        query = query.where(Message.status.in_(("claimed", "sending")))
    elif status in COUNT_STATUSES:
        query = query.where(Message.status == status)
    return db.paginate(query, page=page, per_page=per_page, error_out=False)
