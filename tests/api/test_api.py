"""The JSON API skeleton: bearer tokens, problem+json errors, OpenAPI, organizations agree with the export."""

import csv
import io

import pytest
from openapi_spec_validator import validate
from sqlalchemy import func, select

from crm.auth.services import create_token
from crm.letters.models import Letter
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


def test_a_letters_date_is_written_under_the_name_it_is_read(client, tokens, db):
    headers = auth(tokens["organizer"])
    created = client.post("/api/v1/letters", json={"title": "By API", "date": "2021-04-19"}, headers=headers)
    assert created.status_code == 201, created.get_json()
    assert created.get_json()["date"] == "2021-04-19"
    url = f"/api/v1/letters/{created.get_json()['slug']}"
    read = client.get(url, headers=headers).get_json()
    assert read["date"] == "2021-04-19"
    patched = client.patch(url, json={"date": "2021-04-20", "version": read["version"]}, headers=headers)
    assert patched.status_code == 200 and patched.get_json()["date"] == "2021-04-20"
    cleared = client.patch(url, json={"date": None}, headers=headers)
    assert cleared.status_code == 200 and cleared.get_json()["date"] is None

    for value in ("2021-02-30", "1850-04-19", "2201-01-01", 20210419):
        response = client.patch(url, json={"date": value, "summary": "Not saved"}, headers=headers)
        assert response.status_code == 400 and response.mimetype == "application/problem+json", value
        assert list(response.get_json()["errors"]) == ["date"], response.get_json()
    bad_create = client.post("/api/v1/letters", json={"title": "Never", "date": "1850-04-19"}, headers=headers)
    assert bad_create.status_code == 400 and "between 1900 and 2100" in bad_create.get_json()["errors"]["date"][0]
    letter = db.session.scalar(select(Letter).where(Letter.title == "By API"))
    assert letter.letter_date is None and letter.summary == ""
    assert db.session.scalar(select(func.count(Letter.id)).where(Letter.title == "Never")) == 0
    # The field is described in the OpenAPI document, for reading and for writing.
    spec = client.get("/api/v1/openapi.json").get_json()
    schemas = spec["components"]["schemas"]
    for name in ("LetterIn", "LetterPatch", "Letter"):
        assert schemas[name]["properties"]["date"]["format"] == "date", name
    assert "1900–2100" in schemas["LetterIn"]["properties"]["date"]["description"]


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
