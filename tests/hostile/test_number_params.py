"""Whole numbers typed into forms and query strings: whitespace, unicode digits ('²'), signs and 5,000-digit
strings are refused or ignored, never a 500 (str.isdigit() accepts '²', which int() rejects, and int() refuses
more than 4,300 digits)."""

import pytest
from sqlalchemy import select

from crm.letters.models import Letter, Signature

HOSTILE = [" ", " 1", "1 ", "²", "١٢", "１", "-1", "+1", "1e3", "9" * 5000, "0x1", "\u00a0"]

# Pages and the query parameters each reads as a number.
PAGES = {
    "/organizations": ["page", "per_page", "min_letters", "max_letters", "parent"],
    "/organizations/new": ["parent"],
    "/contacts": ["page", "per_page", "organization_id"],
    "/contacts/new": ["organization_id"],
    "/letters/review": ["searched"],
    "/merges": ["page"],
    "/merges/new": ["after_merge"],
    "/imports": ["page"],
    "/audit": ["page"],
    "/letters/dhs-clearview-ai-2021": ["page"],
    "/letters/participation": ["page", "searched"],
}


def test_number_query_parameters(as_role, seeded):
    client = as_role("admin")
    failures = []
    for path, names in PAGES.items():
        for name in names:
            for value in HOSTILE:
                code = client.get(path, query_string={name: value}).status_code
                if code >= 500:
                    failures.append((path, name, value[:10], code))
    assert failures == []


def test_whitespace_contact_on_the_signature_form(as_role, seeded, db):
    client = as_role("organizer")
    letter = db.session.scalar(select(Letter).where(Letter.slug == "dhs-clearview-ai-2021"))
    sig = db.session.scalar(select(Signature).where(Signature.letter_id == letter.id).limit(1))
    path = f"/letters/{letter.slug}/signatures/{sig.id}"
    before = sig.contact_id
    for value in (" ", "\t", "²", "9" * 5000, "-1"):
        response = client.post(path, data={"role": sig.role, "status": sig.status, "listed_name": "X",
                                           "source": sig.source, "contact_id": value})
        assert response.status_code == 400, (value[:10], response.status_code)
        assert "Not a valid choice" in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Signature, sig.id).contact_id == before


@pytest.mark.parametrize("value", [" ", "²", "9" * 5000])
def test_whitespace_contact_on_the_interaction_form(as_role, seeded, value):
    client = as_role("organizer")
    response = client.post("/organizations/1/interactions", data={"kind": "note", "contact_id": value,
                                                                 "summary": "Called", "happened_on": "2026-01-02"})
    assert response.status_code < 500
