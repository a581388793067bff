"""Organization logic: listing with filters, profiles, participation history."""

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from crm.audit.services import record
from crm.common.text import fold, single_line, sort_name
from crm.extensions import db
from crm.letters.models import Letter, Signature
from crm.organizations.filters import OrgFilter, conditions, order_clause
from crm.organizations.models import IssueArea, Organization, OrganizationAlias
from crm.organizations.models import organization_issue_areas as oia

MAX_PER_PAGE = 200


@dataclass
class OrgPage:
    """One page of a filtered organization list."""

    items: list[Organization]
    total: int
    page: int
    per_page: int
    letters_signed: dict[int, int]

    @property
    def pages(self) -> int:
        """How many pages there are."""
        return max(1, -(-self.total // self.per_page))


def list_organizations(f: OrgFilter, *, sort: str = "name", page: int = 1, per_page: int = 50) -> OrgPage:
    """A page of organizations matching the filter, with their issue areas, parent and letters-signed counts.

    Always three statements (count, page, counts per page) plus two eager loads, whatever the page size.
    """
    per_page = max(1, min(per_page, MAX_PER_PAGE))
    page = max(1, page)
    where = conditions(f)
    total = db.session.scalar(select(func.count()).select_from(Organization).where(*where)) or 0
    query = (select(Organization).where(*where).order_by(*order_clause(sort))
             .options(selectinload(Organization.issue_areas), selectinload(Organization.parent),
                      selectinload(Organization.aliases))
             .limit(per_page).offset((page - 1) * per_page))
    items = list(db.session.scalars(query))
    return OrgPage(items, total, page, per_page, letters_signed_counts([o.id for o in items]))


def letters_signed_counts(org_ids: list[int]) -> dict[int, int]:
    """Confirmed signatures per organization, for a set of organizations, in one query."""
    if not org_ids:
        return {}
    rows = db.session.execute(
        select(Signature.organization_id, func.count()).where(Signature.organization_id.in_(org_ids),
                                                              Signature.status == "confirmed")
        .group_by(Signature.organization_id))
    return {org_id: count for org_id, count in rows}


def iter_organizations(f: OrgFilter, sort: str = "name", batch: int = 1000):
    """Every matching organization, in sort order, loaded in batches (for exports)."""
    query = (select(Organization).where(*conditions(f)).order_by(*order_clause(sort))
             .options(selectinload(Organization.issue_areas), selectinload(Organization.parent))
             .execution_options(yield_per=batch))
    for partition in db.session.scalars(query).partitions():
        counts = letters_signed_counts([o.id for o in partition])
        for org in partition:
            yield org, counts.get(org.id, 0)


def get_organization(org_id: int) -> Organization | None:
    """One organization with what its page shows."""
    return db.session.scalar(
        select(Organization).where(Organization.id == org_id)
        .options(selectinload(Organization.issue_areas), selectinload(Organization.aliases),
                 selectinload(Organization.affiliates), selectinload(Organization.parent)))


def participation(org_id: int) -> list[Signature]:
    """The organization's signatures across letters, newest letter first."""
    letter_date = func.coalesce(Letter.letter_date, Letter.delivered_on)
    return list(db.session.scalars(
        select(Signature).join(Letter).where(Signature.organization_id == org_id)
        .order_by(letter_date.desc().nulls_first(), Letter.id.desc())
        .options(selectinload(Signature.letter), selectinload(Signature.contact))))


def refresh_search_text(org: Organization) -> None:
    """Recompute the derived name fields (sort name, folded search text) from name, acronym and aliases."""
    org.sort_name = sort_name(org.name)[:300]
    parts = [org.name, org.acronym or ""] + [a.name for a in org.aliases]
    if org.parent is not None:
        # "aclu" finds the ACLU's affiliates even when their names do not say ACLU (e.g. the NYCLU).
        parts.append(org.parent.acronym or "")
    org.search_text = " | ".join(fold(p) for p in parts if p)


def add_alias(org: Organization, name: str, source: str = "manual") -> OrganizationAlias | None:
    """Remember another spelling of the organization's name (ignored when already known)."""
    name = single_line(name)[:300]
    normalized = fold(name)
    if not normalized or normalized == fold(org.name) or any(a.normalized == normalized for a in org.aliases):
        return None
    alias = OrganizationAlias(name=name, normalized=normalized, source=source)
    org.aliases.append(alias)
    refresh_search_text(org)
    return alias


def issue_areas(include_retired: bool = False) -> list[IssueArea]:
    """The issue-area vocabulary, by name."""
    query = select(IssueArea).order_by(IssueArea.name)
    if not include_retired:
        query = query.where(IssueArea.retired.is_(False))
    return list(db.session.scalars(query))


def issue_area_counts() -> list[tuple[IssueArea, int]]:
    """Each issue area with the number of active organizations in it."""
    rows = db.session.execute(
        select(IssueArea, func.count(Organization.id))
        .outerjoin(oia, oia.c.issue_area_id == IssueArea.id)
        .outerjoin(Organization, (Organization.id == oia.c.organization_id) & Organization.archived.is_(False))
        .where(IssueArea.retired.is_(False))
        .group_by(IssueArea.id).order_by(func.count(Organization.id).desc(), IssueArea.name))
    return [(area, count) for area, count in rows]


AUDITED_FIELDS = ("name", "acronym", "org_type", "scope", "city", "state", "country", "website", "notes",
                  "parent_id", "archived")


def snapshot(org: Organization) -> dict:
    """The audited fields of an organization, for before → after records."""
    values = {name: getattr(org, name) for name in AUDITED_FIELDS}
    values["issue_areas"] = [a.slug for a in org.issue_areas]
    return values


def create_organization(data: dict, user_id: int | None = None) -> Organization:
    """Create an organization from validated form or API data and record it in the audit log."""
    slugs = data.get("issue_areas") or []
    areas = list(db.session.scalars(select(IssueArea).where(IssueArea.slug.in_(slugs)))) if slugs else []
    org = Organization(
        name=single_line(data["name"])[:300],
        sort_name=sort_name(single_line(data["name"]))[:300],
        acronym=single_line(data.get("acronym"))[:40] or None,
        org_type=data.get("org_type") or None,
        scope=data.get("scope") or None,
        city=single_line(data.get("city"))[:120] or None,
        state=(data.get("state") or "").upper() or None,
        country=(data.get("country") or "").upper() or None,
        website=data.get("website") or None,
        notes=data.get("notes") or "",
        parent_id=data.get("parent_id") or None,
        issue_areas=areas,
    )
    db.session.add(org)
    db.session.flush()
    refresh_search_text(org)
    record("create", "organization", org.id, user_id=user_id, summary=f"Created {org.name}", after=snapshot(org))
    db.session.commit()
    return org
