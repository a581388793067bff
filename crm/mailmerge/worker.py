"""The outbox worker: a loop that runs MAIL_CONNECTIONS senders side by side, plus periodic jobs.

A sender is one SMTP connection and one database connection of its own. It claims a batch (claims.py), and for
each row: renders it (batch.py), marks it `sending` durably (marks.py, which states the exactly-once protocol),
hands it to SMTP (transport.py) and records the answer. Senders claim independently, as worker processes do.
The worker's own thread runs the periodic jobs (recovery, finishing merges; later an IMAP poller, a scheduler).

Losing the database or the relay stops nobody: a sender backs off (up to 30 s), reconnects, puts right what it was
doing (marks.repair, then its claims go back to `queued`) and goes on. `Health` says what the worker is doing
(running / backing off since … / last error) for /healthz, the outbox page and the log.
"""

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields

from flask import current_app
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, SQLAlchemyError

from crm.common.types import utcnow
from crm.extensions import db
from crm.mailmerge import claims
from crm.mailmerge.batch import Batch, envelope_address
from crm.mailmerge.marks import Marks, Policy
from crm.mailmerge.transport import RelayUnavailable, transport_for

log = logging.getLogger(__name__)
MAX_BACKOFF = 30.0


def is_connection_loss(exc: BaseException) -> bool:
    """A database error that a reconnect can cure (restart, failover, a proxy dropping the connection, a lock)."""
    return isinstance(exc, OperationalError | InterfaceError) or (
        isinstance(exc, DBAPIError) and exc.connection_invalidated
    )


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

    def add(self, other: "WorkerStats") -> None:
        """Add another sender's counts."""
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def as_dict(self) -> dict:
        """As a plain dict."""
        return asdict(self)


@dataclass
class Health:
    """What the worker is doing, for /healthz and the outbox page (shared by its threads)."""

    state: str = "starting"
    since: object = field(default_factory=utcnow)
    last_error: str = ""
    last_error_at: object = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def set(self, state: str, error: BaseException | None = None) -> None:
        """Enter a state, noting the error that caused it; logged when it changes and at every error."""
        with self.lock:
            if error is not None:
                self.last_error, self.last_error_at = f"{type(error).__name__}: {error}"[:500], utcnow()
                log.warning("outbox worker %s (%s)", state, self.last_error)
            elif state != self.state:
                log.info("outbox worker %s", state)
            if state != self.state:
                self.state, self.since = state, utcnow()

    def as_dict(self) -> dict:
        """Plain values."""
        with self.lock:
            return {"state": self.state, "since": self.since, "last_error": self.last_error,
                    "last_error_at": self.last_error_at}


@dataclass
class Job:
    """Something the worker's own thread runs every `every` seconds (its own database access included)."""

    name: str
    every: float
    run: Callable[[], None]
    due: float = 0.0


class Sender:
    """One SMTP connection draining the outbox: claim, then mark → send → record each row."""

    def __init__(self, app, health: Health, *, batch: int, share: int = 1, transport=None):
        config = app.config
        self.app, self.health, self.batch, self.share = app, health, batch, share
        self.name = claims.new_sender_name()
        self.transport = transport or transport_for(config)
        self.policy = Policy(int(config.get("MAIL_MAX_ATTEMPTS") or 5), float(config["MAIL_RETRY_BASE_SECONDS"]))
        self.envelope_default = envelope_address(config.get("MAIL_DEFAULT_SENDER") or "undersigned@localhost")
        self.conn = self.marks = None
        self.runtimes: dict = {}
        self.stats = WorkerStats()
        self.error: BaseException | None = None

    def run(self, stop: threading.Event, *, until_empty: bool, idle_wait: float, max_batches: int | None) -> None:
        """Send until stopped (or until nothing is left), in an app context of this thread's own."""
        claims.set_alive(self.name, True)
        with self.app.app_context():
            try:
                self._loop(stop, until_empty, idle_wait, max_batches)
            except Exception as exc:  # noqa: BLE001 - handed to the worker's thread, which re-raises it
                self.error = exc
            finally:
                self.stats.connections = getattr(self.transport, "connections_opened", 0)
                self.transport.close()
                self._drop_connection()
                claims.set_alive(self.name, False)

    def _loop(self, stop: threading.Event, until_empty: bool, idle_wait: float, max_batches: int | None) -> None:
        """Claim and send batches; back off and reconnect when the database or the relay is lost."""
        batches = failures = 0
        while not stop.is_set():
            try:
                ids = claims.claim(self._connection(), self.name, self.batch, self.share)
                if ids:
                    self._send_batch(ids)
                    batches += 1
                elif until_empty and not claims.pending(self.conn):
                    return
                else:
                    if not until_empty:
                        self.transport.close()  # idle: do not hold the relay's connection open
                    stop.wait((claims.next_due_in(self.conn) if until_empty else idle_wait) or 0.01)
                failures = 0
                self.health.set("running")
                if max_batches is not None and batches >= max_batches:
                    return
            except (RelayUnavailable, DBAPIError) as exc:
                if isinstance(exc, DBAPIError) and not is_connection_loss(exc):
                    raise
                failures += 1
                self._back_off(exc, stop, min(MAX_BACKOFF, 0.5 * 2 ** (failures - 1)))

    def _connection(self):
        """The sender's database connection; a new one is first used to put right what a lost one left."""
        if self.conn is None:
            self.conn = db.engine.connect()
            self.marks = self.marks or Marks(self.conn, self.name, self.policy)
            self.marks.conn = self.conn
            self.marks.repair()
            self.stats.released += claims.give_back(self.conn, self.name)
        return self.conn

    def _drop_connection(self) -> None:
        """Forget the database connection (a broken one is discarded by the pool)."""
        if self.conn is not None:
            try:
                self.conn.rollback()
                self.conn.close()
            except SQLAlchemyError:
                self.conn.invalidate()
                self.conn.close()
            self.conn = None
        db.session.remove()

    def _back_off(self, exc: BaseException, stop: threading.Event, delay: float) -> None:
        """Note the outage, let go of both connections, wait; the next round reconnects."""
        self.health.set("backing off", exc)
        self.transport.close()
        try:
            if isinstance(exc, RelayUnavailable):  # nothing more was sent: the rest goes back for later
                self.marks.flush()
                self.stats.released += claims.give_back(self.conn, self.name)
            else:
                self._drop_connection()
        except DBAPIError:  # the database went too: given back once it is back (see _connection)
            self._drop_connection()
        stop.wait(delay)

    def _send_batch(self, ids: list[int]) -> None:
        """Send a claimed batch, row by row, skipping the rest of a merge paused or cancelled meanwhile."""
        batch = Batch(ids, self.runtimes)
        for row in batch.rows:
            if row.merge_id not in batch.stopped:
                self._send_row(batch, row)
        self.marks.flush()  # the last answer, which no next mark carries

    def _send_row(self, batch: Batch, row) -> None:
        """Render, mark `sending` (durably), hand to SMTP, record the answer — the protocol of marks.py."""
        ready = batch.prepare(row, self.envelope_default)
        if ready.problem is not None:
            self.marks.fail_unsent(row, ready.problem)
            self.stats.failed += 1
            return
        self.transport.connect()  # RelayUnavailable here costs the row nothing: it is only `claimed`
        marked = self.marks.mark_sending(row, ready.raw, ready.message_id, ready.subject)
        if marked == "suppressed":
            self.stats.suppressed += 1
        elif marked != "marked":  # the merge's status: paused or cancelled since the batch was claimed
            batch.stopped.add(row.merge_id)
            cancel = marked == "cancelled"
            self.stats.released += claims.give_back(self.conn, self.name, merge_id=row.merge_id, cancel=cancel)
        else:
            status = self.marks.record(row, self.transport.send(ready.envelope_from, row.email, ready.raw))
            counter = {"sent": "sent", "outbox": "sent", "queued": "retried"}.get(status, status)
            setattr(self.stats, counter, getattr(self.stats, counter) + 1)


class Worker:
    """MAIL_CONNECTIONS senders in threads of their own, and the periodic jobs in the calling thread."""

    def __init__(self, transport=None, *, batch: int | None = None, connections: int | None = None,
                 health: Health | None = None, jobs: list[Job] | None = None):
        app = current_app._get_current_object()
        config = app.config
        self.app, self.health = app, health or Health()
        size = batch or int(config.get("MAIL_WORKER_BATCH") or 20)
        count = 1 if transport is not None else max(1, connections or int(config.get("MAIL_CONNECTIONS") or 1))
        self.senders = [Sender(app, self.health, batch=size, share=count, transport=transport) for _ in range(count)]
        recover_every = float(config.get("MAIL_RECOVER_SECONDS") or 10)
        self.jobs = [Job("recover abandoned rows", recover_every, self.recover),
                     Job("finish merges", float(config.get("MAIL_POLL_SECONDS") or 1.0), self.finish_merges),
                     *(jobs or [])]
        self.stats = WorkerStats()

    def recover(self) -> dict[str, int]:
        """Give back what dead workers left (see claims.recover_abandoned)."""
        with db.engine.connect() as conn:
            return claims.recover_abandoned(conn, float(self.app.config.get("MAIL_STALE_SECONDS") or 900))

    def finish_merges(self) -> None:
        """Mark merges with nothing left in flight as done."""
        with db.engine.connect() as conn:
            claims.finish_merges(conn)

    def _run_due_jobs(self, now: float) -> None:
        """Run every job whose time has come."""
        for job in self.jobs:
            if now >= job.due:
                job.due = now + job.every
                self._run_job(job)

    def _run_job(self, job: Job) -> None:
        """Run one job; a failure is noted and logged, and the job tried again at its next turn."""
        try:
            job.run()
        except Exception as exc:  # noqa: BLE001 - a job's failure must not stop the senders
            if is_connection_loss(exc):
                self.health.set("backing off", exc)
            else:
                log.exception("outbox worker job %r failed", job.name)
                self.health.set(self.health.state, exc)

    def run(self, *, until_empty: bool = False, stop: threading.Event | None = None, idle_wait: float = 1.0,
            max_batches: int | None = None) -> WorkerStats:
        """Drain the outbox; with until_empty, return once nothing is left (waiting out retry delays)."""
        stop = stop or threading.Event()
        senders_stop = threading.Event()  # the caller's `stop` is theirs: a failing sender must not set it
        self._run_due_jobs(time.monotonic())  # recovery first: a restarted worker picks up what it left
        threads = [
            threading.Thread(target=s.run, args=(senders_stop,), name=f"outbox-sender-{i}", daemon=True,
                             kwargs={"until_empty": until_empty, "idle_wait": idle_wait, "max_batches": max_batches})
            for i, s in enumerate(self.senders)
        ]
        for thread in threads:
            thread.start()
        try:
            while any(t.is_alive() for t in threads):
                if stop.is_set() or any(s.error is not None for s in self.senders):
                    senders_stop.set()
                self._run_due_jobs(time.monotonic())
                stop.wait(0.05 if until_empty else 0.2)
        finally:
            senders_stop.set()
            for thread in threads:
                thread.join()
            db.session.rollback()  # the caller's session: let it see what the senders wrote
        self._run_job(Job("finish merges", 0, self.finish_merges))  # the merges this run completed
        for sender in self.senders:
            self.stats.add(sender.stats)
        errors = [s.error for s in self.senders if s.error is not None]
        self.health.set("stopped", errors[0] if errors else None)
        if errors:
            raise errors[0]
        return self.stats


def drain(until_empty: bool = True, **kwargs) -> WorkerStats:
    """Run one worker in this process until the outbox is empty."""
    return Worker(**kwargs).run(until_empty=until_empty)
