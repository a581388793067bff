"""The letters API: create and patch letters, add and patch signatures, import, review, merge."""

import pytest
from sqlalchemy import select

from crm.auth.services import create_token
from crm.letters.models import Signature
from crm.organizations.models import Organization
from crm.seed import SEED_LETTER_SLUG
from tests.factories import IssueAreaFactory, LetterFactory, OrganizationFactory, SignatureFactory


@pytest.fixture
def headers(users):
    """Bearer headers per role."""
    return {
        role: {"Authorization": f"Bearer {create_token(user.email).secret}"} for role, user in users.items()
    }


def test_letter_crud_and_signatures(client, headers, db):
    LetterFactory(slug=SEED_LETTER_SLUG, status="delivered")
    OrganizationFactory(name="Electronic Frontier Foundation (EFF)", acronym="EFF")
    IssueAreaFactory(slug="privacy")
    org = headers["organizer"]
    response = client.post(
        "/api/v1/letters",
        json={"title": "Stop the data broker loophole", "issue_areas": ["privacy"], "public_signon": True},
        headers=org,
    )
    assert response.status_code == 201, response.json
    body = response.json
    assert body["slug"] == "stop-the-data-broker-loophole" and body["status"] == "draft"
    assert set(body) >= {
        "slug",
        "title",
        "recipients",
        "cc",
        "summary",
        "body",
        "status",
        "deadline",
        "delivered_on",
        "public_signon",
        "review_required",
        "issue_areas",
    }
    assert client.post("/api/v1/letters", json={"title": "x"}, headers=headers["viewer"]).status_code == 403
    bad = client.post("/api/v1/letters", json={"title": "Y", "slug": SEED_LETTER_SLUG}, headers=org)
    assert (
        bad.status_code == 400 and bad.mimetype == "application/problem+json" and "slug" in bad.json["errors"]
    )
    assert client.post("/api/v1/letters", json={"title": "Y", "bogus": 1}, headers=org).status_code == 400
    patched = client.patch(
        f"/api/v1/letters/{body['slug']}", json={"status": "collecting", "body": "Text"}, headers=org
    )
    assert patched.status_code == 200 and patched.json["status"] == "collecting"
    assert (
        client.patch(f"/api/v1/letters/{body['slug']}", json={"status": "draft-ish"}, headers=org).status_code
        == 400
    )
    eff = db.session.scalar(select(Organization).where(Organization.acronym == "EFF"))
    added = client.post(
        f"/api/v1/letters/{body['slug']}/signatures",
        json={"organization_id": eff.id, "status": "pending"},
        headers=org,
    )
    assert added.status_code == 201 and added.json["status"] == "pending" and added.json["source"] == "api"
    again = client.post(
        f"/api/v1/letters/{body['slug']}/signatures", json={"organization_id": eff.id}, headers=org
    )
    assert again.status_code == 200
    assert (
        client.post(
            f"/api/v1/letters/{body['slug']}/signatures", json={"organization_id": 999999}, headers=org
        ).status_code
        == 400
    )
    sig_id = added.json["id"]
    changed = client.patch(
        f"/api/v1/letters/{body['slug']}/signatures/{sig_id}",
        json={"status": "confirmed", "listed_as": "EFF"},
        headers=org,
    )
    assert (
        changed.status_code == 200
        and changed.json["status"] == "confirmed"
        and changed.json["listed_as"] == "EFF"
    )
    listed = client.get(f"/api/v1/letters/{body['slug']}/signatures", headers=headers["viewer"]).json
    assert listed["total"] == 1 and listed["items"][0]["listed_as"] == "EFF"
    # Proof of authority is readable as well as writable, with the earlier-text flag of the letter page.
    authorized = client.patch(
        f"/api/v1/letters/{body['slug']}/signatures/{sig_id}",
        json={"authorized_name": "Cindy Cohn", "authorized_email": "cindy@eff.example"},
        headers=org,
    ).json
    assert (authorized["authorized_name"], authorized["authorized_email"]) == ("Cindy Cohn", "cindy@eff.example")
    assert len(authorized["text_fingerprint"]) == 64 and authorized["earlier_text"] is False
    client.patch(f"/api/v1/letters/{body['slug']}", json={"body": "A materially different text"}, headers=org)
    listed = client.get(f"/api/v1/letters/{body['slug']}/signatures", headers=headers["viewer"]).json
    assert listed["items"][0]["earlier_text"] is True


def test_import_through_the_api(client, seeded, headers):
    text = "Signatories:\nACLU\nEFF\nACLU of Southern California\nSincerely,\n"
    response = client.post(
        f"/api/v1/letters/{SEED_LETTER_SLUG}/import", json={"text": text}, headers=headers["organizer"]
    )
    assert response.status_code == 200
    actions = {item["text"]: item["action"] for item in response.json["items"]}
    assert actions["ACLU"] == "matched" and actions["EFF"] == "matched"
    assert actions["ACLU of Southern California"] in ("new", "review")
    assert response.json["applied"] is False


def test_merge_through_the_api(client, headers, db):
    letter = LetterFactory(slug=SEED_LETTER_SLUG, status="delivered")
    for name in ("Upturn", "X-Lab"):  # both signed it
        SignatureFactory(letter=letter, organization=OrganizationFactory(name=name))
    keep = db.session.scalar(select(Organization).where(Organization.name == "Upturn"))
    remove = db.session.scalar(select(Organization).where(Organization.name == "X-Lab"))
    keep_id, remove_id = keep.id, remove.id
    url = f"/api/v1/organizations/{keep_id}/merge"
    preview = client.post(url, json={"remove_id": remove_id, "dry_run": True}, headers=headers["organizer"])
    assert preview.status_code == 200 and preview.json["applied"] is False
    assert preview.json["signatures_collapsed"] == [SEED_LETTER_SLUG]
    # Nothing was applied, so the summary is a plan, not a report.
    assert preview.json["summary"].startswith(f"Would merge X-Lab (#{remove_id}) into Upturn (#{keep_id}): 0 contacts")
    assert "would move" in preview.json["summary"] and "Merged" not in preview.json["summary"]
    assert client.post(url, json={"remove_id": keep_id}, headers=headers["organizer"]).status_code == 400
    assert client.post(url, json={"remove_id": 99999}, headers=headers["organizer"]).status_code == 404
    assert client.post(url, json={"remove_id": remove_id}, headers=headers["viewer"]).status_code == 403
    done = client.post(url, json={"remove_id": remove_id}, headers=headers["organizer"])
    assert done.status_code == 200 and done.json["applied"] is True
    assert done.json["summary"].startswith("Merged X-Lab") and "one signature was kept" in done.json["summary"]
    db.session.expire_all()
    assert db.session.get(Organization, remove_id) is None
    assert len(list(db.session.scalars(select(Signature).where(Signature.organization_id == keep_id)))) == 1


def test_review_queue_api(client, headers, db):
    from crm.common.tokens import make_token
    from crm.letters.models import Letter
    from crm.signon.services import confirm_public_signon, submit_public_signon

    OrganizationFactory(name="Upturn")
    letter = Letter(slug="api-review", title="API review", status="collecting", public_signon=True)
    db.session.add(letter)
    db.session.commit()
    row = submit_public_signon(
        letter,
        {
            "organization_name": "Upturn",
            "email": "u@upturn.example",
            "contact_name": "U",
            "consent_public": True,
        },
    )
    confirm_public_signon(letter.slug, make_token("signon-confirm", {"r": row.id, "e": row.email}))
    assert client.get("/api/v1/signon-requests", headers=headers["viewer"]).status_code == 403, "organizers only"
    queue = client.get("/api/v1/signon-requests", headers=headers["organizer"]).json
    assert [item["organization_name"] for item in queue] == ["Upturn"]
    decided = client.post(
        f"/api/v1/signon-requests/{row.id}/decision",
        json={"decision": "accept"},
        headers=headers["organizer"],
    )
    assert decided.status_code == 200 and decided.json["status"] == "accepted"
    twice = client.post(
        f"/api/v1/signon-requests/{row.id}/decision",
        json={"decision": "accept"},
        headers=headers["organizer"],
    )
    assert twice.status_code == 409
