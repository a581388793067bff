"""The `letters` blueprint, and what its page modules share: the letter of a URL and the logged-in user's id.

The pages add their routes to it: views (letter pages), signature_views, import_views and review_views; the
package's pages_blueprint() gathers them for create_app.
"""

from flask import Blueprint, abort
from flask_login import current_user

from crm.letters import queries

bp = Blueprint("letters", __name__, url_prefix="/letters")


def letter_or_404(slug: str):
    """The letter with this slug, or a 404."""
    return queries.get_letter(slug) or abort(404)


def current_user_id() -> int | None:
    """The logged-in user's id, for the audit log."""
    return current_user.id if current_user.is_authenticated else None
