"""Writing letters: create, edit, move through draft → collecting → closed → delivered, delete; LetterError."""

import re
from datetime import date

from sqlalchemy import func, select

from crm.audit.services import commit_audited, record
from crm.audit.versioning import check_version, commit_versioned
from crm.common.text import single_line, slugify
from crm.common.types import utcnow
from crm.extensions import db
from crm.letters.models import LETTER_DATE_YEARS, LETTER_STATUSES, Letter, Signature, SignOnRequest
from crm.letters.slugs import record_rename
from crm.organizations.models import IssueArea

LETTER_FIELDS = (
    "slug",
    "title",
    "recipients",
    "cc",
    "summary",
    "body",
    "letter_date",
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


def letter_snapshot(letter: Letter) -> dict:
    """The audited fields of a letter."""
    values = {name: getattr(letter, name) for name in LETTER_FIELDS if name != "issue_areas"}
    values["status"] = letter.status
    values["delivered_on"] = letter.delivered_on
    values["issue_areas"] = [a.slug for a in letter.issue_areas]
    return values


def _letter_date(day: date | None) -> date | None:
    """The date printed on the letter (None: undated, the delivery date stands in), within LETTER_DATE_YEARS."""
    first, last = LETTER_DATE_YEARS
    if day is not None and not first <= day.year <= last:
        raise LetterError("letter_date", f"The letter date {day.isoformat()} is not between {first} and {last}; "
                                         "check the year.")
    return day


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
        # Taking a slug another letter had before is allowed: pages prefer the letter that has it now.
        record_rename(letter, letter.slug, slug)  # links already sent with the old slug keep working
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
    if "letter_date" in data:
        letter.letter_date = _letter_date(data["letter_date"])
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
    record("status", "letter", letter.id, user_id=user_id, summary=f"Letter {letter.slug} is now {status}",
           before=before, after=letter_snapshot(letter))
    commit_versioned(letter, "letter")  # a save in between: ConflictError, not a 500
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
