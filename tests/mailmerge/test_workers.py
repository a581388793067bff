"""Worker processes: a SIGKILL mid-merge, two workers at once, pause and resume — nobody mailed twice."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from crm.extensions import db
from crm.mailmerge import queueing, reports
from crm.mailmerge.models import Message
from crm.mailmerge.worker import Worker, drain
from tests.mailmerge.conftest import make_recipients, new_merge, smtp_config, worker_env

# Worker claims, marks and SKIP LOCKED differ by database: on PostgreSQL too (tests/conftest.py).
pytestmark = pytest.mark.bothdb

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def app_config(sink):
    """Send to the sink."""
    return smtp_config(sink)


def _statuses(merge_id):
    return dict(
        db.session.execute(
            select(Message.status, func.count()).where(Message.merge_id == merge_id).group_by(Message.status)
        ).all()
    )


def _worker_process(app, sink, tmp_path, **extra: str) -> subprocess.Popen:
    """`crm worker --until-empty` in its own process, on the test database."""
    env = worker_env(app, sink, tmp_path / "worker-instance", MAIL_RETRY_BASE_SECONDS="1", **extra)
    log = tmp_path / f"worker-{time.monotonic_ns()}.log"
    with open(log, "wb") as stream:
        process = subprocess.Popen(
            [sys.executable, "-c", "from crm.cli import main; main()", "worker", "--until-empty"],
            cwd=ROOT,
            env=env,
            stdout=stream,
            stderr=subprocess.STDOUT,
        )
    process.log = log
    return process


@pytest.mark.slow
def test_sigkill_after_the_500th_message_then_restart(app, sink, tmp_path):
    # 1,000 recipients (was 2,000): the kill lands mid-merge with as many left to send as sent, which is what the
    # restart has to get right; the other thousand took a minute of the suite on both databases.
    make_recipients(1000)
    merge = new_merge()
    queueing.queue_merge(merge)
    process = _worker_process(app, sink, tmp_path)

    def kill_at_500(count):
        if count == 500:
            os.kill(process.pid, signal.SIGKILL)

    sink.on_accept = kill_at_500
    process.wait(120)
    assert process.returncode == -signal.SIGKILL
    sink.on_accept = None
    assert len(sink.messages) == 500
    stats = drain()
    assert stats.sent == 500
    received = sink.received_by()
    assert len(received) == 1000 and max(received.values()) == 1
    counts = _statuses(merge.id)
    assert counts.get("uncertain", 0) <= 1
    assert counts == {
        "sent": 1000 - counts.get("uncertain", 0),
        **({"uncertain": 1} if "uncertain" in counts else {}),
    }
    assert counts["sent"] + counts.get("uncertain", 0) == len(sink.messages)
    assert reports.get_merge(merge.id).status == "done"


def _two_workers(app, sink, tmp_path, count):
    """Two `crm worker` processes drain a `count`-message merge; returns how many each sent."""
    make_recipients(count)
    merge = new_merge()
    queueing.queue_merge(merge)
    processes = [_worker_process(app, sink, tmp_path) for _ in range(2)]
    try:
        for process in processes:
            process.wait(300)
            assert process.returncode == 0, process.log.read_text()[-2000:]
    finally:  # a test that fails or times out leaves no worker sending into the next test's database
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    received = sink.received_by()
    assert len(sink.messages) == count
    assert len(received) == count and max(received.values()) == 1
    assert _statuses(merge.id) == {"sent": count}
    # Each worker prints its statistics as its last line.
    sent = [json.loads(process.log.read_text().strip().splitlines()[-1])["sent"] for process in processes]
    assert sum(sent) == count, sent
    return sent


def test_two_workers_drain_a_merge_without_duplicates(app, sink, tmp_path):
    # 1,000 messages (was 3,000) keep both processes sending at once, which the last line checks. On PostgreSQL
    # the 10,000-message run below is this check at issue #5's size.
    if app.config["DATABASE_URL"].startswith("postgresql"):
        pytest.skip("on PostgreSQL: test_two_workers_on_postgresql_drain_10000")
    sent = _two_workers(app, sink, tmp_path, 1000)
    assert min(sent) > 0, sent


@pytest.mark.slow
@pytest.mark.timeout(600)  # ~2 minutes on a quiet machine; a machine shared with other jobs can take twice that
def test_two_workers_on_postgresql_drain_10000(app, sink, tmp_path):
    # Issue #5's check, in every `make test`.
    if not app.config["DATABASE_URL"].startswith("postgresql"):
        pytest.skip("the 10,000-recipient run is the PostgreSQL SKIP LOCKED check")
    sent = _two_workers(app, sink, tmp_path, 10_000)
    assert min(sent) > 0, sent


def test_pause_after_100_then_resume(app, sink):
    make_recipients(300)
    merge = new_merge()
    queueing.queue_merge(merge)
    reached = threading.Event()
    sink.on_accept = lambda count: reached.set() if count >= 100 else None
    results = {}

    def run():
        with app.app_context():
            results["stats"] = Worker().run(until_empty=True)

    thread = threading.Thread(target=run)
    thread.start()
    assert reached.wait(60)
    queueing.set_state(reports.get_merge(merge.id), "pause")
    thread.join(60)
    paused_at = len(sink.messages)
    assert 100 <= paused_at <= 115  # within a few messages
    assert reports.get_merge(merge.id).status == "paused"
    time.sleep(0.2)
    assert len(sink.messages) == paused_at
    assert _statuses(merge.id) == {"sent": paused_at, "queued": 300 - paused_at}
    queueing.set_state(reports.get_merge(merge.id), "resume")
    drain()
    received = sink.received_by()
    assert len(received) == 300 and max(received.values()) == 1
    assert _statuses(merge.id) == {"sent": 300}


def test_cancel_stops_and_never_sends_the_rest(app, sink):
    make_recipients(50)
    merge = new_merge()
    queueing.queue_merge(merge)
    Worker(batch=10).run(until_empty=True, max_batches=2)
    queueing.set_state(reports.get_merge(merge.id), "cancel")
    drain()
    assert len(sink.messages) == 20
    assert _statuses(merge.id) == {"sent": 20, "cancelled": 30}


def _dead_worker_name() -> str:
    """A worker name on this host whose process has exited."""
    from crm.mailmerge.claims import HOST

    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return f"{HOST}:{process.pid}:deadbeef"


@pytest.mark.parametrize(
    ("marked_at", "rows"),
    [
        # A sender marks one row at a time: the one it was handing to SMTP when it died.
        ("now", 1),
        # Two (or three) rows of one dead sender cannot happen any more (no mark is written ahead); should they
        # be found — say after a restored backup — none is given back, whenever they were marked.
        ("2001-01-01", 2),
        ("now", 3),
    ],
)
def test_recovery_of_rows_a_dead_worker_left_sending(app, marked_at, rows):
    from datetime import UTC, datetime, timedelta

    from crm.mailmerge.worker import Worker

    make_recipients(rows + 2)
    merge = new_merge()
    queueing.queue_merge(merge)
    name = _dead_worker_name()
    base = datetime.now(UTC) if marked_at == "now" else datetime.fromisoformat(marked_at).replace(tzinfo=UTC)
    messages = db.session.scalars(select(Message).where(Message.merge_id == merge.id).order_by(Message.id)).all()
    for offset, message in enumerate(messages[:rows]):
        message.status, message.claimed_by, message.claimed_at = "sending", name, base
        message.attempts, message.updated_at = 1, base + timedelta(milliseconds=offset)
    claimed = messages[rows]
    claimed.status, claimed.claimed_by, claimed.claimed_at = "claimed", name, base
    db.session.commit()

    result = Worker().recover()

    db.session.expire_all()
    assert [m.status for m in messages[:rows]] == ["uncertain"] * rows
    assert claimed.status == "queued" and claimed.claimed_by == ""  # nothing of it went out: given back
    assert messages[rows + 1].status == "queued"  # never claimed: untouched
    for message in messages[:rows]:
        assert message.attempts == 1 and message.claimed_by == name
    assert result == {"uncertain": rows, "released": 1}


def _exactly_once(sink, merge_id, count):
    """Nobody lost, nobody mailed twice; returns how many rows are `uncertain` (each of them was received)."""
    received = sink.received_by()
    assert len(received) == count, f"lost: {count - len(received)}"
    assert max(received.values()) == 1, f"doubled: {[a for a, n in received.items() if n > 1]}"
    counts = _statuses(merge_id)
    uncertain = counts.get("uncertain", 0)
    assert counts == {"sent": count - uncertain, **({"uncertain": uncertain} if uncertain else {})}
    return uncertain


def test_a_relay_refusing_connections_for_a_while(app, sink):
    """The relay restarts mid-merge and refuses connections for 3 s: the worker backs off without spending the
    rows' attempts, reconnects and finishes; nothing lost or doubled."""
    from crm.mailmerge.worker import Health

    app.config["MAIL_RETRY_BASE_SECONDS"] = 1
    make_recipients(120)
    merge = new_merge()
    queueing.queue_merge(merge)
    outage = {}

    def at_40(count):
        if count == 40 and "thread" not in outage:
            outage["thread"] = sink.refuse_for(3)

    sink.on_accept = at_40
    health = Health()
    start = time.monotonic()
    drain(health=health)
    outage["thread"].join()
    assert time.monotonic() - start > 3  # it did wait for the relay
    assert _exactly_once(sink, merge.id, 120) <= 1  # the message in flight when the relay went away
    assert health.last_error.startswith("RelayUnavailable: cannot connect")
    assert reports.get_merge(merge.id).status == "done"


@pytest.mark.slow
def test_database_connections_terminated_mid_merge(app, sink, tmp_path):
    """PostgreSQL ends the worker's backends six times while it sends (what a restart, a failover or a
    proxy dropping connections does to it): `crm worker` backs off, reconnects, puts right what it was doing and
    finishes; nothing lost or doubled, nothing uncertain."""
    from sqlalchemy import text

    if not app.config["DATABASE_URL"].startswith("postgresql"):
        pytest.skip("pg_terminate_backend: PostgreSQL")
    make_recipients(400)
    merge = new_merge()
    queueing.queue_merge(merge)
    sink.delay = 0.005  # a relay that takes a moment, so that the kills land at every step of a message
    name = f"undersigned-test-worker-{os.getpid()}"
    separator = "&" if "?" in app.config["DATABASE_URL"] else "?"
    process = _worker_process(app, sink, tmp_path, DATABASE_URL=f"{app.config['DATABASE_URL']}{separator}"
                              f"application_name={name}")
    kills, deadline = 0, time.monotonic() + 120
    while process.poll() is None:
        if time.monotonic() > deadline:
            process.kill()
            process.wait()
            pytest.fail(f"the worker did not finish: {_statuses(merge.id)}\n{process.log.read_text()[-4000:]}")
        time.sleep(0.6)
        if kills >= 6:
            continue  # then let it finish
        ended = db.session.execute(
            text("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = :name"),
            {"name": name},
        ).scalar()
        db.session.commit()
        kills += 1 if ended else 0
    log = process.log.read_text()
    assert process.returncode == 0, log[-3000:]
    assert kills >= 3, kills
    assert "backing off" in log
    assert _exactly_once(sink, merge.id, 400) == 0
    assert reports.get_merge(merge.id).status == "done"


def test_the_embedded_worker_rides_out_an_outage_and_says_so(app, sink, client, as_role):
    """The web process's worker, its relay down: /healthz and the outbox page say it is backing off and why;
    once the relay is back it sends everything, once."""
    from crm.mailmerge.embedded import start_embedded_worker, stop_embedded_worker

    app.config.update(MAIL_EMBEDDED_WORKER=True, MAIL_POLL_SECONDS=0.2, MAIL_RETRY_BASE_SECONDS=1)
    make_recipients(30)
    merge = new_merge()
    relay_back = threading.Event()
    outage = sink.refuse_for(60, until=relay_back)  # down from the start, until the test has seen the state
    queueing.queue_merge(merge)
    start_embedded_worker(app)
    try:
        deadline = time.monotonic() + 30
        while (health := client.get("/healthz").get_json())["mail_worker"]["state"] != "backing off":
            assert time.monotonic() < deadline, health
            time.sleep(0.1)
        assert health["status"] == "ok" and health["database"] == "ok"
        assert health["mail_worker"]["last_error"] == "RelayUnavailable" and health["mail_worker"]["since"]
        as_role("organizer")
        page = client.get("/outbox").get_data(as_text=True)
        assert "backing off" in page and "cannot connect to 127.0.0.1" in page
        relay_back.set()
        outage.join()
        deadline = time.monotonic() + 30
        while len(sink.received_by()) < 30:
            assert time.monotonic() < deadline, client.get("/healthz").get_json()
            time.sleep(0.1)
        assert client.get("/healthz").get_json()["mail_worker"]["state"] == "running"
    finally:
        relay_back.set()
        stop_embedded_worker(app)
    assert _exactly_once(sink, merge.id, 30) == 0


def test_mail_connections_send_side_by_side(app, sink):
    """MAIL_CONNECTIONS=4: four SMTP connections of one worker hold messages at the relay at the same time, each
    row still sent once."""
    app.config["MAIL_CONNECTIONS"] = 4
    sink.delay = 0.02  # a relay that takes 20 ms per message
    make_recipients(120)
    merge = new_merge()
    queueing.queue_merge(merge)
    stats = drain()
    assert stats.sent == 120 and stats.connections == 4
    assert sink.connections == 4 and sink.most_in_flight == 4
    assert _exactly_once(sink, merge.id, 120) == 0
    assert reports.get_merge(merge.id).status == "done"


def test_a_claim_takes_no_more_than_its_batch(app):
    """A claim takes at most its limit, in id order (PostgreSQL's planner ignored the LIMIT of a claim written as
    one UPDATE with the SELECT … SKIP LOCKED as a subquery: one sender took a whole merge, the others idled)."""
    from crm.mailmerge import claims

    make_recipients(60)
    merge = new_merge()
    queueing.queue_merge(merge)
    with db.engine.connect() as conn:
        first = claims.claim(conn, "here:1:a", 20)
        second = claims.claim(conn, "here:1:b", 20)
    assert len(first) == 20 and len(second) == 20 and max(first) < min(second)
    assert _statuses(merge.id) == {"claimed": 40, "queued": 20}



def test_the_senders_of_a_worker_share_the_last_rows(app):
    """A sender claims its batch while more than batch × senders rows are due, and its share of them after, so that
    the senders of a worker finish a merge together instead of one sending the last batch alone."""
    from crm.mailmerge import claims

    make_recipients(110)
    merge = new_merge()
    queueing.queue_merge(merge)
    with db.engine.connect() as conn:
        sizes = [len(claims.claim(conn, f"here:1:{k}", 20, share=4)) for k in range(9)]
    assert sizes == [20, 20, 18, 13, 10, 8, 6, 4, 3]  # 110, 90 left: the batch; then a quarter, rounded up


def test_an_answer_is_written_with_the_next_mark(app):
    """One commit per message: the server's answer waits for the sender's next transaction — the next row's
    durable mark, or the flush at the end of the batch — and a row is `sending` until then."""
    from crm.mailmerge import claims
    from crm.mailmerge.marks import Marks, Policy
    from crm.mailmerge.transport import Outcome

    make_recipients(2)
    merge = new_merge()
    queueing.queue_merge(merge)
    with db.engine.connect() as conn:
        ids = claims.claim(conn, "here:1:a", 20)
        first, second = conn.execute(
            select(Message.id, Message.merge_id, Message.email, Message.attempts).where(Message.id.in_(ids))
            .order_by(Message.id)
        ).all()
        marks = Marks(conn, "here:1:a", Policy())

        def status(row):
            with db.engine.connect() as other:
                return other.scalar(select(Message.status).where(Message.id == row.id))

        assert marks.mark_sending(first, "raw", None, None) == "marked"
        assert marks.record(first, Outcome("sent", "250 OK")) == "sent"
        assert status(first) == "sending"  # answered, not yet written
        assert marks.mark_sending(second, "raw", None, None) == "marked"
        assert (status(first), status(second)) == ("sent", "sending")
        marks.record(second, Outcome("sent", "250 OK"))
        marks.flush()
        assert status(second) == "sent"
