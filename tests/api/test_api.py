"""The JSON API skeleton: bearer tokens, problem+json errors, OpenAPI, organizations agree with the export."""

import csv
import io

import pytest
from openapi_spec_validator import validate

from crm.auth.services import create_token
from tests.factories import LetterFactory, OrganizationFactory, SignatureFactory

# Part of the smoke pass of the API on PostgreSQL (tests/conftest.py).
pytestmark = pytest.mark.bothdb


@pytest.fixture
def tokens(users):
    """A bearer token per role."""
    return {role: create_token(user.email).secret for role, user in users.items()}


# The organizations of `letter`: name, state, issue areas; the first three are its leads, in this order.
SIGNERS = [
    ("Mijente", "AZ", ["immigration", "surveillance"]),
    ("Just Futures Law", "DC", ["immigration", "surveillance"]),
    ("The Center on Privacy & Technology at Georgetown Law", "DC", ["privacy", "surveillance"]),
    ("Access Now", "NY", ["immigration", "surveillance", "digital-rights"]),
    ("Upturn", "DC", ["civil-rights"]),
    ("Fight for the Future", "MA", ["surveillance", "digital-rights"]),
    ("Free Press", "DC", ["media"]),
    ("MediaJustice", "CA", ["immigration", "racial-justice"]),
    ("Open MIC (Open Media and Information Companies Initiative)", "NY", ["media"]),
    ("Restore The Fourth", "CA", ["immigration", "surveillance", "privacy"]),
]


@pytest.fixture
def letter(db):
    """A delivered letter signed by twelve organizations (SIGNERS, the ACLU and its Minnesota affiliate)."""
    letter = LetterFactory(slug="clearview", title="Stop Clearview", status="delivered", issue_areas=["privacy"])
    aclu = OrganizationFactory(name="American Civil Liberties Union (ACLU)", acronym="ACLU", state="NY",
                               website="https://www.aclu.org", issue_areas=["immigration", "surveillance"])
    affiliate = OrganizationFactory(name="ACLU of Minnesota", parent=aclu, state="MN", issue_areas=["immigration"])
    for position, (name, state, areas) in enumerate(SIGNERS):
        lead = position < 3
        SignatureFactory(letter=letter, organization=OrganizationFactory(name=name, state=state, issue_areas=areas),
                         role="lead" if lead else "signatory", position=position if lead else None)
    for org in (aclu, affiliate):
        SignatureFactory(letter=letter, organization=org)
    return letter


def auth(token: str) -> dict:
    """The Authorization header for a token."""
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic abc"},
                                     {"Authorization": "Bearer " + "x" * 5000}])
def test_no_valid_token_is_401_problem_json(client, headers):
    response = client.get("/api/v1/organizations", headers=headers)
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["status"] == 401 and body["title"] == "Unauthorized" and "Bearer" in body["detail"]
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_viewer_token_lists_same_set_as_export(client, letter, tokens, runner):
    response = client.get("/api/v1/organizations?issue_area=immigration&per_page=200", headers=auth(tokens["viewer"]))
    assert response.status_code == 200
    body = response.get_json()
    api_names = [item["name"] for item in body["items"]]
    assert len(api_names) == 7
    assert body["total"] == len(api_names) and body["page"] == 1 and body["per_page"] == 200
    exported = runner.invoke(args=["export", "orgs", "--issue-area", "immigration"]).output
    assert api_names == [row["name"] for row in csv.DictReader(io.StringIO(exported))]
    item = body["items"][0]
    assert set(item) == {"id", "name", "acronym", "org_type", "scope", "city", "state", "country", "website",
                         "parent_id", "issue_areas", "aliases", "archived", "version"}
    assert "immigration" in item["issue_areas"]


def test_filters_and_pagination(client, letter, tokens):
    headers = auth(tokens["viewer"])
    page1 = client.get("/api/v1/organizations?per_page=10", headers=headers).get_json()
    page2 = client.get("/api/v1/organizations?per_page=10&page=2", headers=headers).get_json()
    assert page1["total"] == 12 and len(page1["items"]) == 10 and len(page2["items"]) == 2
    assert not {i["id"] for i in page1["items"]} & {i["id"] for i in page2["items"]}
    both = client.get("/api/v1/organizations?issue_area=immigration&issue_area=surveillance&match=all",
                      headers=headers).get_json()
    assert both["total"] == 5
    assert all({"immigration", "surveillance"} <= set(i["issue_areas"]) for i in both["items"])
    ca_ny = client.get(f"/api/v1/organizations?signed={letter.slug}&state=CA&state=NY",
                       headers=headers).get_json()
    assert ca_ny["total"] == 5 and {i["state"] for i in ca_ny["items"]} == {"CA", "NY"}
    aclu = client.get("/api/v1/organizations?q=aclu", headers=headers).get_json()
    names = {i["name"] for i in aclu["items"]}
    assert "American Civil Liberties Union (ACLU)" in names and "ACLU of Minnesota" in names
    none = client.get(f"/api/v1/organizations?not_signed={letter.slug}", headers=headers).get_json()
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
def test_bad_parameters_are_400_problem_json(client, tokens, query, param):
    LetterFactory(slug="clearview", issue_areas=["privacy"])  # a letter and an issue area that do exist
    response = client.get(f"/api/v1/organizations?{query}", headers=auth(tokens["viewer"]))
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["status"] == 400
    assert param in (body.get("errors") or {}) or param.replace("_", " ") in body.get("detail", "")


def test_get_one_and_404(client, tokens):
    OrganizationFactory(name="Upturn", acronym="UP", state="DC", website="https://www.upturn.org",
                        issue_areas=["civil-rights", "privacy"])
    headers = auth(tokens["viewer"])
    first = client.get("/api/v1/organizations?per_page=1", headers=headers).get_json()["items"][0]
    assert client.get(f"/api/v1/organizations/{first['id']}", headers=headers).get_json() == first
    missing = client.get("/api/v1/organizations/999999", headers=headers)
    assert missing.status_code == 404 and missing.mimetype == "application/problem+json"
    unknown = client.get("/api/v1/nothing-here", headers=headers)
    assert unknown.status_code == 404 and unknown.mimetype == "application/problem+json"


def test_issue_areas_letters_and_signatures(client, letter, tokens):
    headers = auth(tokens["viewer"])
    areas = client.get("/api/v1/issue-areas", headers=headers).get_json()
    assert {"immigration", "privacy", "surveillance"} <= {a["slug"] for a in areas["items"]}
    letters = client.get("/api/v1/letters", headers=headers).get_json()
    assert letters["total"] == 1
    item = letters["items"][0]
    assert item["slug"] == letter.slug and item["status"] == "delivered" and item["issue_areas"] == ["privacy"]
    assert {"slug", "title", "recipients", "cc", "summary", "body", "status", "deadline", "delivered_on",
            "public_signon", "review_required", "issue_areas"} <= set(item)
    signatures = client.get(f"/api/v1/letters/{letter.slug}/signatures?per_page=200", headers=headers)
    body = signatures.get_json()
    assert body["total"] == 12
    assert [s["role"] for s in body["items"][:3]] == ["lead"] * 3
    assert [s["organization"] for s in body["items"][:3]] == [name for name, _, _ in SIGNERS[:3]]
    assert client.get("/api/v1/letters/nope/signatures", headers=headers).status_code == 404


def test_writes_need_an_organizer(client, tokens):
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
