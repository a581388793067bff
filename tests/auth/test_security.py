"""Security headers, sessions, per-account login throttling, backups."""

import pytest
from sqlalchemy import func, select

from crm.organizations.models import Organization
from tests.conftest import PASSWORD, login
from tests.factories import OrganizationFactory


def test_security_headers(client):
    response = client.get("/login")
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
    assert "frame-ancestors 'none'" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"


def test_no_inline_scripts_in_pages(as_role, seeded):
    client = as_role("admin")
    for path in ("/", "/organizations", "/letters/dhs-clearview-ai-2021", "/users", "/account"):
        html = client.get(path).get_data(as_text=True)
        for tag in html.split("<script")[1:]:
            assert tag.split(">")[0].strip().startswith("src="), (path, tag[:80])
        assert " onclick=" not in html and " onload=" not in html


def test_session_cookie_flags(client, users):
    response = client.post("/login", data={"email": users["viewer"].email, "password": PASSWORD})
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_logout_everywhere(app, users):
    first, second = app.test_client(), app.test_client()
    login(first, users["viewer"].email)
    login(second, users["viewer"].email)
    assert first.post("/account/logout-everywhere").status_code == 302
    assert first.get("/").status_code == 302
    assert second.get("/").status_code == 302


class TestPerAccountThrottle:
    """Attempts are refused per address and per (address, account); failures on an account from many addresses
    slow it down but never lock its owner out."""

    @pytest.fixture
    def app_config(self):
        return {"RATELIMIT_ENABLED": True, "LOGIN_RATE_LIMIT": "3 per minute", "LOGIN_FREE_FAILURES": 4,
                "LOGIN_MAX_DELAY_SECONDS": 0.6}

    def test_failures_from_other_addresses_do_not_lock_the_owner_out(self, client, users):
        import time

        for n in range(6):
            client.post("/login", data={"email": users["admin"].email, "password": "wrong password"},
                        environ_base={"REMOTE_ADDR": f"10.0.0.{n}"})
        started = time.perf_counter()
        owner = client.post("/login", data={"email": users["admin"].email, "password": PASSWORD},
                            environ_base={"REMOTE_ADDR": "10.0.0.99"})
        took = time.perf_counter() - started
        assert owner.status_code == 302, "the right password from a new address gets in"
        assert took >= 0.5, f"but only after a slow-down ({took:.2f} s)"

    def test_one_address_on_one_account_is_refused(self, client, users):
        for _ in range(3):
            client.post("/login", data={"email": users["admin"].email, "password": "wrong password"},
                        environ_base={"REMOTE_ADDR": "10.0.0.7"})
        blocked = client.post("/login", data={"email": users["admin"].email, "password": PASSWORD},
                              environ_base={"REMOTE_ADDR": "10.0.0.7"})
        assert blocked.status_code == 429

    def test_current_password_check_on_account_is_limited(self, app, users):
        from tests.conftest import login as log_in

        client = app.test_client()
        log_in(client, users["viewer"].email)
        codes = [client.post("/account", data={"current_password": f"guess number {n}", "new_password": "x" * 12,
                                               "confirm": "x" * 12}).status_code for n in range(4)]
        assert codes == [400, 400, 400, 429]
        right = client.post("/account", data={"current_password": PASSWORD, "new_password": "y" * 12,
                                              "confirm": "y" * 12})
        assert right.status_code == 429, "the limit holds for the right password too until the window passes"


@pytest.mark.commits  # the backup reads the database file, the restore replaces it
def test_backup_and_restore_sqlite(app, runner, db, tmp_path):
    if not app.config["DATABASE_URL"].startswith("sqlite"):
        result = runner.invoke(args=["backup"])
        assert result.exit_code == 1 and "pg_dump" in result.output
        return
    OrganizationFactory.create_batch(3)
    target = tmp_path / "snapshot.sqlite3"
    result = runner.invoke(args=["backup", "-o", str(target)])
    assert result.exit_code == 0, result.output
    assert runner.invoke(args=["backup", "-o", str(target)]).exit_code == 1  # never overwrites
    db.session.execute(Organization.__table__.delete())
    db.session.commit()
    assert db.session.scalar(select(func.count(Organization.id))) == 0
    restored = runner.invoke(args=["restore", str(target), "--yes"])
    assert restored.exit_code == 0, restored.output
    db.session.remove()
    assert db.session.scalar(select(func.count(Organization.id))) == 3
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"not a database")
    bad = runner.invoke(args=["restore", str(junk), "--yes"])
    assert bad.exit_code == 1 and "not an SQLite database" in bad.output
