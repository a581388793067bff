"""API request bodies are bounded: deeply nested or oversized JSON is a 400/413 problem, never a 500."""

import pytest

from crm.auth.services import create_token
from tests.common.test_authorization_matrix import concrete_path

WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def api_write_routes(app) -> list[tuple[str, str, bool]]:
    """Every (method, concrete path, reads a JSON body) of the API's writes."""
    routes = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/"):
            continue
        view_class = getattr(app.view_functions[rule.endpoint], "view_class", None)
        if view_class is None:  # the OpenAPI document
            continue
        for method in rule.methods & WRITE_METHODS:
            arguments = getattr(getattr(view_class, method.lower()), "_apidoc", {}).get("arguments", {})
            reads_json = any(p.get("in") == "json" for p in arguments.get("parameters", []))
            routes.append((method, concrete_path(rule.rule), reads_json))
    return sorted(routes)


@pytest.fixture
def headers(users):
    """An admin's bearer token, so no route refuses before reading the body."""
    token = create_token(users["admin"].email).secret
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


@pytest.mark.parametrize("body", [
    "[" * 100_000 + "]" * 100_000,                      # deeper than Python's recursion limit
    '{"a": ' * 50 + "1" + "}" * 50,                      # parses, but deeper than any real body
    '{"name": "x", "filter": ' + "[" * 5000 + "]" * 5000 + "}",
], ids=["list-100000", "dict-50", "field-5000"])
def test_every_api_write_refuses_nested_json(app, client, headers, body):
    routes = api_write_routes(app)
    assert sum(reads_json for *_, reads_json in routes) > 10
    failures = []
    for method, path, reads_json in routes:
        response = client.open(path, method=method, data=body, headers=headers)
        if response.status_code >= 500 or response.mimetype != "application/problem+json":
            failures.append((method, path, response.status_code))
        elif reads_json and (response.status_code != 400 or "nests deeper" not in response.get_json()["detail"]):
            failures.append((method, path, response.status_code, response.get_json()["detail"]))
    assert failures == []


def test_oversized_json_body_is_413(app, client, headers):
    app.config["API_MAX_JSON_BYTES"] = 1000
    body = '{"name": "' + "x" * 2000 + '"}'
    response = client.post("/api/v1/organizations", data=body, headers=headers)
    assert response.status_code == 413 and response.mimetype == "application/problem+json"


def test_a_normal_body_still_works(client, headers):
    response = client.post("/api/v1/organizations", json={"name": "Bounded Body Coalition"}, headers=headers)
    assert response.status_code == 201, response.get_json()
