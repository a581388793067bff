"""Backups: a consistent snapshot of the SQLite database, and restoring one.

PostgreSQL deployments use the database's own tools (pg_dump / pg_restore); the command says so.

Restoring under a running app would lose every write it makes afterwards (it keeps writing to the replaced file's
old inode or its WAL). So every process that opens an SQLite database holds a shared lock on `<database>.inuse`
for as long as it lives (the web app, its embedded mail worker, `crm worker`, any command), and restore takes it
exclusively or refuses. The lock is the operating system's (flock): it vanishes with the process, never stale.
"""

import os
import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url

try:
    import fcntl
except ImportError:  # Windows: no flock; restore cannot tell whether the database is in use
    fcntl = None

PG_GUIDANCE = (
    "This instance uses PostgreSQL: back it up with `pg_dump --format=custom --file undersigned.dump DBNAME` "
    "and restore with `pg_restore --clean --if-exists --dbname DBNAME undersigned.dump`."
)


class BackupError(RuntimeError):
    """A backup or restore that cannot be done; the message says why."""


def sqlite_path(database_url: str) -> Path:
    """The file of an SQLite database URL (refuses other databases)."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        raise BackupError(PG_GUIDANCE if url.get_backend_name() == "postgresql" else
                          f"Backups of {url.get_backend_name()} databases are not supported.")
    if not url.database or url.database == ":memory:":
        raise BackupError("This SQLite database lives in memory; there is nothing to back up.")
    return Path(url.database)


# --- "this database is in use" ---------------------------------------------------------------------------------

_held: dict[str, int] = {}  # database file -> the descriptor of its .inuse file this process holds shared
_held_lock = threading.Lock()


def in_use_path(database: Path) -> Path:
    """The lock file of a database."""
    return Path(f"{database}.inuse")


def hold_in_use(database: Path) -> None:
    """Mark the database in use by this process (a shared lock kept until the process ends or releases it)."""
    if fcntl is None:
        return
    key = str(Path(database).resolve())
    with _held_lock:
        if key in _held:
            return
        try:
            fd = os.open(in_use_path(Path(key)), os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:  # a read-only folder: nothing to restore into either
            return
        fcntl.flock(fd, fcntl.LOCK_SH)  # waits while a restore holds it exclusively
        _held[key] = fd


def release_in_use(database: Path) -> None:
    """Drop this process's own mark (before restoring, and only with its connections closed)."""
    key = str(Path(database).resolve())
    with _held_lock:
        fd = _held.pop(key, None)
    if fd is not None:
        os.close(fd)


def _lock_exclusively(database: Path) -> int | None:
    """An exclusive hold on the database's lock file, or raise BackupError if another process uses it."""
    if fcntl is None:
        return None
    fd = os.open(in_use_path(database), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise BackupError(
            f"The database {database} is in use by a running Undersigned process (the web app with its mail "
            "worker, `crm worker`, or another command). Stop them, then restore; nothing was changed."
        ) from None
    return fd


def _mark_connections(dbapi_connection, connection_record) -> None:
    """Every SQLite connection marks its database file in use by this process."""
    if not isinstance(dbapi_connection, sqlite3.Connection):
        return
    for _, name, filename in dbapi_connection.execute("PRAGMA database_list").fetchall():
        if name == "main" and filename:
            hold_in_use(Path(filename))


def install_in_use_marker() -> None:
    """Mark SQLite databases in use from every process that connects to them (once per process)."""
    if not event.contains(Engine, "connect", _mark_connections):
        event.listen(Engine, "connect", _mark_connections)


def default_backup_name(source: Path) -> Path:
    """undersigned-YYYYmmdd-HHMMSS.sqlite3 next to the database."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return source.with_name(f"undersigned-{stamp}.sqlite3")


def backup(database_url: str, destination: Path | None = None) -> Path:
    """Copy the live database with SQLite's online backup API: consistent even while the app writes."""
    source = sqlite_path(database_url)
    if not source.exists():
        raise BackupError(f"No database at {source}.")
    destination = destination or default_backup_name(source)
    if destination.exists():
        raise BackupError(f"{destination} already exists; choose another name.")
    if not destination.parent.is_dir():
        raise BackupError(f"The folder {destination.parent} does not exist; create it or choose another place.")
    if not os.access(destination.parent, os.W_OK):
        raise BackupError(f"Cannot write in {destination.parent}; choose another place.")
    try:
        src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
        dst = sqlite3.connect(destination)
    except sqlite3.Error as exc:
        raise BackupError(f"Cannot open {destination}: {exc}.") from exc
    try:
        with dst:
            src.backup(dst)
        if dst.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
            raise BackupError("The copy failed its integrity check.")
    except sqlite3.Error as exc:
        dst.close()
        destination.unlink(missing_ok=True)
        raise BackupError(f"The backup failed: {exc}. Nothing was written.") from exc
    finally:
        src.close()
        dst.close()
    return destination


def restore(database_url: str, backup_file: Path) -> Path:
    """Replace the database with a backup; refuses while any other process uses the database (the caller closes
    its own connections first)."""
    target = sqlite_path(database_url)
    if not backup_file.is_file():
        raise BackupError(f"No backup at {backup_file}.")
    release_in_use(target)
    held = _lock_exclusively(target) if target.parent.is_dir() else None
    try:
        return _replace(target, backup_file)
    finally:
        if held is not None:
            os.close(held)


def _replace(target: Path, backup_file: Path) -> Path:
    """Check the backup and copy it over the database (nobody else has it open)."""
    try:
        check = sqlite3.connect(f"file:{backup_file}?mode=ro", uri=True)
        try:
            if check.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
                raise BackupError(f"{backup_file} is damaged.")
            tables = {row[0] for row in check.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        finally:
            check.close()
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{backup_file} is not an SQLite database: {exc}") from exc
    if not {"organizations", "letters", "users"} <= tables:
        raise BackupError(f"{backup_file} is not an Undersigned backup.")
    staging = target.with_suffix(".restoring")
    src = sqlite3.connect(f"file:{backup_file}?mode=ro", uri=True)
    dst = sqlite3.connect(staging)
    try:
        with dst:
            src.backup(dst)
    finally:
        src.close()
        dst.close()
    for suffix in ("-wal", "-shm"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    os.replace(staging, target)
    return target
