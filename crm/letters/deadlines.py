"""Sign-on deadlines: the instance's day, whether a letter still takes signatures, extending it, dates in words."""

from datetime import date, datetime
from zoneinfo import ZoneInfo

from flask import current_app

from crm.audit.services import record
from crm.audit.versioning import commit_versioned
from crm.common.types import utcnow
from crm.letters.models import Letter, Signature
from crm.letters.writing import LetterError, letter_snapshot


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


def closed_reason(letter: Letter) -> str | None:
    """Why a letter takes no signatures now — "draft", "delivered", "deadline" or "closed" — or None when it
    does; signers' and organizers' messages are both worded from it."""
    if takes_signatures(letter):
        return None
    if letter.status in ("draft", "delivered"):
        return letter.status
    return "deadline" if letter.status == "collecting" else "closed"


def closed_message(letter: Letter) -> str:
    """Why a letter takes no signatures now, in the signer's words (a draft is not open *yet*: an invitation can
    reach a signer before the organizers open the letter)."""
    reason = closed_reason(letter)
    if reason == "draft":
        return ("This letter is not open for signatures yet. Nothing was recorded; if you expected to sign now, "
                "write to the organizers.")
    if reason == "delivered":
        when = f" on {long_date(letter.delivered_on)}" if letter.delivered_on else ""
        return f"This letter was delivered{when} and no longer takes signatures. Nothing was recorded."
    if reason == "deadline":
        return (f"Sign-ons for this letter closed on {long_date(letter.deadline)}. Nothing was recorded; if you "
                "still want to sign, write to the organizers.")
    return "Sign-ons for this letter are closed: it no longer takes signatures. Nothing was recorded."


def closed_title(letter: Letter) -> str:
    """The heading over closed_message."""
    return "Not open for signatures yet" if closed_reason(letter) == "draft" else "Sign-ons are closed"


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
    record(
        "update", "letter", letter.id, user_id=user_id,
        summary=f"Sign-on deadline of {letter.slug} extended to {deadline.isoformat() if deadline else 'none'}",
        before=before, after=letter_snapshot(letter),
    )
    commit_versioned(letter, "letter")  # a save in between: ConflictError, not a 500
    return letter
