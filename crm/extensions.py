"""Unbound Flask extensions, bound to an app in create_app (nothing here imports the app)."""

import sqlite3

from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_mail import Mail
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from sqlalchemy import MetaData, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

# Deterministic constraint names so Alembic can drop and alter them on SQLite (batch mode) and PostgreSQL alike.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

db = SQLAlchemy(metadata=MetaData(naming_convention=NAMING_CONVENTION))
migrate = Migrate()
mail = Mail()
login_manager = LoginManager()
csrf = CSRFProtect()
limiter = Limiter(key_func=get_remote_address)


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, connection_record):
    """Turn on WAL, foreign keys and a busy timeout for every SQLite connection."""
    if not isinstance(dbapi_connection, sqlite3.Connection):
        return
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


# --- read-only requests end with COMMIT ------------------------------------------------------------------------
# A request's session ends with a ROLLBACK when nothing committed it, and psycopg forgets every prepared statement
# at a ROLLBACK; PostgreSQL then parses and plans the list pages' statements afresh on every request (1-2 ms for
# the filtered counts). A transaction that only read ends the same way with COMMIT, which keeps them. So each
# connection notes whether its transaction sent anything but a SELECT, and a request that only read commits.


@event.listens_for(Engine, "begin")
def _transaction_begins(connection) -> None:
    """A new transaction has written nothing yet."""
    connection.info["wrote"] = False


@event.listens_for(Engine, "before_cursor_execute")
def _note_writes(connection, cursor, statement, parameters, context, executemany) -> None:
    """Anything but a plain SELECT (DML, DDL, a pragma, a CTE that may write) counts as a write."""
    if not connection.info.get("wrote") and statement.lstrip()[:6].upper() != "SELECT":
        connection.info["wrote"] = True


def commit_read_only_requests(app) -> None:
    """End a request whose transaction only read with COMMIT instead of the session's ROLLBACK (same effect on
    the data; psycopg keeps its prepared statements). Any write, pending ORM change or error: left to roll back."""

    @app.teardown_request
    def _commit_if_only_read(exc) -> None:
        session = db.session()  # this request's session (the scoped_session's current one)
        if exc is not None or not session.in_transaction() or session.new or session.dirty or session.deleted:
            return
        if session.connection().info.get("wrote", True):
            return
        try:
            session.commit()
        except SQLAlchemyError:  # the response is already made; ending the transaction either way is all we want
            session.rollback()
