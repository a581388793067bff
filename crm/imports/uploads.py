"""Uploaded files between the wizard's steps: stored in the instance folder under a random name, never the user's.

Each upload is two files in <instance>/imports/: <token>.upload (the bytes, streamed to disk with a size limit)
and <token>.json (who uploaded it, what kind, its original name for display, the mapping and options chosen so
far). Tokens are 32 hex digits, checked before any path is built, so a crafted name cannot leave the folder.
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

    def discard(self) -> None:
        """Delete the upload's files."""
        for suffix in (".upload", ".json", ".report.csv"):
            (self.folder / f"{self.token}{suffix}").unlink(missing_ok=True)


def batch_report_path(folder: Path, batch_id: int) -> Path:
    """Where a committed import's report is kept."""
    return folder / f"batch-{int(batch_id)}.report.csv"


def _discard_old(folder: Path) -> None:
    """Forget uploads nobody finished within a day."""
    limit = time.time() - KEEP_SECONDS
    for path in folder.glob("*.upload"):
        try:
            if path.stat().st_mtime < limit:
                Upload(path.stem, folder).discard()
        except OSError:
            continue


def store_upload(stream: BinaryIO, filename: str, folder: Path, max_bytes: int, meta: dict) -> Upload:
    """Copy an uploaded stream to disk in 1 MiB pieces, refusing it past max_bytes; returns the Upload."""
    folder.mkdir(parents=True, exist_ok=True)
    _discard_old(folder)
    upload = Upload(secrets.token_hex(16), folder, {**meta, "filename": single_line(filename)[:255]})
    size = 0
    fd = os.open(upload.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        while True:
            piece = stream.read(_CHUNK)
            if not piece:
                break
            size += len(piece)
            if size > max_bytes:
                out.close()
                upload.discard()
                raise UploadError(f"The file is larger than {max_bytes // (1024 * 1024)} MB.")
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
