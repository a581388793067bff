"""Mail-merge, outbox and suppression queries."""

from sqlalchemy import func, select

from crm.extensions import db
from crm.mailmerge.models import MailMerge, Message, Suppression


def list_merges() -> list[tuple[MailMerge, dict[str, int]]]:
    """Every merge, newest first, with message counts per status."""
    merges = list(db.session.scalars(select(MailMerge).order_by(MailMerge.id.desc())))
    counts: dict[int, dict[str, int]] = {}
    if merges:
        rows = db.session.execute(select(Message.merge_id, Message.status, func.count())
                                  .where(Message.merge_id.in_([m.id for m in merges]))
                                  .group_by(Message.merge_id, Message.status))
        for merge_id, status, count in rows:
            counts.setdefault(merge_id, {})[status] = count
    return [(m, counts.get(m.id, {})) for m in merges]


def outbox_page(page: int, per_page: int = 50):
    """Messages, newest first."""
    return db.paginate(select(Message).order_by(Message.id.desc()), page=page, per_page=per_page, error_out=False)


def suppressions_page(page: int, per_page: int = 50):
    """Suppressed addresses, newest first."""
    return db.paginate(select(Suppression).order_by(Suppression.id.desc()), page=page, per_page=per_page,
                       error_out=False)
