"""Bearer-token authentication and role checks for the API."""

from flask import abort, current_app, g, request
from flask_smorest import Blueprint

from crm.api.errors import problem_response
from crm.auth.services import user_for_token
from crm.common.access import needed_role, refusal, role_at_least


def install(blp: Blueprint) -> None:
    """Authenticate every API request and check the role the endpoint declares (crm.common.access, the table the
    pages use too: reads need a viewer and writes an organizer unless the view declares more)."""

    @blp.before_request
    def _authenticate():
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        user = user_for_token(token.strip()) if scheme.lower() == "bearer" else None
        if user is None:
            return problem_response(401, "A valid API token is required: send 'Authorization: Bearer TOKEN'.",
                                    headers={"WWW-Authenticate": 'Bearer realm="undersigned"'})
        g.api_user = user
        needed = needed_role(current_app.view_functions.get(request.endpoint), request.method)
        if needed is None or not role_at_least(user.role, needed):
            abort(403, refusal(needed or "admin", user.role))
        return None


def require_role(role: str) -> None:
    """Refuse the request unless the token's user holds `role` (prefer declaring it with @access on the view)."""
    if not role_at_least(g.api_user.role, role):
        abort(403, refusal(role, g.api_user.role))
