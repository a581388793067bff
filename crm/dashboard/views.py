"""The dashboard."""

from flask import Blueprint, render_template

from crm.common.access import access
from crm.dashboard.services import counts
from crm.letters.services import list_letters
from crm.organizations.services import issue_area_counts

bp = Blueprint("dashboard", __name__)


@bp.get("/")
@access("viewer")
def index():
    """Counts, letters, and organizations per issue area."""
    letters = list_letters()
    return render_template("dashboard/index.html", counts=counts(), letters=letters,
                           collecting=[(letter, c) for letter, c in letters if letter.status == "collecting"],
                           areas=issue_area_counts())
