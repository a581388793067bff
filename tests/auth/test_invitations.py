"""Invitations survive a role change, can be resent (the newest link alone works) and arrive by mail."""

import email
import email.policy
import re

import pytest
from sqlalchemy import func, select

from crm.audit.models import AuditEvent
from crm.auth.models import User
from crm.mailmerge.models import Message
from tests.conftest import login

NEW_PASSWORD = "my own long secret"


@pytest.fixture
def app_config(request):
    """Send real mail to the smtp_server fixture in the tests that use it; keep mail in the outbox otherwise."""
    if "smtp_server" not in request.fixturenames:
        return {}
    server = request.getfixturevalue("smtp_server")
    return {"MAIL_BACKEND": "smtp", "MAIL_SERVER": server.host, "MAIL_PORT": server.port,
            "MAIL_RETRY_BASE_SECONDS": 0.05, "MAIL_TIMEOUT": 10}


def _path_in(text: str) -> str:
    """The invitation link's path in a mail's text."""
    return re.search(r"http://localhost(/invite/\S+)", text).group(1)


def _outbox_links(db) -> list[str]:
    """The invitation links in the outbox, oldest first."""
    rows = db.session.scalars(select(Message).where(Message.kind == "invite").order_by(Message.id))
    return [_path_in(email.message_from_string(m.raw, policy=email.policy.default).get_body(("plain",)).get_content())
            for m in rows]


def _invite(admin, db, address: str = "nia@example.org", role: str = "viewer") -> User:
    """Invite someone through the users page."""
    assert admin.post("/users", data={"email": address, "role": role, "name": "Nia"}).status_code == 303
    return db.session.scalar(select(User).where(User.email == address))


def _accept(app, path: str):
    """Choose a password through an invitation link, as a stranger's browser."""
    return app.test_client().post(path, data={"new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD})


def _audited(db, action: str) -> int:
    """How many audit events of this action there are."""
    return db.session.scalar(select(func.count(AuditEvent.id)).where(AuditEvent.action == action))


def test_a_role_change_keeps_a_pending_invitation(app, as_role, db):
    admin = as_role("admin")
    invited = _invite(admin, db)
    changed = admin.post(f"/users/{invited.id}/role", data={"role": "organizer"}, follow_redirects=True)
    [path] = _outbox_links(db)
    assert app.test_client().get(path).status_code == 200, "the link in the mail still works"
    assert "nia@example.org is now organizer. Their pending invitation is unaffected." in changed.get_data(True)
    assert _accept(app, path).status_code == 303
    browser = app.test_client()
    login(browser, "nia@example.org", NEW_PASSWORD)
    assert browser.get("/account").get_data(as_text=True).count(">organizer</span>") == 1, "with the new role"


def test_a_role_change_still_logs_out_someone_who_logged_in(app, as_role, users, db):
    viewer = app.test_client()
    login(viewer, users["viewer"].email)
    admin = as_role("admin")
    flashed = admin.post(f"/users/{users['viewer'].id}/role", data={"role": "organizer"}, follow_redirects=True)
    assert "is now organizer." in flashed.get_data(True) and "pending invitation" not in flashed.get_data(True)
    assert viewer.get("/").status_code == 302, "the open session ended, so the new role applies at once"


@pytest.mark.bothdb
def test_resending_mails_a_working_link_and_retires_the_old_one(app, as_role, db):
    admin = as_role("admin")
    invited = _invite(admin, db)
    page = admin.get("/users").get_data(as_text=True)
    assert 'aria-label="Resend invitation to nia@example.org"' in page
    assert page.count("Resend invitation</button>") == 1, "only on the invited user's row"
    resent = admin.post(f"/users/{invited.id}/reinvite", follow_redirects=True)
    assert "A new invitation is on its way to nia@example.org" in resent.get_data(True)
    old, new = _outbox_links(db)
    stale = app.test_client().get(old, follow_redirects=True)
    assert "If you received a newer invitation, use the link in it" in stale.get_data(True)
    assert _accept(app, old).status_code == 302, "the earlier link no longer sets a password"
    assert app.test_client().get(new).status_code == 200
    assert _accept(app, new).status_code == 303
    login(app.test_client(), "nia@example.org", NEW_PASSWORD)
    assert _accept(app, new).status_code == 302, "the new link works once"
    assert _audited(db, "user.invite") == 1 and _audited(db, "user.reinvite") == 1
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "user.reinvite"))
    assert event.entity_id == invited.id and "nia@example.org" in event.summary


def test_resending_is_refused_when_there_is_no_invitation_to_resend(app, as_role, users, db):
    admin = as_role("admin")
    invited = _invite(admin, db)
    sent = _audited(db, "user.reinvite")
    logged_in = admin.post(f"/users/{users['viewer'].id}/reinvite", follow_redirects=True)
    assert "has already logged in, so there is no invitation to resend" in logged_in.get_data(True)
    assert admin.post(f"/users/{invited.id}/deactivate").status_code == 303
    deactivated = admin.post(f"/users/{invited.id}/reinvite", follow_redirects=True)
    assert "is deactivated: reactivate them" in deactivated.get_data(True)
    assert "Resend invitation</button>" not in deactivated.get_data(True), "no button for a deactivated invitee"
    assert admin.post("/users/999999/reinvite").status_code == 404
    assert _audited(db, "user.reinvite") == sent
    assert len(_outbox_links(db)) == 1, "no mail for a refused resend"
    organizer = as_role("organizer")
    assert organizer.post(f"/users/{invited.id}/reinvite").status_code == 403


def test_inviting_an_invited_address_again_points_to_resend(as_role, users, db):
    admin = as_role("admin")
    _invite(admin, db)
    again = admin.post("/users", data={"email": "NIA@example.org", "role": "organizer"})
    assert again.status_code == 400
    text = again.get_data(as_text=True)
    assert "nia@example.org is already invited and has not logged in yet" in text and "Resend invitation" in text
    with_password = admin.post("/users", data={"email": "nia@example.org", "role": "viewer",
                                               "password": "a long enough secret"})
    assert "Resend invitation" in with_password.get_data(as_text=True)
    existing = admin.post("/users", data={"email": users["viewer"].email, "role": "viewer"})
    assert "already exists." in existing.get_data(as_text=True)
    assert "Resend" not in existing.get_data(as_text=True).split("Invite a user")[1]
    assert len(_outbox_links(db)) == 1


@pytest.mark.commits
def test_a_resent_invitation_arrives_by_mail_with_a_working_link(app, as_role, db, smtp_server):
    from crm.mailmerge.worker import drain

    admin = as_role("admin")
    invited = _invite(admin, db)
    assert admin.post(f"/users/{invited.id}/role", data={"role": "organizer"}).status_code == 303
    assert admin.post(f"/users/{invited.id}/reinvite").status_code == 303
    drain()
    received = [email.message_from_bytes(m["raw"], policy=email.policy.default) for m in smtp_server.messages]
    assert [m["To"] for m in received] == ["nia@example.org", "nia@example.org"]
    old, new = (_path_in(m.get_body(("plain",)).get_content()) for m in received)
    assert "as an organizer" in received[1].get_body(("plain",)).get_content()
    assert "replaces the one in any earlier invitation" in received[1].get_body(("plain",)).get_content()
    assert _accept(app, old).status_code == 302
    assert _accept(app, new).status_code == 303
    login(app.test_client(), "nia@example.org", NEW_PASSWORD)
