"""Test fixtures: the app on SQLite and PostgreSQL, a real SMTP server, a live server and a real browser.

Every test that uses the `app` fixture runs once per database named in CRM_TEST_DB (default: sqlite,postgresql).
PostgreSQL tests skip when no server answers, except under CI, where that is a failure.
"""

import contextvars
import os
import shutil
import smtplib
import socket
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from werkzeug.serving import make_server

from crm import create_app
from crm.extensions import db as _db

BASE_POSTGRES_URL = os.environ.get("CRM_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
# Under pytest-xdist each worker gets its own database (test_gw0, test_gw1, …), created on first use.
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
_BASE = sa.engine.make_url(BASE_POSTGRES_URL)
POSTGRES_URL = (_BASE.set(database=f"{_BASE.database}_{_WORKER}").render_as_string(hide_password=False)
                if _WORKER else BASE_POSTGRES_URL)
BACKENDS = [b.strip() for b in os.environ.get("CRM_TEST_DB", "sqlite,postgresql").split(",") if b.strip()]
CHROMIUM = os.environ.get("CRM_CHROMIUM", "/usr/bin/chromium")
PASSWORD = "correct horse battery"


def _cache_url_builders() -> None:
    """Share Werkzeug's compiled URL builders between the apps the tests create (one per test).

    Binding a rule compiles two small Python functions for url_for (an AST, then compile()); with ~120 rules
    that was half of create_app()'s ~0.16 s. The generated code depends only on the rule's parsed parts, its
    defaults' names and append_unknown (converters are looked up through the rule at call time), so the same
    rule text always gives the same function. A rule whose default fills one of its converters' variables
    bakes the converted value into the code and is compiled as usual; so is everything when Werkzeug no longer
    has this method.
    """
    from werkzeug.routing.rules import Rule

    compile_builder = getattr(Rule, "_compile_builder", None)
    if compile_builder is None or getattr(compile_builder, "cached_for_tests", False):
        return
    builders: dict = {}

    def cached(self, append_unknown=True):
        defaults = self.defaults or {}
        if any(dynamic and name in defaults for dynamic, name in self._trace):
            return compile_builder(self, append_unknown)
        key = (self.rule, tuple(self._trace), tuple(defaults), append_unknown)
        builder = builders.get(key)
        if builder is None:
            builder = builders[key] = compile_builder(self, append_unknown)
        return builder

    cached.cached_for_tests = True
    Rule._compile_builder = cached


_cache_url_builders()


def pytest_addoption(parser):
    """--db chooses the databases (overrides CRM_TEST_DB)."""
    parser.addoption("--db", default=None, help="comma-separated: sqlite,postgresql")


def pytest_configure(config):
    """Read --db."""
    global BACKENDS
    if config.getoption("--db"):
        BACKENDS = [b.strip() for b in config.getoption("--db").split(",") if b.strip()]


def _create_worker_database() -> None:
    """Create this xdist worker's own PostgreSQL database when it does not exist yet."""
    name = sa.engine.make_url(POSTGRES_URL).database
    engine = sa.create_engine(BASE_POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            if not conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).scalar():
                conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    finally:
        engine.dispose()


def _postgres_available() -> bool:
    """Whether the test PostgreSQL server answers."""
    try:
        if _WORKER:
            _create_worker_database()
        engine = sa.create_engine(POSTGRES_URL)
        with engine.connect():
            pass
        engine.dispose()
        return True
    except Exception:
        return False


def base_config(database_url: str, **overrides) -> dict:
    """The configuration every test app starts from."""
    config = {
        "TESTING": True,
        "SECRET_KEY": "test-secret-key-not-for-production",
        "DATABASE_URL": database_url,
        "WTF_CSRF_ENABLED": False,
        "RATELIMIT_ENABLED": False,
        "MAIL_BACKEND": "outbox",
        "MAIL_DEFAULT_SENDER": "organizer@example.org",
        "CRM_BASE_URL": "http://localhost",
        "CRM_POSTAL_ADDRESS": "1 Test Street, Testville, TS 00000",
        "SERVER_NAME": None,
        # scrypt at 1/32 of Werkzeug's default cost: a few ms per hash instead of ~0.15 s. Every `users` fixture
        # hashes three passwords and every login checks one, which made hashing a large share of setup time.
        "PASSWORD_HASH_METHOD": "scrypt:1024:8:1",
    }
    config.update(overrides)
    return config


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    """An SQLite file with the schema, created once and copied for each test."""
    path = tmp_path_factory.mktemp("template") / "template.sqlite3"
    app = create_app(base_config(f"sqlite:///{path}"))
    with app.app_context():
        _db.create_all()
        _db.session.remove()
        _db.engine.dispose()
    return path


@pytest.fixture(scope="session")
def sqlite_seeded_template(sqlite_template, tmp_path_factory) -> Path:
    """The schema template after load_seed(), made once and copied for each test that uses `seeded`.

    The copy is the very file load_seed() would have produced (same ids, rows and sqlite_sequence); loading the
    seed for each of the ~130 seeded tests took about half a second apiece.
    """
    from crm.seed import load_seed

    path = tmp_path_factory.mktemp("template") / "seeded.sqlite3"
    shutil.copyfile(sqlite_template, path)
    app = create_app(base_config(f"sqlite:///{path}"))
    with app.app_context():
        load_seed()
        _db.session.remove()
        _db.engine.dispose()  # the last connection checkpoints the WAL into the file
    return path


def _psycopg_dsn(url: str) -> str:
    """The SQLAlchemy URL as a libpq connection string for psycopg."""
    return sa.engine.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def postgres_schema():
    """The schema on the test PostgreSQL database, created once per run (tables emptied after each test)."""
    if not _postgres_available():
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is not reachable at {POSTGRES_URL} (required under CI)")
        pytest.skip(f"PostgreSQL is not reachable at {POSTGRES_URL}")
    app = create_app(base_config(POSTGRES_URL))
    with app.app_context():
        with _db.engine.begin() as conn:
            conn.execute(sa.text("DROP SCHEMA public CASCADE"))
            conn.execute(sa.text("CREATE SCHEMA public"))
        _db.create_all()
        _db.session.remove()
        _db.engine.dispose()
    return POSTGRES_URL


class PostgresSnapshot:
    """Every row of every table (COPY text format) and the state of every sequence, taken once and restored
    into the emptied database for each test that uses `seeded`."""

    def __init__(self, url: str):
        self.dsn = _psycopg_dsn(url)
        self.tables: list[tuple[str, bytes]] = []
        self.sequences: list[tuple[str, str, int]] = []

    def capture(self) -> None:
        """Read the database as it is now."""
        import psycopg

        with psycopg.connect(self.dsn) as conn, conn.cursor() as cur:
            for table in _db.metadata.sorted_tables:
                with cur.copy(f'COPY "{table.name}" TO STDOUT') as copy:
                    data = b"".join(bytes(chunk) for chunk in copy)
                if data:
                    self.tables.append((table.name, data))
            self.sequences = cur.execute(
                "SELECT schemaname, sequencename, last_value FROM pg_sequences "
                "WHERE schemaname = 'public' AND last_value IS NOT NULL").fetchall()

    def restore(self) -> None:
        """Write the captured rows into the (empty) database and set the sequences as they were."""
        import psycopg

        with psycopg.connect(self.dsn) as conn, conn.cursor() as cur:
            for name, data in self.tables:  # parents before children (metadata order)
                with cur.copy(f'COPY "{name}" FROM STDIN') as copy:
                    copy.write(data)
            for schema, sequence, value in self.sequences:
                cur.execute("SELECT setval(%s, %s, true)", (f'"{schema}"."{sequence}"', value))


@pytest.fixture(scope="session")
def postgres_seeded_snapshot(postgres_schema) -> PostgresSnapshot:
    """The PostgreSQL database right after load_seed(), captured once (see PostgresSnapshot)."""
    from crm.seed import load_seed

    app = create_app(base_config(postgres_schema))
    snapshot = PostgresSnapshot(postgres_schema)
    with app.app_context():
        load_seed()
        _db.session.remove()
        snapshot.capture()
    _empty_postgres(app)
    return snapshot


def _empty_postgres(app) -> None:
    """Empty every table and restart the sequences, as TRUNCATE … RESTART IDENTITY CASCADE would.

    DELETE with triggers (foreign-key checks, the signature counters) switched off for the transaction is ~0.03 s
    against ~0.2 s for TRUNCATE of twenty tables, most of which are empty or hold a few rows. Switching triggers
    off needs a superuser; anyone else gets the TRUNCATE.
    """
    import psycopg

    with app.app_context():
        _db.session.remove()
        tables = [t.name for t in reversed(_db.metadata.sorted_tables)]
        _db.engine.dispose()
    try:
        with psycopg.connect(_psycopg_dsn(app.config["DATABASE_URL"])) as conn:
            conn.execute("SET LOCAL session_replication_role = replica")
            for name in tables:
                conn.execute(f'DELETE FROM "{name}"')
            for schema, sequence in conn.execute(
                    "SELECT schemaname, sequencename FROM pg_sequences "
                    "WHERE schemaname = 'public' AND last_value IS NOT NULL").fetchall():
                conn.execute(f'ALTER SEQUENCE "{schema}"."{sequence}" RESTART')
    except psycopg.errors.InsufficientPrivilege:
        with psycopg.connect(_psycopg_dsn(app.config["DATABASE_URL"]), autocommit=True) as conn:
            names = ", ".join(f'"{name}"' for name in tables)
            conn.execute(f"TRUNCATE {names} RESTART IDENTITY CASCADE")


# Set on a test item whose database was started from the seeded template/snapshot: `seeded` has nothing to do.
_PRESEEDED = pytest.StashKey[bool]()


def pytest_collection_modifyitems(config, items):
    """Run the tests marked slow first (otherwise in collection order).

    pytest-xdist hands tests out in collection order, so a 60-160 s test collected late (the 10,000-message drain,
    the organizer loop) could still be running long after the other processes ran out of work; started first, the
    short tests fill in around them. This relies on --maxschedchunk=2 (pyproject.toml addopts): with xdist's
    default chunks the first process would get every slow test at once.
    """
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


def pytest_generate_tests(metafunc):
    """Run every test that needs a database once per selected backend."""
    if "database_url" in metafunc.fixturenames:
        metafunc.parametrize("database_url", BACKENDS, indirect=True)


class IsolatedClient(FlaskClient):
    """A test client whose requests get their own app context (own `g`, own database session), as in production.

    Flask reuses an app context that is already pushed (the `app` fixture pushes one), which would let one
    client's request see another's cached login in `g`; running each request in an empty contextvars.Context
    prevents that.
    """

    def open(self, *args, **kwargs):
        """Perform the request in a fresh context; read and close the body (file downloads release their file)."""
        kwargs.setdefault("buffered", True)
        return contextvars.Context().run(super().open, *args, **kwargs)


@pytest.fixture
def database_url(request, tmp_path):
    """A fresh, empty database with the schema: an SQLite file, or the emptied PostgreSQL test database.

    When the test uses `seeded`, the database starts as load_seed() leaves it (a copy of a seeded template file, or
    a snapshot restored into PostgreSQL) and `seeded` does nothing more.
    """
    seeded = "seeded" in request.fixturenames
    if request.param == "sqlite":
        template = request.getfixturevalue("sqlite_seeded_template" if seeded else "sqlite_template")
        path = tmp_path / "test.sqlite3"
        shutil.copyfile(template, path)
        request.node.stash[_PRESEEDED] = seeded
        yield f"sqlite:///{path}"
    elif request.param == "postgresql":
        url = request.getfixturevalue("postgres_schema")
        if seeded:
            request.getfixturevalue("postgres_seeded_snapshot").restore()
        request.node.stash[_PRESEEDED] = seeded
        yield url
    else:
        raise ValueError(f"unknown test database {request.param!r}")


@pytest.fixture
def app_config() -> dict:
    """Per-test configuration overrides (override this fixture in a module to change settings)."""
    return {}


@pytest.fixture
def app(database_url, app_config, tmp_path):
    """The application on a fresh database."""
    application = create_app(base_config(database_url, **app_config))
    application.test_client_class = IsolatedClient
    application.instance_path = str(tmp_path / "instance")
    with application.app_context():
        yield application
        _db.session.remove()
    if database_url.startswith("postgresql"):
        _empty_postgres(application)
    else:
        with application.app_context():
            _db.engine.dispose()


@pytest.fixture
def db(app):
    """The Flask-SQLAlchemy handle, inside the app context."""
    return _db


@pytest.fixture
def client(app):
    """A test client."""
    return app.test_client()


@pytest.fixture
def runner(app):
    """A CLI runner for the `crm` commands."""
    return app.test_cli_runner()


@pytest.fixture
def seeded(app, request):
    """The seed letter and its 68 organizations loaded (the database fixture normally started from a copy)."""
    if not request.node.stash.get(_PRESEEDED, False):
        from crm.seed import load_seed

        load_seed()
    return app


def make_user(role: str, email: str | None = None, password: str = PASSWORD):
    """Create a user with a role (inside an app context)."""
    from crm.auth.services import create_user

    user, _ = create_user(email or f"{role}@example.org", role, password, name=role.capitalize())
    return user


@pytest.fixture
def users(app):
    """One user per role."""
    return {role: make_user(role) for role in ("admin", "organizer", "viewer")}


def login(client, email: str, password: str = PASSWORD):
    """Log a test client in through the login form."""
    response = client.post("/login", data={"email": email, "password": password})
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    return response


@pytest.fixture
def as_role(client, users):
    """as_role('organizer') logs the client in with that role and returns the client."""

    def _login(role: str):
        client.post("/logout")
        login(client, users[role].email)
        return client

    return _login


# --- SMTP -----------------------------------------------------------------------------------------------------

_ALLOWED_SMTP: set[tuple[str, int]] = set()


@pytest.fixture(autouse=True)
def guard_smtp(monkeypatch):
    """Fail any test that opens an SMTP connection to something other than the smtp_server fixture."""
    real_connect = smtplib.SMTP.connect

    def guarded(self, host="localhost", port=0, source_address=None):
        if (host, int(port)) not in _ALLOWED_SMTP:
            raise AssertionError(f"unexpected SMTP connection to {host}:{port}")
        return real_connect(self, host, port, source_address)

    monkeypatch.setattr(smtplib.SMTP, "connect", guarded)


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RecordingHandler:
    """aiosmtpd handler that keeps every accepted message."""

    def __init__(self):
        self.messages = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        """Record the message and accept it."""
        import email

        message = email.message_from_bytes(envelope.original_content or envelope.content)
        with self.lock:
            self.messages.append({"from": envelope.mail_from, "to": list(envelope.rcpt_tos), "message": message,
                                  "raw": envelope.original_content or envelope.content})
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server():
    """A real SMTP server (aiosmtpd) on a free loopback port; `.messages` holds what it received."""
    from aiosmtpd.controller import Controller

    handler = RecordingHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    _ALLOWED_SMTP.add(("127.0.0.1", port))
    handler.host, handler.port = "127.0.0.1", port
    yield handler
    _ALLOWED_SMTP.discard(("127.0.0.1", port))
    controller.stop()


@pytest.fixture
def worker_stopped(app):
    """Stop the embedded outbox worker thread (MAIL_EMBEDDED_WORKER) when the test ends."""
    from crm.mailmerge.embedded import stop_embedded_worker

    yield
    stop_embedded_worker(app)


# --- live server and browser -------------------------------------------------------------------------------------

class LiveServer:
    """The app served over real HTTP in a thread."""

    def __init__(self, app):
        self.app = app
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self):
        """Serve in the background."""
        self.thread.start()

    def stop(self):
        """Stop serving."""
        self.server.shutdown()
        self.thread.join(5)
        self.server.server_close()


@pytest.fixture
def live_server(app):
    """The app with CSRF on, served on a free port; `.url` is its base URL."""
    app.config.update(WTF_CSRF_ENABLED=True)
    server = LiveServer(app)
    app.config["CRM_BASE_URL"] = server.url
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def browser():
    """Headless Debian Chromium driven by Playwright."""
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail(f"Chromium is missing at {CHROMIUM}; `make test` installs it with apt")
        pytest.skip(f"Chromium is missing at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        )
        yield instance
        instance.close()


ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


@pytest.fixture
def page(browser, request):
    """A fresh browser page; a screenshot is saved under test-artifacts/ when the test ends."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    tab.set_default_timeout(10_000)
    yield tab
    ARTIFACTS.mkdir(exist_ok=True)
    name = request.node.name.replace("/", "_").replace("[", "-").replace("]", "")
    try:
        tab.screenshot(path=str(ARTIFACTS / f"{name}-final.png"), full_page=True)
    finally:
        context.close()


def embedded_smtp_config(smtp_server, **extra) -> dict:
    """App settings for sending to the smtp_server fixture through the embedded outbox worker (browser tests)."""
    return {
        "MAIL_BACKEND": "smtp",
        "MAIL_SERVER": smtp_server.host,
        "MAIL_PORT": smtp_server.port,
        "MAIL_EMBEDDED_WORKER": True,
        "MAIL_POLL_SECONDS": 0.2,
        **extra,
    }


def browser_login(page, base_url: str, email: str, password: str = PASSWORD) -> None:
    """Log in through the real login form."""
    page.goto(f"{base_url}/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{base_url}/")
