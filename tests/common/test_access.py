"""Roles on every route: viewers never change data, anonymous users are sent to log in, API writes need roles."""

import re

import pytest

from crm.auth.services import create_token
from crm.common.access import needed_role

# Every page under every role: part of the smoke pass on PostgreSQL (tests/conftest.py).
pytestmark = pytest.mark.bothdb

WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def concrete_path(rule) -> str:
    """A URL for a rule: 1 for ids, the first choice of any(...), 'x' for other parameters."""

    def value(match):
        converter, arguments = match.group(1), match.group(2)
        if converter == "int":
            return "1"
        if converter == "any":
            return arguments.strip("()").split(",")[0].strip().strip("'\"")
        return "x"

    return re.sub(r"<(?:(\w+)(\([^)]*\))?:)?(\w+)>", value, rule.rule)


def page_rules(app):
    """Every non-API, non-static URL rule."""
    return [r for r in app.url_map.iter_rules()
            if r.endpoint != "static" and not r.endpoint.startswith("api") and not r.rule.startswith("/api/")]


def test_every_page_declares_its_roles(app):
    missing = [r.endpoint for r in page_rules(app)
               if any(needed_role(app.view_functions[r.endpoint], m) is None for m in r.methods)]
    assert missing == [], f"views without @access: {missing}"


def test_anonymous_users_are_sent_to_login(app, client):
    for rule in page_rules(app):
        view = app.view_functions[rule.endpoint]
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            if needed_role(view, method) == "public":
                continue
            response = client.open(concrete_path(rule), method=method)
            assert response.status_code == 302, (method, rule.rule, response.status_code)
            assert "/login" in response.headers["Location"]


def test_viewer_gets_403_on_every_route_that_changes_data(app, as_role):
    client = as_role("viewer")
    for rule in page_rules(app):
        view = app.view_functions[rule.endpoint]
        for method in sorted(rule.methods & WRITE_METHODS):
            needed = needed_role(view, method)
            if needed in ("public", "viewer"):
                continue  # logout, sign-on and unsubscribe are not data a viewer may not touch
            response = client.open(concrete_path(rule), method=method, data={})
            assert response.status_code == 403, (method, rule.rule, response.status_code)


def test_viewer_token_gets_403_on_every_api_write(app, client, users):
    token = create_token(users["viewer"].email).secret
    rules = [r for r in app.url_map.iter_rules() if r.rule.startswith("/api/v1/") and r.methods & WRITE_METHODS]
    for rule in rules:
        for method in sorted(rule.methods & WRITE_METHODS):
            response = client.open(concrete_path(rule), method=method, json={},
                                   headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 403, (method, rule.rule, response.status_code)
            assert response.mimetype == "application/problem+json"


@pytest.mark.parametrize("role", ["viewer", "organizer", "admin"])
def test_every_readable_page_renders_for_its_roles(app, as_role, seeded, role):
    from crm.common.access import role_at_least

    client = as_role(role)
    for rule in page_rules(app):
        if "GET" not in rule.methods or "<" in rule.rule:
            continue
        needed = needed_role(app.view_functions[rule.endpoint], "GET")
        response = client.get(rule.rule)
        if needed == "public" or role_at_least(role, needed):
            assert response.status_code in (200, 302), (rule.rule, response.status_code)
        else:
            assert response.status_code == 403, (rule.rule, response.status_code)


@pytest.mark.own_app
def test_server_error_page_uses_the_layout(app):
    @app.get("/boom-for-test")
    def boom():
        raise RuntimeError("boom")

    boom._access = ("public", "public")
    app.config["PROPAGATE_EXCEPTIONS"] = False
    response = app.test_client().get("/boom-for-test")
    assert response.status_code == 500
    assert b"Something went wrong on our side" in response.data and b"navbar" in response.data
