"""Letter pages: the list and one letter with its signatories."""

from flask import Blueprint, Response, abort, render_template

from crm.common.access import access
from crm.letters import services

bp = Blueprint("letters", __name__, url_prefix="/letters")


@bp.get("")
@access("viewer")
def index():
    """Every letter with its status and signature counts."""
    return render_template("letters/index.html", letters=services.list_letters())


@bp.get("/<slug>")
@access("viewer")
def show(slug: str):
    """A letter: its text, recipients, and signatories (leads first, then alphabetical)."""
    letter = services.get_letter(slug) or abort(404)
    signatures = services.signatories(letter, ("confirmed", "pending", "declined", "withdrawn"))
    counts = services.status_counts([letter.id]).get(letter.id, {})
    return render_template("letters/show.html", letter=letter, signatures=signatures, counts=counts)


@bp.get("/<slug>/signatories.txt")
@access("viewer")
def signatory_block(slug: str):
    """The confirmed signatories as plain text, one per line, in the letter's own order."""
    letter = services.get_letter(slug) or abort(404)
    return Response(services.signatory_block(letter), mimetype="text/plain",
                    headers={"Content-Disposition": f'attachment; filename="{letter.slug}-signatories.txt"'})
