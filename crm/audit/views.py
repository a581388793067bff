"""The audit log page (admins)."""

from flask import Blueprint, render_template, request

from crm.audit.labels import readable_changes
from crm.audit.services import recent_events
from crm.common.access import access
from crm.common.validation import whole_number

bp = Blueprint("audit", __name__, url_prefix="/audit")
bp.add_app_template_global(readable_changes)


@bp.get("")
@access("admin")
def index():
    """Every change, newest first."""
    page = request.args.get("page", "1")
    return render_template("audit/index.html",
                           result=recent_events(whole_number(page, 1, 10**6) or 1, 50))
