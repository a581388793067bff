"""The JSON API skeleton: bearer tokens, problem+json errors, OpenAPI, organizations agree with the export."""

import csv
import io

import pytest
from openapi_spec_validator import validate

from crm.auth.services import create_token
from crm.seed import SEED_LETTER_SLUG

# Part of the smoke pass of the API on PostgreSQL (tests/conftest.py).
pytestmark = pytest.mark.bothdb


@pytest.fixture
def tokens(users):
    """A bearer token per role."""
    return {role: create_token(user.email).secret for role, user in users.items()}


def auth(token: str) -> dict:
    """The Authorization header for a token."""
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic abc"},
                                     {"Authorization": "Bearer " + "x" * 5000}])
def test_no_valid_token_is_401_problem_json(client, seeded, headers):
    response = client.get("/api/v1/organizations", headers=headers)
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["status"] == 401 and body["title"] == "Unauthorized" and "Bearer" in body["detail"]
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_viewer_token_lists_same_set_as_export(client, seeded, tokens, runner):
    response = client.get("/api/v1/organizations?issue_area=immigration&per_page=200", headers=auth(tokens["viewer"]))
    assert response.status_code == 200
    body = response.get_json()
    api_names = [item["name"] for item in body["items"]]
    assert body["total"] == len(api_names) and body["page"] == 1 and body["per_page"] == 200
    exported = runner.invoke(args=["export", "orgs", "--issue-area", "immigration"]).output
    assert api_names == [row["name"] for row in csv.DictReader(io.StringIO(exported))]
    item = body["items"][0]
    assert set(item) == {"id", "name", "acronym", "org_type", "scope", "city", "state", "country", "website",
                         "parent_id", "issue_areas", "aliases", "archived", "version"}
    assert "immigration" in item["issue_areas"]


def test_filters_and_pagination(client, seeded, tokens):
    headers = auth(tokens["viewer"])
    page1 = client.get("/api/v1/organizations?per_page=10", headers=headers).get_json()
    page2 = client.get("/api/v1/organizations?per_page=10&page=2", headers=headers).get_json()
    assert page1["total"] == 68 and len(page1["items"]) == 10
    assert not {i["id"] for i in page1["items"]} & {i["id"] for i in page2["items"]}
    both = client.get("/api/v1/organizations?issue_area=immigration&issue_area=surveillance&match=all",
                      headers=headers).get_json()
    assert both["total"] >= 5
    assert all({"immigration", "surveillance"} <= set(i["issue_areas"]) for i in both["items"])
    ca_ny = client.get(f"/api/v1/organizations?signed={SEED_LETTER_SLUG}&state=CA&state=NY",
                       headers=headers).get_json()
    assert ca_ny["total"] > 0 and {i["state"] for i in ca_ny["items"]} <= {"CA", "NY"}
    aclu = client.get("/api/v1/organizations?q=aclu", headers=headers).get_json()
    names = {i["name"] for i in aclu["items"]}
    assert "American Civil Liberties Union (ACLU)" in names and "ACLU of Minnesota" in names
    none = client.get(f"/api/v1/organizations?not_signed={SEED_LETTER_SLUG}", headers=headers).get_json()
    assert none["total"] == 0


@pytest.mark.parametrize("query, param", [
    ("issue_area=basket-weaving", "issue_area"),
    ("match=some", "match"),
    ("state=XX", "state"),
    ("signed=no-such-letter", "signed"),
    ("page=0", "page"),
    ("per_page=100000", "per_page"),
    ("page=abc", "page"),
    ("q=" + "a" * 300, "q"),
    ("sort=password", "sort"),
])
def test_bad_parameters_are_400_problem_json(client, seeded, tokens, query, param):
    response = client.get(f"/api/v1/organizations?{query}", headers=auth(tokens["viewer"]))
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["status"] == 400
    assert param in (body.get("errors") or {}) or param.replace("_", " ") in body.get("detail", "")


def test_get_one_and_404(client, seeded, tokens):
    headers = auth(tokens["viewer"])
    first = client.get("/api/v1/organizations?per_page=1", headers=headers).get_json()["items"][0]
    assert client.get(f"/api/v1/organizations/{first['id']}", headers=headers).get_json() == first
    missing = client.get("/api/v1/organizations/999999", headers=headers)
    assert missing.status_code == 404 and missing.mimetype == "application/problem+json"
    unknown = client.get("/api/v1/nothing-here", headers=headers)
    assert unknown.status_code == 404 and unknown.mimetype == "application/problem+json"


def test_issue_areas_letters_and_signatures(client, seeded, tokens):
    headers = auth(tokens["viewer"])
    areas = client.get("/api/v1/issue-areas", headers=headers).get_json()
    assert {"immigration", "privacy", "surveillance"} <= {a["slug"] for a in areas["items"]}
    letters = client.get("/api/v1/letters", headers=headers).get_json()
    assert letters["total"] == 1
    letter = letters["items"][0]
    assert letter["slug"] == SEED_LETTER_SLUG and letter["status"] == "delivered"
    assert {"slug", "title", "recipients", "cc", "summary", "body", "status", "deadline", "delivered_on",
            "public_signon", "review_required", "issue_areas"} <= set(letter)
    signatures = client.get(f"/api/v1/letters/{SEED_LETTER_SLUG}/signatures?per_page=200", headers=headers)
    body = signatures.get_json()
    assert body["total"] == 68
    assert [s["role"] for s in body["items"][:3]] == ["lead"] * 3
    assert body["items"][0]["organization"] == "Mijente"
    assert client.get("/api/v1/letters/nope/signatures", headers=headers).status_code == 404


def test_writes_need_an_organizer(client, seeded, tokens):
    response = client.post("/api/v1/organizations", json={"name": "X"}, headers=auth(tokens["viewer"]))
    assert response.status_code in (403, 405)
    assert response.mimetype == "application/problem+json"


def test_openapi_document_is_valid(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    spec = response.get_json()
    validate(spec)
    assert spec["openapi"].startswith("3.")
    assert "/api/v1/organizations" in spec["paths"]
    params = {p["name"] for p in spec["paths"]["/api/v1/organizations"]["get"]["parameters"]}
    assert {"issue_area", "match", "signed", "not_signed", "state", "q", "page", "per_page"} <= params
