"""Mail merges, the outbox and suppressions."""

from flask import Blueprint, render_template, request

from crm.common.access import access
from crm.mailmerge import services

bp = Blueprint("mailmerge", __name__)


def _page() -> int:
    """The page number from the query string."""
    page = request.args.get("page", "1")
    return int(page) if page.isdigit() and 0 < int(page) < 1_000_000 else 1


@bp.get("/merges")
@access("viewer")
def merges():
    """Every mail merge with its progress."""
    return render_template("mailmerge/merges.html", merges=services.list_merges())


@bp.get("/outbox")
@access("organizer")
def outbox():
    """Every message sent or caught (with MAIL_BACKEND=outbox) by this instance."""
    return render_template("mailmerge/outbox.html", result=services.outbox_page(_page()))


@bp.get("/suppressions")
@access("organizer")
def suppressions():
    """Addresses that are never mailed."""
    return render_template("mailmerge/suppressions.html", result=services.suppressions_page(_page()))
