"""Public sign-on: the form's checks, confirmation mail, review queue and signer notifications."""

import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from crm.audit.services import record
from crm.common.text import single_line
from crm.common.tokens import TokenError, make_token, read_token
from crm.common.types import utcnow
from crm.common.urls import public_url
from crm.contacts.models import Contact
from crm.extensions import db
from crm.letters.deadlines import closed_message, takes_signatures
from crm.letters.models import Letter, SignOnRequest
from crm.letters.signatures import add_signature, text_fingerprint
from crm.letters.slugs import letter_had_slug
from crm.letters.writing import LetterError
from crm.organizations.creation import add_named_organization
from crm.organizations.editing import add_alias
from crm.organizations.matching import match_many, match_organization
from crm.organizations.models import IssueArea, Organization
from crm.signon.mails import enqueue_signon_mail

CONFIRM_MAX_AGE = 60 * 60 * 24 * 7  # a week to click the confirmation link
FORM_TOKEN_MAX_AGE = 60 * 60 * 24  # a form older than a day is refused (reload the page)


class SignOnError(ValueError):
    """A sign-on that cannot be taken; the message is for the person signing (or the form field it is about)."""

    def __init__(self, message: str, field: str | None = None):
        """The message, and the form field it belongs next to (None: the whole form)."""
        super().__init__(message)
        self.field = field


def has_public_page(letter: Letter | None) -> bool:
    """Whether the letter has a public page at all (drafts and private letters do not: a 404)."""
    return letter is not None and letter.public_signon and letter.status != "draft"


def open_for_signon(letter: Letter | None) -> bool:
    """Whether the public page of this letter takes sign-ons (collecting, and its deadline not over)."""
    return has_public_page(letter) and takes_signatures(letter)


def form_timestamp_token() -> str:
    """A signed 'form shown at' timestamp, put in the form so fill time can be checked on submit."""
    return make_token("signon-confirm", {"t": time.time(), "form": 1})


def check_fill_time(token: str) -> None:
    """Refuse a form sent faster than SIGNON_MIN_FILL_SECONDS, or with a forged stamp."""
    try:
        payload = read_token("signon-confirm", token, max_age=FORM_TOKEN_MAX_AGE)
    except TokenError as exc:
        raise SignOnError("The form expired. Reload the page and try again.") from exc
    if (
        not isinstance(payload, dict)
        or payload.get("form") != 1
        or not isinstance(payload.get("t"), int | float)
    ):
        raise SignOnError("The form expired. Reload the page and try again.")
    minimum = current_app.config.get("SIGNON_MIN_FILL_SECONDS", 3)
    if time.time() - payload["t"] < minimum:
        raise SignOnError(
            "That was faster than a person can fill the form. Please check it and send it again."
        )


def submit_public_signon(letter: Letter, data: dict, remote_addr: str = "") -> SignOnRequest:
    """Hold a public sign-on as unconfirmed and mail the signer a confirmation link."""
    if not open_for_signon(letter):
        raise SignOnError(closed_message(letter))
    request_row = SignOnRequest(
        letter_id=letter.id,
        organization_name=single_line(data["organization_name"])[:300],
        listed_name=single_line(data.get("listed_name") or data["organization_name"])[:300],
        contact_name=single_line(data.get("contact_name"))[:200],
        contact_title=single_line(data.get("contact_title"))[:200],
        email=single_line(data["email"]).lower()[:254],
        city=single_line(data.get("city"))[:120],
        state=(data.get("state") or "").upper()[:2],
        org_type=data.get("org_type") or "",
        issue_areas=list(data.get("issue_areas") or [])[:20],
        consent_public=bool(data.get("consent_public")),
        status="unconfirmed",
        text_fingerprint=text_fingerprint(letter),
        remote_addr=(remote_addr or "")[:64],
    )
    db.session.add(request_row)
    db.session.flush()
    token = make_token("signon-confirm", {"r": request_row.id, "e": request_row.email})
    enqueue_signon_mail(
        "signon-confirm", request_row.email, letter=letter, org_name=request_row.organization_name,
        contact_name=request_row.contact_name, contact_title=request_row.contact_title,
        link=public_url(f"/sign/{letter.slug}/confirm/{token}"),
    )
    record(
        "submit",
        "signon",
        request_row.id,
        summary=f"Public sign-on for {letter.slug} from {request_row.organization_name} (unconfirmed)",
    )
    db.session.commit()
    return request_row


def read_confirmation(slug: str, token: str) -> SignOnRequest:
    """The sign-on a mailed confirmation link stands for (TokenError when not valid)."""
    payload = read_token("signon-confirm", token, max_age=CONFIRM_MAX_AGE)
    if not isinstance(payload, dict) or not isinstance(payload.get("r"), int):
        raise TokenError("This link is not valid.")
    row = db.session.get(SignOnRequest, payload["r"])
    # The letter may have been renamed since the link was mailed: its former slugs still lead to it.
    if row is None or row.email != payload.get("e") or not letter_had_slug(row.letter, slug):
        raise TokenError("This link is not valid.")
    return row


def website_domain(website: str | None) -> str:
    """The host of an organization's website without 'www.' ('' when it has none)."""
    text = (website or "").strip().lower()
    if not text:
        return ""
    host = urlsplit(text if "//" in text else f"//{text}").hostname or ""
    return host.removeprefix("www.")


def speaks_for(organization: Organization, email: str) -> bool:
    """Whether an address may sign for an existing organization without a person looking: one of its active
    contacts, or an address at its website's domain (or a subdomain of it)."""
    email = email.strip().lower()
    contact = db.session.scalar(select(Contact.id).where(
        Contact.organization_id == organization.id, Contact.email == email, Contact.status == "active"))
    if contact is not None:
        return True
    domain = website_domain(organization.website)
    address_domain = email.rpartition("@")[2]
    return bool(domain) and (address_domain == domain or address_domain.endswith("." + domain))


def confirm_public_signon(slug: str, token: str) -> SignOnRequest:
    """Confirm a sign-on by its mailed link (a POST: mail scanners open links) and propose a match.

    Without review it is accepted at once only when the match is sure and the address speaks for the
    organization; a stranger's sign-on for an existing organization always waits for a person.
    """
    row = read_confirmation(slug, token)
    if row.status != "unconfirmed":
        return row  # clicking twice is harmless
    if not takes_signatures(row.letter):
        raise SignOnError(closed_message(row.letter))
    row.status = "confirmed"
    row.confirmed_at = utcnow()
    found = match_organization(row.organization_name)
    row.proposed_organization_id = found.organization_id
    row.confidence = round(found.confidence, 3)
    row.match_method = found.method[:40]
    proposed = db.session.get(Organization, found.organization_id) if found.organization_id else None
    trusted = proposed is not None and speaks_for(proposed, row.email)
    if proposed is not None and not trusted:
        row.review_reason = (f"{row.email} is not a contact of {proposed.name} and not at its website's "
                             "domain")[:300]
    record(
        "confirm", "signon", row.id, summary=f"{row.email} confirmed the sign-on of {row.organization_name}"
    )
    db.session.commit()
    if not row.letter.review_required and found.applied and trusted:
        accept_signon(row, found.organization_id)
    return row


def review_queue(letter: Letter | None = None) -> list[SignOnRequest]:
    """Confirmed sign-ons waiting for a person, oldest first."""
    query = (
        select(SignOnRequest)
        .where(SignOnRequest.status == "confirmed")
        .order_by(SignOnRequest.confirmed_at, SignOnRequest.id)
        .options(selectinload(SignOnRequest.letter), selectinload(SignOnRequest.proposed_organization))
    )
    if letter is not None:
        query = query.where(SignOnRequest.letter_id == letter.id)
    return list(db.session.scalars(query))


@dataclass
class QueueEntry:
    """A review-queue row with the organizations it may be: the stored proposal first, then the matcher's
    other candidates, each with its confidence (0-1)."""

    request: SignOnRequest
    candidates: list[tuple[Organization, float]]
    # Why the matcher proposed each candidate ("sister fund of …", "similar spelling", "shares words"), by id.
    reasons: dict[int, str] = field(default_factory=dict)


# Exact hits (name, spelling, acronym) have no runner-up; only fuzzy and ambiguous matches have alternatives.
_METHODS_WITH_ALTERNATIVES = ("fuzzy", "ambiguous", "sister", "shares", "none")


def review_entries(letter: Letter | None = None, limit: int = 3) -> list[QueueEntry]:
    """The review queue with each sign-on's best candidate organizations, each with why it was proposed (one match
    index, one query). Three, as the signatory import proposes: more reads as noise, fewer hides the runner-up."""
    from crm.letters.signatory_import import method_reason

    rows = review_queue(letter)
    if not rows:
        return []
    found: dict[int, dict[int, float]] = {
        row.id: {row.proposed_organization_id: row.confidence} if row.proposed_organization_id else {}
        for row in rows
    }
    # The stored proposal's reason is how it was matched, unless the matcher below says more about it.
    reasons: dict[int, dict[int, str]] = {
        row.id: {row.proposed_organization_id: method_reason(row.match_method or "none")}
        if row.proposed_organization_id else {}
        for row in rows
    }
    unsure = [row for row in rows if any(m in (row.match_method or "none") for m in _METHODS_WITH_ALTERNATIVES)]
    if unsure:
        for row, match in zip(unsure, match_many([row.organization_name for row in unsure]), strict=True):
            for org_id, confidence in match.candidates:
                found[row.id].setdefault(org_id, confidence)
                if match.reason_for(org_id) or not reasons[row.id].get(org_id):
                    reasons[row.id][org_id] = match.reason_for(org_id) or method_reason(match.method)
    wanted = {org_id for candidates in found.values() for org_id in candidates}
    orgs = {org.id: org for org in db.session.scalars(select(Organization).where(Organization.id.in_(wanted)))}
    entries = []
    for row in rows:
        # The stored proposal first, then the strongest of the others.
        ranked = sorted(found[row.id].items(), key=lambda pair: (pair[0] != row.proposed_organization_id, -pair[1]))
        entries.append(QueueEntry(row, [(orgs[i], c) for i, c in ranked if i in orgs][:limit], reasons[row.id]))
    return entries


def unconfirmed_count(letter: Letter) -> int:
    """Sign-ons still waiting for their mailed confirmation."""
    return len(
        list(
            db.session.scalars(
                select(SignOnRequest.id).where(
                    SignOnRequest.letter_id == letter.id, SignOnRequest.status == "unconfirmed"
                )
            )
        )
    )


def get_request(request_id: int) -> SignOnRequest | None:
    """One sign-on request."""
    return db.session.get(SignOnRequest, request_id)


def _new_organization(row: SignOnRequest, user_id: int | None) -> Organization:
    """Create the organization a sign-on names (with its city, state, type and issue areas)."""
    from crm.organizations.models import ORG_TYPES

    areas = (
        list(db.session.scalars(select(IssueArea).where(IssueArea.slug.in_(row.issue_areas or []))))
        if row.issue_areas
        else []
    )
    return add_named_organization(
        row.organization_name,
        user_id=user_id,
        summary=f"Created {row.organization_name} from a public sign-on",
        city=row.city or None,
        state=row.state or None,
        org_type=row.org_type if row.org_type in ORG_TYPES else None,
        issue_areas=areas,
    )


def _contact_for(row: SignOnRequest, org: Organization, user_id: int | None) -> Contact:
    """The signer as a contact of the organization (an existing contact with that address is reused)."""
    contact = db.session.scalar(select(Contact).where(Contact.email == row.email))
    if contact is None:
        first, _, last = row.contact_name.partition(" ")
        contact = Contact(
            organization_id=org.id,
            first_name=first[:120],
            last_name=last[:120],
            title=row.contact_title,
            email=row.email,
        )
        db.session.add(contact)
        db.session.flush()
        record(
            "create",
            "contact",
            contact.id,
            user_id=user_id,
            summary=f"Added {row.email} from a public sign-on for {org.name}",
        )
    return contact


def accept_signon(
    row: SignOnRequest, organization_id: int | None, user_id: int | None = None
) -> SignOnRequest:
    """Accept a confirmed sign-on for an organization (None: create one); the spelling becomes an alias."""
    if row.status != "confirmed":
        raise SignOnError("Only confirmed sign-ons waiting for review can be accepted.")
    if organization_id is None:
        org = _new_organization(row, user_id)
    else:
        org = db.session.get(Organization, organization_id)
        if org is None:
            raise SignOnError(f"There is no organization {organization_id}.", field="organization_id")
        add_alias(org, row.organization_name, source="signon")
    contact = _contact_for(row, org, user_id)
    try:
        sig, _ = add_signature(
            row.letter,
            org,
            status="confirmed",
            source="public-form",
            listed_name=row.listed_name or row.organization_name,
            contact=contact,
            authorized_name=row.contact_name,
            authorized_title=row.contact_title,
            authorized_email=row.email,
            user_id=user_id,
            commit=False,
        )
    except LetterError as exc:
        db.session.rollback()
        raise SignOnError(str(exc)) from exc
    sig.text_fingerprint = row.text_fingerprint or sig.text_fingerprint  # the text they saw when they signed
    row.signature_id = sig.id
    row.status = "accepted"
    record(
        "accept", "signon", row.id, user_id=user_id, summary=f"Accepted {row.organization_name} as {org.name}"
    )
    enqueue_signon_mail("signon-accepted", row.email, letter=row.letter, org_name=sig.listed_name,
                        contact=contact, organization_id=org.id)
    db.session.commit()
    return row


def reject_signon(row: SignOnRequest, user_id: int | None = None) -> SignOnRequest:
    """Decline a sign-on and tell the signer."""
    if row.status not in ("confirmed", "unconfirmed"):
        raise SignOnError("This sign-on was already decided.")
    row.status = "rejected"
    record(
        "reject",
        "signon",
        row.id,
        user_id=user_id,
        summary=f"Declined the sign-on of {row.organization_name}",
    )
    enqueue_signon_mail("signon-declined", row.email, letter=row.letter, org_name=row.organization_name,
                        contact_name=row.contact_name, contact_title=row.contact_title)
    db.session.commit()
    return row
