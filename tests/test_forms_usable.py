"""Forms people can use (issue 13, point 12): the contact form picks its organization by search, issue areas are
checkboxes, the letter text is tall, one link imports signatories, and there is a favicon."""

import re

from sqlalchemy import func, select

from crm.contacts.models import Contact
from crm.organizations.models import Organization
from crm.seed import SEED_LETTER_SLUG
from tests.factories import LetterFactory, OrganizationFactory, SignatureFactory


def _mijente() -> Organization:
    """Mijente (in privacy), a signer of the seed letter, beside two other organizations."""
    mijente = OrganizationFactory(name="Mijente", issue_areas=["privacy"])
    SignatureFactory(organization=mijente, letter=LetterFactory(slug=SEED_LETTER_SLUG, status="delivered"))
    OrganizationFactory.create_batch(2)
    return mijente


def test_contact_form_picks_the_organization_by_search(as_role, db):
    client = as_role("organizer")
    mijente = _mijente()
    form = client.get("/contacts/new").get_data(as_text=True)
    assert 'hx-get="/contacts/organization-options"' in form and "(#" not in form
    options = client.get("/contacts/organization-options?organization=mije",
                         headers={"HX-Request": "true"}).get_data(as_text=True)
    assert f'name="organization_id" id="pick-org-{mijente.id}" value="{mijente.id}" data-name="Mijente"' in options
    assert "<html" not in options
    # Typed part of a name and picked the suggestion: the picked id is used.
    response = client.post("/contacts/new", data={"first_name": "Ana", "email": "ana@mijente.example",
                                                  "organization": "Mijente", "organization_id": str(mijente.id),
                                                  "status": "active"})
    assert response.status_code == 303, re.findall(r'invalid-feedback[^>]*>([^<]*)', response.get_data(as_text=True))
    assert db.session.scalar(select(Contact.organization_id).where(Contact.email == "ana@mijente.example")) == \
        mijente.id
    # Without JavaScript: the exact name works; a partial one is a clear error with the matches to pick from.
    client.post("/contacts/new", data={"first_name": "Bo", "email": "bo@mijente.example", "organization": "mijente",
                                   "status": "active"})
    assert db.session.scalar(select(Contact.organization_id).where(Contact.email == "bo@mijente.example")) == \
        mijente.id
    count = db.session.scalar(select(func.count()).select_from(Contact))
    page = client.post("/contacts/new", data={"first_name": "Cy", "email": "cy@x.example", "organization": "Mije",
                                              "status": "active"})
    html = page.get_data(as_text=True)
    assert page.status_code == 400 and "No organization is named &#39;Mije&#39;" in html
    assert f'id="pick-org-{mijente.id}"' in html  # pick it and save again
    assert db.session.scalar(select(func.count()).select_from(Contact)) == count
    for picked in ("x1", "²", "9" * 40, "99999999999"):
        bad = client.post("/contacts/new", data={"first_name": "Cy", "organization": "Mijente",
                                                 "organization_id": picked, "status": "active"})
        assert bad.status_code == 400 and "Pick an organization from the list" in bad.get_data(as_text=True), picked
    gone = client.post("/contacts/new", data={"first_name": "Cy", "organization": "Mijente",
                                              "organization_id": "999999", "status": "active"})
    assert gone.status_code == 400 and "There is no organization 999999" in gone.get_data(as_text=True)
    # Editing shows the name (not "Mijente (#1)") with its suggestion picked; emptying the box removes it.
    contact = db.session.scalar(select(Contact).where(Contact.email == "ana@mijente.example"))
    edit = client.get(f"/contacts/{contact.id}/edit").get_data(as_text=True)
    assert 'value="Mijente"' in edit and f'value="{mijente.id}" data-name="Mijente" checked' in edit
    client.post(f"/contacts/{contact.id}/edit", data={"first_name": "Ana", "email": "ana@mijente.example",
                                                       "organization": "", "organization_id": str(mijente.id),
                                                       "status": "active", "version": str(contact.version)})
    db.session.refresh(contact)
    assert contact.organization_id is None


def test_issue_areas_are_checkboxes_the_letter_text_is_tall_and_one_import_link(as_role, db):
    client = as_role("organizer")
    for url in ("/organizations/new", f"/organizations/{_mijente().id}/edit", "/letters/new",
                f"/letters/{SEED_LETTER_SLUG}/edit"):
        html = client.get(url).get_data(as_text=True)
        assert 'type="checkbox" name="issue_areas" value="privacy"' in html, url
        assert not re.search(r"<select[^>]*multiple", html) and "Ctrl" not in html, url
    letter_form = client.get("/letters/new").get_data(as_text=True)
    assert int(re.search(r'<textarea[^>]*id="body"[^>]*rows="(\d+)"', letter_form).group(1)) >= 20
    show = client.get(f"/letters/{SEED_LETTER_SLUG}").get_data(as_text=True)
    assert show.count("Import signatories") == 1 and "Import signatures from a spreadsheet" not in show
    for url in ("/organizations", "/contacts", "/letters/participation", f"/sign/{SEED_LETTER_SLUG}"):
        assert not re.search(r"<select[^>]*multiple", client.get(url).get_data(as_text=True)), url


def test_favicon(client):
    login_page = client.get("/login").get_data(as_text=True)
    href = re.search(r'<link rel="icon" type="image/svg\+xml" href="([^"]+)"', login_page).group(1)
    icon = client.get(href)
    assert icon.status_code == 200 and icon.mimetype == "image/svg+xml" and b"<svg" in icon.data
