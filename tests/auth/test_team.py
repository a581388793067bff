"""Team management: invitations, deactivation, token revocation, sessions that end for real, all audited."""

import email
import email.policy
import re

from sqlalchemy import select

from crm.audit.models import AuditEvent
from crm.auth.models import ApiToken, User
from crm.auth.services import create_token
from crm.mailmerge.models import Message
from tests.conftest import PASSWORD, login


def _link(db, kind: str) -> str:
    """The path of the link in the newest outbox message of this kind."""
    message = db.session.scalar(select(Message).where(Message.kind == kind).order_by(Message.id.desc()))
    text = email.message_from_string(message.raw, policy=email.policy.default).get_body(("plain",)).get_content()
    return re.search(r"http://localhost(/\S+)", text).group(1)


def _actions(db) -> list[str]:
    """Audit actions, oldest first."""
    return list(db.session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))


def _api(client, token: str):
    """One authenticated API read."""
    return client.get("/api/v1/issue-areas", headers={"Authorization": f"Bearer {token}"})


def test_a_copied_cookie_stops_working_at_logout(app, users):
    browser = app.test_client()
    login(browser, users["viewer"].email)
    copy = app.test_client()
    copy.set_cookie("session", browser.get_cookie("session").value)
    assert copy.get("/").status_code == 200, "the copy works while the session is open"
    other = app.test_client()
    login(other, users["viewer"].email)
    assert browser.post("/logout").status_code == 302
    assert copy.get("/").status_code == 302, "the copied cookie is logged out with its session"
    assert other.get("/").status_code == 200, "logging out ends that session only"


def test_a_copied_cookie_stops_working_after_logout_everywhere(app, users):
    browser = app.test_client()
    login(browser, users["viewer"].email)
    copy = app.test_client()
    copy.set_cookie("session", browser.get_cookie("session").value)
    browser.post("/account/logout-everywhere")
    assert copy.get("/").status_code == 302


def test_invite_sets_a_password_once(app, as_role, db):
    admin = as_role("admin")
    response = admin.post("/users", data={"email": "Nia@Example.org", "role": "organizer", "name": "Nia"})
    assert response.status_code == 303
    users_page = admin.get("/users").get_data(as_text=True)
    assert "Invitation sent to nia@example.org" in users_page
    assert users_page.count(">invited</span>") == 1, "only the invited user, not others who never logged in"
    invited = db.session.scalar(select(User).where(User.email == "nia@example.org"))
    assert invited.role == "organizer"
    path = _link(db, "invite")
    stranger = app.test_client()
    page = stranger.get(path)
    assert page.status_code == 200 and b"nia@example.org" in page.data
    assert stranger.post(path, data={"new_password": "short", "confirm": "short"}).status_code == 400
    done = stranger.post(path, data={"new_password": "my own long secret", "confirm": "my own long secret"})
    assert done.status_code == 303
    login(stranger, "nia@example.org", "my own long secret")
    again = app.test_client().post(path, data={"new_password": "another long secret",
                                               "confirm": "another long secret"})
    assert again.status_code == 302 and again.headers["Location"] == "/login", "single use"
    assert app.test_client().get("/invite/forged-token").status_code == 302
    assert {"user.invite", "user.invite_accepted"} <= set(_actions(db))


def test_deactivating_ends_sessions_and_tokens_and_reactivating_does_not_revive_tokens(app, as_role, users, db):
    viewer = app.test_client()
    login(viewer, users["viewer"].email)
    secret = create_token(users["viewer"].email).secret
    assert _api(app.test_client(), secret).status_code == 200
    admin = as_role("admin")
    target = users["viewer"].id
    assert admin.post(f"/users/{target}/deactivate").status_code == 303
    assert viewer.get("/").status_code == 302, "the open session ended"
    assert _api(app.test_client(), secret).status_code == 401, "the token died with the user"
    refused = app.test_client().post("/login", data={"email": users["viewer"].email, "password": PASSWORD})
    assert refused.status_code == 400
    assert b"deactivated" in admin.get("/users").data
    assert admin.post(f"/users/{target}/activate").status_code == 303
    login(app.test_client(), users["viewer"].email)
    assert _api(app.test_client(), secret).status_code == 401, "old tokens stay revoked"
    own = admin.post(f"/users/{users['admin'].id}/deactivate")
    assert own.status_code == 303
    db.session.refresh(users["admin"])
    assert users["admin"].active, "an admin cannot lock themselves out"
    changes = [a for a in _actions(db) if a in ("user.deactivate", "user.activate")]
    assert changes == ["user.deactivate", "user.activate"]


def test_revoking_a_token_takes_effect_on_the_next_request(app, as_role, users, db):
    mine = create_token(users["organizer"].email, "laptop")
    theirs = create_token(users["viewer"].email, "script")
    organizer = as_role("organizer")
    page = organizer.get("/account").get_data(as_text=True)
    assert f"Revoke API token {mine.record.id}" in page and f"Revoke API token {theirs.record.id}" not in page
    assert organizer.post(f"/tokens/{theirs.record.id}/revoke").status_code == 403, "not someone else's"
    assert _api(app.test_client(), mine.secret).status_code == 200
    assert organizer.post(f"/tokens/{mine.record.id}/revoke").status_code == 303
    assert _api(app.test_client(), mine.secret).status_code == 401
    admin = as_role("admin")
    assert f"Revoke API token {theirs.record.id}" in admin.get("/users").get_data(as_text=True)
    assert admin.post(f"/tokens/{theirs.record.id}/revoke", data={"back": "users"}).headers["Location"] == "/users"
    assert _api(app.test_client(), theirs.secret).status_code == 401
    assert _actions(db).count("token.revoke") == 2


def test_password_reset_and_logout_everywhere_revoke_tokens(app, client, users, db):
    secret = create_token(users["viewer"].email).secret
    browser = app.test_client()
    login(browser, users["viewer"].email)
    browser.post("/account/logout-everywhere")
    assert _api(app.test_client(), secret).status_code == 401
    secret = create_token(users["viewer"].email).secret
    from crm.auth import background

    client.post("/password/forgot", data={"email": users["viewer"].email})
    background.wait_for_jobs()
    db.session.expire_all()
    client.post(_link(db, "password-reset"), data={"new_password": "a fresh long secret",
                                                   "confirm": "a fresh long secret"})
    assert _api(app.test_client(), secret).status_code == 401
    assert {"user.logout_everywhere", "user.password_reset"} <= set(_actions(db))


def test_cli_deactivate_activate_and_tokens(runner, users, db):
    first = create_token(users["viewer"].email, "first")
    second = create_token(users["organizer"].email, "second")
    listing = runner.invoke(args=["token", "list"])
    assert listing.exit_code == 0
    header, *rows = listing.output.strip().splitlines()
    assert header.split()[:4] == ["id", "owner", "name", "prefix"] and "last used" in header and "revoked" in header
    assert len(rows) == 2
    only = runner.invoke(args=["token", "list", users["viewer"].email])
    assert only.exit_code == 0 and users["organizer"].email not in only.output and "first" in only.output
    assert runner.invoke(args=["token", "list", "nobody@example.org"]).exit_code == 1
    revoked = runner.invoke(args=["token", "revoke", str(second.record.id)])
    assert revoked.exit_code == 0 and "Revoked" in revoked.output
    assert db.session.get(ApiToken, second.record.id).revoked_at is not None
    assert runner.invoke(args=["token", "revoke", str(second.record.id)]).output.startswith("API token")
    for bad in ("999999", "abc", "-1", "99999999999999999999"):
        result = runner.invoke(args=["token", "revoke", bad])
        assert result.exit_code != 0 and "Traceback" not in result.output, bad
    off = runner.invoke(args=["user", "deactivate", users["viewer"].email.upper()])
    assert off.exit_code == 0 and "Deactivated" in off.output
    db.session.expire_all()
    assert not db.session.get(User, users["viewer"].id).active
    assert db.session.get(ApiToken, first.record.id).revoked_at is not None
    assert runner.invoke(args=["user", "activate", users["viewer"].email]).exit_code == 0
    assert runner.invoke(args=["user", "deactivate", "nobody@example.org"]).exit_code == 1
    assert {"token.revoke", "user.deactivate", "user.activate"} <= set(_actions(db))
