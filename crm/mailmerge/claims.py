"""Which rows a sender may work on: claiming (queued → claimed), giving back, and recovering what dead senders
left behind. What happens to a claimed row afterwards is in marks.py, which states the whole protocol.

Every function takes the SQLAlchemy Connection of the sender that calls it and commits its own change.
"""

import os
import socket
import threading
import uuid
from datetime import timedelta

from sqlalchemy import Connection, and_, exists, func, or_, select, update

from crm.common.types import utcnow
from crm.mailmerge.models import MailMerge, Message

ACTIVE_MERGE = ("queued", "sending")
UNCERTAIN_NOTE = (
    "The worker stopped while handing this message to the SMTP server: it may or may not have been "
    "delivered. It is not re-sent automatically; resend it from the merge report if needed."
)
HOST = socket.gethostname()[:40]
# The senders alive in this process: a claim of this process whose sender is not here any more is abandoned.
_LIVE: set[str] = set()
_LIVE_LOCK = threading.Lock()


def new_sender_name() -> str:
    """host:pid:token — who claimed a row; recovery reads the host and pid back."""
    return f"{HOST}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def set_alive(name: str, alive: bool) -> None:
    """Note that a sender of this process started or stopped."""
    with _LIVE_LOCK:
        (_LIVE.add if alive else _LIVE.discard)(name)


def _owner_is_dead(claimed_by: str) -> bool:
    """A claim made on this host by a process, or a sender of this process, that is gone."""
    host, _, rest = claimed_by.partition(":")
    pid, _, _token = rest.partition(":")
    if host != HOST or not pid.isdigit():
        return False
    if int(pid) == os.getpid():
        with _LIVE_LOCK:
            return claimed_by not in _LIVE
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _due():
    """Rows ready to send now."""
    return and_(
        Message.status == "queued", or_(Message.next_attempt_at.is_(None), Message.next_attempt_at <= utcnow())
    )


def _take(conn: Connection, name: str, where, limit: int, share: int) -> list[int]:
    """Claim up to `limit` due rows matching `where`, in id order, and no more than a `share`th of them when fewer
    than `limit` × `share` are left, so that a worker's senders finish a merge together instead of one sending the
    last batch alone. PostgreSQL skips rows another sender is claiming right now (FOR UPDATE SKIP LOCKED); on
    SQLite two senders may pick the same rows, and the `queued` check of the UPDATE gives each row to one of them.
    (One statement with the SELECT as a subquery is not bounded by its LIMIT on PostgreSQL, whose planner may run
    the subquery again per row.)"""
    due = select(Message.id).where(_due(), where)
    for _attempt in range(5):  # SQLite: another sender took the rows just chosen; choose again
        # Counted by a SELECT of its own: counting the rows the locking SELECT returns would lock them all, hiding
        # them from a sender claiming at the same moment (PostgreSQL).
        left = conn.scalar(select(func.count()).select_from(due.limit(limit * share).subquery()))
        if not left:
            return []
        chosen = conn.scalars(
            due.order_by(Message.id).limit(-(-left // share)).with_for_update(skip_locked=True)  # ceil(left / share)
        ).all()
        if not chosen:
            return []
        ids = conn.execute(
            update(Message)
            .where(Message.id.in_(chosen), Message.status == "queued")
            .values(status="claimed", claimed_by=name, claimed_at=utcnow())
            .returning(Message.id)
        ).scalars().all()
        if ids:
            return sorted(ids)
    return []


def _allowance(conn: Connection, merge_id: int, throttle: int | None, limit: int) -> int:
    """How many more rows of a throttled merge may go out in the current minute (across all senders)."""
    if not throttle:
        return limit
    since = utcnow() - timedelta(seconds=60)
    used = conn.scalar(
        select(func.count()).where(
            Message.merge_id == merge_id,
            or_(Message.sent_at >= since, Message.status.in_(("claimed", "sending"))),
        )
    )
    return max(0, min(limit, throttle - (used or 0)))


def claim(conn: Connection, name: str, limit: int, share: int = 1) -> list[int]:
    """The next batch for one of `share` senders: system mail first, then active merges in order, honouring
    throttles; [] when none is due."""
    ids = _take(conn, name, Message.merge_id.is_(None), limit, share)
    if not ids:
        active = conn.execute(
            select(MailMerge.id, MailMerge.throttle_per_minute)
            .where(MailMerge.status.in_(ACTIVE_MERGE))
            .order_by(MailMerge.id)
        ).all()
        for merge_id, throttle in active:
            allowance = _allowance(conn, merge_id, throttle, limit)
            ids = _take(conn, name, Message.merge_id == merge_id, allowance, share) if allowance else []
            if ids:
                conn.execute(
                    update(MailMerge)
                    .where(MailMerge.id == merge_id, MailMerge.status == "queued")
                    .values(status="sending", started_at=utcnow(), version=MailMerge.version + 1)
                )
                break
    conn.commit()
    return ids


def give_back(conn: Connection, name: str, *, merge_id: int | None = None, cancel: bool = False) -> int:
    """Rows this sender claimed and has not marked `sending` (nothing of them went out) go back to `queued` —
    or to `cancelled` with a cancelled merge. All of the sender's claims, or those of one merge."""
    where = [Message.status == "claimed", Message.claimed_by == name]
    if merge_id is not None:
        where.append(Message.merge_id == merge_id)
    values = {"status": "cancelled"} if cancel else {"status": "queued", "claimed_by": "", "claimed_at": None}
    count = conn.execute(update(Message).where(*where).values(**values)).rowcount
    conn.commit()
    return count


def recover_abandoned(conn: Connection, stale_after: float) -> dict[str, int]:
    """Give back rows claimed by dead senders; a row one of them had marked `sending` becomes `uncertain`.

    A sender marks one row `sending` at a time (marks.py), so a dead sender leaves at most one. A sender that is
    merely silent for `stale_after` seconds (perhaps alive, on another machine) is treated as dead.
    """
    cutoff = utcnow() - timedelta(seconds=stale_after)
    rows = conn.execute(
        select(Message.id, Message.status, Message.claimed_by, Message.claimed_at).where(
            Message.status.in_(("claimed", "sending"))
        )
    ).all()
    abandoned = [r for r in rows if _owner_is_dead(r.claimed_by or "") or r.claimed_at is None or r.claimed_at < cutoff]
    released = [r.id for r in abandoned if r.status == "claimed"]
    uncertain = [r.id for r in abandoned if r.status == "sending"]
    if released:
        conn.execute(
            update(Message)
            .where(Message.id.in_(released), Message.status == "claimed")
            .values(status="queued", claimed_by="", claimed_at=None)
        )
    if uncertain:
        conn.execute(
            update(Message)
            .where(Message.id.in_(uncertain), Message.status == "sending")
            .values(status="uncertain", last_response=UNCERTAIN_NOTE)
        )
    conn.commit()
    return {"released": len(released), "uncertain": len(uncertain)}


def pending(conn: Connection) -> bool:
    """Whether anything is still to be sent (now or after a retry delay) by anyone."""
    active = select(MailMerge.id).where(MailMerge.status.in_(ACTIVE_MERGE))
    found = conn.scalar(
        select(
            exists().where(
                Message.status.in_(("queued", "claimed", "sending")),
                or_(Message.merge_id.is_(None), Message.merge_id.in_(active)),
            )
        )
    )
    conn.commit()
    return bool(found)


def next_due_in(conn: Connection) -> float:
    """Seconds until the earliest queued retry, at most 1 (0 when one is due now)."""
    earliest = conn.scalar(select(func.min(Message.next_attempt_at)).where(Message.status == "queued"))
    conn.commit()
    if earliest is None:
        return 1.0
    return max(0.0, min(1.0, (earliest - utcnow()).total_seconds()))


def finish_merges(conn: Connection) -> None:
    """Mark active merges with nothing left in flight as done."""
    in_flight = exists().where(Message.merge_id == MailMerge.id, Message.status.in_(("queued", "claimed", "sending")))
    conn.execute(
        update(MailMerge)
        .where(MailMerge.status.in_(ACTIVE_MERGE), ~in_flight)
        .values(status="done", finished_at=utcnow(), version=MailMerge.version + 1)
    )
    conn.commit()
