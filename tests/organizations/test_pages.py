"""The first pages: the list of 68 with issue areas, an organization, the letter with leads first."""

import re

import pytest
from sqlalchemy import select

from crm.organizations.models import Organization
from crm.seed import SEED_LETTER_SLUG
from tests.factories import IssueAreaFactory, LetterFactory, OrganizationFactory

# Part of the smoke pass of the pages on PostgreSQL (tests/conftest.py).
pytestmark = pytest.mark.bothdb


def text(response) -> str:
    """A response body as text."""
    return response.get_data(as_text=True)


def test_dashboard(as_role, seeded):
    page = text(as_role("viewer").get("/"))
    assert "Dashboard" in page and ">68<" in page
    assert "Immigration" in page and "/organizations?issue_area=immigration" in page


def test_organization_list_shows_the_68_with_issue_areas(as_role, seeded):
    client = as_role("viewer")
    page = text(client.get("/organizations?per_page=100"))
    assert "<strong>68</strong> organizations" in page
    assert "Asian Americans Advancing Justice | AAJC" in page
    assert "S.T.O.P. – Surveillance Technology Oversight Project" in page
    assert "Digital rights" in page
    filtered = text(client.get("/organizations?issue_area=immigration&issue_area=surveillance&match=all"))
    count = int(re.search(r"<strong>(\d+)</strong> organization", filtered).group(1))
    assert 5 <= count < 68


def test_list_is_paginated_and_sorted(as_role, seeded):
    client = as_role("viewer")
    first = text(client.get("/organizations?per_page=10"))
    assert "Page 1 of 7" in first
    assert first.index("Access Now") < first.index("ACLU of Minnesota")
    reverse = text(client.get("/organizations?per_page=10&sort=-name"))
    assert "Wind of the Spirit Immigrant Resource Center" in reverse


def test_bad_filter_shows_a_message_not_a_500(as_role):
    response = as_role("viewer").get("/organizations?state=ZZ&page=abc&per_page=-3&sort=%3Cscript%3E")
    assert response.status_code == 400
    assert "is not a US state" in text(response)


def test_htmx_request_gets_only_the_results(as_role):
    aclu = OrganizationFactory(name="American Civil Liberties Union (ACLU)", acronym="ACLU")
    OrganizationFactory(name="ACLU of Minnesota", parent=aclu)
    response = as_role("viewer").get("/organizations?q=aclu", headers={"HX-Request": "true"})
    body = text(response)
    assert "<nav" not in body.split("<table")[0] and "ACLU of Minnesota" in body


def test_organization_page_shows_its_letters(as_role, seeded, db):
    org = db.session.scalar(select(Organization).where(Organization.name == "ACLU of Minnesota"))
    page = text(as_role("viewer").get(f"/organizations/{org.id}"))
    assert "Participation across letters" in page
    assert "Urge DHS to stop using Clearview AI" in page
    assert "American Civil Liberties Union (ACLU)" in page  # parent
    assert as_role("viewer").get("/organizations/999999").status_code == 404


def test_letter_page_lists_signatories_leads_first(as_role, seeded):
    page = text(as_role("viewer").get(f"/letters/{SEED_LETTER_SLUG}"))
    assert "Secretary Alejandro Mayorkas" in page and "Susan Rice" in page
    assert "68 confirmed" in page
    signatories = page.split('id="signatories-heading"')[1]
    positions = [signatories.index(name) for name in
                 ("Mijente", "Just Futures Law", "The Center on Privacy &amp; Technology at Georgetown Law",
                  "Access Now", "Wind of the Spirit")]
    assert positions == sorted(positions)
    assert 'class="footnote-ref"' in page or "fn1" in page
    block = as_role("viewer").get(f"/letters/{SEED_LETTER_SLUG}/signatories.txt")
    lines = text(block).splitlines()
    assert len(lines) == 68 and lines[0] == "Mijente"


def test_public_signon_page_only_for_collecting_letters(client):
    LetterFactory(slug=SEED_LETTER_SLUG, status="delivered")
    assert client.get(f"/sign/{SEED_LETTER_SLUG}").status_code == 404
    assert client.get("/sign/nope").status_code == 404


def test_create_organization_validates_and_audits(as_role, db):
    IssueAreaFactory(slug="privacy")
    IssueAreaFactory(slug="labor")
    client = as_role("organizer")
    bad = client.post("/organizations/new", data={"name": "", "state": "Narnia", "website": "not a url"})
    assert bad.status_code == 400
    page = text(bad)
    assert "This field is required" in page and "two-letter US state" in page
    response = client.post("/organizations/new", data={
        "name": "Fair Data Project", "acronym": "FDP", "state": "ny", "website": "fairdata.example.org",
        "issue_areas": ["privacy", "labor"], "org_type": "advocacy", "scope": "national"})
    assert response.status_code == 303
    org = db.session.scalar(select(Organization).where(Organization.name == "Fair Data Project"))
    assert org.state == "NY" and org.website == "https://fairdata.example.org"
    assert [a.slug for a in org.issue_areas] == ["labor", "privacy"]
    shown = text(client.get(response.headers["Location"]))
    assert "Created Fair Data Project" in shown
    assert "Fair Data Project" in text(as_role("admin").get("/audit"))


@pytest.mark.parametrize("payload", ["<script>alert(1)</script>", '"><img src=x onerror=alert(1)>'])
def test_hostile_names_are_displayed_inert(as_role, db, payload):
    client = as_role("organizer")
    assert client.post("/organizations/new", data={"name": payload}).status_code == 303
    page = text(client.get("/organizations"))
    assert payload not in page
    assert "&lt;" in page


def test_error_pages_use_the_layout(as_role):
    response = as_role("viewer").get("/no/such/page")
    assert response.status_code == 404
    assert "Nothing here" in text(response) and "navbar" in text(response)
    forbidden = as_role("viewer").get("/organizations/new")
    assert forbidden.status_code == 403
    assert "You do not have access to this" in text(forbidden) and "navbar" in text(forbidden)


@pytest.mark.parametrize("app_config", [{"WTF_CSRF_ENABLED": True}])
def test_bad_request_page_uses_the_layout(client):
    response = client.post("/login", data={"email": "a@example.org", "password": "x"})  # no CSRF token
    assert response.status_code == 400
    assert "That request could not be understood" in text(response) and "navbar" in text(response)
