"""Uploaded files between the wizard's steps: stored in the instance folder under a random name, never the user's.

Each upload is two files in <instance>/imports/: <token>.upload (the bytes, streamed to disk with a size limit)
and <token>.json (who uploaded it, what kind, its original name for display, the mapping and options chosen so
far). Tokens are 32 hex digits, checked before any path is built, so a crafted name cannot leave the folder.

The folder is bounded: each user's unfinished uploads and the folder as a whole have a quota (checked while the
bytes arrive), an upload is deleted when its import is committed or discarded, and `sweep` deletes uploads nobody
finished within KEEP_SECONDS and reports of imports older than the report retention (run on every upload and by
`crm import sweep`).
"""

import json
import os
import re
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from crm.common.text import single_line

TOKEN = re.compile(r"^[0-9a-f]{32}$")
KEEP_SECONDS = 24 * 3600
_CHUNK = 1024 * 1024
_MB = 1024 * 1024
# Every file an upload leaves beside its bytes.
_SUFFIXES = (".upload", ".json", ".report.csv", ".preview.json")


class UploadError(ValueError):
    """The upload was refused; the message says why."""


@dataclass
class Upload:
    """A stored upload and what the wizard knows about it."""

    token: str
    folder: Path
    meta: dict = field(default_factory=dict)

    @property
    def path(self) -> Path:
        """The stored bytes."""
        return self.folder / f"{self.token}.upload"

    @property
    def report_path(self) -> Path:
        """The latest preview's report."""
        return self.folder / f"{self.token}.report.csv"

    def save(self) -> None:
        """Write the metadata."""
        (self.folder / f"{self.token}.json").write_text(json.dumps(self.meta), encoding="utf-8")

    @property
    def preview_path(self) -> Path:
        """The latest preview's counts and shown rows (kept for the next GET)."""
        return self.folder / f"{self.token}.preview.json"

    def discard(self) -> None:
        """Delete the upload's files."""
        for suffix in _SUFFIXES:
            (self.folder / f"{self.token}{suffix}").unlink(missing_ok=True)


def batch_report_path(folder: Path, batch_id: int) -> Path:
    """Where a committed import's report is kept."""
    return folder / f"batch-{int(batch_id)}.report.csv"


@dataclass
class Quota:
    """How much the upload folder may hold: per user (their unfinished uploads) and in all."""

    max_bytes: int  # one file
    user_bytes: int
    total_bytes: int


def _size(path: Path) -> int:
    """A file's size, 0 if it is gone."""
    try:
        return path.stat().st_size
    except OSError:
        return 0


def usage(folder: Path, user_id: int | None = None) -> int:
    """Bytes the folder holds in all, or for one user's unfinished uploads."""
    if not folder.is_dir():
        return 0
    if user_id is None:
        return sum(_size(path) for path in folder.iterdir())
    return sum(_size(folder / f"{upload.token}{suffix}") for upload in pending_uploads(folder, user_id)
               for suffix in _SUFFIXES)


def pending_uploads(folder: Path, user_id: int) -> list[Upload]:
    """A user's unfinished uploads, newest first."""
    found = []
    for path in folder.glob("*.upload") if folder.is_dir() else ():
        upload = load_upload(folder, path.stem, user_id)
        if upload is not None:
            found.append(upload)
    return sorted(found, key=lambda u: _mtime(u.path), reverse=True)


def _mtime(path: Path) -> float:
    """A file's modification time, 0 if it is gone."""
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def sweep(folder: Path, *, keep_seconds: int = KEEP_SECONDS, report_days: int = 90, now: float | None = None) \
        -> tuple[int, int]:
    """Delete uploads nobody finished within `keep_seconds`, files left without their upload, and reports of
    imports older than `report_days` (0 keeps them); (files deleted, bytes freed)."""
    if not folder.is_dir():
        return 0, 0
    now = time.time() if now is None else now
    files = freed = 0
    for path in folder.iterdir():
        name = path.name
        stale = False
        if name.startswith("batch-") and name.endswith(".report.csv"):
            stale = bool(report_days) and _mtime(path) < now - report_days * 86400
        elif name.endswith(".upload"):
            stale = _mtime(path) < now - keep_seconds
        else:
            token = name.split(".", 1)[0]
            # A preview or metadata file whose upload is gone (or expired): nothing can use it.
            upload = folder / f"{token}.upload"
            stale = not upload.exists() or _mtime(upload) < now - keep_seconds
        if stale:
            size = _size(path)
            try:
                path.unlink()
            except OSError:
                continue
            files, freed = files + 1, freed + size
    return files, freed


def store_upload(stream: BinaryIO, filename: str, folder: Path, max_bytes: int, meta: dict,
                 quota: Quota | None = None) -> Upload:
    """Copy an uploaded stream to disk in 1 MiB pieces, refusing it past max_bytes or the quota; returns the
    Upload."""
    folder.mkdir(parents=True, exist_ok=True)
    limit, why = max_bytes, f"The file is larger than {max_bytes // _MB} MB."
    if quota is not None:
        mine = usage(folder, meta.get("user_id"))
        room_user = quota.user_bytes - mine
        room_total = quota.total_bytes - usage(folder)
        if room_user < limit:
            limit = max(room_user, 0)
            why = (f"Your unfinished imports already hold {mine / _MB:.1f} MB of the {quota.user_bytes // _MB} MB "
                   f"each person may keep: finish or discard them (listed below) and upload again.")
        if room_total < limit:
            limit = max(room_total, 0)
            why = (f"The import folder is full ({quota.total_bytes // _MB} MB for everybody's unfinished imports "
                   f"and reports): unfinished uploads are deleted after a day; try again later or ask an admin to "
                   f"run `crm import sweep`.")
    upload = Upload(secrets.token_hex(16), folder, {**meta, "filename": single_line(filename)[:255]})
    size = 0
    fd = os.open(upload.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        while True:
            piece = stream.read(_CHUNK)
            if not piece:
                break
            size += len(piece)
            if size > limit:
                out.close()
                upload.discard()
                raise UploadError(why)
            out.write(piece)
    upload.meta["size"] = size
    upload.save()
    return upload


def load_upload(folder: Path, token: str, user_id: int) -> Upload | None:
    """The upload with this token, if it exists and belongs to this user."""
    if not TOKEN.match(token or ""):
        return None
    upload = Upload(token, folder)
    try:
        upload.meta = json.loads((folder / f"{token}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if upload.meta.get("user_id") != user_id or not upload.path.exists():
        return None
    return upload
