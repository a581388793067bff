"""Sending with Celery: queueing a merge kicks drain tasks through Redis, a real `celery worker` process sends them
to the sink, and every recipient gets exactly one message."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from crm.extensions import db
from crm.mailmerge import queueing, reports
from crm.mailmerge.models import Message
from tests.mailmerge.conftest import make_recipients, new_merge, smtp_config, worker_env

# Claims with SKIP LOCKED on PostgreSQL: on PostgreSQL too (tests/conftest.py).
pytestmark = pytest.mark.bothdb

ROOT = Path(__file__).resolve().parents[2]
celery = pytest.importorskip("celery")
redis = pytest.importorskip("redis")
# One Redis database per test process, emptied before use: tasks of one test run never reach another's worker
# (the process id spreads test runs started side by side on one machine). Databases 8–15 are left to tests; a
# developer's own Redis data lives in 0.
BROKER = f"redis://127.0.0.1:6379/{8 + os.getpid() % 8}"


def _redis_available() -> bool:
    """Whether the local Redis answers."""
    try:
        return bool(redis.Redis.from_url(BROKER, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


@pytest.fixture
def app_config(sink):
    """Send to the sink; hand the outbox to Celery."""
    if not _redis_available():
        if os.environ.get("CI"):
            pytest.fail("Redis (127.0.0.1:6379) is required under CI")
        pytest.skip("Redis not reachable on 127.0.0.1:6379")
    redis.Redis.from_url(BROKER).flushdb()
    return smtp_config(sink, CELERY_BROKER_URL=BROKER, MAIL_CELERY_FANOUT=2)


def _celery_worker(app, sink, tmp_path) -> subprocess.Popen:
    """`celery -A crm.mailmerge.tasks worker` in its own process, on the test database, sending to the sink."""
    env = worker_env(app, sink, tmp_path / "celery-instance", CELERY_BROKER_URL=BROKER)
    log = open(tmp_path / "celery.log", "wb")  # noqa: SIM115 — closed after the process ends
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "crm.mailmerge.tasks", "worker", "--pool", "threads",
         "--concurrency", "2", "--without-heartbeat", "--without-mingle", "--without-gossip", "--loglevel", "INFO"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    process.log = log
    process.log_path = tmp_path / "celery.log"
    return process


def _statuses(merge_id: int) -> dict[str, int]:
    db.session.expire_all()
    return dict(db.session.execute(
        select(Message.status, func.count()).where(Message.merge_id == merge_id).group_by(Message.status)).all())


@pytest.mark.slow
def test_celery_worker_sends_a_queued_merge_exactly_once(app, sink, tmp_path):
    make_recipients(300)
    merge = new_merge()
    queueing.queue_merge(merge)  # kicks MAIL_CELERY_FANOUT drain tasks through Redis
    queued = redis.Redis.from_url(BROKER).llen("celery")
    assert queued == 2, "queueing should have sent two drain tasks to the broker"
    worker = _celery_worker(app, sink, tmp_path)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and _statuses(merge.id) != {"sent": 300}:
            assert worker.poll() is None, worker.log_path.read_text(errors="replace")[-3000:]
            time.sleep(0.5)
    finally:
        worker.send_signal(signal.SIGTERM)  # warm shutdown: finish the task in hand
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
        worker.log.close()
    log = worker.log_path.read_text(errors="replace")
    assert _statuses(merge.id) == {"sent": 300}, log[-3000:]
    received = sink.received_by()
    assert len(received) == 300 and max(received.values()) == 1
    assert "undersigned.drain_outbox" in log and "succeeded" in log
    db.session.expire_all()
    assert reports.get_merge(merge.id).status == "done"
