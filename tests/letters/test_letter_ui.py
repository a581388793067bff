"""The letter pages' rough edges found by the audit: review choices, form errors, delivery, names, plurals, matrix."""

import csv
import io
import re
from pathlib import Path

import pytest
from sqlalchemy import func, select

from crm.common.text import plural, shown_acronym
from crm.common.tokens import make_token
from crm.letters.models import Letter, Signature
from crm.mailmerge.models import Message
from crm.organizations.models import Organization
from crm.seed import SEED_LETTER_SLUG
from crm.signon.services import confirm_public_signon, review_entries, submit_public_signon
from tests.factories import LetterFactory, OrganizationFactory, SignatureFactory


def _org(db, name: str) -> Organization:
    """An organization by exact name."""
    return db.session.scalar(select(Organization).where(Organization.name == name))


def _letter(db, status="collecting") -> Letter:
    """A letter taking public sign-ons, with review."""
    letter = Letter(slug="ui-letter", title="UI letter", body="Text.", status=status, public_signon=True)
    db.session.add(letter)
    db.session.commit()
    return letter


def _signon(db, letter: Letter, name: str, email: str = "signer@example.org"):
    """A confirmed public sign-on waiting for review."""
    row = submit_public_signon(
        letter, {"organization_name": name, "contact_name": "Sam Signer", "email": email, "consent_public": True}
    )
    confirm_public_signon(letter.slug, make_token("signon-confirm", {"r": row.id, "e": row.email}))
    return row


@pytest.fixture
def two_borders(seeded, db):
    """Two organizations a misspelt sign-on could be, and that sign-on (proposed: the Coalition)."""
    db.session.add_all(
        [
            Organization(name="Border Rights Coalition", sort_name="border rights coalition"),
            Organization(name="Border Rights Collective", sort_name="border rights collective"),
        ]
    )
    db.session.commit()
    return _signon(db, _letter(db), "Border Rights Coalitoin")


def test_review_offers_the_matchers_candidates_and_a_search(two_borders, db, as_role):
    coalition, collective = _org(db, "Border Rights Coalition"), _org(db, "Border Rights Collective")
    entry = review_entries()[0]
    assert [org.id for org, _ in entry.candidates] == [coalition.id, collective.id]
    assert entry.candidates[0][1] > entry.candidates[1][1] > 0.5
    client = as_role("organizer")
    page = client.get("/letters/review").get_data(as_text=True)
    assert 'type="number"' not in page and "(id)" not in page
    row = two_borders.id
    assert f'id="org-{row}-candidate-{collective.id}" value="{collective.id}"' in page
    assert re.search(r"Border Rights Coalition\s*<span[^>]*>\d+% match</span>\s*<span[^>]*>proposed", page)
    # Search without JavaScript: the GET form reloads the queue with this sign-on's results (the shared partial).
    found = client.get(f"/letters/review?request={row}&q=upturn").get_data(as_text=True)
    upturn = _org(db, "Upturn")
    assert f'id="org-{row}-{upturn.id}" value="{upturn.id}">' in found  # offered, not chosen for the organizer
    # Search as you type: the letter page's endpoint, with radio ids unique to the row.
    fragment = client.get(
        f"/letters/ui-letter/organizations?q=upturn&row={row}", headers={"HX-Request": "true"}
    ).get_data(as_text=True)
    assert f'id="org-{row}-{upturn.id}"' in fragment and "<html" not in fragment
    # Choosing the other candidate signs as it, and the spelling becomes its alias.
    response = client.post(f"/letters/review/{row}", data={"decision": "accept", "organization_id": collective.id})
    assert response.status_code == 303
    sig = db.session.scalar(select(Signature).join(Letter).where(Letter.slug == "ui-letter"))
    assert sig.organization_id == collective.id
    assert "Border Rights Coalitoin" in [a.name for a in collective.aliases]


def test_the_queue_shows_why_a_sign_on_waits_and_the_best_three_with_reasons(db, as_role):
    """As the signatory import does: at most three candidates, each with why; and why the sign-on waits at all."""
    names = ["Border Rights Coalition", "Border Rights Collective", "Border Rights Council", "Border Rights Center",
             "Border Rights Committee"]
    db.session.add_all([Organization(name=n, sort_name=n.lower()) for n in names])
    db.session.commit()
    letter = _letter(db)
    row = _signon(db, letter, "Border Rights Coalitoin", email="stranger@elsewhere.example")
    assert row.review_reason  # a stranger's address: it waits, whatever the letter says
    entry = review_entries()[0]
    assert len(entry.candidates) == 3 and entry.candidates[0][0].id == row.proposed_organization_id
    assert [c for _, c in entry.candidates[1:]] == sorted((c for _, c in entry.candidates[1:]), reverse=True)
    assert all(entry.reasons.get(org.id) for org, _ in entry.candidates), entry.reasons
    client = as_role("organizer")
    page = client.get("/letters/review").get_data(as_text=True)
    why = re.search(rf'id="signon-{row.id}-why">([^<]*)<', page).group(1)
    assert why == f"Waits for review: stranger@elsewhere.example is not a contact of {entry.candidates[0][0].name} " \
                  "and not at its website&#39;s domain."
    assert page.count(f'name="organization_id" id="org-{row.id}-candidate-') == 3
    for org, _ in entry.candidates:
        assert re.search(rf'{re.escape(org.name)}\s*<span[^>]*>\d+% match</span>.*?· {re.escape(entry.reasons[org.id])}'
                         rf'</span>', page, re.S), org.name
    # The letter page's queue: the same three with their reasons, and why it waits.
    show = client.get("/letters/ui-letter").get_data(as_text=True)
    item = re.search(rf'<li id="queue-{row.id}">(.*?)</li>', show, re.S).group(1)
    assert "Waits for review: stranger@elsewhere.example is not a contact of" in item
    assert sum(org.name in item for org in Organization.query.filter(Organization.name.in_(names))) == 3
    assert all(f", {entry.reasons[org.id]})" in item for org, _ in entry.candidates)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"decision": "accept", "organization_id": "999999"}, "There is no organization 999999."),
        ({"decision": "accept", "organization_id": "abc"}, "Not a valid integer value."),
        ({"decision": "maybe"}, "Not a valid choice."),
    ],
)
def test_a_bad_decision_is_explained_next_to_the_field(two_borders, db, as_role, data, message):
    client = as_role("organizer")
    response = client.post(f"/letters/review/{two_borders.id}", data=data)
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert re.search(rf'id="org-{two_borders.id}-error">[^<]*{re.escape(message)}', page)
    assert "Nothing was decided for Border Rights Coalitoin." in page  # the flash message
    assert "{'" not in page and "[&#39;" not in page  # no raw error dict
    assert db.session.scalar(select(func.count()).select_from(Signature).join(Letter).where(
        Letter.slug == "ui-letter")) == 0


def test_accepting_without_any_match_asks_for_a_choice(seeded, db, as_role):
    row = _signon(db, _letter(db), "Quite Unknown Collective")
    assert review_entries()[0].candidates == []
    client = as_role("organizer")
    assert "No existing organization matches closely." in client.get("/letters/review").get_data(as_text=True)
    response = client.post(f"/letters/review/{row.id}", data={"decision": "accept"})
    assert response.status_code == 400
    assert "Choose an organization (or search for one), or create a new one." in response.get_data(as_text=True)
    assert client.post(f"/letters/review/{row.id}", data={"decision": "new"}).status_code == 303
    assert _org(db, "Quite Unknown Collective") is not None


def test_other_letter_forms_flash_sentences_not_dicts(db, as_role):
    _letter(db)
    client = as_role("organizer")
    client.post("/letters/ui-letter/status", data={"status": "delivered", "delivered_on": "someday"})
    page = client.get("/letters/ui-letter").get_data(as_text=True)
    assert "The status was not changed. Delivered on: Not a valid date value." in page and "{'" not in page
    client.post("/letters/ui-letter/signatures", data={"organization_id": "x"})
    page = client.get("/letters/ui-letter").get_data(as_text=True)
    assert "Nothing was added. Organization id: Not a valid integer value." in page and "{'" not in page


def test_delivery_date_and_thank_you_only_where_delivery_applies(db, as_role):
    OrganizationFactory(name="Upturn")
    letter = _letter(db, status="draft")
    client = as_role("organizer")
    draft = client.get("/letters/ui-letter").get_data(as_text=True)
    assert "Delivered on" not in draft and "thank-you" not in draft and "Record delivery" not in draft
    letter.status = "collecting"
    db.session.add(Signature(letter_id=letter.id, organization_id=_org(db, "Upturn").id, listed_name="Upturn",
                             status="confirmed"))
    db.session.commit()
    collecting = client.get("/letters/ui-letter").get_data(as_text=True)
    assert "Record delivery" not in collecting and 'id="delivery-hint"' in collecting  # once closed
    letter.status = "closed"
    db.session.commit()
    collecting = client.get("/letters/ui-letter").get_data(as_text=True)
    delivery = collecting.split('id="delivery-heading"')[1].split("</form>")[0]
    assert "Delivered on" in delivery and "Confirmed signers: 1." in delivery
    thank = re.search(r'<input[^>]*id="thank"[^>]*>', delivery).group(0)
    assert "checked" not in thank  # nothing is mailed unless the organizer asks
    status_select = collecting.split('id="status"')[1].split("</select>")[0]
    assert "delivered" not in status_select  # delivery goes through its own form
    # Recording the delivery without ticking the box thanks nobody.
    client.post("/letters/ui-letter/status", data={"status": "delivered", "delivered_on": "2025-06-02"})
    db.session.refresh(letter)
    assert letter.status == "delivered" and letter.delivered_on.isoformat() == "2025-06-02"
    assert db.session.scalar(select(func.count()).where(Message.kind == "thank-you")) == 0
    delivered = client.get("/letters/ui-letter").get_data(as_text=True)
    assert "Record delivery" not in delivered and "Change status" not in delivered


def test_an_acronym_already_in_the_name_is_not_repeated(db, as_role):
    OrganizationFactory(name="Electronic Frontier Foundation (EFF)", acronym="EFF")
    OrganizationFactory(name="Upturn")
    assert shown_acronym("Electronic Frontier Foundation (EFF)", "EFF") == ""
    assert shown_acronym("ACLU of Minnesota", "aclu") == ""
    assert shown_acronym("American Civil Liberties Union", "ACLU") == "ACLU"
    assert shown_acronym("Effective Altruism", "EFF") == "EFF"  # a word that merely starts with it
    assert shown_acronym("Upturn", None) == ""
    eff = _org(db, "Electronic Frontier Foundation (EFF)")
    client = as_role("viewer")
    for path in (f"/organizations/{eff.id}", "/organizations?q=frontier"):
        page = client.get(path).get_data(as_text=True)
        assert "(EFF) (EFF)" not in re.sub(r"<[^>]+>|\s+", lambda m: " " if m.group(0).strip() == "" else "", page)
    upturn = _org(db, "Upturn")
    upturn.acronym = "UPT"
    db.session.commit()
    assert "(UPT)" in client.get(f"/organizations/{upturn.id}").get_data(as_text=True)


def test_merge_preview_counts_read_as_english(db, as_role):
    OrganizationFactory(name="Upturn")
    OrganizationFactory(name="X-Lab")
    assert (plural(1, "name"), plural(2, "name"), plural(1, "alias", "aliases")) == ("1 name", "2 names", "1 alias")
    keep, remove = _org(db, "Upturn"), _org(db, "X-Lab")
    page = as_role("organizer").get(f"/organizations/merge?keep={keep.id}&remove={remove.id}").get_data(as_text=True)
    assert "Adds 1 alias (including" in page and "Moves 0 contacts" in page
    assert not re.search(r"\b1 (names|aliases|contacts|signatures|interactions)\b", page)
    templates = Path(__file__).resolve().parents[2] / "templates"
    unplural = re.compile(r"\{\{ *[\w.|]+ *\}\}(</strong>)? (names|contacts|signatures|aliases|rows|errors|columns)\b")
    offenders = [p.name for p in templates.rglob("*.html") if unplural.search(p.read_text(encoding="utf-8"))]
    assert offenders == []


def test_matrix_cells_are_blank_for_no_answer_on_the_page_and_in_the_csv(db, as_role):
    SignatureFactory.create_batch(3, letter=LetterFactory(slug=SEED_LETTER_SLUG, status="delivered"))
    other = _letter(db)
    client = as_role("viewer")
    page = client.get(f"/letters/participation?signed={SEED_LETTER_SLUG}").get_data(as_text=True)
    assert '<td class="cell-none"><span class="visually-hidden">no answer</span></td>' in page
    assert "a blank cell means no answer" in page
    link = re.search(r'href="(/exports/matrix\.csv\?[^"]*)"', page).group(1).replace("&amp;", "&")
    rows = list(csv.reader(io.StringIO(client.get(link).get_data(as_text=True))))
    column = rows[0].index(other.slug)
    assert len(rows) == 4 and {row[column] for row in rows[1:]} == {""}
    assert {row[rows[0].index(SEED_LETTER_SLUG)] for row in rows[1:]} == {"signed"}
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    assert "`withdrawn` or blank" in readme and "no answer" not in client.get(link).get_data(as_text=True)


def test_only_the_proposed_match_starts_chosen_in_the_review_queue(two_borders, db, as_role):
    """A loose candidate is offered but not chosen: one click on Accept must not sign a stranger in another
    organization's name (found walking the organizer loop: 'Border Tech Watch Collective' came up with
    Detention Watch Network at 23% already selected)."""
    loose = _signon(db, two_borders.letter, "Border Tech Watch Collective", "rosa@bordertechwatch.example")
    entry = next(e for e in review_entries() if e.request.id == loose.id)
    assert loose.proposed_organization_id is None and entry.candidates  # loose candidates, no proposal
    page = as_role("organizer").get("/letters/review").get_data(as_text=True)
    assert not re.search(rf'id="org-{loose.id}-candidate-\d+" value="\d+" checked', page)
    coalition = _org(db, "Border Rights Coalition")  # the proposed match of the other sign-on stays chosen
    assert f'id="org-{two_borders.id}-candidate-{coalition.id}" value="{coalition.id}" checked' in page
