"""Backups: a consistent snapshot of the SQLite database, and restoring one.

PostgreSQL deployments use the database's own tools (pg_dump / pg_restore); the command says so.
"""

import os
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import make_url

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
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    dst = sqlite3.connect(destination)
    try:
        with dst:
            src.backup(dst)
        if dst.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
            raise BackupError("The copy failed its integrity check.")
    finally:
        src.close()
        dst.close()
    return destination


def restore(database_url: str, backup_file: Path) -> Path:
    """Replace the database with a backup (stop the app and its workers first)."""
    target = sqlite_path(database_url)
    if not backup_file.exists():
        raise BackupError(f"No backup at {backup_file}.")
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
