"""Segments: saved from the list, dynamic, renamed, deleted; the API; segment_filter for mail merges."""

import re

import pytest

from crm.auth.services import create_token
from crm.seed import SEED_LETTER_SLUG
from tests.factories import IssueAreaFactory, LetterFactory, OrganizationFactory, SignatureFactory


def text(response) -> str:
    """A response body as text."""
    return response.get_data(as_text=True)


def test_save_from_the_list_and_the_segment_stays_dynamic(as_role, db):
    from crm.organizations.creation import create_organization
    from crm.segments.services import segment_counts, segment_filter

    # Five signers of the letter work on both immigration and surveillance; two others on one of them.
    letter = LetterFactory(slug=SEED_LETTER_SLUG, status="delivered")
    for areas in [["immigration", "surveillance"]] * 5 + [["immigration"], ["surveillance"]]:
        SignatureFactory(letter=letter, organization=OrganizationFactory(issue_areas=areas))
    client = as_role("organizer")
    query = f"issue_area=immigration&issue_area=surveillance&match=all&signed={SEED_LETTER_SLUG}&sort=-name&page=2"
    listing = text(client.get("/organizations?" + query))
    assert 'id="save-segment"' in listing
    response = client.post(
        "/segments", data={"name": "Immigration groups that signed Clearview", "query": query}
    )
    assert response.status_code == 303
    page = text(client.get(response.headers["Location"]))
    before = int(re.search(r'id="segment-orgs">(\d+)<', page).group(1))
    assert before == 5
    segment_id = int(response.headers["Location"].rsplit("/", 1)[1])
    f = segment_filter(segment_id)
    assert (
        f.issue_area == ["immigration", "surveillance"]
        and f.match == "all"
        and f.signed == [SEED_LETTER_SLUG]
    )
    # A new organization that fits appears without touching the segment (it only needs to have signed).
    org = create_organization({"name": "Border Tech Watch", "issue_areas": ["immigration", "surveillance"]})
    from crm.letters.models import Letter, Signature

    letter = db.session.scalar(db.select(Letter).where(Letter.slug == SEED_LETTER_SLUG))
    db.session.add(
        Signature(letter_id=letter.id, organization_id=org.id, listed_name=org.name, status="confirmed")
    )
    db.session.commit()
    page = text(client.get(f"/segments/{segment_id}?per_page=200"))
    assert int(re.search(r'id="segment-orgs">(\d+)<', page).group(1)) == before + 1
    assert "Border Tech Watch" in page
    assert segment_counts(segment_id).organizations == before + 1
    assert "Immigration groups that signed Clearview" in text(client.get("/segments"))


def test_rename_delete_and_bad_names(as_role):
    IssueAreaFactory(slug="privacy")
    IssueAreaFactory(slug="labor")
    client = as_role("organizer")
    first = client.post("/segments", data={"name": "Privacy", "query": "issue_area=privacy"})
    client.post("/segments", data={"name": "Labor", "query": "issue_area=labor"})
    segment_url = first.headers["Location"]
    segment_id = segment_url.rsplit("/", 1)[1]
    # A refused name comes back on the segment's page, in the box, marked and explained at the top of the form.
    dup = client.post(f"/segments/{segment_id}/rename", data={"name": "Labor"})
    page = text(dup)
    assert dup.status_code == 400 and "already has this name" in page and 'value="Labor"' in page
    assert 'aria-invalid="true"' in page and "The segment was not renamed" in page and 'href="#name"' in page
    assert "<h1 class=\"h3\">Privacy</h1>" in page  # not renamed
    assert client.post(f"/segments/{segment_id}/rename", data={"name": "Privacy groups"}).status_code == 303
    assert "Privacy groups" in text(client.get("/segments"))
    unknown = client.post("/segments", data={"name": "Bad", "query": "issue_area=nope"})
    assert "Unknown issue area" in text(client.get(unknown.headers["Location"]))
    assert as_role("viewer").post(f"/segments/{segment_id}/delete").status_code == 403
    client = as_role("organizer")
    assert client.post(f"/segments/{segment_id}/delete").status_code == 303
    assert client.get(segment_url).status_code == 404
    assert "Deleted segment Privacy groups" in text(as_role("admin").get("/audit"))


@pytest.fixture
def headers(users):
    """Organizer and viewer bearer headers."""
    return {
        role: {"Authorization": f"Bearer {create_token(users[role].email).secret}"}
        for role in ("organizer", "viewer")
    }


def test_segments_api(client, headers):
    IssueAreaFactory(slug="privacy")
    created = client.post(
        "/api/v1/segments",
        json={"name": "Leads", "filter": {"issue_area": ["privacy"], "match": "any"}},
        headers=headers["organizer"],
    )
    assert created.status_code == 201
    body = created.get_json()
    assert set(body) == {"id", "name", "filter"} and body["filter"] == {"issue_area": ["privacy"]}
    assert client.get("/api/v1/segments", headers=headers["viewer"]).get_json()["total"] == 1
    for bad in (
        {"name": "", "filter": {}},
        {"name": "X", "filter": {"issue_area": ["nope"]}},
        {"name": "X", "filter": {"colour": "red"}},
        {"name": "X", "filter": "issue_area=privacy"},
        {"name": "Leads", "filter": {}},
    ):
        response = client.post("/api/v1/segments", json=bad, headers=headers["organizer"])
        assert response.status_code == 400 and response.mimetype == "application/problem+json", bad
    assert client.post("/api/v1/segments", json={"name": "V"}, headers=headers["viewer"]).status_code == 403
    patched = client.patch(
        f"/api/v1/segments/{body['id']}",
        json={"name": "Privacy leads", "filter": {"min_signed": 1}},
        headers=headers["organizer"],
    )
    assert patched.status_code == 200 and patched.get_json() == {
        "id": body["id"],
        "name": "Privacy leads",
        "filter": {"min_signed": 1},
    }
    assert (
        client.get(f"/api/v1/segments/{body['id']}", headers=headers["viewer"]).get_json()["name"]
        == "Privacy leads"
    )
    assert client.delete(f"/api/v1/segments/{body['id']}", headers=headers["organizer"]).status_code == 204
    assert client.get(f"/api/v1/segments/{body['id']}", headers=headers["viewer"]).status_code == 404
