"""Participation: organizations × letters (its CSV: crm.exports.rows), saving "signed A and B, not C" as a segment."""

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from crm.audit.services import record
from crm.common.paging import Paged
from crm.common.text import fold, single_line
from crm.extensions import db
from crm.letters.models import Letter, Signature
from crm.organizations.filters import FilterError, OrgFilter, conditions, order_clause, parse_filter
from crm.organizations.matching import MatchIndex
from crm.organizations.models import Organization
from crm.segments.models import Segment

MATRIX_PAGE = 100
MAX_MATRIX_LETTERS = 30


class ParticipationError(ValueError):
    """A participation request that cannot be done; nothing changed."""


def search_organizations(q: str, limit: int = 10) -> list[Organization]:
    """Organizations whose name, acronym or alias contains every word typed (for search-as-you-type)."""
    f = OrgFilter(q=single_line(q)[:200])
    return list(
        db.session.scalars(
            select(Organization).where(*conditions(f)).order_by(*order_clause("name")).limit(limit)
        )
    )


def organization_by_name(name: str) -> Organization | None:
    """The organization a typed name surely means (an applied match), else None."""
    if not fold(name):
        return None
    found = MatchIndex.from_database().match(name)
    return db.session.get(Organization, found.organization_id) if found.applied else None


@dataclass
class Matrix(Paged):
    """One page of the participation matrix."""

    letters: list[Letter]
    rows: list[tuple[Organization, list[str | None]]]
    total: int
    page: int
    per_page: int
    letter_page: int = 1
    letter_pages: int = 1


def _letters(letter_page: int = 1) -> list[Letter]:
    """The letters the matrix shows as columns: newest first, MAX_MATRIX_LETTERS to a page of columns."""
    date = func.coalesce(Letter.letter_date, Letter.delivered_on, Letter.deadline)
    return list(
        db.session.scalars(
            select(Letter).order_by(date.desc().nulls_first(), Letter.id.desc()).limit(MAX_MATRIX_LETTERS)
            .offset((max(1, letter_page) - 1) * MAX_MATRIX_LETTERS)
        )
    )


def _cells(org_ids: list[int], letters: list[Letter]) -> dict[tuple[int, int], str]:
    """Signature status per (organization, letter), one query."""
    if not org_ids or not letters:
        return {}
    rows = db.session.execute(
        select(Signature.organization_id, Signature.letter_id, Signature.status).where(
            Signature.organization_id.in_(org_ids), Signature.letter_id.in_([letter.id for letter in letters])
        )
    )
    return {(org_id, letter_id): status for org_id, letter_id, status in rows}


def matrix(f: OrgFilter, page: int = 1, per_page: int = MATRIX_PAGE, letter_page: int = 1) -> Matrix:
    """A page of organizations matching the filter, each with its answer per letter of one page of letters
    (the 30 newest first; older letters on the next pages of columns)."""
    where = conditions(f)
    total = db.session.scalar(select(func.count()).select_from(Organization).where(*where)) or 0
    orgs = list(
        db.session.scalars(
            select(Organization)
            .where(*where)
            .order_by(*order_clause("name"))
            .limit(per_page)
            .offset((max(1, page) - 1) * per_page)
        )
    )
    letter_count = db.session.scalar(select(func.count()).select_from(Letter)) or 0
    letter_pages = max(1, -(-letter_count // MAX_MATRIX_LETTERS))
    letter_page = min(max(1, letter_page), letter_pages)
    letters = _letters(letter_page)
    cells = _cells([o.id for o in orgs], letters)
    rows = [(org, [cells.get((org.id, letter.id)) for letter in letters]) for org in orgs]
    return Matrix(letters, rows, total, max(1, page), per_page, letter_page, letter_pages)


def save_segment(
    name: str, signed: str | list[str], not_signed: str | list[str], user_id: int | None = None
) -> Segment:
    """Save "signed A and B, not C" as a segment with filter {"signed": [...], "not_signed": [...]}."""
    name = single_line(name)[:200]
    if not name:
        raise ParticipationError("The segment needs a name.")
    try:
        f = parse_filter({"signed": signed or [], "not_signed": not_signed or []})
        conditions(f)  # unknown letters are refused here
    except FilterError as exc:
        raise ParticipationError(str(exc)) from exc
    if not f.signed and not f.not_signed:
        raise ParticipationError("Choose at least one letter signed or not signed first.")
    segment_filter: dict = {"signed": f.signed, "not_signed": f.not_signed}
    segment = Segment(name=name, filter=segment_filter, created_by_id=user_id)
    db.session.add(segment)
    try:
        db.session.flush()
    except IntegrityError as exc:
        db.session.rollback()
        raise ParticipationError(f"A segment called {name!r} already exists.") from exc
    record(
        "create",
        "segment",
        segment.id,
        user_id=user_id,
        summary=f"Saved segment {name!r} from the matrix",
        after={"name": name, "filter": str(segment_filter)},
    )
    db.session.commit()
    return segment
