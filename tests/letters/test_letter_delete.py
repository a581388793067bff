"""Deleting a letter: only a draft nothing depends on, through the service, the API and the page."""

import pytest
from sqlalchemy import func, select

from crm.audit.models import AuditEvent
from crm.auth.services import create_token
from crm.letters.models import Letter, SignOnRequest, letter_issue_areas
from crm.letters.queries import get_letter
from crm.letters.signatures import add_signature
from crm.letters.writing import LetterInUse, create_letter, delete_letter
from crm.mailmerge.models import MailMerge
from crm.organizations.models import Organization
from crm.seed import SEED_LETTER_SLUG
from tests.factories import IssueAreaFactory, LetterFactory, SignatureFactory

# Foreign keys decide what may be deleted: on PostgreSQL too (tests/conftest.py).
pytestmark = pytest.mark.bothdb


@pytest.fixture
def draft(db):
    """A draft letter with an issue area and nothing depending on it, beside a delivered letter with three
    signatures (the seed's slug)."""
    SignatureFactory.create_batch(3, letter=LetterFactory(slug=SEED_LETTER_SLUG, status="delivered"))
    IssueAreaFactory(slug="privacy")
    return create_letter({"title": "A draft", "issue_areas": ["privacy"]})


def test_service_deletes_a_free_draft_with_its_issue_area_links(db, draft):
    letter_id = draft.id
    delete_letter(draft)
    assert db.session.get(Letter, letter_id) is None
    assert db.session.scalar(select(func.count()).select_from(letter_issue_areas)
                             .where(letter_issue_areas.c.letter_id == letter_id)) == 0
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "delete",
                                                       AuditEvent.entity_type == "letter"))
    assert event.entity_id == letter_id and event.changes["slug"] == ["a-draft", None]


def test_service_refuses_what_something_depends_on(db, draft):
    seed = get_letter(SEED_LETTER_SLUG)
    with pytest.raises(LetterInUse, match="stays on record.*3 signatures: remove them first"):
        delete_letter(seed)
    org = db.session.scalar(select(Organization).limit(1))
    add_signature(draft, org, status="pending")
    with pytest.raises(LetterInUse, match="1 signature: remove it first"):
        delete_letter(draft)
    other = create_letter({"title": "Another"})
    db.session.add(SignOnRequest(letter_id=other.id, organization_name="X", email="x@example.org"))
    db.session.commit()
    with pytest.raises(LetterInUse, match="1 public sign-on request"):
        delete_letter(other)
    third = create_letter({"title": "Third"})
    db.session.add(MailMerge(name="Invite", letter_id=third.id))
    db.session.commit()
    with pytest.raises(LetterInUse, match=r"Mail merges refer to it \(Invite\)"):
        delete_letter(third)
    assert db.session.scalar(select(func.count(Letter.id))) == 4
    assert db.session.scalar(select(func.count()).where(AuditEvent.action == "delete")) == 0


@pytest.fixture
def headers(users):
    """Bearer headers per role."""
    return {role: {"Authorization": f"Bearer {create_token(user.email).secret}"} for role, user in users.items()}


def test_api_delete(client, db, draft, headers):
    url = f"/api/v1/letters/{draft.slug}"
    assert client.delete(url, headers=headers["viewer"]).status_code == 403
    seed = client.delete(f"/api/v1/letters/{SEED_LETTER_SLUG}", headers=headers["organizer"])
    assert seed.status_code == 409 and seed.mimetype == "application/problem+json"
    assert "remove them first" in seed.json["detail"]
    assert client.delete("/api/v1/letters/nope", headers=headers["organizer"]).status_code == 404
    assert client.delete(url, headers=headers["organizer"]).status_code == 204
    assert client.get(url, headers=headers["viewer"]).status_code == 404
    spec = client.get("/api/v1/openapi.json").json
    assert {"204", "409"} <= set(spec["paths"]["/api/v1/letters/{slug}"]["delete"]["responses"])


def test_page_delete(app, as_role, db, draft):
    client = as_role("viewer")
    assert 'href="/letters/a-draft/delete"' not in client.get("/letters/a-draft").get_data(as_text=True)
    assert client.get("/letters/a-draft/delete").status_code == 403
    assert client.post("/letters/a-draft/delete").status_code == 403
    client = as_role("organizer")
    assert 'href="/letters/a-draft/delete"' in client.get("/letters/a-draft").get_data(as_text=True)
    # Only a draft can be deleted, so only a draft's page offers it (the delete page still explains why not).
    seed_page = client.get(f"/letters/{SEED_LETTER_SLUG}").get_data(as_text=True)
    assert "Delete letter" not in seed_page and f'href="/letters/{SEED_LETTER_SLUG}/delete"' not in seed_page
    page = client.get("/letters/a-draft/delete")
    assert page.status_code == 200 and "Delete the letter" in page.get_data(as_text=True)
    refused = client.get(f"/letters/{SEED_LETTER_SLUG}/delete")
    assert refused.status_code == 200 and "cannot be deleted" in refused.get_data(as_text=True)
    assert "Delete the letter" not in refused.get_data(as_text=True)
    assert client.get("/letters/nope/delete").status_code == 404
    refused = client.post(f"/letters/{SEED_LETTER_SLUG}/delete")
    assert refused.status_code == 409 and "remove them first" in refused.get_data(as_text=True)
    app.config["WTF_CSRF_ENABLED"] = True
    assert client.post("/letters/a-draft/delete").status_code == 400  # no CSRF token: nothing deleted
    assert get_letter("a-draft") is not None
    app.config["WTF_CSRF_ENABLED"] = False
    done = client.post("/letters/a-draft/delete")
    assert done.status_code == 303 and done.headers["Location"].endswith("/letters")
    assert get_letter("a-draft") is None
    assert "deleted" in client.get("/letters").get_data(as_text=True)
