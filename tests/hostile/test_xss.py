"""Stored XSS: every payload in every text field of the main forms is stored faithfully and displayed inert."""

import re

import pytest
from sqlalchemy import select

from crm.letters.models import Letter
from crm.organizations.models import Organization
from tests.hostile.payloads import XSS

pytestmark = pytest.mark.usefixtures("seeded")

# A payload is live only as real markup: an element carrying an on* handler, a script element, or a
# javascript: URL in an attribute of a real tag (escaped text such as &lt;a href=... is inert).
LIVE_TAG = re.compile(r"<(?:script|img|svg|iframe|body|details|input|video|source|object|math|form|style|a|div)\b"
                      r"[^<>]*(?:\bon\w+\s*=|(?:href|src|data|action)\s*=\s*[\"']?\s*javascript:)|<script>alert",
                      re.I)


def assert_inert(html: str, payload: str):
    """The payload does not appear as live markup."""
    assert payload not in html or "<" not in payload, payload
    assert not LIVE_TAG.search(html), (payload, LIVE_TAG.search(html).group(0))


def test_organization_fields(as_role, db):
    client = as_role("organizer")
    for n, payload in enumerate(XSS):
        response = client.post("/organizations/new", data={
            "name": f"{payload} {n}", "acronym": payload[:40].replace("\n", " "), "city": payload[:120],
            "notes": payload})
        assert response.status_code in (303, 400), (payload, response.status_code)
        if response.status_code == 303:
            page = client.get(response.headers["Location"]).get_data(as_text=True)
            assert_inert(page, payload)
    stored = db.session.scalars(select(Organization.name).where(Organization.notes != "")).all()
    assert any("<script>alert(1)</script>" in name for name in stored), "stored faithfully, not stripped"
    listing = client.get("/organizations?per_page=200&sort=-created").get_data(as_text=True)
    assert_inert(listing, "")


def test_letter_fields(as_role, db):
    client = as_role("organizer")
    for n, payload in enumerate(XSS):
        response = client.post("/letters/new", data={
            "title": f"{payload[:250]} {n}", "slug": f"hostile-{n}", "recipients": payload, "cc": payload,
            "summary": payload, "body": f"{payload}\n\n**Dear friends**"})
        assert response.status_code in (302, 303, 400), (payload, response.status_code)
        letter = db.session.scalar(select(Letter).where(Letter.slug == f"hostile-{n}"))
        if letter is None:
            continue
        page = client.get(f"/letters/{letter.slug}").get_data(as_text=True)
        assert_inert(page, payload)
        printable = client.get(f"/letters/{letter.slug}/print").get_data(as_text=True)
        assert_inert(printable, payload)
    assert_inert(client.get("/letters").get_data(as_text=True), "")


def test_merge_fields(as_role):
    client = as_role("organizer")
    page = client.get("/merges/new")
    if page.status_code == 404:
        pytest.skip("no merge composer")
    for n, payload in enumerate(XSS[:12]):
        response = client.post("/merges/new", data={
            "name": f"{payload} {n}", "subject": payload.replace("{", "("), "body": payload.replace("{", "("),
            "contacts": "primary"})
        assert response.status_code in (302, 303, 400), (payload, response.status_code)
    assert_inert(client.get("/merges").get_data(as_text=True), "")
