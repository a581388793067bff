"""Letters end to end through the pages: writing, status, participation, sign-on, review, exports, merging."""

import email
import email.policy
import re

import pytest
from sqlalchemy import func, select

from crm.audit.models import AuditEvent
from crm.common.tokens import make_token
from crm.contacts.models import Contact
from crm.letters.links import personal_signon_url
from crm.letters.models import Letter, Signature, SignOnRequest
from crm.mailmerge.models import MailMerge, Message
from crm.organizations.creation import add_named_organization
from crm.organizations.models import Organization
from crm.seed import SEED_LETTER_SLUG, default_seed_file, read_seed_rows
from crm.segments.models import Segment
from tests.factories import IssueAreaFactory, LetterFactory, OrganizationFactory


@pytest.fixture
def app_config():
    """Sign-on forms may be sent at once in these tests."""
    return {"SIGNON_MIN_FILL_SECONDS": 0}


def _org(db, name: str) -> Organization:
    """An organization by exact name."""
    return db.session.scalar(select(Organization).where(Organization.name == name))


def _aclu_and_affiliates() -> None:
    """The ACLU and three state affiliates, whose names are alike, as the seed has them."""
    aclu = OrganizationFactory(name="American Civil Liberties Union (ACLU)", acronym="ACLU",
                               website="https://www.aclu.org")
    for name, website in (("ACLU of Minnesota", "https://www.aclu-mn.org"),
                          ("ACLU of Northern California", "https://www.aclunc.org"),
                          ("ACLU of North Carolina", "https://www.acluofnc.org")):
        OrganizationFactory(name=name, parent=aclu, website=website)


def _collecting_letter(db, slug="police-tech-2025", public=True, review=True) -> Letter:
    """A letter taking sign-ons."""
    letter = Letter(
        slug=slug,
        title="Stop police surveillance tech",
        body="We ask you to **stop**.",
        status="collecting",
        public_signon=public,
        review_required=review,
    )
    db.session.add(letter)
    db.session.commit()
    return letter


def test_text_export_lists_the_68_names_leads_first(seeded, as_role):
    client = as_role("viewer")
    response = client.get(f"/letters/{SEED_LETTER_SLUG}/signatories.txt")
    names = response.get_data(as_text=True).splitlines()
    seed = [row["name"] for row in read_seed_rows(default_seed_file())]
    assert len(names) == 68 and sorted(names) == sorted(seed)
    assert names[:3] == [
        "Mijente",
        "Just Futures Law",
        "The Center on Privacy & Technology at Georgetown Law",
    ]
    for fmt, needle in (("md", "- **Mijente**"), ("html", "<strong>Mijente</strong>"), ("csv", "Laredo,TX")):
        body = client.get(f"/letters/{SEED_LETTER_SLUG}/signatories.{fmt}").get_data(as_text=True)
        assert needle in body, fmt
    page = client.get(f"/letters/{SEED_LETTER_SLUG}/print").get_data(as_text=True)
    assert "Dear Secretary Mayorkas" in page and "Wind of the Spirit Immigrant Resource Center" in page


def test_write_a_letter_and_move_it_through_its_statuses(seeded, as_role, db):
    client = as_role("organizer")
    response = client.post(
        "/letters/new",
        data={
            "title": "Protect immigrant data",
            "body": "Dear *all*",
            "issue_areas": ["privacy"],
            "public_signon": "y",
        },
    )
    assert response.status_code == 303
    letter = db.session.scalar(select(Letter).where(Letter.slug == "protect-immigrant-data"))
    assert letter.status == "draft" and [a.slug for a in letter.issue_areas] == ["privacy"]
    # Bad input changes nothing.
    assert client.post("/letters/new", data={"title": "Other", "slug": SEED_LETTER_SLUG}).status_code == 400
    assert client.post("/letters/new", data={"title": ""}).status_code == 400
    assert client.post("/letters/new", data={"title": "X", "slug": "Bad Slug!"}).status_code == 400
    assert db.session.scalar(select(func.count()).select_from(Letter)) == 2
    client.post(f"/letters/{letter.slug}/status", data={"status": "delivered"})
    db.session.refresh(letter)
    assert letter.status == "draft"  # a draft cannot jump to delivered
    client.post(f"/letters/{letter.slug}/status", data={"status": "collecting"})
    mijente = _org(db, "Mijente")
    response = client.post(
        f"/letters/{letter.slug}/signatures",
        data={
            "organization_id": mijente.id,
            "role": "lead",
            "status": "confirmed",
            "listed_name": "Mijente",
            "source": "manual",
        },
    )
    assert response.status_code == 303
    contact = Contact(
        organization_id=mijente.id,
        first_name="Ana",
        last_name="Ruiz",
        email="ana@mijente.example",
        is_primary=True,
    )
    db.session.add(contact)
    db.session.commit()
    # A material change of the text: the page lists the signature given on the earlier text.
    client.post(
        f"/letters/{letter.slug}/edit",
        data={
            "title": "Protect immigrant data",
            "slug": letter.slug,
            "body": "Dear all, a new paragraph.",
            "public_signon": "y",
        },
    )
    page = client.get(f"/letters/{letter.slug}").get_data(as_text=True)
    assert "1 signature given on an earlier text" in page
    client.post(f"/letters/{letter.slug}/reconfirm")
    mail = db.session.scalar(select(Message).where(Message.kind == "signon-reconfirm"))
    assert mail is not None and mail.email == "ana@mijente.example"
    client.post(
        f"/letters/{letter.slug}/status",
        data={"status": "delivered", "delivered_on": "2025-05-01", "thank": "y"},
    )
    db.session.refresh(letter)
    assert letter.status == "delivered" and letter.delivered_on.isoformat() == "2025-05-01"
    assert db.session.scalar(select(func.count()).where(Message.kind == "thank-you")) == 1
    assert (
        db.session.scalar(
            select(func.count()).where(AuditEvent.entity_type == "letter", AuditEvent.entity_id == letter.id)
        )
        >= 4
    )


def test_search_as_you_type_and_the_plain_fallback(seeded, as_role):
    client = as_role("organizer")
    fragment = client.get(f"/letters/{SEED_LETTER_SLUG}/organizations?q=aclu", headers={"HX-Request": "true"})
    assert "American Civil Liberties Union" in fragment.get_data(as_text=True)
    assert "<html" not in fragment.get_data(as_text=True)
    page = client.get(f"/letters/{SEED_LETTER_SLUG}/organizations?q=electronic")
    assert "<html" in page.get_data(as_text=True) and "Electronic Frontier Foundation" in page.get_data(
        as_text=True
    )


def test_public_sign_on_confirm_review_and_timeline(seeded, client, db, users):
    letter = _collecting_letter(db)
    page = client.get(f"/sign/{letter.slug}").get_data(as_text=True)
    # Issue areas are checkboxes (several can be ticked without ctrl-click), not a multi-select.
    assert 'type="checkbox" name="issue_areas" value="privacy"' in page
    assert not re.search(r"<select[^>]*multiple", page)
    started = re.search(r'name="started" type="hidden" value="([^"]+)"', page).group(1)
    form = {
        "issue_areas": ["privacy", "immigration"],
        "organization_name": "Electronic Frontier Foundation",
        "listed_name": "EFF",
        "contact_name": "Cindy Cohn",
        "contact_title": "Executive Director",
        "email": "cindy@eff.example",
        "city": "San Francisco",
        "state": "CA",
        "consent_public": "y",
        "started": started,
    }
    # The honeypot: accepted-looking answer, nothing stored.
    assert client.post(f"/sign/{letter.slug}", data={**form, "website": "http://spam"}).status_code == 200
    assert db.session.scalar(select(func.count()).select_from(SignOnRequest)) == 0
    assert client.post(f"/sign/{letter.slug}", data={**form, "email": "not-an-address"}).status_code == 400
    assert client.post(f"/sign/{letter.slug}", data={**form, "started": "forged"}).status_code == 400
    assert (
        client.post(
            f"/sign/{letter.slug}", data={k: v for k, v in form.items() if k != "consent_public"}
        ).status_code
        == 400
    )
    response = client.post(f"/sign/{letter.slug}", data=form)
    assert response.status_code == 200 and "Check your mail" in response.get_data(as_text=True)
    request_row = db.session.scalar(select(SignOnRequest))
    assert request_row.status == "unconfirmed" and sorted(request_row.issue_areas) == ["immigration", "privacy"]
    # Unconfirmed signers are never shown publicly.
    assert (
        "EFF"
        not in client.get(f"/sign/{letter.slug}")
        .get_data(as_text=True)
        .split("Add your organization")[1]
        .split("</form>")[1]
    )
    raw = db.session.scalar(select(Message.raw).where(Message.kind == "signon-confirm"))
    text = email.message_from_string(raw, policy=email.policy.default).get_body(("plain",)).get_content()
    link = re.search(r"http://localhost(/sign/\S+/confirm/\S+)", text).group(1)
    # Opening the link (as a mail scanner does) shows a button and changes nothing; the button confirms.
    opened = client.get(link)
    assert opened.status_code == 200 and "Confirm the sign-on of Electronic Frontier Foundation" in opened.text
    db.session.refresh(request_row)
    assert request_row.status == "unconfirmed"
    thanks = client.post(link)
    assert thanks.status_code == 200
    # Waiting for review: the count does not read as if the signer's own sign-on had been left out.
    assert re.search(r'id="signed-count">Your sign-on will be listed once the organizers review it; '
                     r'\d+ organizations? ha(s|ve) signed', thanks.text), thanks.text
    assert client.post(link).status_code == 200  # twice is harmless
    db.session.refresh(request_row)
    eff = _org(db, "Electronic Frontier Foundation (EFF)")
    assert request_row.status == "confirmed" and request_row.proposed_organization_id == eff.id
    assert db.session.scalar(select(Signature).where(Signature.letter_id == letter.id)) is None
    # A forged or other-purpose token is refused.
    assert client.get(f"/sign/{letter.slug}/confirm/garbage").status_code == 400
    from tests.conftest import login

    login(client, users["organizer"].email)
    assert "Electronic Frontier Foundation" in client.get("/letters/review").get_data(as_text=True)
    client.post(f"/letters/review/{request_row.id}", data={"decision": "accept"})
    sig = db.session.scalar(select(Signature).where(Signature.letter_id == letter.id))
    assert sig.organization_id == eff.id and sig.status == "confirmed" and sig.listed_name == "EFF"
    assert (
        sig.authorized_email == "cindy@eff.example" and sig.source == "public-form" and sig.text_fingerprint
    )
    assert "Stop police surveillance tech" in client.get(f"/organizations/{eff.id}").get_data(as_text=True)
    assert db.session.scalar(select(func.count()).where(Message.kind == "signon-accepted")) == 1
    assert "Electronic Frontier Foundation" in [a.name for a in eff.aliases]


def test_a_new_organization_from_the_review_queue_and_declining(seeded, client, db, users):
    from crm.signon.services import accept_signon, confirm_public_signon, reject_signon, submit_public_signon

    letter = _collecting_letter(db)
    data = {
        "organization_name": "Brand New Collective",
        "contact_name": "A B",
        "email": "ab@new.example",
        "consent_public": True,
        "state": "OH",
        "issue_areas": ["privacy"],
    }
    row = submit_public_signon(letter, data)
    token = make_token("signon-confirm", {"r": row.id, "e": row.email})
    confirm_public_signon(letter.slug, token)
    assert row.proposed_organization_id is None
    accept_signon(row, None)
    org = _org(db, "Brand New Collective")
    assert org is not None and org.state == "OH"
    other = submit_public_signon(letter, {**data, "email": "cd@new.example"})
    reject_signon(other)
    assert db.session.scalar(select(func.count()).where(Message.kind == "signon-declined")) == 1


def test_public_page_only_for_collecting_letters_with_public_signon(client, db):
    LetterFactory(slug=SEED_LETTER_SLUG, status="delivered")
    assert client.get(f"/sign/{SEED_LETTER_SLUG}").status_code == 404
    private = _collecting_letter(db, slug="private-one", public=False)
    assert client.get(f"/sign/{private.slug}").status_code == 404


def test_minimum_fill_time(app, client, db):
    IssueAreaFactory(slug="privacy")
    IssueAreaFactory(slug="immigration")
    letter = _collecting_letter(db)
    app.config["SIGNON_MIN_FILL_SECONDS"] = 100
    page = client.get(f"/sign/{letter.slug}").get_data(as_text=True)
    # Issue areas are checkboxes (several can be ticked without ctrl-click), not a multi-select.
    assert 'type="checkbox" name="issue_areas" value="privacy"' in page
    assert not re.search(r"<select[^>]*multiple", page)
    started = re.search(r'name="started" type="hidden" value="([^"]+)"', page).group(1)
    form = {
        "issue_areas": ["privacy", "immigration"],
        "organization_name": "Quick Org",
        "contact_name": "Q",
        "email": "q@quick.example",
        "consent_public": "y",
        "started": started,
    }
    response = client.post(f"/sign/{letter.slug}", data=form)
    assert response.status_code == 400 and "faster than a person" in response.get_data(as_text=True)


def test_personal_link_signs_once_and_rejects_other_tokens(client, db):
    LetterFactory(slug=SEED_LETTER_SLUG, status="delivered")
    letter = _collecting_letter(db)
    org = OrganizationFactory(name="Upturn")
    url = personal_signon_url(letter, org, None)
    assert url.startswith("http://localhost/sign/police-tech-2025/p/")
    path = url.removeprefix("http://localhost")
    assert "Add Upturn as a signatory" in client.get(path).get_data(as_text=True)
    assert client.post(path, data={"listed_name": "Upturn, Inc.", "seen": "none"}).status_code == 200
    assert client.post(path, data={"listed_name": "Something else", "seen": "confirmed"}).status_code == 200
    sigs = list(db.session.scalars(select(Signature).where(Signature.letter_id == letter.id)))
    assert len(sigs) == 1 and sigs[0].listed_name == "Upturn, Inc." and sigs[0].source == "personal-link"
    other = make_token("unsubscribe", {"l": letter.id, "o": org.id, "c": None})
    assert client.get(f"/sign/{letter.slug}/p/{other}").status_code == 400
    assert client.get(f"/sign/{SEED_LETTER_SLUG}/p/{path.rsplit('/', 1)[1]}").status_code == 400


def test_personal_link_expires_and_records_who_authorized(client, db, monkeypatch):
    letter = _collecting_letter(db)
    org = OrganizationFactory(name="Upturn")
    contact = Contact(organization_id=org.id, first_name="Ana", last_name="Ruiz", email="ana@upturn.example")
    db.session.add(contact)
    db.session.commit()
    # Invited by hand (pending, nobody named), then signed through the contact's link: the contact authorized it.
    db.session.add(Signature(letter_id=letter.id, organization_id=org.id, listed_name="Upturn", status="pending"))
    db.session.commit()
    path = personal_signon_url(letter, org, contact).removeprefix("http://localhost")
    assert client.post(path, data={"listed_name": "Upturn", "seen": "pending"}).status_code == 200
    sig = db.session.scalar(select(Signature).where(Signature.letter_id == letter.id))
    db.session.refresh(sig)
    assert (sig.status, sig.authorized_email, sig.contact_id) == ("confirmed", "ana@upturn.example", contact.id)
    monkeypatch.setattr("crm.letters.personal_links.PERSONAL_LINK_MAX_AGE", -1)
    expired = client.get(path)
    assert expired.status_code == 400 and "expired" in expired.get_data(as_text=True)


def test_matrix_csv_and_save_as_segment(seeded, as_role, db):
    letter = _collecting_letter(db, slug="second-letter")
    client = as_role("organizer")
    page = client.get(f"/letters/participation?signed={SEED_LETTER_SLUG}&not_signed={letter.slug}")
    assert page.status_code == 200 and "<strong>68</strong>" in page.get_data(as_text=True)
    # The page's export is the shared, audited one: blank where an organization has no answer.
    csv_text = client.get(f"/exports/matrix.csv?signed={SEED_LETTER_SLUG}").get_data(as_text=True)
    assert csv_text.splitlines()[0] == f"organization,{SEED_LETTER_SLUG},{letter.slug}"
    assert len(csv_text.splitlines()) == 69 and csv_text.splitlines()[1].endswith(",signed,")
    assert client.get("/letters/participation?signed=no-such-letter").status_code == 400
    client.post(
        f"/letters/participation?signed={SEED_LETTER_SLUG}&not_signed={letter.slug}",
        data={"name": "Clearview, not yet police", "signed": SEED_LETTER_SLUG, "not_signed": letter.slug},
    )
    segment = db.session.scalar(select(Segment))
    assert segment.filter == {"signed": [SEED_LETTER_SLUG], "not_signed": [letter.slug]}


def test_merging_two_organizations_that_both_signed(seeded, as_role, db):
    keep, remove = _org(db, "Upturn"), _org(db, "X-Lab")
    db.session.add_all(
        [
            Contact(organization_id=keep.id, first_name="K", email="k@upturn.example"),
            Contact(organization_id=remove.id, first_name="R", email="r@xlab.example"),
        ]
    )
    db.session.add(Segment(name="affiliates of x", filter={"parent": remove.id}))
    db.session.commit()
    keep_id, remove_id = keep.id, remove.id
    client = as_role("organizer")
    preview = client.get(f"/organizations/merge?keep={keep_id}&remove={remove_id}").get_data(as_text=True)
    assert "Both signed dhs-clearview-ai-2021" in preview
    assert client.post("/organizations/merge", data={"keep": keep_id, "remove": keep_id}).status_code == 400
    response = client.post("/organizations/merge", data={"keep": keep_id, "remove": remove_id})
    assert response.status_code == 303
    db.session.expire_all()
    assert db.session.get(Organization, remove_id) is None
    letter_id = db.session.scalar(select(Letter.id).where(Letter.slug == SEED_LETTER_SLUG))
    assert (
        db.session.scalar(
            select(func.count()).where(Signature.letter_id == letter_id, Signature.organization_id == keep_id)
        )
        == 1
    )
    assert db.session.scalar(select(func.count()).where(Signature.letter_id == letter_id)) == 67
    emails = set(db.session.scalars(select(Contact.email).where(Contact.organization_id == keep_id)))
    assert emails == {"k@upturn.example", "r@xlab.example"}
    event = db.session.scalar(
        select(AuditEvent).where(AuditEvent.action == "merge", AuditEvent.entity_id == keep_id)
    )
    assert event is not None and "one signature was kept" in event.summary
    assert "X-Lab" in [a.name for a in db.session.get(Organization, keep_id).aliases]
    assert db.session.scalar(select(Segment)).filter["parent"] == keep_id


def test_duplicates_page(as_role, db):
    _aclu_and_affiliates()
    OrganizationFactory(name="Electronic Frontier Foundation (EFF)", acronym="EFF", website="https://www.eff.org")
    db.session.add(
        Organization(
            name="Electronic Frontier Foundation",
            sort_name="electronic frontier foundation",
            website="https://eff.org",
        )
    )
    db.session.commit()
    page = as_role("organizer").get("/organizations/duplicates").get_data(as_text=True)
    assert "Electronic Frontier Foundation (EFF)" in page and "same" in page
    assert "ACLU of Minnesota" not in page


def test_duplicates_page_finds_similar_names_but_not_affiliates(as_role, db):
    _aclu_and_affiliates()
    for name in ("Immigrant Defense Project", "Immigrant Defence Project", "Immigrant Defense Projects Network"):
        db.session.add(Organization(name=name, sort_name=name.lower()))
    db.session.commit()
    page = as_role("organizer").get("/organizations/duplicates").get_data(as_text=True)
    row = next(r for r in page.split("<tr>") if "Immigrant Defence Project" in r)
    assert "Immigrant Defense Project<" in row and "similar names (9" in row
    assert "Immigrant Defense Projects Network" not in page
    assert "ACLU of Minnesota" not in page and "ACLU of Southern California" not in page


def test_viewers_cannot_change_letters(as_role):
    LetterFactory(slug=SEED_LETTER_SLUG, status="delivered")
    client = as_role("viewer")
    assert client.get("/letters/new").status_code == 403
    assert client.post(f"/letters/{SEED_LETTER_SLUG}/status", data={"status": "closed"}).status_code == 403
    assert client.get("/letters/review").status_code == 403
    assert client.get("/letters/participation").status_code == 200


def test_the_letters_list_pages_through_many_letters(as_role, db):
    from crm.letters.writing import create_letter

    LetterFactory(slug=SEED_LETTER_SLUG, status="delivered")
    for n in range(55):
        create_letter({"title": f"Paged letter {n:02d}", "slug": f"paged-letter-{n:02d}"})
    client = as_role("viewer")
    first = client.get("/letters").get_data(as_text=True)
    assert first.count('<a href="/letters/') == 50 and "Page 1 of 2" in first
    second = client.get("/letters?page=2").get_data(as_text=True)
    assert second.count('<a href="/letters/') == 6 and "Page 2 of 2" in second  # 56 letters with the seed
    shown = set(re.findall(r'<a href="/letters/([a-z0-9-]+)"', first + second))
    assert len(shown) == 56 and SEED_LETTER_SLUG in shown


def test_the_letters_list_counts_who_a_merge_invited_and_who_has_not_signed(app, db, as_role):
    """Invited = organizations a sent merge message for the letter reached; test sends and failures are not
    invitations, and an organization mailed twice counts once."""
    letter = _collecting_letter(db, slug="invite-count")
    orgs = [add_named_organization(f"Invited {n}", user_id=None, summary="test") for n in range(4)]
    merge = MailMerge(name="Invitation", letter_id=letter.id, status="done")
    reminder = MailMerge(name="Reminder", letter_id=letter.id, status="done")
    db.session.add_all([merge, reminder])
    db.session.flush()
    sent = [(merge, orgs[0], "sent", "merge"), (merge, orgs[1], "sent", "merge"), (reminder, orgs[1], "sent", "merge"),
            (merge, orgs[2], "failed", "merge"), (merge, orgs[3], "sent", "test")]
    db.session.add_all(
        Message(merge_id=m.id, organization_id=o.id, email=f"{n}@example.org", status=status, kind=kind)
        for n, (m, o, status, kind) in enumerate(sent)
    )
    db.session.add(Signature(letter_id=letter.id, organization_id=orgs[0].id, listed_name=orgs[0].name,
                             status="confirmed"))
    db.session.commit()
    client = as_role("viewer")
    index = client.get("/letters").get_data(as_text=True)
    row = index[index.index("/letters/invite-count"):]
    row = row[: row.index("</tr>")]
    # Signed 1, invited 2 (orgs 0 and 1), not signed yet 1 (org 1), pending 0, awaiting review 0, declined 0.
    cells = re.findall(r'<td class="text-end">(?:<a[^>]*>)?(\d+)', row)
    assert cells == ["1", "2", "1", "0", "0", "0"], cells
    show = client.get("/letters/invite-count").get_data(as_text=True)
    assert "2 invited by mail merge, 1 not signed yet" in show
