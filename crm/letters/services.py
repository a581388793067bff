"""Letter logic: listing, signatories in delivery order, counts."""

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import case, func, select
from sqlalchemy.orm import selectinload

from crm.audit.services import commit_audited, record
from crm.audit.versioning import check_version, commit_versioned
from crm.common.paging import Paged
from crm.common.text import fold, single_line, slugify
from crm.common.tokens import TokenError, read_token
from crm.common.types import utcnow
from crm.contacts.models import Contact
from crm.extensions import db
from crm.letters.links import signon_url_for
from crm.letters.models import (
    LETTER_STATUSES,
    SIGNATURE_ROLES,
    SIGNATURE_SOURCES,
    SIGNATURE_STATUSES,
    Letter,
    PersonalLinkRevocation,
    Signature,
    SignOnRequest,
)
from crm.organizations.filters import OrgFilter, org_ids_query
from crm.organizations.models import IssueArea, Organization


def get_letter(slug: str) -> Letter | None:
    """A letter by slug."""
    return db.session.scalar(
        select(Letter).where(Letter.slug == slug).options(selectinload(Letter.issue_areas))
    )


def list_letters() -> list[tuple[Letter, dict[str, int]]]:
    """Every letter, newest first, with its signature counts per status (two queries in all)."""
    letters = list(
        db.session.scalars(
            select(Letter)
            .order_by(
                func.coalesce(Letter.letter_date, Letter.deadline).desc().nulls_first(), Letter.id.desc()
            )
            .options(selectinload(Letter.issue_areas))
        )
    )
    counts = status_counts([letter.id for letter in letters])
    return [(letter, counts.get(letter.id, _empty_counts())) for letter in letters]


@dataclass
class LetterPage(Paged):
    """One page of the letters list, each letter with its signature counts per status."""

    items: list[tuple[Letter, dict[str, int]]]
    total: int
    page: int
    per_page: int


def letters_page(page: int = 1, per_page: int = 50) -> LetterPage:
    """A page of letters, newest first, with their counts (a coalition's thousand letters are not one page)."""
    total = db.session.scalar(select(func.count(Letter.id))) or 0
    letters = list(
        db.session.scalars(
            select(Letter)
            .order_by(func.coalesce(Letter.letter_date, Letter.deadline).desc().nulls_first(), Letter.id.desc())
            .limit(per_page)
            .offset((max(1, page) - 1) * per_page)
        )
    )
    counts = status_counts([letter.id for letter in letters])
    return LetterPage([(letter, counts.get(letter.id, _empty_counts())) for letter in letters], total, page, per_page)


def _empty_counts() -> dict[str, int]:
    """A zero count for every signature status, and for public sign-ons awaiting review."""
    return dict.fromkeys((*SIGNATURE_STATUSES, "awaiting_review"), 0)


def status_counts(letter_ids: list[int]) -> dict[int, dict[str, int]]:
    """Signatures per status for each letter, and `awaiting_review`: confirmed public sign-ons no person has
    decided yet (not signatures yet, but an organizer must see them wherever the letter is counted)."""
    result: dict[int, dict[str, int]] = {}
    if not letter_ids:
        return result
    rows = db.session.execute(
        select(Signature.letter_id, Signature.status, func.count())
        .where(Signature.letter_id.in_(letter_ids))
        .group_by(Signature.letter_id, Signature.status)
    )
    for letter_id, status, count in rows:
        result.setdefault(letter_id, _empty_counts())[status] = count
    for letter_id, count in db.session.execute(
        select(SignOnRequest.letter_id, func.count())
        .where(SignOnRequest.letter_id.in_(letter_ids), SignOnRequest.status == "confirmed")
        .group_by(SignOnRequest.letter_id)
    ):
        result.setdefault(letter_id, _empty_counts())["awaiting_review"] = count
    return result


def awaiting_review(letter: Letter) -> int:
    """Confirmed public sign-ons of one letter waiting for a person."""
    return db.session.scalar(select(func.count(SignOnRequest.id)).where(
        SignOnRequest.letter_id == letter.id, SignOnRequest.status == "confirmed")) or 0


def awaiting_review_total() -> int:
    """Confirmed public sign-ons of every letter waiting for a person (the navigation's badge; one index scan)."""
    return db.session.scalar(select(func.count(SignOnRequest.id)).where(SignOnRequest.status == "confirmed")) or 0


def delivery_order():
    """ORDER BY for a signatory block: leads first, then alphabetical by sort name."""
    return (
        case((Signature.role == "lead", 0), else_=1),
        Signature.position.asc().nulls_last(),
        Organization.sort_name,
        Organization.id,
    )


def signatories(letter: Letter, statuses: tuple[str, ...] = ("confirmed",), *where) -> list[Signature]:
    """A letter's signatures in the given statuses (and further conditions), leads first then by sort name."""
    return list(
        db.session.scalars(
            select(Signature)
            .join(Organization)
            .where(Signature.letter_id == letter.id, Signature.status.in_(statuses), *where)
            .order_by(*delivery_order())
            .options(
                selectinload(Signature.organization).selectinload(Organization.issue_areas),
                selectinload(Signature.contact),
            )
        )
    )


def signature_columns(letter: Letter, *columns, statuses: tuple[str, ...] = ("confirmed",)) -> list:
    """Columns of a letter's signatures (and their organizations) in the given statuses, in delivery order, as plain
    rows: what the letter page and the signatory exports need, without building ORM objects, organizations, issue
    areas and contacts per signature (for a 1,000-signature letter that was most of the page's cost)."""
    return list(db.session.execute(
        select(*columns).select_from(Signature).join(Organization)
        .where(Signature.letter_id == letter.id, Signature.status.in_(statuses))
        .order_by(*delivery_order())
    ))


def signatory_list(letter: Letter, statuses: tuple[str, ...] = ("confirmed",)) -> list:
    """What the letter page lists per signature: id, organization_id, listed_name, role, status."""
    return signature_columns(letter, Signature.id, Signature.organization_id, Signature.listed_name, Signature.role,
                             Signature.status, statuses=statuses)


def iter_signatures(letter_slugs: list[str] | None = None, org_filter: OrgFilter | None = None) -> Iterator[Signature]:
    """Signatures for export, letter by letter in delivery order; an organization filter chooses whose."""
    query = (
        select(Signature)
        .join(Letter)
        .join(Organization)
        .order_by(Letter.id, *delivery_order())
        .options(selectinload(Signature.letter), selectinload(Signature.organization))
    )
    if letter_slugs:
        query = query.where(Letter.slug.in_(letter_slugs))
    if org_filter is not None and not org_filter.is_empty():
        # Left out, every signature is exported, an archived organization's too (the filter hides archived ones).
        query = query.where(Signature.organization_id.in_(org_ids_query(org_filter)))
    yield from db.session.scalars(query.execution_options(yield_per=1000))


def signatory_block(letter: Letter) -> str:
    """The confirmed signatories as the letter prints them: one listed name per line, leads first."""
    return "\n".join(name for name, in signature_columns(letter, Signature.listed_name)) + "\n"


# --- writing letters ----------------------------------------------------------------------------------------

LETTER_FIELDS = (
    "slug",
    "title",
    "recipients",
    "cc",
    "summary",
    "body",
    "deadline",
    "public_signon",
    "review_required",
    "issue_areas",
)
# draft → collecting → closed → delivered; a letter can go back to collecting from closed, or to draft while
# nobody has signed it yet is the organizer's call (allowed from collecting).
TRANSITIONS = {
    "draft": ("collecting",),
    "collecting": ("draft", "closed", "delivered"),
    "closed": ("collecting", "delivered"),
    "delivered": (),
}
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,99}$")


class LetterError(ValueError):
    """A letter or signature change that cannot be made; `field` names the input at fault."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


def text_fingerprint(letter: Letter) -> str:
    """sha256 of the letter's text as a signer saw it; spacing and case changes are not material."""
    text = fold(f"{letter.title}\n{letter.recipients}\n{letter.body}")
    return hashlib.sha256(" ".join(text.split()).encode("utf-8")).hexdigest()


def letter_snapshot(letter: Letter) -> dict:
    """The audited fields of a letter."""
    values = {name: getattr(letter, name) for name in LETTER_FIELDS if name != "issue_areas"}
    values["status"] = letter.status
    values["delivered_on"] = letter.delivered_on
    values["issue_areas"] = [a.slug for a in letter.issue_areas]
    return values


def _apply_letter_fields(letter: Letter, data: dict) -> None:
    """Copy validated fields onto a letter, checking the slug and issue areas."""
    if "slug" in data:
        slug = (data["slug"] or "").strip().lower()
        if slug in ("new", "participation", "review"):
            raise LetterError("slug", f"{slug!r} is reserved for a page; choose another slug.")
        if not _SLUG.match(slug):
            raise LetterError(
                "slug", "Use lower-case letters, digits and hyphens, such as dhs-clearview-2021."
            )
        clash = db.session.scalar(select(Letter.id).where(Letter.slug == slug, Letter.id != (letter.id or 0)))
        if clash is not None:
            raise LetterError("slug", f"Another letter already uses the slug {slug!r}.")
        letter.slug = slug
    if "title" in data:
        title = single_line(data["title"])
        if not title:
            raise LetterError("title", "A letter needs a title.")
        letter.title = title[:300]
    for name in ("recipients", "cc", "summary", "body"):
        if name in data:
            letter_value = (data[name] or "").replace("\x00", "").replace("\r\n", "\n")
            if len(letter_value) > 200_000:
                raise LetterError(name, "That text is too long.")
            setattr(letter, name, letter_value)
    if "deadline" in data:
        letter.deadline = data["deadline"]
    for name in ("public_signon", "review_required"):
        if name in data and data[name] is not None:
            setattr(letter, name, bool(data[name]))
    if "issue_areas" in data:
        slugs = list(dict.fromkeys(data["issue_areas"] or []))
        areas = list(db.session.scalars(select(IssueArea).where(IssueArea.slug.in_(slugs)))) if slugs else []
        missing = sorted(set(slugs) - {a.slug for a in areas})
        if missing:
            raise LetterError("issue_areas", f"Unknown issue area: {', '.join(missing)}.")
        letter.issue_areas = areas


def create_letter(data: dict, user_id: int | None = None) -> Letter:
    """Create a draft letter (LetterError on bad input; nothing saved then)."""
    letter = Letter(status="draft", recipients="", cc="", summary="", body="")
    try:
        if not data.get("slug") and data.get("title"):
            data = {**data, "slug": slugify(data["title"])}
        _apply_letter_fields(letter, {"slug": "", "title": "", **data})
        db.session.add(letter)
        db.session.flush()
        commit_audited(
            "create", "letter", letter.id, user_id=user_id, summary=f"Created letter {letter.slug}",
            after=letter_snapshot(letter),
        )
    except LetterError:
        db.session.rollback()
        raise
    return letter


def update_letter(
    letter: Letter, data: dict, user_id: int | None = None, *, version: int | None = None
) -> Letter:
    """Change a letter's fields if `version` (checked when given) is still current; raises LetterError or
    ConflictError. A delivered letter's text is frozen; nothing is written when nothing changed."""
    if version is not None:
        check_version(letter, version, "letter")
    before = letter_snapshot(letter)
    try:
        with db.session.no_autoflush:  # one UPDATE: the version goes up by exactly one per save
            _apply_letter_fields(letter, data)
            after = letter_snapshot(letter)
        # Line ends aside: browsers send a textarea back with CRLF, and texts saved before were stored so.
        if letter.status == "delivered" and any(after[k] != before[k].replace("\r\n", "\n") for k in ("title", "body")):
            raise LetterError("body", "This letter was delivered; its text can no longer change.")
    except LetterError:
        db.session.rollback()
        raise
    if after == before:
        db.session.rollback()
        return letter
    letter.updated_at = utcnow()  # issue areas live in another table: touching the row makes the version go up
    record("update", "letter", letter.id, user_id=user_id, summary=f"Edited letter {letter.slug}", before=before,
           after=after)
    commit_versioned(letter, "letter")
    return letter


def set_status(
    letter: Letter, status: str, *, delivered_on: date | None = None, user_id: int | None = None
) -> Letter:
    """Move a letter along draft → collecting → closed → delivered (delivered needs a date)."""
    if status not in LETTER_STATUSES:
        raise LetterError("status", f"Status must be one of: {', '.join(LETTER_STATUSES)}.")
    if status != letter.status and status not in TRANSITIONS[letter.status]:
        raise LetterError("status", f"A {letter.status} letter cannot become {status}.")
    before = letter_snapshot(letter)
    if status == "delivered":
        letter.delivered_on = delivered_on or date.today()
    letter.status = status
    commit_audited(
        "status", "letter", letter.id, user_id=user_id, summary=f"Letter {letter.slug} is now {status}", before=before,
        after=letter_snapshot(letter),
    )
    return letter


class LetterInUse(LetterError):
    """A letter that cannot be deleted because something depends on it."""


def deletion_blockers(letter: Letter) -> list[str]:
    """Why a letter cannot be deleted, each with what to do instead (empty: nothing depends on it)."""
    from crm.mailmerge.models import MailMerge

    reasons = []
    if letter.status == "collecting":
        reasons.append("It is collecting signatures: close it instead.")
    elif letter.status != "draft":
        reasons.append(f"It is {letter.status} and stays on record; only a draft can be deleted.")
    signatures = db.session.scalar(select(func.count(Signature.id)).where(Signature.letter_id == letter.id)) or 0
    if signatures:
        reasons.append(f"It has {signatures} signature{'' if signatures == 1 else 's'}: remove "
                       f"{'it' if signatures == 1 else 'them'} first "
                       "(undo the import that added them), or keep the letter and close it.")
    signons = db.session.scalar(
        select(func.count(SignOnRequest.id)).where(SignOnRequest.letter_id == letter.id)) or 0
    if signons:
        reasons.append(f"It has {signons} public sign-on request{'' if signons == 1 else 's'}: close it instead.")
    merges = list(db.session.scalars(select(MailMerge.name).where(MailMerge.letter_id == letter.id).limit(4)))
    if merges:
        reasons.append(f"Mail merges refer to it ({', '.join(merges)}): keep the letter and close it instead.")
    return reasons


def delete_letter(letter: Letter, user_id: int | None = None) -> None:
    """Delete a draft nothing depends on, with its issue-area links (LetterInUse names what depends on it)."""
    reasons = deletion_blockers(letter)
    if reasons:
        raise LetterInUse("letter", f"The letter {letter.slug!r} cannot be deleted. " + " ".join(reasons))
    record("delete", "letter", letter.id, user_id=user_id, summary=f"Deleted letter {letter.slug}",
           before=letter_snapshot(letter))
    letter.issue_areas = []
    db.session.delete(letter)
    db.session.commit()


# --- signatures ---------------------------------------------------------------------------------------------


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


# --- deadlines ----------------------------------------------------------------------------------------------


def instance_zone() -> ZoneInfo:
    """The instance's time zone (CRM_TIMEZONE, checked at startup; UTC by default)."""
    return ZoneInfo(current_app.config.get("CRM_TIMEZONE") or "UTC")


def local_today(now: datetime | None = None) -> date:
    """Today's date where the coalition works (a deadline is a day there, not in UTC)."""
    return (now or utcnow()).astimezone(instance_zone()).date()


def deadline_passed(letter: Letter, now: datetime | None = None) -> bool:
    """Whether the letter's sign-on deadline is over: it ends at midnight after that day, instance time."""
    return letter.deadline is not None and local_today(now) > letter.deadline


def takes_signatures(letter: Letter, now: datetime | None = None) -> bool:
    """Whether sign-ons (public form, confirmation links, personal links) may still be recorded."""
    return letter.status == "collecting" and not deadline_passed(letter, now)


def closed_message(letter: Letter) -> str:
    """Why a letter takes no more signatures, in the signer's words."""
    if letter.status == "collecting" and deadline_passed(letter):
        return (f"Sign-ons for this letter closed on {long_date(letter.deadline)}. Nothing was recorded; if you "
                "still want to sign, write to the organizers.")
    return "This letter is not collecting signatures any more. Nothing was recorded."


def long_date(day: date) -> str:
    """3 December 2026."""
    return f"{day.day} {day:%B %Y}"


def signed_on(sig: Signature) -> str:
    """The day a signature was given, in the instance's time zone ("3 December 2026"), or ''."""
    return long_date(sig.signed_at.astimezone(instance_zone()).date()) if sig.signed_at else ""


def extend_deadline(letter: Letter, deadline: date | None, user_id: int | None = None) -> Letter:
    """Give a letter a new deadline (None: no deadline); a deadline already over would close it again."""
    if deadline is not None and deadline < local_today():
        raise LetterError("deadline", f"Choose today ({long_date(local_today())}) or a later day.")
    before = letter_snapshot(letter)
    letter.deadline = deadline
    commit_audited(
        "update", "letter", letter.id, user_id=user_id,
        summary=f"Sign-on deadline of {letter.slug} extended to {deadline.isoformat() if deadline else 'none'}",
        before=before, after=letter_snapshot(letter),
    )
    return letter


# --- personal sign-on links ---------------------------------------------------------------------------------

PERSONAL_LINK_MAX_AGE = 60 * 60 * 24 * 120  # four months: longer than any sign-on campaign


def personal_signon_url(letter: Letter, organization: Organization, contact: Contact | None = None) -> str:
    """The absolute one-click sign-on link for an organization (what mail merges put in `sign_on_url`)."""
    return signon_url_for(letter.slug, letter.id, organization.id, contact.id if contact else None)


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
    if letter is None or org is None or letter.slug != slug:
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


def signed_count(letter: Letter) -> int:
    """Organizations that signed the letter so far (confirmed)."""
    return db.session.scalar(select(func.count(Signature.id)).where(
        Signature.letter_id == letter.id, Signature.status == "confirmed")) or 0


# --- exports ------------------------------------------------------------------------------------------------


def signatory_markdown(letter: Letter) -> str:
    """The confirmed signatories as a Markdown list, leads in bold."""
    lines = []
    for listed_name, role in signature_columns(letter, Signature.listed_name, Signature.role):
        name = listed_name.replace("*", "\\*").replace("_", "\\_")
        lines.append(f"- **{name}**" if role == "lead" else f"- {name}")
    return "\n".join(lines) + "\n"


def signatory_rows(letter: Letter) -> Iterator[list[str]]:
    """CSV rows of the confirmed signatories (with city, state and type)."""
    yield ["listed_name", "role", "organization", "city", "state", "org_type", "signed_at"]
    for listed_name, role, name, city, state, org_type, signed_at in signature_columns(
        letter, Signature.listed_name, Signature.role, Organization.name, Organization.city, Organization.state,
        Organization.org_type, Signature.signed_at,
    ):
        yield [listed_name, role, name, city or "", state or "", org_type or "",
               signed_at.date().isoformat() if signed_at else ""]


def thank_signers(letter: Letter, user_id: int | None = None) -> int:
    """Queue a thank-you (the organizers' "Thank you (delivery)" wording) to each confirmed signer's authorizing
    or primary contact."""
    from crm.signon.mails import enqueue_signon_mail

    sent = 0
    for sig in signatories(letter):
        email, contact = signer_address(sig)
        if not email:
            continue
        enqueue_signon_mail(
            "thank-you", email, letter=letter, org_name=sig.listed_name, contact=contact,
            contact_name=sig.authorized_name, contact_title=sig.authorized_title,
            organization_id=sig.organization_id,
        )
        sent += 1
    commit_audited("thank", "letter", letter.id, user_id=user_id, summary=f"Thanked {sent} signers of {letter.slug}")
    return sent


def record_delivery(letter: Letter, delivered_on: date, *, thank: bool, user_id: int | None = None) -> int:
    """Mark the letter delivered on a date and maybe thank its signers; returns thank-yous queued."""
    set_status(letter, "delivered", delivered_on=delivered_on, user_id=user_id)
    return thank_signers(letter, user_id) if thank else 0


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
