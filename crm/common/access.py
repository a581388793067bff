"""Role-based access, declared on every view and enforced in one place, for pages and the API alike.

Each page view declares who may call it with @access(...). A before_request hook (install_access_control) looks the
declaration up for the matched endpoint and refuses the request when it is missing: a route nobody thought about is
closed, not open. API views (flask-smorest MethodViews) declare with the same decorator on the method (or the class);
an API method that declares nothing gets API_DEFAULT. `needed_role` answers for any endpoint, so the page checks,
the API's bearer-token checks (crm.api.auth) and the authorization tests all read this one table.
"""

from collections.abc import Callable

from flask import Flask, abort, g, redirect, request, url_for
from flask_login import current_user

ROLES = ("viewer", "organizer", "admin")
_RANK = {"viewer": 1, "organizer": 2, "admin": 3}
_READ_METHODS = {"GET", "HEAD", "OPTIONS"}


def role_at_least(role: str | None, needed: str) -> bool:
    """Whether a user's role grants what `needed` asks for."""
    return _RANK.get(role or "", 0) >= _RANK[needed]


def access(read: str, write: str | None = None) -> Callable:
    """Declare the role a view needs: `read` for GET/HEAD, `write` (default: the same) for other methods.

    `read` may be "public" for pages anyone may open (login, public sign-on, unsubscribe).
    """

    def decorate(view):
        view._access = (read, write or read)
        return view

    return decorate


# What an API method needs when it declares nothing: reading is for viewers, changing for organizers. Anything
# more private than the data a viewer reads on the pages (the review queue, rendered messages) declares more.
API_DEFAULT = ("viewer", "organizer")


def needed_role(view, method: str) -> str | None:
    """The role the view declared for this method, or None when it declared nothing.

    For a MethodView (the API's resources) the declaration sits on the method, else on the class, else
    API_DEFAULT applies.
    """
    declared = getattr(view, "_access", None)
    view_class = getattr(view, "view_class", None)
    if declared is None and view_class is not None:
        handler = getattr(view_class, method.lower(), None)
        if handler is None and method == "HEAD":
            handler = getattr(view_class, "get", None)
        declared = getattr(handler, "_access", None) or getattr(view_class, "_access", None) or API_DEFAULT
    if declared is None:
        return None
    read, write = declared
    return read if method in _READ_METHODS else write


def refusal(needed: str, role: str | None) -> str:
    """What a 403 says: the role needed and the one the user has."""
    article = "an" if needed[0] in "aeiou" else "a"
    higher = "" if needed == ROLES[-1] else " (or higher)"
    if role:
        mine = "an" if role[0] in "aeiou" else "a"
        return (f"This needs the {needed} role{higher}; you are signed in as {mine} {role}. "
                f"Ask an admin if you need {article} {needed}'s access.")
    return f"This needs the {needed} role{higher}."


def install_access_control(app: Flask) -> None:
    """Check every request against its view's declaration (API endpoints check their bearer token themselves)."""

    @app.before_request
    def _check_access():
        if request.endpoint is None or request.endpoint == "static":
            return None
        view = app.view_functions.get(request.endpoint)
        if request.blueprint and (request.blueprint == "api-docs" or request.blueprint.startswith("api")):
            return None  # the API authenticates bearer tokens itself (crm.api.auth)
        role = needed_role(view, request.method)
        if role is None:
            abort(403, "Nobody has been given access to this page.")
        if role == "public":
            return None
        if not current_user.is_authenticated:
            return redirect(url_for("auth.login", next=request.full_path if request.query_string else request.path))
        if not role_at_least(current_user.role, role):
            abort(403, refusal(role, current_user.role))
        g.user = current_user
        return None


def can(role: str) -> bool:
    """Template helper: whether the current user holds at least `role`."""
    return current_user.is_authenticated and role_at_least(current_user.role, role)
