"""Numbers and chart data for the dashboard (plain values; the template draws the SVG)."""

from dataclasses import dataclass
from datetime import date

from sqlalchemy import extract, func, select
from sqlalchemy.orm import selectinload

from crm.audit.models import AuditEvent
from crm.common.types import utc_midnight
from crm.contacts.models import Contact
from crm.contacts.queries import mailable_count
from crm.extensions import db
from crm.letters.models import Letter, Signature
from crm.letters.queries import status_counts
from crm.organizations.models import Organization

LAPSED_YEARS = 2


@dataclass
class Bar:
    """One bar of a chart: its label, value, the link to the list behind it, and an optional note."""

    label: str
    value: int
    href_params: dict
    note: str = ""


def counts() -> dict[str, int]:
    """Headline counts."""
    return {
        "organizations": db.session.scalar(
            select(func.count(Organization.id)).where(Organization.archived.is_(False))
        )
        or 0,
        "contacts": db.session.scalar(select(func.count(Contact.id))) or 0,
        "mailable": mailable_count(),
        "letters": db.session.scalar(select(func.count(Letter.id))) or 0,
        # Confirmed signatures: the sum of the per-organization counts the triggers keep (20,000 rows, not a
        # million signatures).
        "signatures": db.session.scalar(select(func.coalesce(func.sum(Organization.letters_signed), 0))) or 0,
    }


def collecting_letters() -> list[tuple[Letter, dict[str, int]]]:
    """Letters collecting sign-ons now, soonest deadline first, with their counts per status."""
    letters = list(
        db.session.scalars(
            select(Letter)
            .where(Letter.status == "collecting")
            .order_by(Letter.deadline.asc().nulls_last(), Letter.id)
        )
    )
    per_letter = status_counts([letter.id for letter in letters])
    empty = {"confirmed": 0, "pending": 0, "awaiting_review": 0}
    return [(letter, per_letter.get(letter.id, empty)) for letter in letters]


def signatures_per_letter(limit: int = 24) -> list[Bar]:
    """Confirmed signatures of the most recent letters, oldest first (a picture over time)."""
    letter_date = func.coalesce(Letter.letter_date, Letter.delivered_on, Letter.deadline)
    recent = (
        select(Letter.id)
        .where(Letter.status != "draft")
        .order_by(letter_date.desc().nulls_last(), Letter.id.desc())
        .limit(limit)
        .subquery()
    )
    rows = db.session.execute(
        select(Letter.slug, Letter.title, letter_date, func.count(Signature.id))
        .join(recent, recent.c.id == Letter.id)
        .outerjoin(Signature, (Signature.letter_id == Letter.id) & (Signature.status == "confirmed"))
        .group_by(Letter.id, Letter.slug, Letter.title, letter_date)
        .order_by(letter_date.asc().nulls_first(), Letter.id)
    )
    return [
        Bar(title, n, {"signed": slug}, day.strftime("%b %Y") if day else "undated")
        for slug, title, day, n in rows
    ]


def most_engaged(limit: int = 10) -> list[Bar]:
    """The organizations that signed the most letters (letters_signed is kept by triggers on signatures)."""
    rows = db.session.execute(
        select(Organization.id, Organization.name, Organization.letters_signed)
        .where(Organization.archived.is_(False), Organization.letters_signed > 0)
        .order_by(Organization.letters_signed.desc(), Organization.sort_name)
        .limit(limit)
    )
    return [Bar(name, n, {"org_id": org_id}) for org_id, name, n in rows]


def most_letters_signed() -> int:
    """The most letters any active organization has signed (0: nobody yet, 1: no history across letters yet)."""
    return db.session.scalar(
        select(func.coalesce(func.max(Organization.letters_signed), 0)).where(Organization.archived.is_(False))
    ) or 0


def newest_partners(limit: int = 8) -> list[Organization]:
    """The organizations added most recently (what to show before there is history to rank by)."""
    return list(
        db.session.scalars(
            select(Organization)
            .where(Organization.archived.is_(False))
            .order_by(Organization.created_at.desc(), Organization.id.desc())
            .limit(limit)
            .options(selectinload(Organization.issue_areas))
        )
    )


def lapsed_by_year(years: int = LAPSED_YEARS, today: date | None = None) -> tuple[date, list[Bar]]:
    """Organizations that signed before but not in the last `years` years, by the year of their last signature."""
    today = today or date.today()
    cutoff = today.replace(
        year=today.year - years, day=28 if today.month == 2 and today.day == 29 else today.day
    )
    year = extract("year", Organization.last_signed_at)
    rows = db.session.execute(
        select(year, func.count())
        .where(Organization.archived.is_(False), Organization.last_signed_at < utc_midnight(cutoff))
        .group_by(year)
        .order_by(year)
    )
    bars = []
    for y, n in rows:
        y = int(y)
        start, end = date(y, 1, 1), min(date(y + 1, 1, 1), cutoff)
        bars.append(
            Bar(str(y), n, {"last_signed_after": start.isoformat(), "last_signed_before": end.isoformat()})
        )
    return cutoff, bars


def recent_activity(limit: int = 12) -> list[AuditEvent]:
    """The newest changes, with who made them."""
    return list(
        db.session.scalars(
            select(AuditEvent)
            .order_by(AuditEvent.id.desc())
            .limit(limit)
            .options(selectinload(AuditEvent.user))
        )
    )
