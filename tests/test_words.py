"""Words, not internals (issue 13, point 8): filters as sentences, letter titles in the matrix, labels for
signature sources and audited fields, notes rendered from Markdown."""

import re
from datetime import date

from sqlalchemy import select

from crm.letters.models import Letter
from crm.seed import SEED_LETTER_SLUG
from crm.segments.models import Segment
from tests.factories import IssueAreaFactory, LetterFactory, OrganizationFactory, SignatureFactory


def _letters(db, n: int) -> None:
    """n more letters, older than the seed letter's 2021 date, so they page after it."""
    db.session.add_all([
        Letter(slug=f"old-{i:02d}", title=f"Old letter number {i:02d} about something long enough to shorten",
               status="delivered", recipients="", cc="", summary="", body="", letter_date=date(2000, 1, 1 + i))
        for i in range(n)
    ])
    db.session.commit()


def _seed_letter(**organization) -> None:
    """The seed's letter (its slug, title and date) with one signer."""
    letter = LetterFactory(slug=SEED_LETTER_SLUG, title="Urge DHS to stop using Clearview AI facial recognition",
                           status="delivered", letter_date=date(2021, 4, 19))
    SignatureFactory(letter=letter, organization=OrganizationFactory(**organization), source="import")


def test_matrix_heads_columns_with_titles_and_pages_older_letters(as_role, db):
    _seed_letter()
    _letters(db, 30)
    client = as_role("viewer")
    html = client.get("/letters/participation").get_data(as_text=True)
    head = html.split("<thead>")[1].split("</thead>")[0]
    assert head.count("<th") == 31  # the organization column and the 30 newest letters
    assert 'title="Urge DHS to stop using Clearview AI facial recognition"' in head
    assert ">Urge DHS to stop using Clearview…<" in head  # shortened, the full title on hover
    assert f">{SEED_LETTER_SLUG}<" not in head
    older = re.search(r'href="([^"]*letters_page=2[^"]*)">older letters', html).group(1).replace("&amp;", "&")
    page2 = client.get(older).get_data(as_text=True)
    head2 = page2.split("<thead>")[1].split("</thead>")[0]
    assert head2.count("<th") == 2 and "Old letter number 00" in head2 and "newer letters" in page2


def test_matrix_save_as_segment_keeps_every_filter(as_role, db):
    _seed_letter(state="CA", org_type="advocacy", issue_areas=["privacy"])
    IssueAreaFactory(slug="immigration")
    client = as_role("organizer")
    query = f"signed={SEED_LETTER_SLUG}&state=CA&not_issue_area=immigration&org_type=advocacy&letters_page=1"
    page = client.get("/letters/participation?" + query).get_data(as_text=True)
    assert 'id="matrix-save-segment"' in page and 'name="state" value="CA"' in page  # the form keeps it too
    response = client.post("/segments", data={"name": "CA advocates", "query": query, "back": "matrix"})
    assert response.status_code == 303
    segment = db.session.scalar(select(Segment).where(Segment.name == "CA advocates"))
    assert segment.filter == {"signed": [SEED_LETTER_SLUG], "state": ["CA"], "not_issue_area": ["immigration"],
                              "org_type": ["advocacy"]}
    shown = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Does not work on immigration; signed <em" in shown and "; in CA; type advocacy" in shown
    # an error goes back to the matrix, not to the organization list
    again = client.post("/segments", data={"name": "CA advocates", "query": query, "back": "matrix"})
    assert again.headers["Location"].startswith("/letters/participation?")


def test_segment_list_shows_sentences_not_json(as_role, db):
    from crm.segments.services import create_segment

    IssueAreaFactory(slug="privacy")
    IssueAreaFactory(slug="labor")
    create_segment("Mix", {"issue_area": ["privacy", "labor"], "match": "all", "never_signed": True,
                           "has_mailable": False, "q": "<b>x</b>"})
    html = as_role("viewer").get("/segments").get_data(as_text=True)
    assert "Works on privacy and labor; never signed a letter; has no mailable contact; " \
           "name or alias matches “&lt;b&gt;x&lt;/b&gt;”" in html
    assert "&#34;" not in html and "{&quot;" not in html


def test_sources_history_and_notes_read_as_words(as_role, db):
    from crm.contacts.services import create_contact, update_contact
    from crm.letters.models import Signature
    from crm.organizations.interactions import add_interaction

    _seed_letter()
    client = as_role("organizer")
    sig = db.session.scalar(select(Signature).order_by(Signature.id))
    sig.source = "api"
    db.session.commit()
    page = client.get(f"/letters/{SEED_LETTER_SLUG}/signatures/{sig.id}").get_data(as_text=True)
    assert "Through</dt><dd class=\"col-8\">API</dd>" in page
    assert '<option selected value="api">API</option>' in page and '>public form</option>' in page
    assert ">Api<" not in page and ">Seed<" not in page
    org_id = sig.organization_id
    contact = create_contact({"first_name": "Ana", "email": "ana@x.example.org", "organization_id": org_id})
    update_contact(contact.id, {"is_primary": True}, version=contact.version)
    history = client.get(f"/contacts/{contact.id}").get_data(as_text=True).split('id="audit-history"')[1]
    assert "<strong>Primary contact</strong>: no → yes" in history and "is_primary" not in history
    from crm.organizations.editing import update_organization
    from crm.organizations.queries import get_organization

    update_organization(org_id, {"scope": "local"}, version=get_organization(org_id).version)
    history = client.get(f"/organizations/{org_id}").get_data(as_text=True).split('id="audit-history"')[1]
    assert "<strong>Scope</strong>: " in history and "(scope)" in history
    add_interaction(org_id, {"kind": "note", "summary": "Call", "body": "Met **Ana**\n\n- at the convening\n\n"
                                                                       "<script>alert(1)</script>"})
    show = client.get(f"/organizations/{org_id}").get_data(as_text=True)
    assert "Met <strong>Ana</strong>" in show and "<li>at the convening</li>" in show
    assert "<script>alert(1)</script>" not in show
    as_role("admin")
    audit = client.get("/audit").get_data(as_text=True)
    assert "<strong>Primary contact</strong>: no → yes" in audit


def test_the_audit_log_says_what_changed_in_words(as_role, db):
    from crm.segments.services import create_segment, update_segment

    IssueAreaFactory(slug="privacy")
    IssueAreaFactory(slug="immigration")
    segment = create_segment("Privacy", {"issue_area": ["privacy"]})
    update_segment(segment.id, filter_source={"issue_area": ["privacy"], "not_issue_area": ["immigration"]})
    audit = as_role("admin").get("/audit").get_data(as_text=True)
    assert "<strong>Filter</strong>: Works on privacy → Works on privacy, not immigration" in audit
    assert "{&#39;" not in audit and "update: " not in audit
    assert f'<a href="/segments/{segment.id}">Segment #{segment.id}</a>' in audit
