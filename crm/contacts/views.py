"""The contacts list."""

from flask import Blueprint, render_template, request

from crm.common.access import access
from crm.contacts.services import count_mailable, list_contacts

bp = Blueprint("contacts", __name__, url_prefix="/contacts")


@bp.get("")
@access("viewer")
def index():
    """Contacts, searchable, paginated."""
    q = (request.args.get("q") or "").strip()[:200]
    page = request.args.get("page", "1")
    result = list_contacts(q, page=int(page) if page.isdigit() and 0 < int(page) < 1_000_000 else 1)
    return render_template("contacts/index.html", result=result, q=q, mailable=count_mailable())
