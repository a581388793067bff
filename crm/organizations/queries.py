"""Reading organizations: the filtered list, one organization's page, filter-form options, participation.

The list (pages, API, exports) is read as plain rows; the profile as ORM instances with what its page shows."""

from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import aliased, selectinload

from crm.common.paging import Paged
from crm.extensions import db
from crm.letters.models import Letter, Signature
from crm.organizations.filters import OrgFilter, conditions, order_clause
from crm.organizations.models import IssueArea, Organization, OrganizationAlias
from crm.organizations.models import organization_issue_areas as oia

MAX_PER_PAGE = 200


@dataclass(slots=True)
class AreaRef:
    """An issue area as a list row shows it."""

    slug: str
    name: str


@dataclass(slots=True)
class ParentRef:
    """A parent organization as a list row shows it."""

    id: int
    name: str


@dataclass(slots=True)
class AliasRef:
    """An alias as the API's list shows it."""

    name: str


@dataclass(slots=True)
class OrgRow:
    """One organization as the lists show it (page, API, exports): plain values, no ORM instance."""

    id: int
    name: str
    acronym: str | None
    org_type: str | None
    scope: str | None
    city: str | None
    state: str | None
    country: str | None
    website: str | None
    archived: bool
    version: int
    letters_signed: int
    parent: ParentRef | None
    issue_areas: list[AreaRef] = field(default_factory=list)
    aliases: list[AliasRef] = field(default_factory=list)

    @property
    def parent_id(self) -> int | None:
        return self.parent.id if self.parent else None


@dataclass
class OrgPage(Paged):
    """One page of a filtered organization list."""

    items: list[OrgRow]
    total: int
    page: int
    per_page: int


def _org_rows_query(where: list, sort: str):
    """The list's columns (parent's name joined) for the filter's conditions, in sort order."""
    parent = aliased(Organization, name="parent")
    return (
        select(
            Organization.id, Organization.name, Organization.acronym, Organization.org_type, Organization.scope,
            Organization.city, Organization.state, Organization.country, Organization.website,
            Organization.archived, Organization.version, Organization.letters_signed, Organization.parent_id,
            parent.name.label("parent_name"),
        )
        .outerjoin(parent, parent.id == Organization.parent_id)
        .where(*where)
        .order_by(*order_clause(sort))
    )


def _build_rows(rows, with_aliases: bool) -> list[OrgRow]:
    """OrgRows from the list query's rows, with their issue areas (and aliases): one statement each, whatever
    the number of rows."""
    items = {
        r.id: OrgRow(r.id, r.name, r.acronym, r.org_type, r.scope, r.city, r.state, r.country, r.website,
                     r.archived, r.version, r.letters_signed,
                     ParentRef(r.parent_id, r.parent_name) if r.parent_id else None)
        for r in rows
    }
    if not items:
        return []
    areas = (
        select(oia.c.organization_id, IssueArea.slug, IssueArea.name)
        .join(IssueArea, IssueArea.id == oia.c.issue_area_id)
        .where(oia.c.organization_id.in_(list(items)))
        .order_by(IssueArea.slug)
    )
    for org_id, slug, name in db.session.execute(areas).all():
        items[org_id].issue_areas.append(AreaRef(slug, name))
    if with_aliases:
        aliases = (
            select(OrganizationAlias.organization_id, OrganizationAlias.name)
            .where(OrganizationAlias.organization_id.in_(list(items)))
            .order_by(OrganizationAlias.id)
        )
        for org_id, name in db.session.execute(aliases).all():
            items[org_id].aliases.append(AliasRef(name))
    return list(items.values())


def list_organizations(
    f: OrgFilter, *, sort: str = "name", page: int = 1, per_page: int = 50, with_aliases: bool = False
) -> OrgPage:
    """A page of organizations matching the filter, with their issue areas, parent and letters-signed counts.

    The list page, the segment page and the API all read this. Plain rows, not ORM instances: a page shows a dozen
    columns of up to 200 organizations, and building entities (identity map, collections) cost more than the SQL.
    A fixed number of statements whatever the page size: count, page (parent joined; letters signed is a column
    kept by triggers), issue areas, and aliases when asked for (the API shows them, the list page does not).
    """
    per_page = max(1, min(per_page, MAX_PER_PAGE))
    page = max(1, page)
    where = conditions(f)  # once: it looks up the filter's issue areas and letters
    total = db.session.execute(select(func.count()).select_from(Organization).where(*where)).scalar_one()
    query = _org_rows_query(where, sort).limit(per_page).offset((page - 1) * per_page)
    items = _build_rows(db.session.execute(query).all(), with_aliases)
    return OrgPage(items, total, page, per_page)


def iter_organizations(f: OrgFilter, sort: str = "name", batch: int = 1000):
    """Every matching organization as list rows, in sort order, read in batches (for exports)."""
    query = _org_rows_query(conditions(f), sort).execution_options(yield_per=batch)
    for partition in db.session.execute(query).partitions():
        for row in _build_rows(partition, with_aliases=False):
            yield row, row.letters_signed


def get_organization(org_id: int) -> Organization | None:
    """One organization with what its page shows."""
    return db.session.scalar(
        select(Organization)
        .where(Organization.id == org_id)
        .options(
            selectinload(Organization.issue_areas),
            selectinload(Organization.aliases),
            selectinload(Organization.affiliates),
            selectinload(Organization.parent),
        )
    )


def organization_name(org_id: int | None) -> str | None:
    """The name of an organization, for labels ("affiliates of …")."""
    if not org_id:
        return None
    return db.session.scalar(select(Organization.name).where(Organization.id == org_id))


FILTER_LETTERS = 40


def letter_options(
    selected: list[str] | tuple[str, ...] = (), limit: int = FILTER_LETTERS
) -> list[tuple[str, str]]:
    """(slug, title) of the most recent letters plus any already selected, newest first, for filter forms.

    Not all thousand: a select that long is no use to a person and costs the page most of its time; any letter
    still works through the URL (and the chosen ones are always listed).
    """
    query = select(Letter.slug, Letter.title).order_by(
        func.coalesce(Letter.letter_date, Letter.deadline).desc().nulls_first(), Letter.id.desc()
    )
    options = [(slug, title) for slug, title in db.session.execute(query.limit(limit)).all()]
    missing = [s for s in selected if s not in {slug for slug, _ in options}]
    if missing:
        options += [(slug, title) for slug, title in db.session.execute(query.where(Letter.slug.in_(missing))).all()]
    return options


def participation(org_id: int) -> list[Signature]:
    """The organization's signatures across letters, newest letter first."""
    letter_date = func.coalesce(Letter.letter_date, Letter.delivered_on)
    return list(
        db.session.scalars(
            select(Signature)
            .join(Letter)
            .where(Signature.organization_id == org_id)
            .order_by(letter_date.desc().nulls_first(), Letter.id.desc())
            .options(selectinload(Signature.letter), selectinload(Signature.contact))
        )
    )


# --- participation -------------------------------------------------------------------------------------------


@dataclass
class ParticipationSummary:
    """How an organization has taken part: "signed 3 of the last 5 letters", first and last signature."""

    signed: int
    recent_signed: int
    recent_total: int
    first_signed: date | None
    last_signed: date | None
    first_letter: Letter | None = None
    last_letter: Letter | None = None
    led: int = 0
    recent: list = field(default_factory=list)


RECENT_LETTERS = 5


def participation_summary(history: list[Signature]) -> ParticipationSummary:
    """Summarise a participation timeline (from participation()) against the most recent letters."""
    confirmed = [s for s in history if s.status == "confirmed"]
    recent_ids = list(
        db.session.scalars(
            select(Letter.id)
            .where(Letter.status != "draft")
            .order_by(
                func.coalesce(Letter.letter_date, Letter.delivered_on, Letter.deadline).desc().nulls_last(),
                Letter.id.desc(),
            )
            .limit(RECENT_LETTERS)
        )
    )
    signed_ids = {s.letter_id for s in confirmed}
    dated = sorted((s for s in confirmed if s.letter.date), key=lambda s: s.letter.date)
    return ParticipationSummary(
        signed=len(confirmed),
        recent_signed=sum(1 for i in recent_ids if i in signed_ids),
        recent_total=len(recent_ids),
        first_signed=dated[0].letter.date if dated else None,
        last_signed=dated[-1].letter.date if dated else None,
        first_letter=dated[0].letter if dated else None,
        last_letter=dated[-1].letter if dated else None,
        led=sum(1 for s in confirmed if s.role == "lead"),
    )
