"""The exactly-once protocol, and the durable marks that enforce it.

A message row moves through these states; each arrow is one committed transaction, written by the sender that
claimed the row, on its own database connection:

    queued ──claim──▶ claimed ──mark──▶ sending ──record──▶ sent | outbox | failed | uncertain
       ▲                 │                                  └──▶ queued again (retry: 4xx, dropped before content)
       └──give back──────┘   (pause, relay unreachable, database lost: nothing of it went out)

1. claim (claims.py): the sender takes a batch of due rows: `claimed`, with its name. Nothing has gone out; a
   claim is always safe to give back.
2. mark: right before the message is handed to SMTP, the row becomes `sending`, with the exact bytes, in a
   *durable* commit (on disk before it returns). The same statement checks, atomically, that the row is still
   ours, that the address is not suppressed and that the merge is not paused or cancelled. Only when that commit
   has returned does any byte of the message go to the server.
3. record: the server's answer is written in the sender's next transaction — the next row's mark, or `flush()`
   at the end of the batch — so a message costs one commit. If a crash loses it, its row stays `sending`.
4. recovery (claims.recover_abandoned): rows of a dead sender go back to `queued` if `claimed`, and become
   `uncertain` if `sending` — the server may have accepted the message — and are never re-sent automatically.

A sender has at most one `sending` row, so a killed worker leaves at most one `uncertain` per SMTP connection
(MAIL_CONNECTIONS, default 1): each could have been accepted by the server. A sender that loses
the database keeps what it knows in memory and, once reconnected, puts it right with `repair()`: an answer that
was not written is written, and a mark whose commit went unanswered is undone (its message was not sent).
"""

import contextlib
import threading
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Connection, bindparam, exists, func, select, update

from crm.common.types import utcnow
from crm.mailmerge.claims import ACTIVE_MERGE
from crm.mailmerge.models import DELIVERED_STATUSES, MailMerge, Message, Suppression
from crm.mailmerge.transport import Outcome

_SQLITE_WRITER = threading.Lock()
# The two statements every message runs, built once (SQLAlchemy then reuses their compiled form).
MARK_SENDING = (
    update(Message)
    .where(
        Message.id == bindparam("row_id"),
        Message.status == "claimed",
        Message.claimed_by == bindparam("sender"),
        ~exists().where(Suppression.email == func.lower(Message.email)),
        Message.merge_id.is_(None)
        | exists().where(MailMerge.id == Message.merge_id, MailMerge.status.in_(ACTIVE_MERGE)),
    )
    .values(
        status="sending",
        attempts=bindparam("new_attempts"),
        raw=bindparam("new_raw"),
        updated_at=bindparam("now"),
        message_id=func.coalesce(bindparam("new_message_id"), Message.message_id),
        subject=func.coalesce(bindparam("new_subject"), Message.subject),
    )
)
RECORD = (
    update(Message)
    .where(Message.id == bindparam("row_id"), Message.status == "sending")
    .values(
        status=bindparam("new_status"),
        last_response=bindparam("response"),
        claimed_by="",
        claimed_at=None,
        updated_at=bindparam("now"),
        sent_at=bindparam("new_sent_at"),
        next_attempt_at=bindparam("next_at"),
    )
)


@dataclass
class Policy:
    """What a retry costs: attempts allowed, and the first delay (doubled each time)."""

    max_attempts: int = 5
    retry_base: float = 60.0


class Marks:
    """The `sending` marks and results of one sender, on its own Connection.

    Durability per database: PostgreSQL commits durably by default, and a transaction without a mark (an answer
    flushed alone) says `synchronous_commit = off`; SQLite (WAL, `synchronous=NORMAL` in the app) switches to
    `FULL` for a mark. SQLite
    has one writer at a time: the senders of this process take turns on a lock, which hands over at once, where
    SQLite's own busy handler would sleep for milliseconds.
    """

    def __init__(self, conn: Connection, name: str, policy: Policy):
        self.conn, self.name, self.policy = conn, name, policy
        self.sqlite = conn.dialect.name == "sqlite"
        self.turn = _SQLITE_WRITER if self.sqlite else contextlib.nullcontext()
        self.in_doubt: tuple[int, int] | None = None  # (row id, attempts before) of a mark not known committed
        self.unrecorded: tuple[dict, str | None] | None = None  # an answer not known written: (RECORD's values,
        #                                                          the address to suppress after a hard bounce)

    @contextlib.contextmanager
    def _transaction(self, durable: bool):
        """One committed write transaction, which starts by writing the answer not yet written: on disk when the
        commit returns (`durable`), or flushed soon after."""
        with self.turn:
            if self.sqlite:
                self.conn.exec_driver_sql(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
            elif not durable:
                self.conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
            if self.unrecorded is not None:
                values, bounced = self.unrecorded
                self.conn.execute(RECORD, values)
                if bounced:
                    self._suppress(bounced, values["response"][:500])
            yield
            self.conn.commit()
            self.unrecorded = None

    def mark_sending(self, row, raw: str, message_id: str | None, subject: str | None) -> str:
        """Mark a claimed row `sending`, durably: "marked", or why not: its merge's status when the merge is
        no longer active (paused, cancelled), or "suppressed" (suppressed since queued; recorded here)."""
        params = {
            "row_id": row.id,
            "sender": self.name,
            "new_attempts": row.attempts + 1,
            "new_raw": raw,
            "now": utcnow(),
            "new_message_id": message_id or None,
            "new_subject": (subject or "")[:1000] if message_id else None,
        }
        self.in_doubt = (row.id, row.attempts)
        with self._transaction(durable=True):
            marked = self.conn.execute(MARK_SENDING, params).rowcount
        self.in_doubt = None
        if marked == 1:
            return "marked"
        if row.merge_id is not None:
            status = self.conn.scalar(select(MailMerge.status).where(MailMerge.id == row.merge_id))
            self.conn.commit()
            if status not in ACTIVE_MERGE:
                return status or "cancelled"  # a deleted merge's rows are gone with it
        self._finish(row.id, "claimed", status="suppressed", last_response="not sent: the address is suppressed")
        return "suppressed"

    def fail_unsent(self, row, problem: str) -> None:
        """A claimed row that cannot be sent (it does not render): failed, nothing went out."""
        self._finish(row.id, "claimed", status="failed", last_response=f"not sent: {problem}"[:2000])

    def record(self, row, outcome: Outcome) -> str:
        """Take the server's answer to a `sending` row, to be written with the next transaction (the next mark, or
        flush()); the row's new status."""
        now = utcnow()
        params = {"row_id": row.id, "response": outcome.response[:2000], "now": now, "new_sent_at": None,
                  "next_at": None}
        if outcome.kind in DELIVERED_STATUSES:
            params.update(new_status=outcome.kind, new_sent_at=now)
        elif outcome.kind == "retry" and row.attempts + 1 < self.policy.max_attempts:
            delay = self.policy.retry_base * (2**row.attempts)
            params.update(new_status="queued", next_at=now + timedelta(seconds=delay))
        elif outcome.kind == "uncertain":
            params.update(new_status="uncertain")
        else:
            params.update(new_status="failed")
        self.unrecorded = (params, row.email.lower() if outcome.hard_bounce else None)
        return params["new_status"]

    def flush(self) -> None:
        """Write the answer not yet written (at the end of a batch), not waiting for the disk."""
        if self.unrecorded is not None:
            with self._transaction(durable=False):
                pass

    def _suppress(self, email: str, note: str) -> None:
        """A hard bounce: never mail this address again."""
        if self.conn.scalar(select(Suppression.id).where(Suppression.email == email)) is None:
            self.conn.execute(
                Suppression.__table__.insert().values(email=email, reason="hard-bounce", note=note, created_at=utcnow())
            )

    def _finish(self, row_id: int, expected: str, **values) -> None:
        """Move one of our rows out of `expected` without sending it."""
        with self._transaction(durable=False):
            self.conn.execute(
                update(Message)
                .where(Message.id == row_id, Message.status == expected, Message.claimed_by == self.name)
                .values(claimed_by="", updated_at=utcnow(), **values)
            )

    def repair(self) -> None:
        """After a lost connection, on a new one: write the answer that was not written, and undo a mark whose
        commit went unanswered (its message never went out: the row is given back to `queued`)."""
        if self.in_doubt is not None:
            row_id, attempts = self.in_doubt
            self._finish(row_id, "sending", status="queued", claimed_at=None, attempts=attempts)
            self.in_doubt = None
        self.flush()
