"""Every download is in the audit log.

Any response sent as an attachment (CSV, XLSX, signatory blocks, reports, whatever route sends it) is recorded as
an "export" event with who, what file and which filters, unless the view already recorded a richer one. Doing it
here, once, means a new download route cannot forget.
"""

import logging
import re

from flask import Flask, Response, g, request
from flask_login import current_user
from sqlalchemy.exc import SQLAlchemyError

from crm.audit.services import record
from crm.extensions import db

log = logging.getLogger(__name__)
_FILENAME = re.compile(r'filename\*?=(?:UTF-8\'\')?"?([^";]+)"?', re.IGNORECASE)


def is_download(response) -> bool:
    """Whether a response is a file download (Content-Disposition: attachment)."""
    return response.headers.get("Content-Disposition", "").lower().startswith("attachment")


def install_download_audit(app: Flask) -> None:
    """Record every successful download in the audit log."""

    @app.after_request
    def _audit_download(response):
        if response.status_code != 200 or not is_download(response) or g.get("export_audited"):
            return response
        found = _FILENAME.search(response.headers["Content-Disposition"])
        filename = found.group(1) if found else request.path.rsplit("/", 1)[-1]
        query = request.query_string.decode("utf-8", "replace")
        user_id = int(current_user.id) if current_user.is_authenticated else None
        try:
            record("export", "export", None, user_id=user_id,
                   summary=f"Downloaded {filename} ({request.path}{'?' + query if query else ''}).")
            db.session.commit()
        except SQLAlchemyError:
            # No download without its audit line: refuse, and say why (the database is busy or gone).
            db.session.rollback()
            log.exception("could not record the download of %s in the audit log", request.path)
            response.close()
            return Response("This download could not be recorded in the audit log, so it was not sent. "
                            "Try again in a moment.\n", status=503, mimetype="text/plain")
        return response
