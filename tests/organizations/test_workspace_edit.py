"""Editing organizations and contacts: validation, optimistic locking, audit, issue areas, interactions, API."""

import re
from datetime import date

import pytest
import sqlalchemy as sa

from crm.auth.services import create_token
from crm.contacts.models import Contact
from crm.organizations.models import Organization
from tests.factories import IssueAreaFactory, LetterFactory, OrganizationFactory, SignatureFactory

# Optimistic locking (versioned updates): on PostgreSQL too (tests/conftest.py).
pytestmark = pytest.mark.bothdb


def text(response) -> str:
    """A response body as text."""
    return response.get_data(as_text=True)


@pytest.fixture
def partners(db):
    """Mijente and Just Futures Law as the seed has them: the leads of a letter delivered on April 19, 2021."""
    letter = LetterFactory(status="delivered", letter_date=date(2021, 4, 19))
    for position, (name, org_type, areas, website) in enumerate([
        ("Mijente", "advocacy", ["immigration", "racial-justice", "surveillance"], "https://mijente.net"),
        ("Just Futures Law", "legal-services", ["immigration", "criminal-legal", "surveillance", "legal-services"],
         "https://justfutureslaw.org"),
    ]):
        org = OrganizationFactory(name=name, org_type=org_type, scope="national", country="US", website=website,
                                  issue_areas=areas)
        SignatureFactory(letter=letter, organization=org, role="lead", position=position)


def org_by_name(db, name: str) -> Organization:
    """An organization by exact name."""
    db.session.expire_all()
    return db.session.scalar(sa.select(Organization).where(Organization.name == name))


def edit_data(org: Organization, **changes) -> dict:
    """The edit form as the browser would send it, with changes."""
    data = {
        "name": org.name,
        "acronym": org.acronym or "",
        "org_type": org.org_type or "",
        "scope": org.scope or "",
        "city": org.city or "",
        "state": org.state or "",
        "country": org.country or "",
        "website": org.website or "",
        "parent": f"#{org.parent_id}" if org.parent_id else "",
        "issue_areas": [a.slug for a in org.issue_areas],
        "aliases": "\n".join(a.name for a in org.aliases),
        "notes": org.notes or "",
        "version": str(org.version),
    }
    data.update(changes)
    return data


def test_edit_saves_audits_and_shows_history(as_role, partners, db):
    client = as_role("organizer")
    org = org_by_name(db, "Mijente")
    form = text(client.get(f"/organizations/{org.id}/edit"))
    assert f'name="version" type="hidden" value="{org.version}"' in form
    response = client.post(
        f"/organizations/{org.id}/edit",
        data=edit_data(
            org,
            city="Phoenix",
            state="az",
            aliases="Mijente Support Committee\nMijente PAC",
            issue_areas=["immigration"],
        ),
    )
    assert response.status_code == 303
    org = org_by_name(db, "Mijente")
    assert (org.city, org.state) == ("Phoenix", "AZ")
    assert org.version == int(re.search(r'name="version" type="hidden" value="(\d+)"', form).group(1)) + 1
    assert sorted(a.name for a in org.aliases) == ["Mijente PAC", "Mijente Support Committee"]
    assert [a.slug for a in org.issue_areas] == ["immigration"]
    page = text(client.get(f"/organizations/{org.id}"))
    assert "Edited Mijente" in page and "Phoenix" in page and "Mijente PAC" in page
    assert "racial-justice, surveillance" in page or "immigration, racial-justice, surveillance" in page
    assert "<strong>1</strong> organization" in text(
        client.get("/organizations?q=mijente+pac")
    )  # aliases searched
    audit = text(as_role("admin").get("/audit"))
    assert "Edited Mijente" in audit and "Phoenix" in audit


def test_stale_form_shows_conflict_and_loses_nothing(app, partners, users, db):
    from tests.conftest import login

    first, second = app.test_client(), app.test_client()
    login(first, users["organizer"].email)
    login(second, users["admin"].email)
    org = org_by_name(db, "Just Futures Law")
    stale = edit_data(org)
    assert first.post(f"/organizations/{org.id}/edit", data=edit_data(org, city="Oakland")).status_code == 303
    response = second.post(
        f"/organizations/{org.id}/edit", data={**stale, "acronym": "JFL", "city": "Brooklyn"}
    )
    assert response.status_code == 409
    page = text(response)
    assert "Someone else saved this organization" in page and "organizer@example.org" in page
    assert 'value="JFL"' in page and 'value="Brooklyn"' in page  # the user's input is kept
    assert re.search(r"<th scope=\"row\">city</th>\s*<td[^>]*>Oakland</td>\s*<td[^>]*>Brooklyn</td>", page)
    assert org_by_name(db, "Just Futures Law").city == "Oakland"  # nothing overwritten
    version = re.search(r'name="version" type="hidden" value="(\d+)"', page).group(1)
    again = second.post(
        f"/organizations/{org.id}/edit",
        data={**stale, "acronym": "JFL", "city": "Brooklyn", "version": version},
    )
    assert again.status_code == 303
    org = org_by_name(db, "Just Futures Law")
    assert (org.city, org.acronym) == ("Brooklyn", "JFL")
    history = text(second.get(f"/organizations/{org.id}"))
    assert history.index("Brooklyn") < history.index("Oakland")  # both changes are in the audit, newest first


def test_validation_errors_next_to_fields(as_role, partners, db):
    client = as_role("organizer")
    org = org_by_name(db, "Mijente")
    version = org.version
    response = client.post(
        f"/organizations/{org.id}/edit",
        data=edit_data(
            org, name="", state="Narnia", website="javascript:alert(1)", country="USA", parent=f"#{org.id}"
        ),
    )
    assert response.status_code == 400
    page = text(response)
    for message in (
        "This field is required",
        "two-letter US state code",
        "web address",
        "two-letter country code",
    ):
        assert message in page
    response = client.post(f"/organizations/{org.id}/edit", data=edit_data(org, parent=f"#{org.id}"))
    assert response.status_code == 400 and "its own parent" in text(response)
    assert org_by_name(db, "Mijente").version == version


def test_archive_and_restore(as_role, partners, db):
    client = as_role("organizer")
    org = org_by_name(db, "Mijente")
    v = org.version
    assert client.post(f"/organizations/{org.id}/archive", data={"version": str(v)}).status_code == 303
    assert org_by_name(db, "Mijente").archived
    assert "Mijente" not in text(client.get("/organizations?q=mijente")).split('id="org-table"')[1]
    stale = client.post(f"/organizations/{org.id}/restore", data={"version": str(v)})
    assert "changed this organization" in text(client.get(stale.headers["Location"]))
    assert client.post(f"/organizations/{org.id}/restore", data={"version": str(v + 1)}).status_code == 303
    assert not org_by_name(db, "Mijente").archived
    assert (
        as_role("viewer").post(f"/organizations/{org.id}/archive", data={"version": str(v + 2)}).status_code
        == 403
    )


def test_contacts_primary_move_and_left(as_role, partners, db):
    client = as_role("organizer")
    mij, jfl = org_by_name(db, "Mijente"), org_by_name(db, "Just Futures Law")
    for first, email in (("Ana", " Ana@Example.ORG "), ("Ben", "ben@example.org")):
        response = client.post(
            "/contacts/new",
            data={
                "first_name": first,
                "email": email,
                "organization": f"Mijente (#{mij.id})",
                "is_primary": "y",
                "status": "active",
            },
        )
        assert response.status_code == 303, text(response)
    ana = db.session.scalar(sa.select(Contact).where(Contact.first_name == "Ana"))
    db.session.refresh(ana)
    assert ana.email == "ana@example.org" and not ana.is_primary  # normalised; Ben took over as primary
    org_page = text(client.get(f"/organizations/{mij.id}")).split('id="contacts"')[1]
    assert org_page.index("Ben") < org_page.index("Ana")  # primary first
    duplicate = client.post(
        "/contacts/new", data={"first_name": "X", "email": "ANA@example.org", "status": "active"}
    )
    assert duplicate.status_code == 400 and "already has this address" in text(duplicate)
    bad = client.post(
        "/contacts/new", data={"first_name": "Y", "email": "not-an-address", "status": "active"}
    )
    assert bad.status_code == 400 and "is-invalid" in text(bad)
    assert client.post(f"/contacts/{ana.id}/primary", data={"version": str(ana.version)}).status_code == 303
    db.session.expire_all()
    ben = db.session.scalar(sa.select(Contact).where(Contact.first_name == "Ben"))
    assert db.session.get(Contact, ana.id).is_primary and not ben.is_primary
    ana = db.session.get(Contact, ana.id)
    moved = client.post(
        f"/contacts/{ana.id}/edit",
        data={
            "first_name": "Ana",
            "email": "ana@example.org",
            "organization": "Just Futures Law",
            "status": "active",
            "version": str(ana.version),
        },
    )
    assert moved.status_code == 303
    db.session.expire_all()
    ana = db.session.get(Contact, ana.id)
    assert ana.organization_id == jfl.id and not ana.is_primary
    assert client.post(f"/contacts/{ben.id}/left", data={"version": str(ben.version)}).status_code == 303
    db.session.expire_all()
    assert db.session.get(Contact, ben.id).status == "left"
    page = text(client.get(f"/organizations/{mij.id}"))
    assert "Ben" in page and ">left<" in page  # who left stays on the page
    history = text(client.get(f"/contacts/{ben.id}"))
    assert "left the organization" in history
    assert "Moved Ana" in text(client.get(f"/organizations/{jfl.id}"))


def test_issue_area_vocabulary(as_role, partners, db, client):
    from crm.segments.services import create_segment, segment_filter

    for areas in (["privacy"], ["digital-rights"], ["privacy", "digital-rights"], ["labor"]):
        OrganizationFactory(issue_areas=areas)
    segment = create_segment("Tech", {"issue_area": ["digital-rights", "labor"]})
    admin = as_role("admin")
    assert (
        admin.post("/organizations/issue-areas/privacy/rename", data={"name": "Privacy & data"}).status_code
        == 303
    )
    assert "Privacy &amp; data" in text(admin.get("/organizations/issue-areas"))
    before = text(admin.get("/organizations?issue_area=privacy&issue_area=digital-rights&per_page=200"))
    count = int(re.search(r"<strong>(\d+)</strong>", before).group(1))
    merged = admin.post(
        "/organizations/issue-areas/merge", data={"source": "digital-rights", "target": "privacy"}
    )
    assert merged.status_code == 303
    after = text(admin.get("/organizations?issue_area=privacy"))
    assert int(re.search(r"<strong>(\d+)</strong>", after).group(1)) == count
    assert segment_filter(segment.id).issue_area == ["privacy", "labor"]
    assert admin.post("/organizations/issue-areas/labor/retire", data={}).status_code == 303
    new_form = text(admin.get("/organizations/new")).split('id="issue_areas"')[1].split("</select>")[0]
    assert 'value="labor"' not in new_form and 'value="privacy"' in new_form
    assert "retired" in text(admin.get("/organizations/issue-areas"))
    assert "Merged issue area" in text(admin.get("/audit"))
    organizer = as_role("organizer")
    assert organizer.post("/organizations/issue-areas/labor/retire", data={}).status_code == 403


def test_interactions_are_logged_with_who(as_role, partners, db):
    client = as_role("organizer")
    org = org_by_name(db, "Mijente")
    bad = client.post(
        f"/organizations/{org.id}/interactions",
        data={"kind": "call", "occurred_on": "31/02/2024", "summary": ""},
    )
    assert bad.status_code == 400
    ok = client.post(
        f"/organizations/{org.id}/interactions",
        data={
            "kind": "call",
            "occurred_on": "2024-03-05",
            "summary": "Called about the ICE letter",
            "body": "Yes, likely.",
        },
    )
    assert ok.status_code == 303
    page = text(client.get(f"/organizations/{org.id}"))
    assert "Called about the ICE letter" in page and "logged by Organizer" in page and "Mar 5, 2024" in page


def test_interaction_errors_keep_the_whole_page(as_role, partners, db):
    from crm.letters.writing import create_letter, set_status

    letter = create_letter({"title": "Next letter", "slug": "next-letter"})
    set_status(letter, "collecting")
    client = as_role("organizer")
    org = org_by_name(db, "Mijente")
    assert "Personal sign-on links" in text(client.get(f"/organizations/{org.id}"))
    bad = client.post(f"/organizations/{org.id}/interactions", data={"kind": "call", "summary": ""})
    assert bad.status_code == 400
    assert "Personal sign-on links" in text(bad) and "next-letter" in text(bad)


def test_participation_summary(as_role, partners, db):
    page = text(as_role("viewer").get(f"/organizations/{org_by_name(db, 'Mijente').id}"))
    summary = page.split('id="participation-summary"')[1].split("</p>")[0]
    assert "Signed <strong>1</strong> letter" in summary and "1 of the last 1" in summary
    assert "First signature Apr 19, 2021" in summary and "led 1" in summary


@pytest.fixture
def tokens(users):
    """A bearer token per role."""
    return {role: create_token(user.email).secret for role, user in users.items()}


def test_api_create_patch_conflict_archive(client, partners, tokens, db):
    IssueAreaFactory(slug="privacy")
    organizer = {"Authorization": f"Bearer {tokens['organizer']}"}
    viewer = {"Authorization": f"Bearer {tokens['viewer']}"}
    assert client.post("/api/v1/organizations", json={"name": "X"}, headers=viewer).status_code == 403
    bad = client.post(
        "/api/v1/organizations",
        json={"name": "", "state": "ZZ", "website": "ftp://x", "issue_areas": ["nope"]},
        headers=organizer,
    )
    assert bad.status_code == 400 and bad.mimetype == "application/problem+json"
    assert set(bad.get_json()["errors"]) == {"name", "state", "website", "issue_areas"}
    assert (
        client.post("/api/v1/organizations", json={"name": "A", "bogus": 1}, headers=organizer).status_code
        == 400
    )
    created = client.post(
        "/api/v1/organizations",
        json={"name": "Data Justice Lab", "state": "ny", "issue_areas": ["privacy"], "aliases": ["DJL"]},
        headers=organizer,
    )
    assert created.status_code == 201
    org = created.get_json()
    assert org["state"] == "NY" and org["aliases"] == ["DJL"] and org["version"] == 1
    patched = client.patch(
        f"/api/v1/organizations/{org['id']}", json={"city": "Albany", "version": 1}, headers=organizer
    )
    assert patched.status_code == 200 and patched.get_json()["version"] == 2
    stale = client.patch(
        f"/api/v1/organizations/{org['id']}", json={"city": "Troy", "version": 1}, headers=organizer
    )
    assert stale.status_code == 409 and stale.mimetype == "application/problem+json"
    assert stale.get_json()["current"]["city"] == "Albany"
    assert (
        client.patch(
            f"/api/v1/organizations/{org['id']}", json={"city": "Troy"}, headers=organizer
        ).status_code
        == 400
    )  # version is required
    archived = client.post(
        f"/api/v1/organizations/{org['id']}/archive", json={"version": 2}, headers=organizer
    )
    assert archived.status_code == 200 and archived.get_json()["archived"] is True
    assert client.delete("/api/v1/organizations/999999", headers=organizer).status_code == 404
    contact = client.post(
        "/api/v1/contacts",
        json={
            "first_name": "Kim",
            "email": "KIM@Example.org",
            "organization_id": org["id"],
            "is_primary": True,
        },
        headers=organizer,
    )
    assert contact.status_code == 201, contact.get_json()
    body = contact.get_json()
    assert body["email"] == "kim@example.org" and body["mailable"] is True and body["is_primary"] is True
    left = client.patch(
        f"/api/v1/contacts/{body['id']}",
        json={"status": "left", "version": body["version"]},
        headers=organizer,
    )
    assert (
        left.status_code == 200
        and left.get_json()["is_primary"] is False
        and left.get_json()["mailable"] is False
    )
    assert (
        client.patch(
            f"/api/v1/contacts/{body['id']}",
            json={"status": "active", "version": body["version"]},
            headers=organizer,
        ).status_code
        == 409
    )
    assert client.get(f"/api/v1/contacts/{body['id']}", headers=viewer).get_json()["status"] == "left"
    assert client.post("/api/v1/contacts", json={"email": "bad@@x"}, headers=organizer).status_code == 400
    assert (
        client.post(
            "/api/v1/contacts", json={"organization_id": 999999, "first_name": "Z"}, headers=organizer
        ).status_code
        == 400
    )
