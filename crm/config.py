"""Configuration: defaults, the environment (and .env), and the instance folder."""

import ipaddress
import os
import secrets
from pathlib import Path
from urllib.parse import urlsplit

from flask import Flask

# Environment variables read into app.config as they are (SPEC, "Configuration").
_STRING_SETTINGS = (
    "DATABASE_URL", "SECRET_KEY", "CRM_BASE_URL", "CRM_POSTAL_ADDRESS", "MAIL_BACKEND", "MAIL_SERVER",
    "MAIL_USERNAME", "MAIL_PASSWORD", "MAIL_DEFAULT_SENDER", "CELERY_BROKER_URL", "CRM_ADMIN_EMAIL",
    "CRM_ADMIN_PASSWORD", "RATELIMIT_STORAGE_URI", "CRM_ENV", "LOGIN_RATE_LIMIT", "SIGNON_RATE_LIMIT",
    "CRM_TIMEZONE", "CRM_COALITION_NAME",
)
_INT_SETTINGS = ("MAIL_PORT", "MAIL_MAX_EMAILS", "MAIL_TIMEOUT", "MAIL_MAX_ATTEMPTS",
                 "MAIL_RETRY_BASE_SECONDS", "MAIL_CELERY_FANOUT", "MAIL_CONNECTIONS", "SIGNON_MIN_FILL_SECONDS",
                 "CRM_IMPORT_USER_QUOTA_MB", "CRM_IMPORT_TOTAL_QUOTA_MB", "CRM_IMPORT_REPORT_DAYS")
_BOOL_SETTINGS = ("MAIL_USE_TLS", "MAIL_USE_SSL", "MAIL_EMBEDDED_WORKER", "SESSION_COOKIE_SECURE",
                  "REMEMBER_COOKIE_SECURE")
# Cookies that carry a login; `Secure` on both outside development (see cookie_security).
_LOGIN_COOKIE_FLAGS = ("SESSION_COOKIE_SECURE", "REMEMBER_COOKIE_SECURE")


DEV_POSTAL_ADDRESS = "(postal address not set: CRM_POSTAL_ADDRESS; this mail stayed in the outbox)"


def defaults(instance_path: str) -> dict:
    """Settings that hold when nothing overrides them."""
    return {
        "DATABASE_URL": f"sqlite:///{Path(instance_path) / 'undersigned.sqlite3'}",
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        "CRM_BASE_URL": "http://127.0.0.1:5000",
        "CRM_POSTAL_ADDRESS": "",
        # Who is asking, on the public pages (sign-on, confirmation, unsubscribe); unset: the display name of
        # MAIL_DEFAULT_SENDER, else "Undersigned" (see crm.common.templating.coalition_name).
        "CRM_COALITION_NAME": "",
        "CRM_ENV": None,  # development or production; unset: decided by is_development
        "MAIL_BACKEND": "outbox",
        "MAIL_SERVER": "localhost",
        "MAIL_PORT": 25,
        "MAIL_USE_TLS": False,
        "MAIL_USE_SSL": False,
        "MAIL_DEFAULT_SENDER": "undersigned@localhost",
        "MAIL_MAX_EMAILS": 500,
        # The outbox worker (crm.mailmerge.worker): SMTP timeout, attempts for 4xx/dropped connections and the
        # first retry delay (doubled each time); the embedded thread runs unless TESTING or a broker is set.
        "MAIL_TIMEOUT": 30,
        "MAIL_MAX_ATTEMPTS": 5,
        "MAIL_RETRY_BASE_SECONDS": 60,
        "MAIL_EMBEDDED_WORKER": None,
        "MAIL_CELERY_FANOUT": 4,
        # Concurrent SMTP connections inside one worker (each a sender with its own claims); a relay that takes
        # 20 ms per message allows ~50 msg/s per connection.
        "MAIL_CONNECTIONS": 1,
        "RATELIMIT_STORAGE_URI": "memory://",
        "RATELIMIT_HEADERS_ENABLED": True,
        "LOGIN_RATE_LIMIT": "10 per minute",
        # The public sign-on form (crm.signon): sign-ons per IP address, and the seconds a person needs to fill it.
        "SIGNON_RATE_LIMIT": "10 per hour",
        "SIGNON_MIN_FILL_SECONDS": 3,
        # The instance's time zone (IANA name): a letter's sign-on deadline ends at midnight there.
        "CRM_TIMEZONE": "UTC",
        "WTF_CSRF_TIME_LIMIT": None,
        "MAX_CONTENT_LENGTH": 64 * 1024 * 1024,
        # The import folder (crm.imports.uploads): each user's unfinished uploads, everything in it, and how long
        # a finished import's report is kept (0: for ever).
        "CRM_IMPORT_USER_QUOTA_MB": 200,
        "CRM_IMPORT_TOTAL_QUOTA_MB": 1000,
        "CRM_IMPORT_REPORT_DAYS": 90,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "API_TITLE": "Undersigned API",
        "API_VERSION": "v1",
        "OPENAPI_VERSION": "3.0.3",
        "OPENAPI_URL_PREFIX": "/api/v1",
        "OPENAPI_JSON_PATH": "openapi.json",
        "PER_PAGE": 50,
        # werkzeug.security's method for password hashes; "scrypt" is its default cost (the test suite sets a
        # cheaper scrypt cost, as hashing at production cost dominated its setup time).
        "PASSWORD_HASH_METHOD": "scrypt",
    }


def _as_bool(value: str) -> bool:
    """Read 1/true/yes/on as True."""
    return value.strip().lower() in {"1", "true", "yes", "on"}


def from_environment(environ: os._Environ | dict) -> dict:
    """The settings present in the environment, converted to their types."""
    found: dict = {}
    for key in _STRING_SETTINGS:
        if environ.get(key):
            found[key] = environ[key]
    for key in _INT_SETTINGS:
        if environ.get(key):
            try:
                found[key] = int(environ[key])
            except ValueError as exc:
                raise RuntimeError(f"{key} must be a whole number, not {environ[key]!r}") from exc
    for key in _BOOL_SETTINGS:
        if environ.get(key):
            found[key] = _as_bool(environ[key])
    for key in ("LOGIN_RATE_LIMIT", "SIGNON_RATE_LIMIT"):
        if key in found:
            _check_rate_limit(key, found[key])
    if "CRM_TIMEZONE" in found:
        _check_timezone(found["CRM_TIMEZONE"])
    return found


def _check_timezone(name: str) -> None:
    """Refuse an unknown time zone at startup, not with a 500 on the first sign-on."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise RuntimeError(f"CRM_TIMEZONE must be a time zone name like 'America/New_York', not {name!r}") from exc


def _check_rate_limit(key: str, value: str) -> None:
    """Refuse a rate limit Flask-Limiter cannot parse at startup, not with a 500 on the first login."""
    from limits import parse_many

    try:
        parse_many(value)
    except ValueError as exc:
        raise RuntimeError(f"{key} must be a rate limit like '10 per minute', not {value!r}") from exc


def normalise_database_url(url: str) -> str:
    """Accept the common postgres:// and postgresql:// spellings and use the psycopg 3 driver for them."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def load(app: Flask, test_config: dict | None) -> None:
    """Fill app.config from defaults, then the environment (unless testing), then test_config; decide the cookies."""
    app.config.from_mapping(defaults(app.instance_path))
    chosen = from_environment(os.environ) if test_config is None else test_config
    app.config.update(chosen)
    if test_config is None and app.config["MAIL_BACKEND"] == "outbox" and not app.config["CRM_POSTAL_ADDRESS"]:
        # Mail kept in the dev outbox never leaves the machine, so a newcomer can try a merge at once; real
        # sending (MAIL_BACKEND=smtp) still refuses to queue until the address is configured.
        app.config["CRM_POSTAL_ADDRESS"] = DEV_POSTAL_ADDRESS
    app.config["DATABASE_URL"] = normalise_database_url(app.config["DATABASE_URL"])
    app.config["SQLALCHEMY_DATABASE_URI"] = app.config["DATABASE_URL"]
    cookie_security(app, os.environ, explicit={key for key in _LOGIN_COOKIE_FLAGS if key in chosen})


def is_development(settings, environ) -> bool:
    """Whether the app runs for development, where the login cookies may travel over plain http.

    CRM_ENV decides when it is set: `development`, or anything else for production. Unset, it is development
    when Flask runs in debug mode (FLASK_DEBUG, `crm run --debug`), when the `crm` command loaded the app (`crm
    run` is Flask's development server; `make run` uses it) or when CRM_BASE_URL, the address people open, is
    plain http on this machine (the default http://127.0.0.1:5000). So a production server (`gunicorn
    'crm.wsgi:app'`) whose CRM_BASE_URL is its real address is production without any further setting.
    """
    if settings.get("CRM_ENV"):
        return settings["CRM_ENV"] == "development"
    debug = (environ.get("FLASK_DEBUG") or "").lower() not in {"", "0", "false", "no"}  # as Flask reads it
    if debug or environ.get("FLASK_RUN_FROM_CLI") == "true":
        return True
    return _is_plain_http_here(settings.get("CRM_BASE_URL") or "")


def _is_plain_http_here(url: str) -> bool:
    """Whether a URL is plain http to this machine (localhost, 127.0.0.0/8, [::1])."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        return parts.scheme == "http" and (host == "localhost" or ipaddress.ip_address(host).is_loopback)
    except ValueError:  # a name other than localhost, or a malformed [IPv6] address
        return False


def cookie_security(app: Flask, environ, explicit: set[str] = frozenset()) -> None:
    """Mark the session and remember-me cookies Secure outside development (unless configured explicitly).

    CRM_ENV is set to the environment decided, so the rest of the app (and an operator) can read it.
    """
    development = is_development(app.config, environ)
    app.config["CRM_ENV"] = "development" if development else "production"
    for key in _LOGIN_COOKIE_FLAGS:
        if key not in explicit:
            app.config[key] = not development


def prepare_instance(app: Flask) -> None:
    """Create the instance folder and, when no SECRET_KEY is configured, generate one there once and reuse it.

    Called by the entry points (the `crm` command and the WSGI module), not by create_app, which does no I/O.
    """
    instance = Path(app.instance_path)
    instance.mkdir(parents=True, exist_ok=True)
    if app.config.get("SECRET_KEY"):
        return
    key_file = instance / "secret_key"
    if not key_file.exists():
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32))
    app.config["SECRET_KEY"] = key_file.read_text().strip()
