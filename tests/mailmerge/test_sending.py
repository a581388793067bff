"""Sending over a real SMTP server on loopback: exactly once, retries, refusals, dropped connections."""

import email
from email import policy

import pytest
from sqlalchemy import func, select

from crm.extensions import db
from crm.mailmerge import queueing, reports
from crm.mailmerge.models import Message, Suppression
from crm.mailmerge.worker import drain
from tests.mailmerge.conftest import make_recipients, new_merge, serve_sink, smtp_config

# The worker's marks differ by database: on PostgreSQL too (tests/conftest.py).
pytestmark = pytest.mark.bothdb


@pytest.fixture(params=["pipelining", "step-by-step"])
def sink(request):
    """Every sending test runs against a server that advertises PIPELINING, as real relays do, and one that does
    not; the worker speaks one command at a time to both."""
    yield from serve_sink(pipelining=request.param == "pipelining")


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


def test_a_merge_reaches_everyone_once_with_the_expected_message(app, sink):
    make_recipients(30)
    merge = new_merge()
    summary = queueing.queue_merge(merge)
    assert summary["queued"] == 30
    stats = drain()
    assert stats.sent == 30
    assert set(sink.received_by().values()) == {1} and len(sink.received_by()) == 30
    assert sink.connections == 1
    assert _statuses(merge.id) == {"sent": 30}
    message = email.message_from_bytes(sink.messages[0]["raw"], policy=policy.default)
    assert message.get_content_type() == "multipart/alternative"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "<http://localhost/u/" in message["List-Unsubscribe"] and "mailto:" in message["List-Unsubscribe"]
    assert message["Message-ID"].endswith("@example.org>")
    assert message["Date"]
    text = message.get_body(("plain",)).get_content()
    assert text.startswith("Dear First0,")
    assert "1 Test Street" in text and "/u/" in text
    html = message.get_body(("html",)).get_content()
    assert "<strong>Person Org 0</strong>" in html
    assert reports.get_merge(merge.id).status == "done"
    row = db.session.scalar(select(Message).where(Message.merge_id == merge.id).order_by(Message.id))
    assert row.raw and row.last_response.startswith("250")


def test_refusals_retries_and_421s(app, sink):
    make_recipients(200)
    sink.rcpt_replies["person0@example.net"] = ["550 5.1.1 <person0@example.net>: user unknown"]
    sink.rcpt_replies["person1@example.net"] = ["451 4.7.1 try again later", "451 4.7.1 try again later"]
    sink.close_after = 50
    merge = new_merge()
    queueing.queue_merge(merge)
    drain()
    received = sink.received_by()
    assert "person0@example.net" not in received
    assert received["person1@example.net"] == 1
    assert sink.rcpt_attempts["person1@example.net"] == 3
    assert len(received) == 199 and set(received.values()) == {1}
    rows = {m.email: m for m in db.session.scalars(select(Message).where(Message.merge_id == merge.id))}
    assert rows["person0@example.net"].status == "failed"
    assert "5.1.1" in rows["person0@example.net"].last_response
    assert (
        db.session.scalar(select(Suppression.reason).where(Suppression.email == "person0@example.net"))
        == "hard-bounce"
    )
    assert rows["person1@example.net"].status == "sent" and rows["person1@example.net"].attempts == 3
    assert _statuses(merge.id) == {"sent": 199, "failed": 1}
    assert sink.connections >= 4


def test_connection_dropped_after_data_is_uncertain_and_not_resent(app, sink):
    make_recipients(10)
    sink.drop_on_data.add("person3@example.net")
    merge = new_merge()
    queueing.queue_merge(merge)
    drain()
    drain()  # a second worker run must not send it again
    assert sink.received_by()["person3@example.net"] == 1
    row = db.session.scalar(select(Message).where(Message.email == "person3@example.net"))
    assert row.status == "uncertain"
    assert _statuses(merge.id) == {"sent": 9, "uncertain": 1}
    assert len(sink.messages) == 10


def test_reconnects_after_mail_max_emails(app, sink):
    app.config["MAIL_MAX_EMAILS"] = 7
    make_recipients(30)
    queueing.queue_merge(new_merge())
    drain()
    assert len(sink.messages) == 30
    assert sink.connections == 5  # ⌈30 / 7⌉


def test_the_envelope_goes_one_command_at_a_time(app, sink, monkeypatch):
    """MAIL, RCPT and DATA are each written and answered on their own, whether or not the server advertises
    PIPELINING (pipelining was dropped: with a relay answering in tens of milliseconds it saved nothing a user
    notices), and refusals at each step are classified."""
    import smtplib

    from crm.mailmerge.transport import SMTPTransport

    writes = []
    original = smtplib.SMTP.send
    monkeypatch.setattr(
        smtplib.SMTP, "send", lambda self, data: writes.append(data if isinstance(data, bytes) else data.encode())
        or original(self, data)
    )
    transport = SMTPTransport(sink.host, sink.port, timeout=10)
    sink.rcpt_replies["refused@example.net"] = ["550 5.1.1 no such user"]
    outcomes = [transport.send("from@example.org", to, "Subject: x\n\nhello\n")
                for to in ("a@example.net", "refused@example.net", "b@example.net")]
    transport.close()
    assert [o.kind for o in outcomes] == ["sent", "failed", "sent"]
    assert outcomes[1].hard_bounce and "RCPT" in outcomes[1].response
    assert sorted(sink.received_by()) == ["a@example.net", "b@example.net"]
    envelopes = [w for w in writes if w.lower().startswith(b"mail from")]
    assert len(envelopes) == 3 and all(w.count(b"\r\n") == 1 for w in envelopes)


def test_on_sqlite_every_sending_mark_is_a_synced_commit(app, sink):
    """SQLite in WAL mode with synchronous=NORMAL loses the commits since the last checkpoint in a power cut; a
    lost `sending` mark would send its message again. Each mark is committed with synchronous=FULL."""
    from sqlalchemy import event

    if db.engine.dialect.name != "sqlite":
        pytest.skip("SQLite's synchronous pragma; PostgreSQL's marks are durable commits")
    traces: list[list[str]] = []

    def trace(dbapi_connection, _record):
        traces.append(log := [])
        dbapi_connection.set_trace_callback(log.append)

    db.session.remove()
    db.engine.dispose()  # every connection from now on is traced
    event.listen(db.engine, "connect", trace)
    try:
        app.config["MAIL_WORKER_BATCH"] = 4  # several batches
        make_recipients(10)
        queueing.queue_merge(new_merge())
        assert drain().sent == 10
    finally:
        event.remove(db.engine, "connect", trace)
    marks = []
    for log in traces:
        level, mark_pending = "NORMAL", False  # the app's setting for a new connection
        for statement in log:
            if statement.upper().startswith("PRAGMA SYNCHRONOUS="):
                level = statement.split("=", 1)[1].strip().upper()
            elif statement.startswith("UPDATE messages SET status='sending'"):
                mark_pending = True
            elif statement.upper().startswith("COMMIT") and mark_pending:
                marks.append(level)
                mark_pending = False
    assert marks == ["FULL"] * 10
