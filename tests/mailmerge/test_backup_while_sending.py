"""A backup taken while a merge is sending restores to a consistent outbox, and sending resumes exactly once."""

import sqlite3
import threading

import pytest
from sqlalchemy import func, select

from crm.backup import backup, restore
from crm.extensions import db
from crm.mailmerge import queueing
from crm.mailmerge.models import Message
from crm.mailmerge.worker import Worker, drain
from tests.mailmerge.conftest import make_recipients, new_merge, smtp_config


@pytest.fixture
def app_config(sink):
    """Send to the sink."""
    return smtp_config(sink)


def test_restore_a_backup_taken_mid_merge(app, sink, tmp_path):
    if not app.config["DATABASE_URL"].startswith("sqlite"):
        pytest.skip("crm backup snapshots SQLite; PostgreSQL uses pg_dump")
    make_recipients(400)
    merge = new_merge()
    queueing.queue_merge(merge)
    snapshot = tmp_path / "mid-merge.sqlite3"
    taken = threading.Event()

    def take_backup(count):
        if count == 150 and not taken.is_set():
            backup(app.config["DATABASE_URL"], snapshot)  # while the worker holds its connection and writes
            taken.set()

    sink.on_accept = take_backup

    def run():
        with app.app_context():
            Worker().run(until_empty=True)

    thread = threading.Thread(target=run)
    thread.start()
    assert taken.wait(60)
    thread.join(120)
    assert len(sink.received_by()) == 400

    # The snapshot is a consistent moment: every row in a known state, at most one handed to SMTP.
    with sqlite3.connect(snapshot) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        states = dict(conn.execute("SELECT status, count(*) FROM messages GROUP BY status").fetchall())
    assert sum(states.values()) == 400
    assert states.get("sending", 0) <= 1
    assert 140 <= states.get("sent", 0) <= 160

    # Restore it as the live database: the worker treats the in-flight row as uncertain and sends only the
    # rows the snapshot still had queued (those later sends are not in the backup: restoring goes back in time).
    db.session.remove()
    db.engine.dispose()
    restore(app.config["DATABASE_URL"], snapshot)
    sink.messages.clear()
    drain()
    restored = dict(db.session.execute(select(Message.status, func.count()).group_by(Message.status)).all())
    assert restored.get("sending", 0) == 0 and restored.get("queued", 0) == 0
    assert len(sink.messages) == 400 - states.get("sent", 0) - states.get("sending", 0)
