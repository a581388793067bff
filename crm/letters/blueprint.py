"""The `letters` blueprint, and what its page modules share: the letter of a URL and the logged-in user's id.

The pages add their routes to it: views (letter pages), signature_views, import_views and review_views; the
package's pages_blueprint() gathers them for create_app.
"""

from flask import Blueprint, abort, redirect, request
from flask_login import current_user

from crm.common.urls import this_page_with
from crm.letters import queries
from crm.letters.slugs import renamed_letter

bp = Blueprint("letters", __name__, url_prefix="/letters")


def letter_or_404(slug: str):
    """The letter with this slug; for a slug a letter had before a rename, a redirect to the same page under its
    current slug (the caller's code never runs); otherwise a 404."""
    letter = queries.get_letter(slug)
    if letter is not None:
        return letter
    renamed = renamed_letter(slug) or abort(404)
    # 302, not 301: another letter may take the old slug later. A form sent to the old address (an edit page
    # opened before the rename) goes on with 307, which keeps the method and the form: the edit page's version
    # check then shows its conflict panel rather than a 404.
    abort(redirect(this_page_with(slug=renamed.slug), 302 if request.method in ("GET", "HEAD") else 307))


def current_user_id() -> int | None:
    """The logged-in user's id, for the audit log."""
    return current_user.id if current_user.is_authenticated else None
