"""Signatures: adding and changing them, the text they were given on, asking signers of an earlier text again."""

import hashlib

from sqlalchemy import select

from crm.audit.services import commit_audited, record
from crm.common.text import fold, single_line
from crm.common.types import utcnow
from crm.contacts.models import Contact
from crm.extensions import db
from crm.letters.links import personal_signon_url
from crm.letters.models import SIGNATURE_ROLES, SIGNATURE_SOURCES, SIGNATURE_STATUSES, Letter, Signature
from crm.letters.queries import signatories
from crm.letters.writing import LetterError
from crm.organizations.models import Organization


def text_fingerprint(letter: Letter) -> str:
    """sha256 of the letter's text as a signer saw it; spacing and case changes are not material."""
    text = fold(f"{letter.title}\n{letter.recipients}\n{letter.body}")
    return hashlib.sha256(" ".join(text.split()).encode("utf-8")).hexdigest()


def signature_snapshot(sig: Signature) -> dict:
    """The audited fields of a signature."""
    return {
        name: getattr(sig, name)
        for name in (
            "role",
            "position",
            "listed_name",
            "status",
            "source",
            "contact_id",
            "authorized_name",
            "authorized_title",
            "authorized_email",
        )
    }


def add_signature(
    letter: Letter,
    org: Organization,
    *,
    role: str = "signatory",
    status: str = "confirmed",
    listed_name: str = "",
    source: str = "manual",
    contact: Contact | None = None,
    authorized_name: str = "",
    authorized_title: str = "",
    authorized_email: str = "",
    position: int | None = None,
    user_id: int | None = None,
    commit: bool = True,
) -> tuple[Signature, bool]:
    """Add an organization to a letter; when it is already there, return its signature unchanged (False)."""
    if role not in SIGNATURE_ROLES:
        raise LetterError("role", f"Role must be one of: {', '.join(SIGNATURE_ROLES)}.")
    if status not in SIGNATURE_STATUSES:
        raise LetterError("status", f"Status must be one of: {', '.join(SIGNATURE_STATUSES)}.")
    if source not in SIGNATURE_SOURCES:
        raise LetterError("source", f"Source must be one of: {', '.join(SIGNATURE_SOURCES)}.")
    existing = signature_of(letter, org.id)
    if existing is not None:
        return existing, False
    if contact is not None:
        authorized_name = authorized_name or contact.full_name
        authorized_title = authorized_title or contact.title
        authorized_email = authorized_email or (contact.email or "")
    sig = Signature(
        letter_id=letter.id,
        organization_id=org.id,
        role=role,
        position=position,
        listed_name=single_line(listed_name or org.name)[:300],
        status=status,
        source=source,
        contact_id=contact.id if contact else None,
        authorized_name=single_line(authorized_name)[:200],
        authorized_title=single_line(authorized_title)[:200],
        authorized_email=single_line(authorized_email)[:254].lower(),
        text_fingerprint=text_fingerprint(letter),
        signed_at=utcnow() if status == "confirmed" else None,
    )
    db.session.add(sig)
    db.session.flush()
    record(
        "create",
        "signature",
        sig.id,
        user_id=user_id,
        summary=f"{org.name} added to {letter.slug} ({status}, {source})",
        after=signature_snapshot(sig),
    )
    record(
        "signature",
        "organization",
        org.id,
        user_id=user_id,
        summary=f"Signature on {letter.slug}: {status} ({source})",
    )
    if commit:
        db.session.commit()
    return sig, True


def update_signature(sig: Signature, changes: dict, user_id: int | None = None) -> Signature:
    """Change a signature's role, status, listed name, authorizing contact or source."""
    before = signature_snapshot(sig)
    if "role" in changes and changes["role"] is not None:
        if changes["role"] not in SIGNATURE_ROLES:
            raise LetterError("role", f"Role must be one of: {', '.join(SIGNATURE_ROLES)}.")
        sig.role = changes["role"]
    if "position" in changes:
        sig.position = changes["position"]
    if "status" in changes and changes["status"] is not None:
        if changes["status"] not in SIGNATURE_STATUSES:
            raise LetterError("status", f"Status must be one of: {', '.join(SIGNATURE_STATUSES)}.")
        if changes["status"] == "confirmed" and sig.status != "confirmed":
            sig.signed_at = utcnow()
            sig.text_fingerprint = text_fingerprint(sig.letter)
        sig.status = changes["status"]
    if "source" in changes and changes["source"] is not None:
        if changes["source"] not in SIGNATURE_SOURCES:
            raise LetterError("source", f"Source must be one of: {', '.join(SIGNATURE_SOURCES)}.")
        sig.source = changes["source"]
    if changes.get("listed_name") is not None:
        listed = single_line(changes["listed_name"])[:300]
        if not listed:
            raise LetterError("listed_name", "The listed name cannot be empty.")
        sig.listed_name = listed
    if "contact_id" in changes:
        contact = db.session.get(Contact, changes["contact_id"]) if changes["contact_id"] else None
        if changes["contact_id"] and (contact is None or contact.organization_id != sig.organization_id):
            raise LetterError("contact_id", "Choose a contact of this organization.")
        sig.contact_id = contact.id if contact else None
        if contact is not None:
            sig.authorized_name = contact.full_name[:200]
            sig.authorized_title = contact.title[:200]
            sig.authorized_email = (contact.email or "")[:254]
    for name, size in (("authorized_name", 200), ("authorized_title", 200), ("authorized_email", 254)):
        if changes.get(name) is not None:
            setattr(sig, name, single_line(changes[name])[:size])
    commit_audited(
        "update", "signature", sig.id, user_id=user_id,
        summary=f"Signature of {sig.organization.name} on {sig.letter.slug} changed", before=before,
        after=signature_snapshot(sig),
    )
    return sig


def signature_of(letter: Letter, organization_id: int) -> Signature | None:
    """An organization's signature on a letter, if it has one."""
    return db.session.scalar(
        select(Signature).where(Signature.letter_id == letter.id, Signature.organization_id == organization_id)
    )


def get_signature(letter: Letter, signature_id: int) -> Signature | None:
    """One signature of a letter."""
    return db.session.scalar(
        select(Signature).where(Signature.letter_id == letter.id, Signature.id == signature_id)
    )


def stale_signatures(letter: Letter) -> list[Signature]:
    """Confirmed or pending signatures given on an earlier text of the letter (their fingerprint differs)."""
    current = text_fingerprint(letter)
    # Filtered in SQL: the letter page asks on every view, and loading every signature twice doubled its cost.
    return signatories(
        letter, ("confirmed", "pending"), Signature.text_fingerprint != "", Signature.text_fingerprint != current
    )


def signer_address(sig: Signature) -> tuple[str, Contact | None]:
    """Where to write to a signer: who authorized it, else the primary (or any active) contact."""
    if sig.authorized_email:
        return sig.authorized_email, sig.contact
    if sig.contact is not None and sig.contact.email:
        return sig.contact.email, sig.contact
    contact = db.session.scalar(
        select(Contact)
        .where(
            Contact.organization_id == sig.organization_id,
            Contact.status == "active",
            Contact.email.is_not(None),
        )
        .order_by(Contact.is_primary.desc(), Contact.id)
    )
    return (contact.email, contact) if contact is not None else ("", None)


def request_reconfirmation(letter: Letter, user_id: int | None = None) -> int:
    """Mail signers of an earlier text a personal link to confirm again; returns how many."""
    from crm.signon.mails import enqueue_signon_mail

    asked = 0
    for sig in stale_signatures(letter):
        email, contact = signer_address(sig)
        if not email:
            continue
        enqueue_signon_mail(
            "signon-reconfirm", email, letter=letter, org_name=sig.organization.name, contact=contact,
            contact_name=sig.authorized_name, contact_title=sig.authorized_title,
            link=personal_signon_url(letter, sig.organization, contact), organization_id=sig.organization_id,
        )
        asked += 1
    commit_audited(
        "reconfirm", "letter", letter.id, user_id=user_id,
        summary=f"Asked {asked} signers of {letter.slug} to confirm the changed text",
    )
    return asked
