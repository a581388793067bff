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


@pytest.mark.bothdb
def test_a_requests_commit_survives_a_rollback_of_the_tests_own_session(app, as_role):
    """Sessions share the test's transaction in nested savepoints (conftest.py): the test's session, open around
    the request, must not take the request's committed work with it when it rolls back."""
    import sqlalchemy as sa

    from crm.extensions import db
    from crm.organizations.models import Organization

    assert db.session.scalar(sa.select(sa.func.count(Organization.id))) == 0  # the test's session is open
    assert as_role("organizer").post("/organizations/new", data={"name": "Kept"}).status_code == 303
    db.session.rollback()
    assert db.session.scalar(sa.select(Organization.name)) == "Kept"
    db.session.remove()
    assert db.session.scalar(sa.select(sa.func.count(Organization.id))) == 1
