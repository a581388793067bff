"""The login cookies are Secure outside development and plain in development (so `make run` works over http).

Development is CRM_ENV=development, Flask's debug mode, the `crm` command (`crm run`), or a CRM_BASE_URL that is
plain http on this machine; anything else — `gunicorn 'crm.wsgi:app'` for a real address — is production.
"""

import contextvars

import pytest
from flask_login import login_user

from crm import create_app
from tests.conftest import PASSWORD

HTTPS = "https://crm.example.org"
# The environment that would decide for create_app(); each test sets what it needs.
SIGNALS = ("CRM_ENV", "CRM_BASE_URL", "FLASK_DEBUG", "FLASK_RUN_FROM_CLI", "SESSION_COOKIE_SECURE",
           "REMEMBER_COOKIE_SECURE")


@pytest.fixture
def clean_environment(monkeypatch, tmp_path):
    """No development signal in the environment (pytest may have run a Flask CLI command already)."""
    for name in SIGNALS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CRM_INSTANCE_PATH", str(tmp_path))
    return monkeypatch


def login_cookie(client, email: str, base_url: str) -> str:
    """Log in through the form; the session cookie's Set-Cookie header."""
    response = client.post("/login", data={"email": email, "password": PASSWORD}, base_url=base_url)
    assert response.status_code == 302
    cookies = [c for c in response.headers.getlist("Set-Cookie") if c.startswith("session=")]
    assert len(cookies) == 1, response.headers.getlist("Set-Cookie")
    return cookies[0]


def remember_cookie(app, user, base_url: str) -> str:
    """Log in with "remember me" and finish the response; the remember-me cookie's Set-Cookie header."""

    def run():
        with app.test_request_context("/", base_url=base_url):
            login_user(user, remember=True)
            return app.process_response(app.response_class())

    response = contextvars.Context().run(run)  # its own app context, as a request has
    cookies = [c for c in response.headers.getlist("Set-Cookie") if c.startswith("remember_token=")]
    assert len(cookies) == 1, response.headers.getlist("Set-Cookie")
    return cookies[0]


def flags(cookie: str) -> set[str]:
    """The attributes of a Set-Cookie header after its value, lower-cased: secure, httponly, samesite=lax…"""
    return {part.strip().lower() for part in cookie.split(";")[1:]}


class TestProduction:
    """An app whose address is https (as deployed behind gunicorn): both login cookies are Secure."""

    @pytest.fixture
    def app_config(self, clean_environment):
        """The deployed address."""
        return {"CRM_BASE_URL": HTTPS}

    def test_session_cookie_is_secure(self, app, users):
        client = app.test_client()
        cookie = login_cookie(client, users["viewer"].email, HTTPS)
        assert {"secure", "httponly", "samesite=lax"} <= flags(cookie), cookie
        assert client.get("/", base_url=HTTPS).status_code == 200  # logged in over https
        assert app.config["CRM_ENV"] == "production"

    def test_remember_me_cookie_is_secure(self, app, users):
        cookie = remember_cookie(app, users["viewer"], HTTPS)
        assert {"secure", "httponly", "samesite=lax"} <= flags(cookie), cookie


class TestDevelopment:
    """The test configuration's http://localhost is development: plain cookies, login over http works."""

    def test_session_cookie_is_not_secure_and_login_works_over_http(self, app, users):
        client = app.test_client()
        cookie = login_cookie(client, users["viewer"].email, "http://localhost")
        assert "secure" not in flags(cookie) and {"httponly", "samesite=lax"} <= flags(cookie), cookie
        assert client.get("/").status_code == 200
        assert app.config["CRM_ENV"] == "development"

    def test_remember_me_cookie_is_not_secure(self, app, users):
        cookie = remember_cookie(app, users["viewer"], "http://localhost")
        assert "secure" not in flags(cookie) and "httponly" in flags(cookie), cookie


class TestExplicitSettings:
    """CRM_ENV and the cookie flags themselves win over the guess."""

    @pytest.fixture
    def app_config(self, clean_environment):
        """An https address, but development said explicitly; the remember-me flag forced on."""
        return {"CRM_BASE_URL": HTTPS, "CRM_ENV": "development", "REMEMBER_COOKIE_SECURE": True}

    def test_explicit_settings_win(self, app, users):
        assert "secure" not in flags(login_cookie(app.test_client(), users["viewer"].email, HTTPS))
        assert "secure" in flags(remember_cookie(app, users["viewer"], HTTPS))


@pytest.mark.parametrize(
    ("environment", "secure"),
    [
        ({}, False),  # `make run`: nothing set, CRM_BASE_URL is http://127.0.0.1:5000
        ({"FLASK_RUN_FROM_CLI": "true"}, False),  # `crm run` (set by the crm command before it loads the app)
        ({"CRM_BASE_URL": HTTPS}, True),  # gunicorn 'crm.wsgi:app' for a real address
        ({"CRM_BASE_URL": "http://crm.internal.example"}, True),  # not this machine: still production
        ({"CRM_BASE_URL": "http://localhost:8000"}, False),
        ({"CRM_BASE_URL": "http://[::1]:8000"}, False),
        ({"CRM_BASE_URL": HTTPS, "FLASK_RUN_FROM_CLI": "true"}, False),  # `crm run` with a deployed .env
        ({"CRM_BASE_URL": HTTPS, "FLASK_DEBUG": "1"}, False),
        ({"CRM_BASE_URL": HTTPS, "FLASK_DEBUG": "0"}, True),
        ({"CRM_BASE_URL": HTTPS, "CRM_ENV": "development"}, False),
        ({"CRM_ENV": "production"}, True),  # production on loopback (behind a local TLS proxy)
    ],
)
def test_environment_decides_secure_cookies(clean_environment, environment, secure):
    for name, value in environment.items():
        clean_environment.setenv(name, value)
    config = create_app().config
    assert (config["SESSION_COOKIE_SECURE"], config["REMEMBER_COOKIE_SECURE"]) == (secure, secure)
    assert config["CRM_ENV"] == ("production" if secure else "development")


def test_cookie_flags_from_the_environment_override(clean_environment):
    clean_environment.setenv("CRM_BASE_URL", HTTPS)
    clean_environment.setenv("SESSION_COOKIE_SECURE", "0")  # e.g. a plain-http intranet, knowingly
    config = create_app().config
    assert config["SESSION_COOKIE_SECURE"] is False and config["REMEMBER_COOKIE_SECURE"] is True
