"""A letter whose slug is corrected after invitations went out: personal links, confirmation links, the public page
and the staff pages under the old slug still lead to it, while a letter that takes the old slug has its pages."""

import email
import email.policy
import re

import pytest
from sqlalchemy import func, select

from crm.auth.services import create_token
from crm.letters import writing
from crm.letters.links import personal_signon_url
from crm.letters.models import Letter, LetterFormerSlug, Signature, SignOnRequest
from crm.letters.signatures import signature_of
from crm.letters.slugs import former_slugs, letter_had_slug
from crm.mailmerge.models import Message
from crm.organizations.models import Organization
from tests.conftest import login
from tests.factories import OrganizationFactory

# Former slugs are rows with a foreign key that cascades, looked up by pages: on PostgreSQL too.
pytestmark = pytest.mark.bothdb

BASE = "http://localhost"


@pytest.fixture
def upturn(db) -> Organization:
    """The partner invited to sign."""
    return OrganizationFactory(name="Upturn")


def collecting(slug: str, title: str) -> Letter:
    """A letter taking sign-ons on its public page and through personal links."""
    letter = writing.create_letter({"slug": slug, "title": title, "body": "We ask you to stop.",
                                    "public_signon": True})
    return writing.set_status(letter, "collecting")


@pytest.fixture
def letter(app, users, db) -> Letter:
    """The letter invitations went out for, under a slug with a typo."""
    return collecting("clearveiw-2021", "Stop Clearview")


def path(url: str) -> str:
    """A link without the base URL."""
    return url.removeprefix(BASE)


def organizer(app, users):
    """A client logged in as an organizer."""
    client = app.test_client()
    login(client, users["organizer"].email)
    return client


def edit_form(letter: Letter, page: str, **changes) -> dict:
    """The edit form as the browser sends it, at the version the page carries, with changes."""
    data = {"title": letter.title, "slug": letter.slug, "recipients": letter.recipients, "cc": letter.cc,
            "summary": letter.summary, "body": letter.body, "deadline": "", "public_signon": "y",
            "version": re.search(r'name="version" type="hidden" value="(\d+)"', page).group(1)}
    if letter.review_required:
        data["review_required"] = "y"
    return {**data, **changes}


def rename_on_the_page(client, letter: Letter, slug: str) -> None:
    """Correct the slug on the letter's edit page, as an organizer does."""
    url = f"/letters/{letter.slug}/edit"
    saved = client.post(url, data=edit_form(letter, client.get(url).text, slug=slug))
    assert saved.status_code == 303 and saved.headers["Location"] == f"/letters/{slug}"


def test_an_invitation_sent_before_a_rename_still_signs_the_letter(app, users, db, letter, upturn):
    link = path(personal_signon_url(letter, upturn))
    token = link.rsplit("/", 1)[1]
    rename_on_the_page(organizer(app, users), letter, "clearview-2021")
    db.session.expire_all()
    assert former_slugs(letter) == ["clearveiw-2021"]

    signer = app.test_client()
    opened = signer.get(link)
    assert opened.status_code == 302 and opened.headers["Location"] == f"/sign/clearview-2021/p/{token}"
    page = signer.get(opened.headers["Location"])
    assert page.status_code == 200 and "Add Upturn as a signatory" in page.text
    # The page opened before the rename posts to the old address: the signature is taken there.
    signed = signer.post(link, data={"seen": "none", "action": "sign", "listed_name": "Upturn"})
    assert signed.status_code == 200 and "Upturn is listed as a signatory" in signed.text
    assert f"{BASE}/sign/clearview-2021" in signed.text  # the address to share is the current one
    assert signature_of(letter, upturn.id).status == "confirmed"


def test_the_public_page_and_a_mailed_confirmation_follow_the_rename(app, users, db, letter):
    from crm.signon.services import form_timestamp_token

    app.config["SIGNON_MIN_FILL_SECONDS"] = 0  # the form is sent at once (app.config is restored after the test)
    public_form = {"organization_name": "Brand New Collective", "contact_name": "Rosa Delgado",
                   "email": "rosa@brandnew.example",
                   "consent_public": "y", "started": form_timestamp_token()}
    signer = app.test_client()
    assert signer.post("/sign/clearveiw-2021", data=public_form).status_code == 200
    confirm = confirmation_link(db, "rosa@brandnew.example")
    assert confirm.startswith("/sign/clearveiw-2021/confirm/")
    writing.update_letter(letter, {"slug": "clearview-2021"})

    moved = signer.get("/sign/clearveiw-2021")
    assert moved.status_code == 302 and moved.headers["Location"] == "/sign/clearview-2021"
    assert "Stop Clearview" in signer.get("/sign/clearveiw-2021", follow_redirects=True).text
    assert signer.get("/sign/clearveiw-2021/thanks", follow_redirects=True).request.path == "/sign/clearview-2021"
    opened = signer.get(confirm)
    assert opened.status_code == 302
    assert opened.headers["Location"] == confirm.replace("clearveiw-2021", "clearview-2021")
    assert signer.post(confirm).status_code == 200  # a confirmation page opened before the rename still confirms
    assert db.session.scalar(select(SignOnRequest.status)) == "confirmed"
    # A public form opened before the rename is taken where it lands.
    again = signer.post("/sign/clearveiw-2021", data={**public_form, "email": "li@other.example"})
    assert again.status_code == 200 and "Check your mail" in again.text
    assert db.session.scalar(select(func.count(SignOnRequest.id)).where(SignOnRequest.letter_id == letter.id)) == 2


def confirmation_link(db, to: str) -> str:
    """The confirmation link mailed to an address (path only)."""
    raw = db.session.scalar(select(Message.raw).where(Message.kind == "signon-confirm", Message.email == to))
    text = email.message_from_string(raw, policy=email.policy.default).get_body(("plain",)).get_content()
    return re.search(r"http://localhost(/sign/\S+/confirm/\S+)", text).group(1)


def test_a_letter_taking_the_old_slug_has_the_pages_but_old_links_sign_the_first(app, users, db, letter, upturn):
    link = path(personal_signon_url(letter, upturn))
    writing.update_letter(letter, {"slug": "clearview-2021"})
    newcomer = collecting("clearveiw-2021", "Stop Clearveiw (another campaign)")
    assert former_slugs(letter) == ["clearveiw-2021"]  # kept: the first letter's links carry its id

    signer = app.test_client()
    page = signer.get("/sign/clearveiw-2021")
    assert page.status_code == 200 and "another campaign" in page.text  # the current slug wins
    staff = organizer(app, users)
    assert "another campaign" in staff.get("/letters/clearveiw-2021").text
    opened = signer.get(link)
    assert opened.status_code == 302 and opened.headers["Location"].startswith("/sign/clearview-2021/p/")
    assert signer.post(link, data={"seen": "none", "action": "sign"}).status_code == 200
    assert signature_of(letter, upturn.id).status == "confirmed"
    assert signature_of(newcomer, upturn.id) is None
    # A link of the newcomer under the first letter's current slug is not valid.
    wrong = personal_signon_url(newcomer, upturn).replace("/sign/clearveiw-2021/", "/sign/clearview-2021/")
    assert signer.get(path(wrong)).status_code == 400
    # When the newcomer leaves the slug too, its page goes to whichever letter had it last.
    writing.update_letter(newcomer, {"slug": "clearveiw-2"})
    assert signer.get("/sign/clearveiw-2021").headers["Location"] == "/sign/clearveiw-2"


def test_staff_pages_under_an_old_slug_go_to_the_same_page(app, users, db, letter, upturn):
    sig = Signature(letter_id=letter.id, organization_id=upturn.id, listed_name="Upturn", status="confirmed")
    db.session.add(sig)
    db.session.commit()
    writing.update_letter(letter, {"slug": "clearview-2021"})
    staff = organizer(app, users)
    for page in ("", "/edit", "/print", "/signatories.txt", "/signatories.md", "/signatories.html",
                 "/signatories.csv", "/import", f"/signatures/{sig.id}", "/organizations?q=up%20turn"):
        moved = staff.get(f"/letters/clearveiw-2021{page}")
        assert (moved.status_code, moved.headers["Location"]) == (302, f"/letters/clearview-2021{page}"), page
        assert staff.get(moved.headers["Location"]).status_code == 200, page
    assert "Upturn" in staff.get("/letters/clearveiw-2021/signatories.txt", follow_redirects=True).text
    # A form sent to the old address keeps its method and fields.
    closed = staff.post("/letters/clearveiw-2021/status", data={"status": "closed"})
    assert (closed.status_code, closed.headers["Location"]) == (307, "/letters/clearview-2021/status")
    assert staff.post("/letters/clearveiw-2021/status", data={"status": "closed"},
                      follow_redirects=True).status_code == 200
    db.session.refresh(letter)
    assert letter.status == "closed"
    # The JSON API stays strict: scripts name a letter by its current slug.
    headers = {"Authorization": f"Bearer {create_token(users['organizer'].email).secret}"}
    assert staff.get("/api/v1/letters/clearveiw-2021", headers=headers).status_code == 404
    assert staff.get("/api/v1/letters/clearview-2021", headers=headers).status_code == 200


def test_an_edit_page_opened_before_a_rename_shows_the_conflict_not_a_404(app, users, db, letter):
    first, second = organizer(app, users), app.test_client()
    login(second, users["admin"].email)
    opened_by_second = second.get("/letters/clearveiw-2021/edit").text
    rename_on_the_page(first, letter, "clearview-2021")
    response = second.post("/letters/clearveiw-2021/edit",
                           data=edit_form(letter, opened_by_second, slug="clearveiw-2021", summary="Short."),
                           follow_redirects=True)
    assert response.status_code == 409 and response.request.path == "/letters/clearview-2021/edit"
    assert "Someone else saved this letter" in response.text
    assert "Short.</textarea>" in response.text  # the second organizer's input is kept
    assert "earlier: clearveiw-2021" in response.text
    db.session.expire_all()
    current = db.session.get(Letter, letter.id)
    assert (current.slug, current.summary) == ("clearview-2021", "")


def test_renaming_back_and_forth_keeps_one_row_per_old_slug(db, letter):
    writing.update_letter(letter, {"slug": "clearview-2021"})
    writing.update_letter(letter, {"slug": "clearveiw-2021"})  # taking back its own former slug forgets it
    assert former_slugs(letter) == ["clearview-2021"]
    writing.update_letter(letter, {"slug": "clearview-2021"})
    writing.update_letter(letter, {"slug": "dhs-clearview-2021"})
    assert sorted(former_slugs(letter)) == ["clearveiw-2021", "clearview-2021"]
    assert letter_had_slug(letter, "clearveiw-2021") and not letter_had_slug(letter, "other")
    # A save refused for another field remembers nothing.
    with pytest.raises(writing.LetterError):
        writing.update_letter(letter, {"slug": "fourth-name", "title": ""})
    assert "dhs-clearview-2021" not in former_slugs(letter)


def test_deleting_a_letter_deletes_its_former_slugs(app, users, db):
    draft = writing.create_letter({"slug": "draft-typo", "title": "A draft"})
    writing.update_letter(draft, {"slug": "draft-fixed"})
    assert db.session.scalar(select(func.count(LetterFormerSlug.id))) == 1
    writing.delete_letter(draft)
    assert db.session.scalar(select(func.count(LetterFormerSlug.id))) == 0
    staff = organizer(app, users)
    assert staff.get("/letters/draft-typo").status_code == 404


def test_unknown_and_private_slugs_still_404(app, users, db, letter, upturn):
    draft = writing.create_letter({"slug": "private-typo", "title": "Not public yet", "public_signon": True})
    writing.update_letter(draft, {"slug": "private-fixed"})
    signer = app.test_client()
    assert signer.get("/sign/no-such-letter").status_code == 404
    assert signer.get("/sign/private-typo").status_code == 404  # a draft's new slug is not told
    link = path(personal_signon_url(letter, upturn))
    assert signer.get(link.replace("/clearveiw-2021/", "/no-such-letter/")).status_code == 400
    staff = organizer(app, users)
    assert staff.get("/letters/no-such-letter").status_code == 404
    assert staff.post("/letters/no-such-letter/edit", data={"title": "x"}).status_code == 404
    assert staff.get("/letters/private-typo").headers["Location"] == "/letters/private-fixed"


def test_filters_saved_with_the_old_slug_still_find_the_signers(app, users, db, letter, upturn):
    from crm.letters.signatures import add_signature
    from crm.segments.services import create_segment, segment_counts

    add_signature(letter, upturn)
    OrganizationFactory(name="Not A Signer")
    db.session.commit()
    segment = create_segment("Clearview signers", {"signed": ["clearveiw-2021"]})
    client = organizer(app, users)
    rename_on_the_page(client, letter, "clearview-2021")

    # A segment (or a merge's audience) saved before the rename, and a bookmarked list, name the old slug.
    assert segment_counts(segment.id).organizations == 1
    listed = client.get("/organizations?signed=clearveiw-2021")
    assert listed.status_code == 200 and "Upturn" in listed.text and "Not A Signer" not in listed.text
    assert client.get("/organizations?not_signed=clearveiw-2021").status_code == 200
    # A slug no letter ever had is still refused, with the reason.
    unknown = client.get("/organizations?signed=no-such-letter")
    assert unknown.status_code == 400 and "Unknown letter: no-such-letter." in unknown.text


def test_a_filter_follows_the_latest_letter_to_leave_a_slug(db):
    from crm.letters.slugs import letter_ids_by_slug

    first = collecting("draft-name", "First")
    writing.update_letter(first, {"slug": "first-letter"})
    second = collecting("draft-name", "Second")  # takes the slug the first left, then leaves it too
    writing.update_letter(second, {"slug": "second-letter"})
    assert letter_ids_by_slug(["draft-name", "first-letter", "never-was"]) == {"draft-name": second.id,
                                                                               "first-letter": first.id}
