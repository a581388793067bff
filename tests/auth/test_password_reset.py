"""Password reset by a signed, short-lived, single-use link sent through the outbox."""

import email
import email.policy
import re

from sqlalchemy import select

from crm.common.tokens import make_token
from crm.mailmerge.models import Message
from tests.conftest import PASSWORD, login


def reset_link(db) -> str:
    """The reset link from the newest password-reset message in the outbox (prepared in the background)."""
    from crm.auth import background

    background.wait_for_jobs()
    db.session.expire_all()
    message = db.session.scalar(select(Message).where(Message.kind == "password-reset").order_by(Message.id.desc()))
    text = email.message_from_string(message.raw, policy=email.policy.default).get_body(("plain",)).get_content()
    return re.search(r"http://localhost(/password/reset/\S+)", text).group(1)


def test_reset_flow(app, client, users, db):
    other = app.test_client()
    login(other, users["viewer"].email)
    response = client.post("/password/forgot", data={"email": users["viewer"].email.upper()})
    assert response.status_code == 303
    path = reset_link(db)
    assert client.get(path).status_code == 200
    short = client.post(path, data={"new_password": "short", "confirm": "short"})
    assert short.status_code == 400
    done = client.post(path, data={"new_password": "a fresh long secret", "confirm": "a fresh long secret"})
    assert done.status_code == 303
    login(client, users["viewer"].email, "a fresh long secret")
    assert other.get("/").status_code == 302, "the reset ends other sessions"
    again = client.post(path, data={"new_password": "another long secret", "confirm": "another long secret"})
    assert again.status_code == 302 and "/password/forgot" in again.headers["Location"], "single use"
    wrong = client.post("/login", data={"email": users["viewer"].email, "password": PASSWORD})
    assert wrong.status_code == 400


def test_unknown_address_gets_the_same_answer_and_no_mail(client, users, db):
    known = client.post("/password/forgot", data={"email": users["admin"].email})
    unknown = client.post("/password/forgot", data={"email": "nobody@example.org"})
    assert known.status_code == unknown.status_code == 303
    from crm.auth import background

    background.wait_for_jobs()
    assert db.session.scalar(select(Message).where(Message.email == "nobody@example.org")) is None


def test_forged_or_foreign_tokens_are_refused(app, client, users):
    with app.test_request_context():
        unsubscribe = make_token("unsubscribe", {"u": users["admin"].id, "v": users["admin"].session_version})
    for token in ("nonsense", unsubscribe, "x" * 3000):
        response = client.get(f"/password/reset/{token}")
        assert response.status_code == 302 and "/password/forgot" in response.headers["Location"]


def test_known_and_unknown_addresses_do_the_same_work_while_answering(app, client, users, db):
    """The request thread runs the same statements for both (the lookup and the mail happen in the background),
    so response times cannot tell whether an account exists."""
    import threading
    import time

    from sqlalchemy import event

    from crm.auth import background

    def statements_and_time(address: str) -> tuple[list[str], float]:
        seen: list[str] = []
        me = threading.get_ident()

        def note(conn, cursor, statement, *args):
            if threading.get_ident() == me:
                seen.append(statement)

        event.listen(db.engine, "before_cursor_execute", note)
        started = time.perf_counter()
        try:
            assert client.post("/password/forgot", data={"email": address}).status_code == 303
        finally:
            took = time.perf_counter() - started
            event.remove(db.engine, "before_cursor_execute", note)
        background.wait_for_jobs()
        return seen, took

    known, _ = statements_and_time(users["admin"].email)
    unknown, _ = statements_and_time("nobody@example.org")
    assert known == unknown
    db.session.expire_all()
    assert db.session.scalar(select(Message).where(Message.email == users["admin"].email)) is not None
