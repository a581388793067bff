"""The imports page."""

from flask import Blueprint, render_template

from crm.common.access import access
from crm.imports import services  # noqa: F401

bp = Blueprint("imports", __name__, url_prefix="/imports")


@bp.get("")
@access("organizer")
def index():
    """How to bring data in."""
    return render_template("imports/index.html")
