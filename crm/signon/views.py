"""The public sign-on page of a letter that is collecting signatures."""

from flask import Blueprint, abort, render_template

from crm.common.access import access
from crm.letters.services import get_letter

bp = Blueprint("signon", __name__)


@bp.get("/sign/<slug>")
@access("public")
def public(slug: str):
    """A collecting letter with public sign-on on; anything else is not found (drafts stay private)."""
    letter = get_letter(slug)
    if letter is None or letter.status != "collecting" or not letter.public_signon:
        abort(404)
    return render_template("signon/public.html", letter=letter)
