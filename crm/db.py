"""The database: the SQLAlchemy extension bound to an app, and what every connection and request does with it."""

import sqlite3

from flask import Flask
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from crm.extensions import db


def init_app(app: Flask) -> None:
    """Bind `db` to the app; SQLite pragmas and the write tracking on every engine; read-only requests commit."""
    db.init_app(app)
    # On the Engine class, not the app's engine: engines made outside the app (backup, benches) get them too.
    for name, listener in (("connect", _sqlite_pragmas), ("begin", _transaction_begins),
                           ("before_cursor_execute", _note_writes)):
        if not event.contains(Engine, name, listener):  # one registration per process, however many apps
            event.listen(Engine, name, listener)
    _commit_read_only_requests(app)


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


def _transaction_begins(connection) -> None:
    """A new transaction has written nothing yet."""
    connection.info["wrote"] = False


def _note_writes(connection, cursor, statement, parameters, context, executemany) -> None:
    """Anything but a plain SELECT (DML, DDL, a pragma, a CTE that may write) counts as a write."""
    if not connection.info.get("wrote") and statement.lstrip()[:6].upper() != "SELECT":
        connection.info["wrote"] = True


def _commit_read_only_requests(app: Flask) -> None:
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
