"""Letter logic: listing, signatories in delivery order, counts."""

from collections.abc import Iterator

from sqlalchemy import case, func, select
from sqlalchemy.orm import selectinload

from crm.extensions import db
from crm.letters.models import SIGNATURE_STATUSES, Letter, Signature
from crm.organizations.models import Organization


def get_letter(slug: str) -> Letter | None:
    """A letter by slug."""
    return db.session.scalar(select(Letter).where(Letter.slug == slug).options(selectinload(Letter.issue_areas)))


def list_letters() -> list[tuple[Letter, dict[str, int]]]:
    """Every letter, newest first, with its signature counts per status (two queries in all)."""
    letters = list(db.session.scalars(
        select(Letter).order_by(func.coalesce(Letter.letter_date, Letter.deadline).desc().nulls_first(),
                                Letter.id.desc())
        .options(selectinload(Letter.issue_areas))))
    counts = status_counts([letter.id for letter in letters])
    return [(letter, counts.get(letter.id, _empty_counts())) for letter in letters]


def _empty_counts() -> dict[str, int]:
    """A zero count for every signature status."""
    return dict.fromkeys(SIGNATURE_STATUSES, 0)


def status_counts(letter_ids: list[int]) -> dict[int, dict[str, int]]:
    """Signatures per status for each letter."""
    result: dict[int, dict[str, int]] = {}
    if not letter_ids:
        return result
    rows = db.session.execute(select(Signature.letter_id, Signature.status, func.count())
                              .where(Signature.letter_id.in_(letter_ids))
                              .group_by(Signature.letter_id, Signature.status))
    for letter_id, status, count in rows:
        result.setdefault(letter_id, _empty_counts())[status] = count
    return result


def delivery_order():
    """ORDER BY for a signatory block: leads first, then alphabetical by sort name."""
    return (case((Signature.role == "lead", 0), else_=1), Signature.position.asc().nulls_last(),
            Organization.sort_name, Organization.id)


def signatories(letter: Letter, statuses: tuple[str, ...] = ("confirmed",)) -> list[Signature]:
    """A letter's signatures in the given statuses, leads first then by sort name."""
    return list(db.session.scalars(
        select(Signature).join(Organization).where(Signature.letter_id == letter.id, Signature.status.in_(statuses))
        .order_by(*delivery_order())
        .options(selectinload(Signature.organization).selectinload(Organization.issue_areas),
                 selectinload(Signature.contact))))


def iter_signatures(letter_slugs: list[str] | None = None) -> Iterator[Signature]:
    """Signatures for export, letter by letter in delivery order."""
    query = (select(Signature).join(Letter).join(Organization)
             .order_by(Letter.id, *delivery_order())
             .options(selectinload(Signature.letter), selectinload(Signature.organization)))
    if letter_slugs:
        query = query.where(Letter.slug.in_(letter_slugs))
    yield from db.session.scalars(query.execution_options(yield_per=1000))


def signatory_block(letter: Letter) -> str:
    """The confirmed signatories as the letter prints them: one listed name per line, leads first."""
    return "\n".join(sig.listed_name for sig in signatories(letter)) + "\n"
