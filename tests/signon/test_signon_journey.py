"""The signer's journey and the traps on it: deadlines, old personal links, strangers, what waits for review,
and the sign-on mails organizers write."""

import email
import email.policy
import re
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from crm.common.tokens import make_token
from crm.contacts.models import Contact
from crm.letters.deadlines import deadline_passed, signed_on, takes_signatures
from crm.letters.links import personal_signon_url
from crm.letters.models import Letter, Signature, SignOnRequest
from crm.letters.personal_links import LinkRevoked, read_personal_link
from crm.letters.signatures import signature_of
from crm.mailmerge.models import Message
from crm.organizations.models import Organization
from crm.signon.services import submit_public_signon
from tests.factories import OrganizationFactory

BASE = "http://localhost"


@pytest.fixture
def app_config():
    """Sign-on forms may be sent at once in these tests."""
    return {"SIGNON_MIN_FILL_SECONDS": 0}


@pytest.fixture
def partners(db):
    """Upturn and Mijente, the organizations these signers sign for."""
    OrganizationFactory(name="Upturn", issue_areas=["civil-rights", "privacy"])
    OrganizationFactory(name="Mijente", issue_areas=["immigration"])


def _org(db, name: str) -> Organization:
    """An organization by exact name."""
    return db.session.scalar(select(Organization).where(Organization.name == name))


def _letter(db, *, deadline: date | None = None, review: bool = True) -> Letter:
    """A collecting letter with public sign-on."""
    letter = Letter(slug="end-dragnets", title="End border dragnets", body="We ask you to **stop**.",
                    status="collecting", public_signon=True, review_required=review, deadline=deadline)
    db.session.add(letter)
    db.session.commit()
    return letter


def _public_form(**extra) -> dict:
    """A filled public sign-on form (with a form-shown stamp, as the page gives one)."""
    from crm.signon.services import form_timestamp_token

    return {"organization_name": "Brand New Collective", "contact_name": "Rosa Delgado",
            "email": "rosa@brandnew.example", "consent_public": "y", "started": form_timestamp_token(), **extra}


def _confirm_link(db, to: str) -> str:
    """The confirmation link mailed to an address (path only)."""
    raw = db.session.scalar(select(Message.raw).where(Message.kind == "signon-confirm", Message.email == to))
    text = email.message_from_string(raw, policy=email.policy.default).get_body(("plain",)).get_content()
    return re.search(r"http://localhost(/sign/\S+/confirm/\S+)", text).group(1)


def _path(url: str) -> str:
    """A link without the base URL."""
    return url.removeprefix(BASE)


# --- 13.5: deadlines -----------------------------------------------------------------------------------------


def test_deadline_ends_at_midnight_in_the_instance_time_zone(app, db):
    letter = Letter(slug="x", title="x", status="collecting", deadline=date(2026, 12, 3))
    # 03:00 UTC on 4 December is still 3 December (22:00) in New York.
    late_evening = datetime(2026, 12, 4, 3, 0, tzinfo=UTC)
    app.config["CRM_TIMEZONE"] = "America/New_York"
    assert not deadline_passed(letter, late_evening) and takes_signatures(letter, late_evening)
    assert deadline_passed(letter, datetime(2026, 12, 4, 5, 0, tzinfo=UTC))
    app.config["CRM_TIMEZONE"] = "UTC"
    assert deadline_passed(letter, late_evening) and not takes_signatures(letter, late_evening)
    assert not deadline_passed(letter, datetime(2026, 12, 3, 23, 59, tzinfo=UTC))


def test_an_unknown_time_zone_is_refused_at_startup():
    from crm.config import from_environment

    with pytest.raises(RuntimeError, match="CRM_TIMEZONE"):
        from_environment({"CRM_TIMEZONE": "Mars/Olympus"})
    assert from_environment({"CRM_TIMEZONE": "Europe/Madrid"})["CRM_TIMEZONE"] == "Europe/Madrid"


def test_after_the_deadline_nothing_is_recorded_until_the_organizer_extends_it(partners, client, db, as_role):
    yesterday = date.today() - timedelta(days=2)  # two days: whatever the hour, it is over in UTC
    letter = _letter(db)
    # A sign-on submitted in time whose confirmation comes after the deadline.
    submit_public_signon(letter, _public_form(email="late@brandnew.example"))
    late_confirm = _confirm_link(db, "late@brandnew.example")
    upturn = _org(db, "Upturn")
    link = _path(personal_signon_url(letter, upturn))
    letter.deadline = yesterday
    db.session.commit()

    page = client.get(f"/sign/{letter.slug}")
    assert page.status_code == 200 and "Sign-ons for this letter closed on" in page.text
    assert "Sign the letter" not in page.text
    posted = client.post(f"/sign/{letter.slug}", data=_public_form())
    assert posted.status_code == 409 and "closed" in posted.text
    personal = client.get(link)
    assert "closed on" in personal.text and "Add Upturn as a signatory" not in personal.text
    assert client.post(link, data={"seen": "none", "action": "sign"}).status_code == 409
    assert "Sign-ons are closed" in client.get(late_confirm).text
    refused = client.post(late_confirm)
    assert refused.status_code == 409 and "closed on" in refused.text
    assert db.session.scalar(select(func.count(Signature.id)).where(Signature.letter_id == letter.id)) == 0
    assert db.session.scalar(select(func.count(SignOnRequest.id))) == 1
    assert db.session.scalar(select(SignOnRequest.status)) == "unconfirmed"

    organizer = as_role("organizer")
    assert "deadline passed" in re.search(r"End border dragnets.*?</tr>", organizer.get("/letters").text, re.S).group(0)
    shown = organizer.get(f"/letters/{letter.slug}").text
    assert "Sign-ons are closed: the deadline passed" in shown and "Extend deadline" in shown
    assert organizer.post(f"/letters/{letter.slug}/deadline",
                          data={"deadline": yesterday.isoformat()}).status_code == 303  # refused, with a message
    db.session.refresh(letter)
    assert letter.deadline == yesterday
    later = date.today() + timedelta(days=7)
    organizer.post(f"/letters/{letter.slug}/deadline", data={"deadline": later.isoformat()})
    db.session.refresh(letter)
    assert letter.deadline == later
    assert "Sign-ons are closed" not in organizer.get(f"/letters/{letter.slug}").text
    assert client.post(link, data={"seen": "none", "action": "sign"}).status_code == 200
    assert signature_of(letter, upturn.id).status == "confirmed"


# --- 14.8 / 13.9: personal links -----------------------------------------------------------------------------


def test_a_personal_link_shows_the_signature_and_withdraws_it(partners, client, db):
    letter = _letter(db)
    mijente = _org(db, "Mijente")
    ana = Contact(organization_id=mijente.id, first_name="Ana", last_name="Ruiz", email="ana@mijente.example")
    db.session.add(ana)
    db.session.commit()
    link = _path(personal_signon_url(letter, mijente, ana))
    signed = client.post(link, data={"seen": "none", "action": "sign", "listed_name": "Mijente"})
    assert signed.status_code == 200 and "Ask your partners to sign too" in signed.text
    assert "1 organization signed" in signed.text and f"{BASE}/sign/{letter.slug}" in signed.text
    again = client.get(link).text
    sig = signature_of(letter, mijente.id)
    assert f"Mijente signed on {signed_on(sig)} (by Ana Ruiz)" in again
    assert re.search(r"\d{1,2} (January|February|March|April|May|June|July|August|September|October|November|"
                     r"December) \d{4}", signed_on(sig))
    assert "Withdraw Mijente" in again
    # Withdrawing needs the state the page showed.
    assert client.post(link, data={"seen": "none", "action": "withdraw"}).status_code == 409
    assert client.post(link, data={"seen": "confirmed", "action": "withdraw"}).status_code == 200
    db.session.refresh(sig)
    assert sig.status == "withdrawn"


@pytest.mark.parametrize("status", ["withdrawn", "declined"])
def test_an_old_link_never_overturns_a_withdrawn_or_declined_answer_unasked(partners, client, db, status):
    letter = _letter(db)
    upturn = _org(db, "Upturn")
    link = _path(personal_signon_url(letter, upturn))  # mailed while nobody had answered
    db.session.add(Signature(letter_id=letter.id, organization_id=upturn.id, listed_name="Upturn", status=status))
    db.session.commit()
    # The form of the page as it was before (nothing answered), sent now: shown the answer, nothing changes.
    stale = client.post(link, data={"seen": "none", "action": "sign", "listed_name": "Upturn"})
    assert stale.status_code == 409 and "changed since this page was shown" in stale.text
    assert ("withdrew" if status == "withdrawn" else "declined") in stale.text
    assert client.post(link, data={"action": "sign"}).status_code == 409  # no state at all: the same
    sig = signature_of(letter, upturn.id)
    db.session.refresh(sig)
    assert sig.status == status
    page = client.get(link).text
    assert "Yes, sign again for Upturn" in page
    assert client.post(link, data={"seen": status, "action": "sign", "listed_name": "Upturn"}).status_code == 200
    db.session.refresh(sig)
    assert sig.status == "confirmed"


def test_an_archived_organization_cannot_sign(partners, client, db):
    letter = _letter(db)
    upturn = _org(db, "Upturn")
    link = _path(personal_signon_url(letter, upturn))
    upturn.archived = True
    db.session.commit()
    page = client.get(link)
    assert page.status_code == 410 and "no longer active in our records" in page.text
    assert client.post(link, data={"seen": "none", "action": "sign"}).status_code == 410
    assert signature_of(letter, upturn.id) is None


def test_an_organizer_revokes_an_organizations_links(partners, client, db, as_role):
    letter = _letter(db)
    upturn, mijente = _org(db, "Upturn"), _org(db, "Mijente")
    old = _path(personal_signon_url(letter, upturn))
    legacy = f"/sign/{letter.slug}/p/" + make_token("signon", {"l": letter.id, "o": upturn.id, "c": None})
    other = _path(personal_signon_url(letter, mijente))
    organizer = as_role("organizer")
    assert organizer.post(f"/letters/{letter.slug}/revoke-links",
                          data={"organization_id": "x"}).status_code == 303  # bad input: nothing revoked
    assert client.get(old).status_code == 200
    organizer.post(f"/letters/{letter.slug}/revoke-links", data={"organization_id": upturn.id})
    for link in (old, legacy):
        page = client.get(link)
        assert page.status_code == 410 and "withdrew this link" in page.text
        assert client.post(link, data={"seen": "none", "action": "sign"}).status_code == 410
    assert signature_of(letter, upturn.id) is None
    assert client.get(other).status_code == 200  # another organization's links still work
    fresh = _path(personal_signon_url(letter, upturn))
    assert client.get(fresh).status_code == 200


def test_revoking_links_through_the_api(partners, client, db, users):
    from crm.auth.services import create_token

    letter = _letter(db)
    upturn = _org(db, "Upturn")
    old = _path(personal_signon_url(letter, upturn))
    headers = {"Authorization": f"Bearer {create_token(users['organizer'].email).secret}"}
    url = f"/api/v1/letters/{letter.slug}/revoke-links"
    assert client.post(url, json={"organization_id": 999999}, headers=headers).status_code == 400
    assert client.post(url, json={"organization_id": "x"}, headers=headers).status_code in (400, 422)
    assert client.post(url, json={"organization_id": upturn.id}, headers=headers).status_code == 204
    assert client.get(old).status_code == 410


# --- 14.7: strangers ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("address", "listed"), [
    ("someone@gmail.example", False),  # a stranger: waits for review although the letter needs none
    ("known@upturn.example", True),  # one of its contacts
    ("new.person@upturn.org", True),  # at its website's domain
])
def test_a_sign_on_for_an_existing_organization_from_a_stranger_waits(partners, client, db, address, listed):
    letter = _letter(db, review=False)
    upturn = _org(db, "Upturn")
    upturn.website = "https://www.upturn.org/"
    db.session.add(Contact(organization_id=upturn.id, first_name="K", email="known@upturn.example"))
    db.session.commit()
    contacts_before = db.session.scalar(select(func.count(Contact.id)))
    assert client.post(f"/sign/{letter.slug}",
                       data=_public_form(organization_name="Upturn", email=address)).status_code == 200
    link = _confirm_link(db, address)
    opened = client.get(link)  # a mail scanner opening the link changes nothing
    assert opened.status_code == 200 and "Confirm the sign-on of Upturn" in opened.text
    assert db.session.scalar(select(SignOnRequest.status)) == "unconfirmed"
    done = client.post(link)
    row = db.session.scalar(select(SignOnRequest))
    db.session.refresh(row)
    sig = signature_of(letter, upturn.id)
    if listed:
        assert row.status == "accepted" and sig is not None and sig.status == "confirmed"
        assert "is now listed" in done.text
    else:
        assert row.status == "confirmed" and sig is None
        assert "not a contact of Upturn" in row.review_reason and "will review it" in done.text
        assert db.session.scalar(select(func.count(Contact.id))) == contacts_before  # not a contact until accepted
        assert db.session.scalar(select(Contact.id).where(Contact.email == address)) is None


# --- 13.6: nothing waiting is invisible ---------------------------------------------------------------------


def test_sign_ons_waiting_for_review_are_counted_everywhere(partners, client, db, as_role, users):
    from crm.auth.services import create_token

    letter = _letter(db)
    client.post(f"/sign/{letter.slug}", data=_public_form())
    client.post(_confirm_link(db, "rosa@brandnew.example"))
    assert db.session.scalar(select(SignOnRequest.status)) == "confirmed"

    organizer = as_role("organizer")
    listing = organizer.get("/letters").text
    row = re.search(r"End border dragnets.*?</tr>", listing, re.S).group(0)
    assert re.search(r">1</a></td>", row)  # the "Awaiting review" column
    assert "<strong>1 awaiting review</strong>" in organizer.get(f"/letters/{letter.slug}").text
    dashboard = organizer.get("/").text
    assert "1 awaiting review" in dashboard
    assert re.search(r'id="nav-review".*?>1</span>', dashboard, re.S)
    token = create_token(users["viewer"].email).secret
    api = client.get(f"/api/v1/letters/{letter.slug}", headers={"Authorization": f"Bearer {token}"}).json
    assert api["awaiting_review"] == 1 and api["deadline_passed"] is False
    schema = client.get("/api/v1/openapi.json").json["components"]["schemas"]
    assert "awaiting_review" in schema["LetterDetail"]["properties"]
    viewer = as_role("viewer")
    assert 'id="nav-review"' not in viewer.get("/").text  # organizers only


# --- 13.9: the mails, as organizers write them -----------------------------------------------------------------


def test_organizers_edit_preview_and_send_the_confirmation_mail(partners, client, db, as_role):
    letter = _letter(db)
    organizer = as_role("organizer")
    listing = organizer.get("/sign-on-mails").text
    assert "Confirm a public sign-on" in listing and "built-in" in listing
    page = organizer.get("/sign-on-mails/signon-confirm").text
    assert "Confirm your sign-on: Stop the use of face recognition by DHS" in page  # a preview at once
    assert organizer.get("/sign-on-mails/nothing").status_code == 404
    bad = organizer.post("/sign-on-mails/signon-confirm",
                         data={"action": "save", "subject": "Hi {{ contact.shoe }}", "body": "{% for %}"})
    assert bad.status_code == 400 and "unknown field contact.shoe" in bad.text
    hostile = organizer.post("/sign-on-mails/signon-confirm", data={
        "action": "save", "subject": "x", "body": "{{ history | first }}"})
    assert hostile.status_code == 400 and "This wording cannot be used" in hostile.text
    body = ("Dear {{ contact.first_name }},\n\nPlease confirm **{{ org.name }}** for “{{ letter.title }}”:\n\n"
            "{{ sign_on_url }}\n")
    preview = organizer.post("/sign-on-mails/signon-confirm",
                             data={"action": "preview", "subject": "Please confirm: {{ letter.title }}", "body": body})
    assert preview.status_code == 200 and "Dear Ana," in preview.text
    assert organizer.post("/sign-on-mails/signon-confirm", data={
        "action": "save", "subject": "Please confirm: {{ letter.title }}", "body": body}).status_code == 303
    client.post(f"/sign/{letter.slug}", data=_public_form())
    raw = db.session.scalar(select(Message.raw).where(Message.kind == "signon-confirm"))
    message = email.message_from_string(raw, policy=email.policy.default)
    assert message["Subject"] == "Please confirm: End border dragnets"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["List-Unsubscribe"].startswith(f"<{BASE}/u/")
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert "Dear Rosa," in text and "/confirm/" in text and "Unsubscribe: http://localhost/u/" in text
    assert "<strong>Brand New Collective</strong>" in html and "Unsubscribe</a>" in html
    # Back to the built-in wording.
    organizer.post("/sign-on-mails/signon-confirm", data={"action": "reset", "subject": "x", "body": "x"})
    client.post(f"/sign/{letter.slug}", data=_public_form(email="second@brandnew.example"))
    second = db.session.scalar(select(Message.subject).where(Message.email == "second@brandnew.example"))
    assert second == "Confirm your sign-on: End border dragnets"


def test_a_broken_wording_for_one_signer_falls_back_to_the_built_in_one(partners, client, db, as_role):
    from crm.signon.models import SignOnMailTemplate

    letter = _letter(db)
    # Saved when it rendered for the sample signer; this signer has no title, which the wording prints bare.
    db.session.add(SignOnMailTemplate(kind="signon-confirm", subject="For {{ contact.title }}", body="x"))
    db.session.commit()
    assert client.post(f"/sign/{letter.slug}", data=_public_form()).status_code == 200
    assert db.session.scalar(select(Message.subject)) == "Confirm your sign-on: End border dragnets"


def test_extend_and_revoke_from_the_command_line(partners, runner, db):
    letter = _letter(db, deadline=date.today() - timedelta(days=2))
    upturn = _org(db, "Upturn")
    link = personal_signon_url(letter, upturn)
    refused = runner.invoke(args=["letter", "extend", letter.slug, "--deadline", "2001-01-01"])
    assert refused.exit_code == 1 and "or a later day" in refused.output
    assert runner.invoke(args=["letter", "extend", letter.slug, "--deadline", "yesterday"]).exit_code == 1
    later = date.today() + timedelta(days=3)
    done = runner.invoke(args=["letter", "extend", letter.slug, "--deadline", later.isoformat()])
    assert done.exit_code == 0 and "open until the end of" in done.output
    db.session.refresh(letter)
    assert letter.deadline == later and takes_signatures(letter)
    revoked = runner.invoke(args=["letter", "revoke-links", letter.slug, str(upturn.id)])
    assert revoked.exit_code == 0, revoked.output
    with pytest.raises(LinkRevoked):
        read_personal_link(letter.slug, link.rsplit("/", 1)[1])
    assert runner.invoke(args=["letter", "revoke-links", letter.slug, "999999"]).exit_code == 1
