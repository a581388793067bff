"""The `mailmerge` blueprint, and what its page modules share: the message-state vocabulary, the page number and
the logged-in user's id.

The pages add their routes to it: views (merges), outbox_views, suppression_views and public_views; the package's
pages_blueprint() gathers them for create_app.
"""

from flask import Blueprint, request
from flask_login import current_user

from crm.common.validation import whole_number
from crm.mailmerge import embedded
from crm.mailmerge.states import LISTED, message_state

bp = Blueprint("mailmerge", __name__)
embedded.install(bp)


@bp.app_context_processor
def _message_states() -> dict:
    """The message-state vocabulary, for this feature's pages and the organization page's list of merges."""
    return {"message_state": message_state, "listed_states": LISTED}


def page_number() -> int:
    """The page number from the query string."""
    page = request.args.get("page", "1")
    return whole_number(page, 1, 1_000_000) or 1


def current_user_id() -> int | None:
    """The logged-in user's id."""
    return current_user.id if current_user.is_authenticated else None
