"""Whole numbers typed into forms and query strings: whitespace, unicode digits ('²'), signs and 5,000-digit
strings are refused or ignored, never a 500 (str.isdigit() accepts '²', which int() rejects, and int() refuses
more than 4,300 digits)."""

import pytest

from crm.letters.models import Signature
from tests.factories import OrganizationFactory, SignatureFactory

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


def test_whitespace_contact_on_the_signature_form(as_role, db):
    client = as_role("organizer")
    sig = SignatureFactory()
    path = f"/letters/{sig.letter.slug}/signatures/{sig.id}"
    before = sig.contact_id
    for value in (" ", "\t", "²", "9" * 5000, "-1"):
        response = client.post(path, data={"role": sig.role, "status": sig.status, "listed_name": "X",
                                           "source": sig.source, "contact_id": value})
        assert response.status_code == 400, (value[:10], response.status_code)
        assert "Not a valid choice" in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Signature, sig.id).contact_id == before


@pytest.mark.parametrize("value", [" ", "²", "9" * 5000])
def test_whitespace_contact_on_the_interaction_form(as_role, value):
    client = as_role("organizer")
    org = OrganizationFactory()
    response = client.post(f"/organizations/{org.id}/interactions",
                           data={"kind": "note", "contact_id": value, "summary": "Called", "happened_on": "2026-01-02"})
    assert response.status_code < 500
