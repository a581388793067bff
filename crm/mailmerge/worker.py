"""The outbox worker: claim rows, render, send, record — one committed transaction per step, so nobody is
mailed twice.

A row moves queued → claimed (this worker took it; nothing sent yet, safe to give back) → sending
(committed just
before the message is handed to SMTP) → sent / failed / queued again (4xx, with backoff) / uncertain (the
connection died after the content was sent). A worker that finds a `sending` row left by a dead worker
marks it
`uncertain`; only the organizer may resend it.
"""

import contextlib
import os
import re
import socket
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parseaddr

from flask import current_app
from sqlalchemy import and_, exists, func, or_, select, update
from sqlalchemy import text as sa_text

from crm.common.types import utcnow
from crm.extensions import db
from crm.mailmerge.models import DELIVERED_STATUSES, MailMerge, Message, Suppression
from crm.mailmerge.rendering import letter_record, load_recipients, render_message
from crm.mailmerge.templating import RenderError, compile_templates
from crm.mailmerge.transport import OutboxTransport, SMTPTransport

ACTIVE_MERGE = ("queued", "sending")
# Per-message writes go through the Core table: the ORM's bulk-update machinery costs more than the SMTP
# round trip.
MESSAGES = Message.__table__
# The statements every message runs go straight to the DBAPI connection under the session (see _Driver): even a
# prebuilt text() costs more in SQLAlchemy's execution machinery than the SQL itself on SQLite.
MARK_SENDING = (
    "UPDATE messages SET status = 'sending', attempts = :attempts, raw = :raw, updated_at = :now, "
    "message_id = COALESCE(:message_id, message_id), subject = COALESCE(:subject, subject) "
    "WHERE id = :id AND status = 'claimed' AND claimed_by = :worker "
    "AND NOT EXISTS (SELECT 1 FROM suppressions WHERE suppressions.email = lower(messages.email))"
)
# Marks written ahead (see _PostgresMarks, _SqliteMarks) also check that the merge is still active: with that
# check in every mark there is no need for a separate pause check every few messages.
MARK_SENDING_IF_ACTIVE = (
    MARK_SENDING  # noqa: S608 - constants only, no data
    + " AND (messages.merge_id IS NULL OR EXISTS (SELECT 1 FROM mail_merges "
    "WHERE mail_merges.id = messages.merge_id AND mail_merges.status IN ('queued', 'sending')))"
)
# A row marked ahead that will not be sent now goes back to `claimed`; nothing of it went out.
UNMARK_AHEAD = (
    "UPDATE messages SET status = 'claimed', attempts = attempts - 1 "
    "WHERE id = :id AND status = 'sending' AND claimed_by = :worker"
)
RECORD_SENT = (
    "UPDATE messages SET status = :status, sent_at = :now, updated_at = :now, last_response = :response, "
    "claimed_by = '' WHERE id = :id AND status = 'sending'"
)
MERGE_STATUS = "SELECT status FROM mail_merges WHERE id = :id"
# How many rows of a batch may be rendered before their turn (two waits per message, one render each).
RENDER_AHEAD = 2
UNCERTAIN_NOTE = (
    "The worker stopped while handing this message to the SMTP server: it may or may not have been "
    "delivered. It is not re-sent automatically; resend it from the merge report if needed."
)
_HOST = socket.gethostname()[:40]
_LIVE_WORKERS: set[str] = set()
_LIVE_LOCK = threading.Lock()


def transport_for(config):
    """The transport MAIL_BACKEND asks for."""
    if (config.get("MAIL_BACKEND") or "outbox") == "smtp":
        return SMTPTransport.from_config(config)
    return OutboxTransport()


def _pid_alive(pid: int) -> bool:
    """Whether a process with this id runs on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _owner_is_dead(claimed_by: str) -> bool:
    """A claim made on this host by a process or worker thread that is gone."""
    host, _, rest = claimed_by.partition(":")
    pid, _, _token = rest.partition(":")
    if host != _HOST or not pid.isdigit():
        return False
    if int(pid) != os.getpid():
        return not _pid_alive(int(pid))
    with _LIVE_LOCK:
        return claimed_by not in _LIVE_WORKERS


def _booted_at() -> datetime | None:
    """When this machine last started (Linux's /proc/stat), or None when unknown."""
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            for line in stat:
                if line.startswith("btime "):
                    return datetime.fromtimestamp(int(line.split()[1]), UTC)
    except (OSError, ValueError):
        pass
    return None


def recover_abandoned() -> dict[str, int]:
    """Give back rows claimed by dead workers; rows they were handing to SMTP become `uncertain`.

    A worker marks the next row `sending` while the current one is with the SMTP server (see _PostgresMarks,
    _SqliteMarks), so a dead worker may leave two `sending` rows. Only the first of them can have gone out: the
    second's content is written only after the first's result is committed. The second is given back — unless
    PostgreSQL has restarted (or, on SQLite, the machine has) since the marks were written, since a result's
    commit is not flushed at once and can be lost in such a crash; then both become `uncertain`. When the
    restart time is unknown, both become `uncertain` too. Rows of a worker that is merely silent for
    MAIL_STALE_SECONDS (perhaps alive, on another machine) all become `uncertain`.
    """
    stale_after = int(current_app.config.get("MAIL_STALE_SECONDS") or 900)
    cutoff = utcnow() - timedelta(seconds=stale_after)
    rows = db.session.execute(
        select(Message.id, Message.status, Message.claimed_by, Message.claimed_at, Message.updated_at).where(
            Message.status.in_(("claimed", "sending"))
        )
    ).all()
    released, uncertain, marked_ahead = [], [], []
    dead_sending: dict[str, list] = {}
    for row in rows:
        dead = _owner_is_dead(row.claimed_by or "")
        if dead or (row.claimed_at is None or row.claimed_at < cutoff):
            if row.status != "sending":
                released.append(row.id)
            elif dead:
                dead_sending.setdefault(row.claimed_by, []).append(row)
            else:
                uncertain.append(row.id)
    restarted_at = None
    if any(len(group) > 1 for group in dead_sending.values()):
        # What can lose a result's commit: a PostgreSQL crash (its results are not flushed at once), or for
        # SQLite, which runs inside the worker, the machine going down (its results are not synced).
        if db.engine.dialect.name == "postgresql":
            restarted_at = db.session.scalar(sa_text("SELECT pg_postmaster_start_time()"))
        else:
            restarted_at = _booted_at()
    for group in dead_sending.values():
        # In the order they were marked. More than two cannot come from one worker: then all are uncertain.
        group.sort(key=lambda r: (r.updated_at, r.id))
        # Five minutes leave room for an application clock that disagrees with the database's.
        if (
            len(group) == 2
            and restarted_at is not None
            and restarted_at < min(r.updated_at for r in group) - timedelta(minutes=5)
        ):
            uncertain.append(group[0].id)
            marked_ahead.append(group[1].id)
        else:
            uncertain.extend(r.id for r in group)
    if released:
        db.session.execute(
            update(Message)
            .where(Message.id.in_(released), Message.status == "claimed")
            .values(status="queued", claimed_by="", claimed_at=None)
        )
    if marked_ahead:
        db.session.execute(
            update(Message)
            .where(Message.id.in_(marked_ahead), Message.status == "sending")
            .values(status="queued", claimed_by="", claimed_at=None, attempts=Message.attempts - 1)
        )
    if uncertain:
        db.session.execute(
            update(Message)
            .where(Message.id.in_(uncertain), Message.status == "sending")
            .values(status="uncertain", last_response=UNCERTAIN_NOTE)
        )
    db.session.commit()
    return {"released": len(released) + len(marked_ahead), "uncertain": len(uncertain)}


class _Driver:
    """The hot per-message statements, executed on the DBAPI connection the session is using.

    They run in the session's own transaction (same connection), so their order relative to everything the session
    does is unchanged; `commit()` commits that connection, exactly what `db.session.commit()` would send to the
    database, minus SQLAlchemy's bookkeeping (the session holds no ORM changes between messages). The session still
    believes its transaction is open, which is harmless: the driver begins a new one at the next statement and the
    session commits or rolls back as usual at the end of the batch.
    """

    def __init__(self, dialect):
        self.named = dialect.paramstyle in ("named", "qmark", "numeric")  # sqlite3 takes :name in every mode
        self.time = MESSAGES.c.updated_at.type.bind_processor(dialect) or (lambda value: value)
        self.sql: dict[str, str] = {}
        self.level: tuple | None = None  # (SQLite connection, its synchronous level) as last set

    def _sql(self, statement: str) -> str:
        """The statement in the driver's parameter style."""
        sql = self.sql.get(statement)
        if sql is None:
            sql = statement if self.named else re.sub(r":(\w+)", r"%(\1)s", statement)
            self.sql[statement] = sql
        return sql

    @staticmethod
    def connection():
        """The DBAPI connection of the session's current transaction (begun if needed)."""
        return db.session.connection().connection.driver_connection

    def execute(self, statement: str, params: dict) -> int:
        """Run one statement; its rowcount."""
        if "now" in params:
            params["now"] = self.time(params["now"])
        cursor = self.connection().cursor()
        try:
            cursor.execute(self._sql(statement), params)
            return cursor.rowcount
        finally:
            cursor.close()

    def scalar(self, statement: str, params: dict):
        """The first column of the first row, or None."""
        cursor = self.connection().cursor()
        try:
            cursor.execute(self._sql(statement), params)
            row = cursor.fetchone()
            return row[0] if row else None
        finally:
            cursor.close()

    def commit(self) -> None:
        """Commit the session's connection."""
        self.connection().commit()

    def synchronous(self, level: str) -> None:
        """SQLite: whether the next commits on the session's connection are synced to disk before they return
        (`FULL`) or not (`NORMAL`, the app's setting: WAL mode syncs at checkpoints). No-op elsewhere.

        A commit that is not synced survives the worker being killed but not a power cut or an OS crash, which
        can lose every commit since the last checkpoint. So every `sending` mark is a synced commit: a lost mark
        leaves its row `claimed`, which recovery gives back to `queued`, and its message would go out twice.
        The pragma cannot change inside a transaction, so a pending one (a failed row's result, written through
        the session) is committed first. Left as set: a pooled connection used elsewhere later just commits
        durably, or as the app does.
        """
        connection = self.connection()
        if not isinstance(connection, sqlite3.Connection) or self.level == (connection, level):
            return
        if connection.in_transaction:
            connection.commit()
        connection.execute(f"PRAGMA synchronous={level}")
        self.level = (connection, level)

    def execute_and_commit(self, before: list[tuple[str, dict]], statement: str, params: dict) -> int:
        """Run `before`, then `statement`, and commit (durably) when it changed a row; `statement`'s rowcount."""
        self.synchronous("FULL")  # the commit carries a `sending` mark
        for sql, values in before:
            self.execute(sql, values)
        changed = self.execute(statement, params)
        if changed == 1:
            self.commit()
        return changed


def _naive_utc(value: datetime) -> datetime:
    """What UTCDateTime stores: naive UTC."""
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo is not None else value


def _text_param(value) -> bytes | None:
    """A statement parameter in PostgreSQL's text format (the server casts it to the column's type)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return _naive_utc(value).isoformat(sep=" ").encode()
    return str(value).encode()


class _PostgresMarks:
    """PostgreSQL: the per-message writes on two connections of their own, in autocommit, so that the durable
    commit of the next message's `sending` mark happens while the SMTP server is still answering the current one.

    - `durable` (synchronous_commit on) carries the `sending` marks. A mark is one statement, hence one
      transaction, committed to disk before the server answers. `send_mark()` writes it and returns at once;
      `collect_mark()` waits for the answer, which has usually arrived while the worker waited for SMTP.
    - `fast` (synchronous_commit off) carries results. Committed and visible to every other session when it
      answers, without waiting for the disk; a PostgreSQL crash can lose the last few (never a worker crash). A
      lost result leaves its row `sending`, which recovery turns into `uncertain` — never a re-send — and
      recovery knows when PostgreSQL has restarted since (see recover_abandoned).

    The order exactly-once needs is kept: a message's result is committed (fast) before the next message's
    content is written, and that message's mark is committed (durable) before its content is written. Only
    the mark is written ahead: while message N is with the server, message N+1 may already be `sending`
    although nothing of it went out; if the worker dies then, recovery sees two `sending` rows of a dead worker
    and gives the later one back, because its content is written only after N's result is committed, which
    has not happened while N is still `sending`.
    """

    def __init__(self, engine, sql_mark: str):
        import psycopg  # noqa: PLC0415 - PostgreSQL only

        args, kwargs = engine.dialect.create_connect_args(engine.url)
        self.durable = psycopg.connect(*args, autocommit=True, **kwargs)
        self.fast = psycopg.connect(*args, autocommit=True, **kwargs)
        self.fast.execute("SET synchronous_commit = off")
        self.mark_sql = sql_mark
        self.pending: int | None = None  # id of the row whose mark was sent and not yet collected
        # Statements prepared on each connection (by its own name), with their parameters' names in order:
        # libpq's own calls and a plan made once cost the server and the worker less per message than a cursor
        # and a statement parsed and planned every time.
        self.prepared: dict[tuple[int, str], tuple[bytes, list[str]]] = {}

    def close(self) -> None:
        """Close both connections (an uncollected mark is waited for first)."""
        with contextlib.suppress(Exception):
            if self.pending is not None:
                self.collect_mark()
        for connection in (self.durable, self.fast):
            with contextlib.suppress(Exception):
                connection.close()

    def _send(self, connection, sql: str, params: dict) -> None:
        """Write one statement with its parameters (text format, typed by the server); do not wait."""
        pgconn = connection.pgconn
        prepared = self.prepared.get((id(connection), sql))
        if prepared is None:
            names: list[str] = []

            def number(match):
                if match.group(1) not in names:
                    names.append(match.group(1))
                return f"${names.index(match.group(1)) + 1}"

            name = f"undersigned_{len(self.prepared)}".encode()
            result = pgconn.prepare(name, re.sub(r":(\w+)", number, sql).encode())
            if result.error_message:
                raise RuntimeError(f"preparing a message statement failed: {result.error_message.decode()}")
            prepared = self.prepared[(id(connection), sql)] = (name, names)
        name, names = prepared
        pgconn.send_query_prepared(name, [_text_param(params[n]) for n in names])
        while pgconn.flush():
            pass

    @staticmethod
    def _wait(connection) -> int:
        """The answer to the statement written last: the rows it changed (an error is raised)."""
        from psycopg import pq  # noqa: PLC0415 - PostgreSQL only

        pgconn, changed, error = connection.pgconn, 0, None
        while (result := pgconn.get_result()) is not None:
            if result.status == pq.ExecStatus.COMMAND_OK:
                changed = int(result.command_tuples or 0)
            else:
                error = (result.error_message or b"").decode("utf-8", "replace")
        if error is not None:
            raise RuntimeError(f"writing a message's state failed: {error}")
        return changed

    def record(self, statements: list[tuple[str, dict]]) -> None:
        """Commit results on the fast connection (one statement each; one round trip, no disk wait)."""
        for sql, params in statements:
            self._send(self.fast, sql, params)
            self._wait(self.fast)

    def collect_mark_and_record(self, statements: list[tuple[str, dict]]) -> int:
        """Collect the mark written ahead and commit the results, the two waits overlapping: the first result
        is written before waiting for the mark (they travel on different connections); the rows the mark
        changed."""
        if statements:
            self._send(self.fast, *statements[0])
        try:
            marked = self.collect_mark()
        finally:
            if statements:
                self._wait(self.fast)
        self.record(statements[1:])
        return marked

    def mark(self, params: dict) -> int:
        """Mark a row `sending` durably, now; the rows changed (1, or 0 when suppressed or not ours)."""
        self.send_mark(params)
        return self.collect_mark()

    def send_mark(self, params: dict) -> None:
        """Write the mark and return without waiting for the answer."""
        self._send(self.durable, self.mark_sql, params)
        self.pending = params["id"]

    def collect_mark(self) -> int:
        """The answer to the mark sent last: the rows it changed."""
        self.pending = None
        return self._wait(self.durable)


class _SqliteMarks:
    """SQLite: the marks written ahead, as _PostgresMarks does them, on the session's own connection.

    SQLite runs in this process, so a mark cannot travel while the worker does something else; but the worker
    writes it right after the current message's content, while the SMTP server is busy with that content, so
    the disk sync it needs overlaps the server's work instead of delaying the next message. Marks are synced
    commits (`synchronous=FULL`); results are commits that are not synced (`NORMAL`): committed before the next
    content is written, which is what a killed worker needs, and lost only with the OS (power cut, crash) —
    then their rows are still `sending`, and recovery, seeing that the machine has restarted since, makes both
    rows a dead worker left `sending` uncertain rather than giving the second back (see recover_abandoned).
    """

    def __init__(self, driver: "_Driver", sql_mark: str):
        self.driver, self.mark_sql = driver, sql_mark
        self.pending: int | None = None  # id of the row whose mark was written and not yet collected
        self.marked = 0

    def _commit(self, level: str, statements: list[tuple[str, dict]]) -> int:
        """Run the statements in one transaction committed at this level; the last one's rowcount."""
        if not statements:
            return 0
        self.driver.synchronous(level)
        changed = 0
        for sql, params in statements:
            changed = self.driver.execute(sql, params)
        self.driver.commit()
        return changed

    def close(self) -> None:
        """Nothing of its own to close (the session's connection)."""
        self.pending = None

    def record(self, statements: list[tuple[str, dict]]) -> None:
        """Commit results (not synced)."""
        self._commit("NORMAL", statements)

    def collect_mark_and_record(self, statements: list[tuple[str, dict]]) -> int:
        """The mark written ahead (already committed), then the results."""
        marked = self.collect_mark()
        self.record(statements)
        return marked

    def mark(self, params: dict) -> int:
        """Mark a row `sending`, synced, now; the rows changed."""
        self.send_mark(params)
        return self.collect_mark()

    def send_mark(self, params: dict) -> None:
        """Mark a row `sending` (synced commit); collect_mark() tells the outcome."""
        self.marked = self._commit("FULL", [(self.mark_sql, params)])
        self.pending = params["id"]

    def collect_mark(self) -> int:
        """The rows the last mark changed."""
        self.pending = None
        return self.marked


@dataclass
class MergeRuntime:
    """What a worker keeps per merge while sending it: compiled templates, letter, sender."""

    id: int
    compiled: object
    letter: dict | None
    sender: str
    envelope_from: str
    reply_to: str
    name: str
    throttle: int | None
    problems: list = field(default_factory=list)


@dataclass
class WorkerStats:
    """Counts of what one worker run did."""

    sent: int = 0
    failed: int = 0
    retried: int = 0
    uncertain: int = 0
    suppressed: int = 0
    released: int = 0
    connections: int = 0

    def as_dict(self) -> dict:
        """As a plain dict."""
        return dict(self.__dict__)


class Worker:
    """Drains the outbox over one reused SMTP connection."""

    def __init__(self, transport=None, *, batch: int | None = None, name: str | None = None):
        config = current_app.config
        self.transport = transport or transport_for(config)
        self.batch = batch or int(config.get("MAIL_WORKER_BATCH") or 100)
        self.name = name or f"{_HOST}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.retry_base = float(config.get("MAIL_RETRY_BASE_SECONDS", 60))
        self.max_attempts = int(config.get("MAIL_MAX_ATTEMPTS") or 5)
        self.default_sender = config.get("MAIL_DEFAULT_SENDER") or "undersigned@localhost"
        self.postgres = db.engine.dialect.name == "postgresql"
        self.driver = _Driver(db.engine.dialect)
        self.envelope_default = parseaddr(self.default_sender)[1] or self.default_sender
        self.merges: dict[int, MergeRuntime] = {}
        self.stats = WorkerStats()
        # The previous message's result, waiting to ride along with the next commit (see _send_row).
        self._staged: list = []
        self._staged_bounces: list[tuple[str, str]] = []
        # Rows of the batch rendered while the server was answering (see _render_ahead).
        self._ahead: dict[int, tuple] = {}
        self._batch: list = []
        self._recipients: dict = {}
        self._render_next = 0
        self._position = 0
        self._halted: set[int] = set()
        # What writes the marks ahead and the results (see _PostgresMarks, _SqliteMarks), and the row marked ahead.
        self.marks: _PostgresMarks | _SqliteMarks | None = None
        self._premarked: int | None = None

    # --- claiming
    # -------------------------------------------------------------------------------------------------

    def _due(self):
        """Rows ready to send now."""
        now = utcnow()
        return and_(Message.status == "queued", or_(Message.next_attempt_at.is_(None), Message.next_attempt_at <= now))

    def _allowance(self, merge_id: int, throttle: int | None) -> int:
        """How many more rows of a throttled merge may go out in the current minute (across all workers)."""
        if not throttle:
            return self.batch
        since = utcnow() - timedelta(seconds=60)
        used = (
            db.session.scalar(
                select(func.count()).where(
                    Message.merge_id == merge_id,
                    or_(
                        and_(Message.sent_at.is_not(None), Message.sent_at >= since),
                        Message.status.in_(("claimed", "sending")),
                    ),
                )
            )
            or 0
        )
        return max(0, min(self.batch, throttle - used))

    def _claim_where(self, where, limit: int) -> list[int]:
        """Take up to `limit` due rows matching `where` for this worker, atomically; returns their ids."""
        now = utcnow()
        if self.postgres:
            ids = list(
                db.session.scalars(
                    select(Message.id)
                    .where(self._due(), where)
                    .order_by(Message.id)
                    .limit(limit)
                    .with_for_update(skip_locked=True)
                )
            )
            if ids:
                db.session.execute(
                    update(Message)
                    .where(Message.id.in_(ids))
                    .values(status="claimed", claimed_by=self.name, claimed_at=now)
                )
            db.session.commit()
            return ids
        # SQLite has one writer at a time: a single UPDATE … WHERE status='queued' is the claim.
        chosen = select(Message.id).where(self._due(), where).order_by(Message.id).limit(limit).scalar_subquery()
        db.session.execute(
            update(Message)
            .where(Message.id.in_(chosen), Message.status == "queued")
            .values(status="claimed", claimed_by=self.name, claimed_at=now)
            .execution_options(synchronize_session=False)
        )
        db.session.commit()
        return list(
            db.session.scalars(
                select(Message.id)
                .where(Message.claimed_by == self.name, Message.status == "claimed")
                .order_by(Message.id)
            )
        )

    def claim(self) -> list[int]:
        """The next batch: system mail first, then active merges in order, honouring throttles."""
        ids = self._claim_where(Message.merge_id.is_(None), self.batch)
        if ids:
            return ids
        active = db.session.execute(
            select(MailMerge.id, MailMerge.throttle_per_minute)
            .where(MailMerge.status.in_(ACTIVE_MERGE))
            .order_by(MailMerge.id)
        ).all()
        for merge_id, throttle in active:
            allowance = self._allowance(merge_id, throttle)
            if allowance <= 0:
                continue
            ids = self._claim_where(Message.merge_id == merge_id, allowance)
            if ids:
                db.session.execute(
                    update(MailMerge)
                    .where(MailMerge.id == merge_id, MailMerge.status == "queued")
                    .values(status="sending", started_at=utcnow(), version=MailMerge.version + 1)
                )
                db.session.commit()
                return ids
        return []

    def pending(self) -> bool:
        """Whether anything is still to be sent (now or after a retry delay) by anyone."""
        active = select(MailMerge.id).where(MailMerge.status.in_(ACTIVE_MERGE))
        return bool(
            db.session.scalar(
                select(
                    exists().where(
                        Message.status.in_(("queued", "claimed", "sending")),
                        or_(Message.merge_id.is_(None), Message.merge_id.in_(active)),
                    )
                )
            )
        )

    def next_due_in(self) -> float:
        """Seconds until the earliest queued retry (0 when one is due now, 1 when unknown)."""
        earliest = db.session.scalar(select(func.min(Message.next_attempt_at)).where(Message.status == "queued"))
        if earliest is None:
            return 1.0
        return max(0.0, min(1.0, (earliest - utcnow()).total_seconds()))

    def finish_merges(self) -> None:
        """Mark active merges with nothing left in flight as done."""
        in_flight = exists().where(
            Message.merge_id == MailMerge.id, Message.status.in_(("queued", "claimed", "sending"))
        )
        db.session.execute(
            update(MailMerge)
            .where(MailMerge.status.in_(ACTIVE_MERGE), ~in_flight)
            .values(status="done", finished_at=utcnow(), version=MailMerge.version + 1)
            .execution_options(synchronize_session=False)
        )
        db.session.commit()

    # --- sending
    # --------------------------------------------------------------------------------------------------

    def _runtime(self, merge_id: int) -> MergeRuntime:
        """Compiled templates of a merge, cached for this worker's life (a queued merge's content is
        frozen).
        """
        runtime = self.merges.get(merge_id)
        if runtime is None:
            merge = db.session.get(MailMerge, merge_id)
            compiled = compile_templates(merge.subject_template, merge.body_template)
            sender = merge.sender or self.default_sender
            runtime = MergeRuntime(
                id=merge.id,
                compiled=compiled,
                letter=letter_record(merge.letter),
                sender=sender,
                envelope_from=parseaddr(sender)[1] or sender,
                reply_to=merge.reply_to,
                name=merge.name,
                throttle=merge.throttle_per_minute,
                problems=compiled.problems,
            )
            self.merges[merge_id] = runtime
        return runtime

    def _release(self, ids: list[int], merge_status: str) -> None:
        """Give back claimed rows of a paused merge (or cancel them with a cancelled merge)."""
        self._apply_staged()
        values = (
            {"status": "cancelled"}
            if merge_status == "cancelled"
            else {"status": "queued", "claimed_by": "", "claimed_at": None}
        )
        db.session.execute(
            update(Message)
            .where(Message.id.in_(ids), Message.status == "claimed", Message.claimed_by == self.name)
            .values(**values)
        )
        db.session.commit()
        self.stats.released += len(ids)

    def process(self, ids: list[int]) -> None:
        """Send a claimed batch: each message's `sending` mark and the previous message's result are committed
        before its content goes out (see _send_row)."""
        rows = db.session.execute(
            select(Message.id, Message.merge_id, Message.contact_id, Message.email, Message.raw, Message.attempts)
            .where(Message.id.in_(ids))
            .order_by(Message.id)
        ).all()
        merge_ids = {r.merge_id for r in rows if r.merge_id is not None}
        statuses = (
            dict(db.session.execute(select(MailMerge.id, MailMerge.status).where(MailMerge.id.in_(merge_ids))).all())
            if merge_ids
            else {}
        )
        stopped = [r.id for r in rows if r.merge_id is not None and statuses.get(r.merge_id) not in ACTIVE_MERGE]
        if stopped:
            for merge_id in {r.merge_id for r in rows if r.id in stopped}:
                self._release([r.id for r in rows if r.merge_id == merge_id], statuses.get(merge_id, "paused"))
            rows = [r for r in rows if r.id not in stopped]
        recipients = load_recipients([r.contact_id for r in rows if r.merge_id is not None and r.contact_id])
        if self.marks is None and current_app.config.get("MAIL_MARK_AHEAD", True):
            if self.postgres and db.engine.dialect.driver == "psycopg":  # libpq's calls through psycopg 3
                self.marks = _PostgresMarks(db.engine, MARK_SENDING_IF_ACTIVE)
            elif db.engine.dialect.name == "sqlite":
                self.marks = _SqliteMarks(self.driver, MARK_SENDING_IF_ACTIVE)
        halted = self._halted = set()
        self._ahead, self._batch, self._recipients, self._render_next = {}, rows, recipients, 0
        try:
            for position, row in enumerate(rows):
                if self._premarked is not None and self._premarked != row.id:
                    self._unmark_ahead()  # cannot happen (only the next row is marked ahead); never left marked
                if row.merge_id in halted:
                    continue
                if position and position % 5 == 0 and row.merge_id is not None and self.marks is None:
                    # Pause and cancel take effect within a few messages, even inside a batch. (With marks of
                    # their own — the default — every message's mark checks it.)
                    status = self.driver.scalar(MERGE_STATUS, {"id": row.merge_id})
                    if status not in ACTIVE_MERGE:
                        self._halt(row.merge_id, position, status)
                        continue
                self._render_next = max(self._render_next, position + 1)
                self._position = position
                self._send_row(row, recipients)
        finally:
            self.transport.abandon()  # an envelope announced for a row that will not be sent now
            self._unmark_ahead()
            self._ahead, self._batch, self._recipients = {}, [], {}
            # The last message's result has no next mark to ride along with: commit it on its own (one extra
            # commit per batch). On an exception it is rolled back and the row stays `sending`, which recovery
            # turns into `uncertain` — never re-sent.
            self._apply_staged()
            db.session.commit()

    def _render(self, row, recipients) -> tuple:
        """(raw, message_id, subject, envelope_from, problem) of a row; merge rows are rendered now."""
        envelope_from = self.envelope_default
        raw, message_id, subject, problem = row.raw, None, None, None
        if row.merge_id is not None:
            runtime = self._runtime(row.merge_id)
            envelope_from = runtime.envelope_from
            recipient = recipients.get(row.contact_id)
            problem = "; ".join(str(p) for p in runtime.problems) if runtime.problems else None
            if recipient is None and problem is None:
                problem = "the contact no longer exists"
            if problem is None:
                try:
                    rendered = render_message(
                        runtime.compiled,
                        recipient,
                        letter=runtime.letter,
                        merge_id=row.merge_id,
                        sender=runtime.sender,
                        reply_to=runtime.reply_to,
                        to_email=row.email,
                    )
                    raw, message_id, subject = rendered.raw, rendered.message_id, rendered.subject
                except RenderError as exc:
                    problem = f"{exc.part}: {exc}"
        return raw, message_id, subject, envelope_from, problem

    def _render_ahead(self) -> None:
        """Render the next rows of the batch while the SMTP server works on the current message (the envelope's
        replies, then the content's): the renders touch no row, so nothing about the order of commits and sends
        changes, and this process's CPU work overlaps the server's instead of alternating with it."""
        if len(self._ahead) >= RENDER_AHEAD or self._render_next >= len(self._batch):
            return
        row = self._batch[self._render_next]
        self._render_next += 1
        try:
            self._ahead[row.id] = self._render(row, self._recipients)
        except Exception:  # noqa: BLE001 - rendered again when its turn comes, where nothing is in flight
            self._render_next = len(self._batch)

    def _next_envelope(self) -> tuple[str, str] | None:
        """(envelope_from, recipient) of the batch's next row, to announce with this row's content — unless a
        pause check comes first or the row cannot be rendered (see SMTPTransport.begin). Usually rendered
        already, while the server answered the previous message."""
        position = self._position + 1
        if position >= len(self._batch):
            return None
        row = self._batch[position]
        if position % 5 == 0 and row.merge_id is not None and self.marks is None:
            return None  # process() checks for a pause before this row
        if row.merge_id in self._halted:
            return None
        if row.id not in self._ahead:
            try:
                self._ahead[row.id] = self._render(row, self._recipients)
            except Exception:  # noqa: BLE001 - rendered again when its turn comes, where nothing is in flight
                return None
            self._render_next = max(self._render_next, position + 1)
        _raw, _message_id, _subject, envelope_from, problem = self._ahead[row.id]
        return None if problem is not None else (envelope_from, row.email)

    def _send_row(self, row, recipients) -> None:
        """Mark sending — committing the previous result with it —, hand to SMTP (rendering the next rows while
        the server answers), and stage the outcome for the next commit."""
        now = utcnow()
        ahead = self._ahead.pop(row.id, None)
        raw, message_id, subject, envelope_from, problem = ahead or self._render(row, recipients)
        premarked = self._premarked == row.id
        if premarked:
            # Marked `sending` while the previous message was with the server; the mark's durable
            # commit has usually finished by now. (Marked ahead only when rendered without a problem.)
            self._premarked = None
            marked = self.marks.collect_mark_and_record(self._take_staged())
        elif row.merge_id is not None and problem is not None:
            self.transport.abandon()
            self._commit_results()
            # Nothing is handed to SMTP, so this may wait for the next commit: lost in a crash, the row is
            # still `claimed`, goes back to `queued` and fails the same way again.
            db.session.execute(
                MESSAGES.update()
                .where(MESSAGES.c.id == row.id)
                .values(
                    status="failed",
                    last_response=f"not sent: {problem}"[:2000],
                    claimed_by="",
                    updated_at=now,
                )
            )
            self.stats.failed += 1
            return
        elif self.marks is not None:
            # Not marked ahead (first of a batch, a server without pipelining, a new connection, …): the
            # previous result (fast), then this mark, durably, before anything of this message goes out.
            self.marks.record(self._take_staged())
            marked = self.marks.mark(self._mark_params(row, raw, message_id, subject, now))
        else:
            # THE commit of this message: it records the previous message's result (staged by _record) and
            # marks this one `sending`, atomically — one commit per message, never more than one `sending`
            # row, and every result committed before the next message goes out. (SQLite: no round trips.)
            marked = self.driver.execute_and_commit(
                self._take_staged(), MARK_SENDING, self._mark_params(row, raw, message_id, subject, now)
            )
        if marked != 1 and self.marks is not None and row.merge_id is not None:
            status = db.session.scalar(select(MailMerge.status).where(MailMerge.id == row.merge_id))
            if status not in ACTIVE_MERGE:
                # Paused or cancelled meanwhile (the mark checks): this row and the rest of its merge go back.
                self.transport.abandon()
                self._halt(row.merge_id, self._position, status)
                return
        if marked != 1:
            # Suppressed since it was queued (checked again right before sending), or taken away from us.
            # Not sent, so it rides along with the next commit like a render failure; a server that took its
            # announced DATA is disconnected.
            self.transport.abandon()
            done = db.session.execute(
                MESSAGES.update()
                .where(
                    MESSAGES.c.id == row.id,
                    MESSAGES.c.status == "claimed",
                    MESSAGES.c.claimed_by == self.name,
                )
                .values(status="suppressed", updated_at=now, last_response="not sent: the address is suppressed")
            )
            self.stats.suppressed += done.rowcount
            return
        # The mark is durable (a `synchronous_commit = off` mark, lost in a PostgreSQL crash, would leave the
        # row `claimed` although its message went out, and `claimed` rows are given back to `queued`: a
        # re-send). The durable mark is the one disk write exactly-once requires; on PostgreSQL it is written
        # ahead, while the server answers the previous message.
        outcome = self.transport.begin(
            envelope_from, row.email, raw, while_waiting=self._render_ahead, then=self._next_envelope
        )
        if outcome is None:
            self._mark_ahead()
            self._render_ahead()
            outcome = self.transport.finish()
        self._record(row, outcome)

    def _halt(self, merge_id: int, position: int, status: str | None) -> None:
        """A merge was paused or cancelled: its rows from `position` on are given back (or cancelled) and not
        sent in this batch. _release commits, and with it the previous message's pending result."""
        self._halted.add(merge_id)
        rest = [r.id for r in self._batch[position:] if r.merge_id == merge_id]
        for row_id in rest:
            self._ahead.pop(row_id, None)  # rendered ahead, now never sent
        self._release(rest, status or "paused")

    def _mark_params(self, row, raw, message_id, subject, now) -> dict:
        """The parameters of MARK_SENDING for a row."""
        return {
            "attempts": row.attempts + 1,
            "raw": raw,
            "now": now,
            "message_id": message_id,
            "subject": subject[:1000] if message_id else None,
            "id": row.id,
            "worker": self.name,
        }

    def _mark_ahead(self) -> None:
        """The next row's envelope went out with this content; write its `sending` mark now, without
        waiting, so its disk write overlaps the SMTP server's work (see _PostgresMarks, _SqliteMarks)."""
        if self.marks is None or getattr(self.transport, "announcing", None) is None:
            return
        position = self._position + 1
        if position >= len(self._batch):
            return
        row = self._batch[position]
        ahead = self._ahead.get(row.id)
        if ahead is None or ahead[4] is not None:
            return
        raw, message_id, subject, _envelope_from, _problem = ahead
        self.marks.send_mark(self._mark_params(row, raw, message_id, subject, utcnow()))
        self._premarked = row.id

    def _unmark_ahead(self) -> None:
        """A row marked ahead will not be sent now: give it back to `claimed` (nothing of it went out)."""
        if self._premarked is None:
            return
        row_id, self._premarked = self._premarked, None
        if self.marks.pending is not None:
            self.marks.collect_mark()
        self.marks.record([(UNMARK_AHEAD, {"id": row_id, "worker": self.name})])

    def _close_marks(self) -> None:
        """Close the connections for marks and results (PostgreSQL; opened again by the next batch)."""
        if self.marks is not None:
            self.marks.close()
            self.marks = None

    def _commit_results(self) -> None:
        """The staged results: committed now with marks of their own, else executed to ride with the next commit."""
        if self.marks is not None:
            self.marks.record(self._take_staged())
        else:
            self._apply_staged()

    def _record(self, row, outcome) -> None:
        """Stage one attempt's outcome; it is committed together with the next message's `sending` mark (or
        at the end of the batch), always before another message goes out."""
        now = utcnow()
        values: dict = {"last_response": outcome.response[:2000], "updated_at": now, "claimed_by": ""}
        if outcome.kind in DELIVERED_STATUSES:
            self.stats.sent += 1
            self._staged.append(
                (
                    RECORD_SENT,
                    {"status": outcome.kind, "now": now, "response": outcome.response[:2000], "id": row.id},
                )
            )
            return
        elif outcome.kind == "uncertain":
            values.update(status="uncertain")
            self.stats.uncertain += 1
        elif outcome.kind == "retry" and row.attempts + 1 < self.max_attempts:
            delay = self.retry_base * (2**row.attempts)
            values.update(status="queued", next_attempt_at=now + timedelta(seconds=delay), claimed_at=None)
            self.stats.retried += 1
        else:
            values.update(status="failed")
            self.stats.failed += 1
        self._staged.append(
            (MESSAGES.update().where(MESSAGES.c.id == row.id, MESSAGES.c.status == "sending").values(**values), None)
        )
        if outcome.hard_bounce:
            self._staged_bounces.append((row.email.lower(), outcome.response[:500]))

    def _apply_staged(self) -> None:
        """Execute the staged result (not committing). Staged rather than executed right after SMTP answers so
        that no write lock (SQLite's is database-wide) is held while the next message is rendered."""
        for statement, params in self._take_staged():
            self.driver.execute(statement, params)

    def _take_staged(self) -> list[tuple[str, dict]]:
        """Execute the staged results that need SQLAlchemy (failures, bounces; rare) and hand back the plain
        statements (a delivered message's result) for the caller to run with its next statement. With marks of
        their own (the default) the former are committed here: results go out before the next content, and only
        the session commits what the session wrote."""
        plain = [(statement, params) for statement, params in self._staged if isinstance(statement, str)]
        rare = len(plain) < len(self._staged) or self._staged_bounces
        for statement, _params in self._staged:
            if not isinstance(statement, str):
                db.session.execute(statement)
        for email, note in self._staged_bounces:
            if db.session.scalar(select(Suppression.id).where(Suppression.email == email)) is None:
                db.session.add(Suppression(email=email, reason="hard-bounce", note=note))
                db.session.flush()
        if rare and self.marks is not None:
            db.session.commit()
        self._staged.clear()
        self._staged_bounces.clear()
        return plain

    # --- the loop
    # -------------------------------------------------------------------------------------------------

    def run(
        self,
        *,
        until_empty: bool = False,
        stop: threading.Event | None = None,
        idle_wait: float = 1.0,
        max_batches: int | None = None,
    ) -> WorkerStats:
        """Drain the outbox; with until_empty, return once nothing is left (waiting out retry delays)."""
        with _LIVE_LOCK:
            _LIVE_WORKERS.add(self.name)
        batches = 0
        try:
            recover_abandoned()
            while not (stop is not None and stop.is_set()):
                ids = self.claim()
                if ids:
                    self.process(ids)
                    batches += 1
                    if max_batches is not None and batches >= max_batches:
                        break
                    continue
                self.finish_merges()
                recover_abandoned()
                if until_empty and not self.pending():
                    break
                # Nothing due now: close idle connections rather than hold them open, then wait.
                if not until_empty:
                    self.transport.close()
                    self._close_marks()
                wait = self.next_due_in() if until_empty else idle_wait
                if stop is not None:
                    stop.wait(wait or 0.01)
                else:
                    time.sleep(wait or 0.01)
            self.finish_merges()
        finally:
            self.stats.connections = getattr(self.transport, "connections_opened", 0)
            self.transport.close()
            self._close_marks()
            db.session.rollback()
            with _LIVE_LOCK:
                _LIVE_WORKERS.discard(self.name)
        return self.stats


def drain(until_empty: bool = True, **kwargs) -> WorkerStats:
    """Run one worker in this process until the outbox is empty."""
    return Worker(**kwargs).run(until_empty=until_empty)
