"""Hostile input in every field: stored faithfully (or refused with a clear message), displayed inert, never a 500."""

import csv
import io

import pytest
import sqlalchemy as sa

from crm.auth.services import create_token
from crm.contacts.models import Contact
from crm.organizations.models import Interaction, Organization
from crm.segments.models import Segment
from tests.factories import OrganizationFactory

# Lengths, NUL bytes and odd text meet each database's constraints: on PostgreSQL too (tests/conftest.py).
pytestmark = pytest.mark.bothdb

SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'
FORMULA = "=cmd|' /C calc'!A0"
LONG = "x" * 10_000
NUL = "a\x00b"
RTL = "safe\u202egnp.exe"
PAYLOADS = {"script": SCRIPT, "img": IMG, "formula": FORMULA, "long": LONG, "nul": NUL, "rtl": RTL}
LIVE_MARKUP = ("<script>alert", "<img src=x")

ORG_TEXT_FIELDS = {"name": 300, "acronym": 40, "city": 120, "aliases": 300, "notes": 20000}
ORG_CHECKED_FIELDS = ("state", "country", "website", "parent")
CONTACT_TEXT_FIELDS = {"first_name": 120, "last_name": 120, "title": 200, "notes": 20000}
CONTACT_CHECKED_FIELDS = ("email", "phone", "organization")


def text(response) -> str:
    """A response body as text."""
    return response.get_data(as_text=True)


def assert_inert(html: str) -> None:
    """No payload markup is live in the page."""
    for live in LIVE_MARKUP:
        assert live not in html


def expected_outcome(payload: str, limit: int) -> str:
    """'stored' when a field of this length takes the payload, else 'refused'."""
    return "refused" if "\x00" in payload or len(payload) > limit else "stored"


@pytest.mark.parametrize("kind", PAYLOADS)
def test_organization_form_fields(as_role, db, kind):
    payload = PAYLOADS[kind]
    client = as_role("organizer")
    for field, limit in ORG_TEXT_FIELDS.items():
        name = payload if field == "name" else f"Org {field} {kind}"
        response = client.post("/organizations/new", data={"name": name, field: payload})
        assert response.status_code in (303, 400), (field, response.status_code)
        if expected_outcome(payload, limit) == "refused":
            assert response.status_code == 400, field
            page = text(response)
            assert "NUL characters cannot be stored" in page or f"limited to {limit} characters" in page, (
                field
            )
            assert_inert(page)
            continue
        assert response.status_code == 303, (field, text(response)[:300])
        org = db.session.scalar(sa.select(Organization).where(Organization.name == name.strip()))
        stored = [a.name for a in org.aliases] if field == "aliases" else [getattr(org, field)]
        assert stored == [payload], field
        for url in (
            response.headers["Location"],
            response.headers["Location"] + "/edit",
            "/organizations",
            "/organizations?q=" + kind,
            "/",
        ):
            page = client.get(url)
            assert page.status_code == 200, url
            assert_inert(text(page))
        if kind == "rtl" and field == "name":
            assert RTL in text(client.get(response.headers["Location"]))
    for field in ORG_CHECKED_FIELDS:
        response = client.post("/organizations/new", data={"name": f"Checked {field} {kind}", field: payload})
        assert response.status_code == 400, field
        assert "is-invalid" in text(response)
        assert_inert(text(response))


@pytest.mark.parametrize("kind", PAYLOADS)
def test_contact_interaction_segment_and_search_fields(as_role, db, kind):
    org_id = OrganizationFactory(issue_areas=["privacy"]).id
    payload = PAYLOADS[kind]
    client = as_role("organizer")
    for field, limit in CONTACT_TEXT_FIELDS.items():
        data = {"first_name": "Val", "status": "active", field: payload}
        response = client.post("/contacts/new", data=data)
        assert response.status_code in (303, 400)
        if expected_outcome(payload, limit) == "refused":
            assert response.status_code == 400
            continue
        contact = db.session.get(Contact, int(response.headers["Location"].rsplit("/", 1)[1]))
        assert getattr(contact, field) == payload
        for url in (response.headers["Location"], "/contacts"):
            page = client.get(url)
            assert page.status_code == 200
            assert_inert(text(page))
        assert client.get("/contacts/export.csv").status_code == 200
    for field in CONTACT_CHECKED_FIELDS:
        response = client.post(
            "/contacts/new", data={"first_name": "Val", "status": "active", field: payload}
        )
        assert response.status_code == 400, field
    response = client.post(
        f"/organizations/{org_id}/interactions",
        data={
            "kind": "note",
            "occurred_on": "2024-01-02",
            "summary": payload[:300] if kind == "long" else payload,
            "body": payload,
        },
    )
    if kind == "nul":
        assert response.status_code == 400 and "NUL characters" in text(response)
    else:
        assert response.status_code == 303
        item = db.session.scalar(sa.select(Interaction).order_by(Interaction.id.desc()))
        assert item.body == payload
        assert_inert(text(client.get(f"/organizations/{org_id}")))
    response = client.post("/segments", data={"name": payload, "query": "issue_area=privacy"})
    assert response.status_code == 303
    if expected_outcome(payload, 200) == "stored":
        assert db.session.scalar(sa.select(Segment.name).where(Segment.name == payload)) == payload
    for url in ("/segments", response.headers["Location"]):
        page = client.get(url)
        assert page.status_code in (200, 404) and page.status_code != 500
        assert_inert(text(page))
    for url in (
        f"/organizations?q={payload[:200]}",
        f"/contacts?contact_q={payload[:200]}",
        f"/organizations?state={payload[:50]}",
        f"/organizations?issue_area={payload[:50]}",
    ):
        page = client.get(url.replace("\x00", "%00"))
        assert page.status_code in (200, 400), url
        assert_inert(text(page))
    admin = as_role("admin")
    response = admin.post("/organizations/issue-areas", data={"new-name": payload})
    assert response.status_code in (303, 400)
    assert_inert(text(admin.get("/organizations/issue-areas")))
    assert_inert(text(admin.get("/audit")))


def test_exports_neutralise_formulas(as_role, db, runner):
    client = as_role("organizer")
    assert client.post("/organizations/new", data={"name": FORMULA}).status_code == 303
    assert (
        client.post(
            "/contacts/new", data={"first_name": FORMULA, "last_name": "+SUM(A1)", "status": "active"}
        ).status_code
        == 303
    )
    rows = list(csv.reader(io.StringIO(runner.invoke(args=["export", "orgs"]).output)))
    assert rows[1][0] == "'" + FORMULA
    rows = list(csv.DictReader(io.StringIO(text(client.get("/contacts/export.csv")))))
    assert rows[0]["first_name"] == "'" + FORMULA and rows[0]["last_name"] == "'+SUM(A1)"


@pytest.mark.parametrize("kind", PAYLOADS)
def test_api_fields(client, users, db, kind):
    payload = PAYLOADS[kind]
    headers = {"Authorization": f"Bearer {create_token(users['organizer'].email).secret}"}
    for field, limit in {"name": 300, "acronym": 40, "city": 120, "notes": 20000}.items():
        body = {"name": f"API {field} {kind}", field: payload}
        response = client.post("/api/v1/organizations", json=body, headers=headers)
        assert response.status_code in (201, 400), (field, response.status_code)
        if expected_outcome(payload, limit) == "refused":
            assert response.status_code == 400 and field in response.get_json()["errors"]
        else:
            assert response.status_code == 201
            assert response.get_json().get(field, payload) == payload
    for field in ("state", "country", "website", "issue_areas", "aliases"):
        value = [payload] if field in ("issue_areas", "aliases") else payload
        response = client.post(
            "/api/v1/organizations", json={"name": f"API checked {field}", field: value}, headers=headers
        )
        assert response.status_code in (201, 400), field
        if field != "aliases":
            assert response.status_code == 400
    for field in ("first_name", "last_name", "title", "email", "phone", "notes"):
        response = client.post("/api/v1/contacts", json={"first_name": "Z", field: payload}, headers=headers)
        assert response.status_code in (201, 400), field
    response = client.post(
        "/api/v1/segments", json={"name": payload, "filter": {"q": payload}}, headers=headers
    )
    assert response.status_code in (201, 400)
    response = client.get("/api/v1/organizations", query_string={"q": payload}, headers=headers)
    assert response.status_code in (200, 400)
