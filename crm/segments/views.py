"""Segment pages."""

from flask import Blueprint, render_template

from crm.common.access import access
from crm.segments.services import list_segments

bp = Blueprint("segments", __name__, url_prefix="/segments")


@bp.get("")
@access("viewer")
def index():
    """Saved filters."""
    return render_template("segments/index.html", segments=list_segments())
