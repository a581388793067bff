"""Bearer-token authentication and role checks for the API."""

from flask import abort, g, request
from flask_smorest import Blueprint

from crm.api.errors import problem_response
from crm.auth.services import user_for_token
from crm.common.access import role_at_least

_READ_METHODS = {"GET", "HEAD", "OPTIONS"}


def install(blp: Blueprint) -> None:
    """Authenticate every API request; reads need a viewer, writes an organizer unless the view asks for more."""

    @blp.before_request
    def _authenticate():
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        user = user_for_token(token.strip()) if scheme.lower() == "bearer" else None
        if user is None:
            return problem_response(401, "A valid API token is required: send 'Authorization: Bearer TOKEN'.",
                                    headers={"WWW-Authenticate": 'Bearer realm="undersigned"'})
        g.api_user = user
        needed = "viewer" if request.method in _READ_METHODS else "organizer"
        if not role_at_least(user.role, needed):
            abort(403, f"This needs the {needed} role; your token belongs to a {user.role}.")
        return None


def require_role(role: str) -> None:
    """Refuse the request unless the token's user holds `role`."""
    if not role_at_least(g.api_user.role, role):
        abort(403, f"This needs the {role} role.")
