"""Test fixtures: the app on SQLite and PostgreSQL, a real SMTP server, a live server and a real browser.

Which databases
    CRM_TEST_DB (or ``--db``) names them: ``sqlite``, ``postgresql`` or both (the default, and what CI runs). With
    one named, every database test runs on it. With both, a test runs on SQLite, and on PostgreSQL too when it is
    marked ``@pytest.mark.bothdb``: mark a test (or a module, ``pytestmark = pytest.mark.bothdb``) whose outcome
    can depend on the database — SQL the two dialects run differently (locking, ``SKIP LOCKED``, triggers,
    migrations, full-text and pattern search, constraints, sequences, prepared statements) — and the smoke pass of
    every page and API route. ``CRM_TEST_EVERYWHERE=1`` runs every test on every named database. PostgreSQL tests
    skip when no server answers, except under CI, where that is a failure.

How a test's writes go away
    By default a test gets the app this process built once for that database (empty, or seeded when the test uses
    ``seeded``), and runs inside one transaction on one connection that is rolled back when the test ends. Every
    session — the test's own, each request's, each CLI command's — joins that transaction in a SAVEPOINT of its
    own (SQLAlchemy's ``join_transaction_mode="create_savepoint"``), so ``commit()`` and ``rollback()`` behave as
    in production for the code under test. ``app.config`` is restored after each test and ``app.instance_path``
    is the test's own. A test with settings of its own (an ``app_config`` fixture), or marked
    ``@pytest.mark.own_app`` because it changes the app itself (adds a route), gets an app of its own, on the same
    database and in the same kind of transaction.

Tests that need real commits
    Mark ``@pytest.mark.commits`` a test whose data must be really committed: another thread or process reads it
    (a worker, ``crm worker``, Celery), it opens its own connections (backups, migrations, ``db.engine``), or it
    watches how transactions end. Tests using ``live_server``, ``page``, ``worker_stopped`` or ``sink`` (the
    mail-merge worker's SMTP server) are marked automatically. Such a test gets its own app on a fresh database:
    a copy of a template SQLite file, or the PostgreSQL test database emptied after the test (with the seed
    restored first for ``seeded``). A test that commits outside its transaction without the mark fails and says
    so.
"""

import contextvars
import os
import shutil
import smtplib
import socket
import tempfile
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from flask_sqlalchemy.session import Session as FlaskSqlalchemySession
from werkzeug.serving import make_server

from crm import create_app
from crm.extensions import db as _db
from crm.extensions import limiter as _limiter

# Temporary files (SQLite databases, instance folders, logs) in memory where the machine has a tmpfs: the
# durable marks and the tests that commit wait for every fsync of an SQLite file on disk, and nothing a test
# writes needs to outlive it. Read by pytest's tmp_path_factory and every `tempfile` call.
if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) and not os.environ.get("CRM_TEST_TMPDIR_ON_DISK"):
    tempfile.tempdir = "/dev/shm"

BASE_POSTGRES_URL = os.environ.get("CRM_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
# Under pytest-xdist each worker gets its own databases (test_gw0 and test_gw0_seeded, …), created on first use.
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
_BASE = sa.engine.make_url(BASE_POSTGRES_URL)
POSTGRES_URL = (_BASE.set(database=f"{_BASE.database}_{_WORKER}").render_as_string(hide_password=False)
                if _WORKER else BASE_POSTGRES_URL)
_PG = sa.engine.make_url(POSTGRES_URL)
POSTGRES_SEEDED_URL = _PG.set(database=f"{_PG.database}_seeded").render_as_string(hide_password=False)
BACKENDS = [b.strip() for b in os.environ.get("CRM_TEST_DB", "sqlite,postgresql").split(",") if b.strip()]
EVERYWHERE = os.environ.get("CRM_TEST_EVERYWHERE", "").strip().lower() in {"1", "true", "yes", "on"}
# Fixtures whose thread, process or browser reaches the database over connections of its own: their tests need
# real commits. `sink` is the mail-merge tests' SMTP server: the worker sending to it writes its marks that way.
REAL_COMMIT_FIXTURES = {"live_server", "page", "browser", "worker_stopped", "sink"}
# Debian's chromium-headless-shell (Chromium's "old" headless mode, a browser without the desktop browser's
# layers): the same Blink and V8, about a quarter less CPU than /usr/bin/chromium across the browser tests, which
# were the largest share of the suite's CPU. /usr/bin/chromium where the shell is not installed.
CHROMIUM = os.environ.get("CRM_CHROMIUM") or next(
    (path for path in ("/usr/bin/chromium-headless-shell", "/usr/bin/chromium") if os.path.exists(path)),
    "/usr/bin/chromium-headless-shell",
)
PASSWORD = "correct horse battery"


def pytest_addoption(parser):
    """--db chooses the databases (overrides CRM_TEST_DB)."""
    parser.addoption("--db", default=None, help="comma-separated: sqlite,postgresql")


def pytest_configure(config):
    """Read --db."""
    global BACKENDS
    if config.getoption("--db"):
        BACKENDS = [b.strip() for b in config.getoption("--db").split(",") if b.strip()]


def _create_database(url: str) -> None:
    """Create the database of `url` when it does not exist yet; its commits do not wait for the disk.

    `synchronous_commit = off` for a test database only: a commit is still visible to every other connection the
    moment it returns, and survives any crash of a client (the tests kill workers, never the database server);
    only a crash of the server itself could lose it. Waiting for the WAL to reach the disk at every commit was
    a large share of the worker tests' time. The app and bench/ keep the server's default.
    """
    name = sa.engine.make_url(url).database
    engine = sa.create_engine(BASE_POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            if not conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).scalar():
                conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
            conn.execute(sa.text(f'ALTER DATABASE "{name}" SET synchronous_commit = off'))
    finally:
        engine.dispose()


def _postgres_available() -> bool:
    """Whether the test PostgreSQL server answers."""
    try:
        if _WORKER:
            _create_database(POSTGRES_URL)
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


# --- databases -------------------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    """An SQLite file with the schema, created once and copied for each database a test needs."""
    path = tmp_path_factory.mktemp("template") / "template.sqlite3"
    app = create_app(base_config(f"sqlite:///{path}"))
    with app.app_context():
        _db.create_all()
        _db.session.remove()
        _db.engine.dispose()
    return path


@pytest.fixture(scope="session")
def sqlite_seeded_template(sqlite_template, tmp_path_factory) -> Path:
    """The schema template after load_seed(), made once and copied for each database that starts seeded (the very
    file load_seed() would have produced: same ids, rows and sqlite_sequence)."""
    from crm.seed import load_seed

    path = tmp_path_factory.mktemp("template") / "seeded.sqlite3"
    shutil.copyfile(sqlite_template, path)
    app = create_app(base_config(f"sqlite:///{path}"))
    with app.app_context():
        load_seed()
        _db.session.remove()
        _db.engine.dispose()  # the last connection checkpoints the WAL into the file
    return path


def _copy_sqlite(template: Path, path: Path) -> None:
    """Make `path` a copy of `template` (and drop a WAL left by an earlier database at that path)."""
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(template, path)


def _psycopg_dsn(url: str) -> str:
    """The SQLAlchemy URL as a libpq connection string for psycopg."""
    return sa.engine.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _postgres_with_schema(url: str) -> None:
    """Create the database of `url` if needed and give it a fresh schema."""
    _create_database(url)
    app = create_app(base_config(url))
    with app.app_context():
        with _db.engine.begin() as conn:
            conn.execute(sa.text("DROP SCHEMA public CASCADE"))
            conn.execute(sa.text("CREATE SCHEMA public"))
        _db.create_all()
        _db.session.remove()
        _db.engine.dispose()


@pytest.fixture(scope="session")
def postgres_schema():
    """This process's PostgreSQL test database with the schema, created once per run and empty between tests
    (tests that commit empty it after themselves)."""
    if not _postgres_available():
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is not reachable at {POSTGRES_URL} (required under CI)")
        pytest.skip(f"PostgreSQL is not reachable at {POSTGRES_URL}")
    _postgres_with_schema(POSTGRES_URL)
    return POSTGRES_URL


@pytest.fixture(scope="session")
def postgres_seeded(postgres_schema) -> str:
    """A second PostgreSQL database, seeded once per run, for the tests that use `seeded` (rolled back)."""
    from crm.seed import load_seed

    _postgres_with_schema(POSTGRES_SEEDED_URL)
    app = create_app(base_config(POSTGRES_SEEDED_URL))
    with app.app_context():
        load_seed()
        _db.session.remove()
        _db.engine.dispose()
    return POSTGRES_SEEDED_URL


class PostgresSnapshot:
    """Every row of every table (COPY text format) and the state of every sequence, taken once and restored
    into an emptied database."""

    def __init__(self, url: str):
        self.dsn = _psycopg_dsn(url)
        self.tables: list[tuple[str, bytes]] = []
        self.sequences: list[tuple[str, str, int]] = []

    def capture(self) -> "PostgresSnapshot":
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
        return self

    def restore(self, url: str) -> None:
        """Write the captured rows into the (empty) database of `url` and set the sequences as they were."""
        import psycopg

        with psycopg.connect(_psycopg_dsn(url)) as conn, conn.cursor() as cur:
            for name, data in self.tables:  # parents before children (metadata order)
                with cur.copy(f'COPY "{name}" FROM STDIN') as copy:
                    copy.write(data)
            for schema, sequence, value in self.sequences:
                cur.execute("SELECT setval(%s, %s, true)", (f'"{schema}"."{sequence}"', value))


@pytest.fixture(scope="session")
def postgres_seeded_snapshot(postgres_seeded) -> PostgresSnapshot:
    """The seeded database's rows, restored into the emptied test database for committing tests that use
    `seeded`."""
    return PostgresSnapshot(postgres_seeded).capture()


def _empty_postgres(url: str) -> None:
    """Empty every table and restart the sequences, as TRUNCATE … RESTART IDENTITY CASCADE would.

    DELETE with triggers (foreign-key checks, the signature counters) switched off for the transaction is ~0.03 s
    against ~0.2 s for TRUNCATE of twenty tables, most of which are empty or hold a few rows. Switching triggers
    off needs a superuser; anyone else gets the TRUNCATE.
    """
    import psycopg

    tables = [t.name for t in reversed(_db.metadata.sorted_tables)]
    try:
        with psycopg.connect(_psycopg_dsn(url)) as conn:
            conn.execute("SET LOCAL session_replication_role = replica")
            for name in tables:
                conn.execute(f'DELETE FROM "{name}"')
            for schema, sequence in conn.execute(
                    "SELECT schemaname, sequencename FROM pg_sequences "
                    "WHERE schemaname = 'public' AND last_value IS NOT NULL").fetchall():
                conn.execute(f'ALTER SEQUENCE "{schema}"."{sequence}" RESTART')
    except psycopg.errors.InsufficientPrivilege:
        with psycopg.connect(_psycopg_dsn(url), autocommit=True) as conn:
            names = ", ".join(f'"{name}"' for name in tables)
            conn.execute(f"TRUNCATE {names} RESTART IDENTITY CASCADE")


# --- which tests run where ------------------------------------------------------------------------------------

# Set on a test item whose database was started from the seeded template/snapshot: `seeded` has nothing to do.
_PRESEEDED = pytest.StashKey[bool]()


def pytest_collection_modifyitems(config, items):
    """Mark the tests that use a live server, a browser or a worker `commits`; run the tests marked slow first
    (otherwise in collection order).

    pytest-xdist hands tests out in collection order, so a 60-160 s test collected late (the 10,000-message drain,
    the organizer loop) could still be running long after the other processes ran out of work; started first, the
    short tests fill in around them. This relies on --maxschedchunk=2 (pyproject.toml addopts): with xdist's
    default chunks the first process would get every slow test at once.
    """
    for item in items:
        if REAL_COMMIT_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.commits)
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


def databases_for(node) -> list[str]:
    """The databases a test runs on: all that are named when one is, when the test is marked `bothdb`, or under
    CRM_TEST_EVERYWHERE; otherwise SQLite alone."""
    if EVERYWHERE or len(BACKENDS) < 2 or node.get_closest_marker("bothdb"):
        return BACKENDS
    return ["sqlite"] if "sqlite" in BACKENDS else BACKENDS[:1]


def pytest_generate_tests(metafunc):
    """Run every test that needs a database once per database it is meant for (see databases_for)."""
    if "database_url" in metafunc.fixturenames:
        metafunc.parametrize("database_url", databases_for(metafunc.definition), indirect=True)


def _commits(request) -> bool:
    """Whether the test needs real commits (marked `commits`, or uses a fixture that does)."""
    return (request.node.get_closest_marker("commits") is not None
            or bool(REAL_COMMIT_FIXTURES & set(request.fixturenames)))


@pytest.fixture(scope="session")
def _shared_sqlite(tmp_path_factory) -> dict[bool, Path]:
    """Where this process's two SQLite databases for rolled-back tests live: {seeded: path} (made on first use)."""
    folder = tmp_path_factory.mktemp("shared")
    return {False: folder / "empty.sqlite3", True: folder / "seeded.sqlite3"}


@pytest.fixture
def database_url(request, tmp_path):
    """The test's database URL: this process's shared database (empty or seeded) for a rolled-back test; for a
    test marked `commits`, a fresh one — a copy of the template SQLite file, or the PostgreSQL test database,
    emptied after the test.

    When the test uses `seeded`, the database starts as load_seed() leaves it and `seeded` does nothing more.
    """
    seeded = "seeded" in request.fixturenames
    request.node.stash[_PRESEEDED] = seeded
    backend = request.param
    if backend not in ("sqlite", "postgresql"):
        raise ValueError(f"unknown test database {backend!r}")
    template = request.getfixturevalue("sqlite_seeded_template" if seeded else "sqlite_template") \
        if backend == "sqlite" else None
    if not _commits(request):
        if backend == "sqlite":
            path = request.getfixturevalue("_shared_sqlite")[seeded]
            if not path.exists():
                _copy_sqlite(template, path)
            yield f"sqlite:///{path}"
        else:
            yield request.getfixturevalue("postgres_seeded" if seeded else "postgres_schema")
    elif backend == "sqlite":
        path = tmp_path / "test.sqlite3"
        shutil.copyfile(template, path)
        yield f"sqlite:///{path}"
    else:
        url = request.getfixturevalue("postgres_schema")
        if seeded:
            request.getfixturevalue("postgres_seeded_snapshot").restore(url)
        try:
            yield url
        finally:
            _empty_postgres(url)


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
def app_config() -> dict:
    """Per-test configuration overrides (override this fixture in a module to change settings)."""
    return {}


def _new_app(database_url: str, app_config: dict):
    """An app for rolled-back tests on `database_url`."""
    application = create_app(base_config(database_url, **app_config))
    application.test_client_class = IsolatedClient
    if database_url.startswith("sqlite"):
        # pysqlite starts a transaction only before a write and lets a SAVEPOINT start one, whose RELEASE would
        # then commit: SQLAlchemy's recipe is to leave transactions to SQLAlchemy, which sends BEGIN itself.
        with application.app_context():
            engine = _db.engine
        sa.event.listen(engine, "connect", _sqlite_leaves_transactions_to_sqlalchemy)
        sa.event.listen(engine, "begin", _sqlite_begin)
    return application


def _sqlite_leaves_transactions_to_sqlalchemy(dbapi_connection, connection_record) -> None:
    """Switch off pysqlite's own transaction handling (see _new_app)."""
    dbapi_connection.isolation_level = None


def _sqlite_begin(connection) -> None:
    """Begin the transaction SQLAlchemy begins (see _new_app)."""
    connection.exec_driver_sql("BEGIN")


# The app each rolled-back test without settings of its own uses, one per database URL in this process.
_SHARED_APPS: dict[str, object] = {}


class _Savepoints:
    """The SAVEPOINTs open on a test's connection, innermost last, each noting whether anything but a SELECT ran
    while it was the innermost (a savepoint released inside it does not count: that was another session's)."""

    def __init__(self, connection):
        self.open: list[list] = []  # [name, wrote]
        sa.event.listen(connection, "savepoint", self._opened)
        sa.event.listen(connection, "release_savepoint", self._closed)
        sa.event.listen(connection, "rollback_savepoint", self._closed)
        sa.event.listen(connection, "before_cursor_execute", self._executing)

    def _opened(self, connection, name) -> None:
        self.open.append([name, False])

    def _closed(self, connection, name, context) -> None:
        while self.open and self.open.pop()[0] != name:
            pass

    def _executing(self, connection, cursor, statement, parameters, context, executemany) -> None:
        word = statement.lstrip()[:9].upper()
        if self.open and not word.startswith(("SELECT", "SAVEPOINT", "RELEASE", "ROLLBACK", "BEGIN")):
            self.open[-1][1] = True

    def innermost_only_read(self) -> bool:
        """Whether the innermost savepoint saw no write of its own (True when none is open)."""
        return not self.open or not self.open[-1][1]


class _JoinedSession(FlaskSqlalchemySession):
    """Flask-SQLAlchemy's session on the test's connection (its `bind`), in a SAVEPOINT of its own.

    Savepoints nest, so a request's commit lands inside the savepoint of a session still open around it (usually
    the test's own). Rolling that session back would also undo the request's committed work, which production
    keeps; so a session that wrote nothing itself releases its savepoint instead of rolling it back.
    """

    def get_bind(self, mapper=None, clause=None, bind=None, **kwargs):
        """The test's connection, whatever the model."""
        return bind if bind is not None else self.bind

    def _only_read(self) -> bool:
        return (self.in_transaction() and not (self.new or self.dirty or self.deleted)
                and self.info["savepoints"].innermost_only_read())

    def _release(self) -> bool:
        try:
            self.commit()
            return True
        except sa.exc.SQLAlchemyError:  # e.g. a failed statement left the savepoint aborted: roll it back
            return False

    def rollback(self) -> None:
        """Roll back this session's savepoint, or release it when it holds nothing of this session's."""
        if not (self._only_read() and self._release()):
            super().rollback()

    def close(self) -> None:
        """Close, releasing a savepoint that holds nothing of this session's (see the class)."""
        if self._only_read():
            self._release()
        super().close()


def _rebuild_shared(database_url: str, request) -> None:
    """Put a shared database back as it started, after a test committed to it outside its transaction."""
    application = _SHARED_APPS.pop(database_url, None)
    if application is not None:
        with application.app_context():
            _db.engine.dispose()
    if database_url.startswith("sqlite"):
        path = Path(sa.engine.make_url(database_url).database)
        seeded = request.node.stash.get(_PRESEEDED, False)
        _copy_sqlite(request.getfixturevalue("sqlite_seeded_template" if seeded else "sqlite_template"), path)
    else:
        _empty_postgres(database_url)
        if database_url == POSTGRES_SEEDED_URL:
            request.getfixturevalue("postgres_seeded_snapshot").restore(database_url)


def _app_in_a_transaction(request, database_url, app_config, tmp_path):
    """The shared app (or the test's own, with its settings) inside a transaction rolled back at the end."""
    shared = not app_config and request.node.get_closest_marker("own_app") is None
    application = _SHARED_APPS.get(database_url) if shared else None
    if application is None:
        application = _new_app(database_url, app_config)
        if shared:
            _SHARED_APPS[database_url] = application
    else:
        # Flask-Limiter keeps `enabled` and its storage on the one Limiter object, set by the last app initialised
        # (a test's own app may have turned limits on): set them back for this app.
        _limiter.init_app(application)
    saved_config = dict(application.config)
    application.instance_path = str(tmp_path / "instance")
    committed: list[str] = []
    if database_url == POSTGRES_SEEDED_URL:  # what _rebuild_shared would restore (pytest wants it asked for now)
        request.getfixturevalue("postgres_seeded_snapshot")

    def note_commit(connection) -> None:
        committed.append("commit")

    with application.app_context():
        engine = _db.engine
        sa.event.listen(engine, "commit", note_commit)
        connection = engine.connect()
        transaction = connection.begin()
        original_session = _db.session
        _db.session = sa.orm.scoped_session(
            sa.orm.sessionmaker(class_=_JoinedSession, db=_db, query_cls=_db.Query, bind=connection,
                                join_transaction_mode="create_savepoint",
                                info={"savepoints": _Savepoints(connection)}),
            scopefunc=original_session.registry.scopefunc)
        try:
            yield application
        finally:
            _db.session.remove()
            _db.session = original_session
            if transaction.is_active:
                transaction.rollback()
            connection.close()
            sa.event.remove(engine, "commit", note_commit)
            application.config.clear()
            application.config.update(saved_config)
            if not shared:
                engine.dispose()
    if committed:
        _rebuild_shared(database_url, request)
        pytest.fail("this test committed outside its transaction (a connection of its own, another thread or "
                    "process): mark it @pytest.mark.commits (see tests/conftest.py)", pytrace=False)


def _app_with_commits(database_url, app_config, tmp_path):
    """An app of the test's own on its fresh database (see database_url)."""
    application = create_app(base_config(database_url, **app_config))
    application.test_client_class = IsolatedClient
    application.instance_path = str(tmp_path / "instance")
    with application.app_context():
        yield application
        _db.session.remove()
    with application.app_context():
        _db.engine.dispose()


@pytest.fixture
def app(request, database_url, app_config, tmp_path):
    """The application on the test's database, inside the test's transaction unless it is marked `commits`."""
    if _commits(request):
        yield from _app_with_commits(database_url, app_config, tmp_path)
    else:
        yield from _app_in_a_transaction(request, database_url, app_config, tmp_path)


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


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test item (`item.rep_call`), for fixtures that act on failure."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture
def page(browser, request):
    """A fresh browser page; when the test fails, a screenshot of where it stopped is saved under
    test-artifacts/ (a full-page screenshot after every test cost more than many of the tests)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    tab.set_default_timeout(10_000)
    yield tab
    try:
        report = getattr(request.node, "rep_call", None)
        if report is None or report.failed:
            ARTIFACTS.mkdir(exist_ok=True)
            name = request.node.name.replace("/", "_").replace("[", "-").replace("]", "")
            tab.screenshot(path=str(ARTIFACTS / f"{name}-failed.png"), full_page=True)
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
