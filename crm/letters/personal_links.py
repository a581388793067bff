"""Personal sign-on links read back and acted on: whom a link speaks for, revoking it, signing and withdrawing."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from crm.audit.services import commit_audited
from crm.common.tokens import TokenError, read_token
from crm.common.types import utcnow
from crm.contacts.models import Contact
from crm.extensions import db
from crm.letters.deadlines import closed_message, takes_signatures
from crm.letters.links import personal_signon_url
from crm.letters.models import Letter, PersonalLinkRevocation, Signature
from crm.letters.signatures import add_signature, signature_of, signature_snapshot, text_fingerprint, update_signature
from crm.letters.slugs import letter_had_slug
from crm.letters.writing import LetterError
from crm.organizations.models import Organization

PERSONAL_LINK_MAX_AGE = 60 * 60 * 24 * 120  # four months: longer than any sign-on campaign


class LinkRevoked(TokenError):
    """A personal link the organizers revoked."""


@dataclass
class PersonalLink:
    """What a personal sign-on token stands for."""

    letter: Letter
    organization: Organization
    contact: Contact | None


def read_personal_link(slug: str, token: str) -> PersonalLink:
    """The letter, organization and contact of a personal link (TokenError when not valid, LinkRevoked)."""
    payload = read_token("signon", token, max_age=PERSONAL_LINK_MAX_AGE)
    if (
        not isinstance(payload, dict)
        or not isinstance(payload.get("l"), int)
        or not isinstance(payload.get("o"), int)
    ):
        raise TokenError("This link is not valid.")
    letter = db.session.get(Letter, payload["l"])
    org = db.session.get(Organization, payload["o"])
    contact = db.session.get(Contact, payload["c"]) if isinstance(payload.get("c"), int) else None
    # A link made before the letter was renamed carries an old slug: it still speaks for its own letter.
    if letter is None or org is None or not letter_had_slug(letter, slug):
        raise TokenError("This link is not valid.")
    revoked = db.session.get(PersonalLinkRevocation, (letter.id, org.id))
    # Links made before this change carry no time: any revocation covers them.
    issued = payload.get("i") if isinstance(payload.get("i"), int) else 0
    if revoked is not None and issued <= int(revoked.revoked_at.timestamp() * 1000):
        raise LinkRevoked(f"The organizers withdrew this link for {org.name}. Nothing was recorded; ask them "
                          "for a new one if you want to sign.")
    if contact is not None and contact.organization_id != org.id:
        contact = None  # the contact moved to another organization: they no longer speak for this one
    return PersonalLink(letter, org, contact)


def revoke_personal_links(letter: Letter, organization: Organization, user_id: int | None = None) -> None:
    """Refuse every personal link of an organization for a letter made until now (new links work)."""
    now = utcnow()
    row = db.session.get(PersonalLinkRevocation, (letter.id, organization.id))
    if row is None:
        db.session.add(PersonalLinkRevocation(letter_id=letter.id, organization_id=organization.id,
                                              revoked_at=now, revoked_by_id=user_id))
    else:
        row.revoked_at, row.revoked_by_id = now, user_id
    commit_audited("revoke-links", "organization", organization.id, user_id=user_id,
                   summary=f"Personal sign-on links of {organization.name} for {letter.slug} revoked")


def links_revoked_at(letter: Letter, organization_id: int) -> datetime | None:
    """When an organization's personal links for a letter were last revoked, if ever."""
    return db.session.scalar(select(PersonalLinkRevocation.revoked_at).where(
        PersonalLinkRevocation.letter_id == letter.id, PersonalLinkRevocation.organization_id == organization_id))


def link_state(link: PersonalLink) -> str:
    """What the link's organization has answered: none, pending, confirmed, declined or withdrawn."""
    sig = signature_of(link.letter, link.organization.id)
    return sig.status if sig is not None else "none"


class StateChanged(LetterError):
    """The signature is not in the state the signer saw: show it again and ask."""


def _check_link_may_act(link: PersonalLink, seen: str) -> Signature | None:
    """The link's signature, after the checks every personal-link change shares (LetterError otherwise)."""
    if link.organization.archived:
        raise LetterError("organization", f"{link.organization.name} is no longer active in our records.")
    if not takes_signatures(link.letter):
        raise LetterError("letter", closed_message(link.letter))
    sig = signature_of(link.letter, link.organization.id)
    if (sig.status if sig is not None else "none") != seen:
        raise StateChanged("seen", "The answer of your organization changed since this page was shown; nothing "
                                   "was changed. Here is where it stands now.")
    return sig


def sign_with_personal_link(link: PersonalLink, listed_name: str, seen: str) -> tuple[Signature, bool]:
    """Record the organization's yes, given what the signer saw (`seen`: the state the page showed).

    A withdrawn or declined answer changes only when the page showed it and the signer asked again; a
    confirmed signature stays as it is (it is confirmed on the current text when that changed).
    """
    existing = _check_link_may_act(link, seen)
    if existing is not None and existing.status in ("pending", "withdrawn", "declined"):
        changes = {"status": "confirmed", "source": "personal-link", "listed_name": listed_name or existing.listed_name}
        if link.contact is not None:
            changes["contact_id"] = link.contact.id
        update_signature(existing, changes)
        return existing, True
    if existing is not None:
        if existing.text_fingerprint != text_fingerprint(link.letter):  # re-confirmation of a changed text
            existing.text_fingerprint = text_fingerprint(link.letter)
            existing.signed_at = utcnow()
            commit_audited("reconfirm", "signature", existing.id, summary="Signature confirmed on the current text")
        return existing, False
    return add_signature(
        link.letter,
        link.organization,
        status="confirmed",
        source="personal-link",
        listed_name=listed_name or link.organization.name,
        contact=link.contact,
    )


def withdraw_with_personal_link(link: PersonalLink, seen: str) -> Signature:
    """Withdraw a confirmed signature through the organization's link."""
    sig = _check_link_may_act(link, seen)
    if sig is None or sig.status != "confirmed":
        raise StateChanged("seen", "There is no signature to withdraw.")
    who = link.contact.full_name if link.contact is not None else "a personal link"
    before = signature_snapshot(sig)
    sig.status = "withdrawn"
    commit_audited("update", "signature", sig.id,
                   summary=f"{link.organization.name} withdrew from {link.letter.slug} (by {who})",
                   before=before, after=signature_snapshot(sig))
    return sig


def personal_links_for(org: Organization) -> list[tuple[Letter, Contact | None, str]]:
    """Personal sign-on links of an organization for every collecting letter (primary contact, else none)."""
    letters = list(
        db.session.scalars(select(Letter).where(Letter.status == "collecting").order_by(Letter.id))
    )
    if not letters:
        return []
    contact = db.session.scalar(
        select(Contact)
        .where(Contact.organization_id == org.id, Contact.status == "active")
        .order_by(Contact.is_primary.desc(), Contact.id)
    )
    return [(letter, contact, personal_signon_url(letter, org, contact)) for letter in letters]
