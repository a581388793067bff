"""The test harness itself: the SMTP fixture records real messages and the guard refuses other servers."""

import smtplib
from email.message import EmailMessage

import pytest


def test_smtp_fixture_receives_real_mail(smtp_server):
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "a@example.org", "b@example.org", "Hello"
    message.set_content("Body")
    with smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=10) as smtp:
        smtp.send_message(message)
    assert len(smtp_server.messages) == 1
    received = smtp_server.messages[0]
    assert received["to"] == ["b@example.org"] and received["message"]["Subject"] == "Hello"


def test_unexpected_smtp_connection_fails_the_test():
    with pytest.raises(AssertionError, match="unexpected SMTP connection"):
        smtplib.SMTP("127.0.0.1", 2525, timeout=1)
