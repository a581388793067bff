"""Organization logic: listing with filters, profiles, participation history, editing with audit."""

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import aliased, selectinload
from sqlalchemy.orm.exc import StaleDataError

from crm.audit.labels import field_label
from crm.audit.services import commit_audited, record
from crm.audit.versioning import check_version, commit_versioned, conflict
from crm.common import validation as check
from crm.common.errors import NotFound
from crm.common.paging import Paged
from crm.common.text import fold, single_line, sort_name
from crm.common.types import utcnow
from crm.common.validation import FieldError, InvalidData, whole_number
from crm.extensions import db
from crm.letters.models import Letter, Signature
from crm.letters.models import letter_issue_areas as lia
from crm.mailmerge.models import MailMerge
from crm.organizations.filters import OrgFilter, conditions, order_clause
from crm.organizations.models import (
    ORG_TYPES,
    SCOPES,
    Interaction,
    IssueArea,
    Organization,
    OrganizationAlias,
)
from crm.organizations.models import organization_issue_areas as oia
from crm.segments.models import Segment

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


def remove_alias(org_id: int, alias_id: int, user_id: int | None = None) -> str:
    """Forget one alias of an organization (audited; the version goes up); returns the alias's name.

    Raises NotFound when the organization has no such alias."""
    org = get_organization(org_id)
    alias = next((a for a in org.aliases if a.id == alias_id), None) if org is not None else None
    if alias is None:
        raise NotFound(alias_id)
    remaining = [a.name for a in org.aliases if a.id != alias_id]
    update_organization(org.id, {"aliases": remaining}, version=org.version, user_id=user_id)
    return alias.name


def issue_areas(include_retired: bool = False) -> list[IssueArea]:
    """The issue-area vocabulary, by name."""
    query = select(IssueArea).order_by(IssueArea.name)
    if not include_retired:
        query = query.where(IssueArea.retired.is_(False))
    return list(db.session.scalars(query))


def issue_area_options(include_retired: bool = False) -> list:
    """The issue-area vocabulary by name as plain rows (slug, name, retired), for filter forms."""
    query = select(IssueArea.slug, IssueArea.name, IssueArea.retired).order_by(IssueArea.name)
    if not include_retired:
        query = query.where(IssueArea.retired.is_(False))
    return db.session.execute(query).all()


def issue_area_counts(include_retired: bool = False) -> list[tuple[IssueArea, int]]:
    """Each issue area with the number of active organizations in it, most first."""
    query = (
        select(IssueArea, func.count(Organization.id))
        .outerjoin(oia, oia.c.issue_area_id == IssueArea.id)
        .outerjoin(
            Organization, (Organization.id == oia.c.organization_id) & Organization.archived.is_(False)
        )
        .group_by(IssueArea.id)
        .order_by(func.count(Organization.id).desc(), IssueArea.name)
    )
    if not include_retired:
        query = query.where(IssueArea.retired.is_(False))
    return [(area, count) for area, count in db.session.execute(query)]


# The columns a create or an update copies from cleaned values (issue areas, aliases and archived have their
# own steps in _apply), and those the audit log compares: the same plus archived.
EDITABLE_FIELDS = ("name", "acronym", "org_type", "scope", "city", "state", "country", "website", "notes", "parent_id")
AUDITED_FIELDS = (*EDITABLE_FIELDS, "archived")
INTERACTION_KINDS = ("note", "call", "meeting", "email")
MAX_ALIASES = 50
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,59}$")
_REF_ID = re.compile(r"\(#(\d{1,11})\)$")


def snapshot(org: Organization) -> dict:
    """The audited fields of an organization, for before → after records."""
    values = {name: getattr(org, name) for name in AUDITED_FIELDS}
    values["issue_areas"] = sorted(a.slug for a in org.issue_areas)
    values["aliases"] = sorted(a.name for a in org.aliases)
    return values


def resolve_organization_ref(ref) -> int | None:
    """An organization id from a reference a person typed: an id ("123" or "#123") or an exact name or acronym."""
    if ref in (None, ""):
        return None
    if isinstance(ref, bool):
        raise FieldError("Give an organization id or its exact name.")
    if isinstance(ref, int):
        if db.session.get(Organization, ref) is None:
            raise FieldError(f"There is no organization {ref}.")
        return ref
    text = check.text_line(ref, 300, label="Organization")
    if not text:
        return None
    tagged = _REF_ID.search(text)
    digits = tagged.group(1) if tagged else text.lstrip("#")
    if (number := whole_number(digits)) is not None:
        return resolve_organization_ref(number)
    ids = list(
        db.session.scalars(
            select(Organization.id)
            .where(
                (Organization.sort_name == sort_name(text))
                | (func.lower(Organization.acronym) == text.lower())
            )
            .limit(3)
        )
    )
    if not ids:
        raise FieldError(f"No organization is named {text[:80]!r}; give its exact name or its id.")
    if len(ids) > 1:
        raise FieldError(f"Several organizations match {text[:80]!r}; give the id (#{ids[0]}, #{ids[1]}, …).")
    return ids[0]


PARENT_CYCLE = "An organization cannot be its own parent or an affiliate of its affiliates."


def makes_parent_cycle(org_id: int, parent_id: int | None, parent_of: Callable[[int], int | None]) -> bool:
    """Whether giving organization `org_id` this parent makes its parent chain come back to it.

    `parent_of(id)` reads one link of the chain: the database's, or (an import) the file's changes over it.
    """
    seen: set[int] = set()
    cursor = parent_id
    while cursor is not None and cursor not in seen:
        if cursor == org_id:
            return True
        seen.add(cursor)
        cursor = parent_of(cursor)
    return False


def _stored_parent(org_id: int) -> int | None:
    return db.session.scalar(select(Organization.parent_id).where(Organization.id == org_id))


def _check_parent(parent_ref, org_id: int | None) -> int | None:
    """A parent id that exists and does not make an organization its own ancestor."""
    parent_id = resolve_organization_ref(parent_ref)
    if parent_id is None or org_id is None:
        return parent_id
    if makes_parent_cycle(org_id, parent_id, _stored_parent):
        raise FieldError(PARENT_CYCLE)
    return parent_id


# Parent changes are serialized by this PostgreSQL advisory lock (any constant key, unique to this purpose).
_PARENT_LOCK_KEY = 7_311_024_501


def _check_parent_cycle_locked(org: Organization) -> None:
    """Check, under a write lock, that the organization's new parent chain does not come back to it.

    _check_parent checked before anything was locked: two simultaneous changes (A→B and B→A) each saw no cycle
    and both committed one. Here the check runs again once this transaction holds the lock that every parent
    change takes (PostgreSQL: an advisory lock for the transaction; SQLite: the database's write lock, taken by
    flushing the change), so it reads the other change if that one committed first.
    """
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(select(func.pg_advisory_xact_lock(_PARENT_LOCK_KEY)))
    db.session.flush()  # the UPDATE: on SQLite this takes the write lock before the chain is read
    if makes_parent_cycle(org.id, org.parent_id, _stored_parent):
        raise InvalidData({"parent_id": [
            f"{PARENT_CYCLE[:-1]} (someone may just have made this parent an affiliate of it)."]})


def _check_issue_areas(value) -> list[str]:
    """Known issue-area slugs (a list, or one comma-separated string)."""
    if value in (None, ""):
        return []
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",")]
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise FieldError("Issue areas must be a list of issue-area slugs.")
    slugs = list(dict.fromkeys(v.strip().lower() for v in value if v.strip()))
    if any(not _SLUG.match(slug) for slug in slugs):
        raise FieldError("Issue areas are slugs such as immigration or digital-rights.")
    if len(slugs) > 100:
        raise FieldError("At most 100 issue areas.")
    known = (
        set(db.session.scalars(select(IssueArea.slug).where(IssueArea.slug.in_(slugs)))) if slugs else set()
    )
    unknown = [s for s in slugs if s not in known]
    if unknown:
        raise FieldError(f"Unknown issue area: {', '.join(u[:60] for u in unknown)}.")
    return slugs


def _check_aliases(value) -> list[str]:
    """Other spellings of the name: a list, or one spelling per line."""
    if value in (None, ""):
        return []
    if isinstance(value, str):
        value = value.replace("\r\n", "\n").split("\n")
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise FieldError("Aliases must be a list of names.")
    names = [check.text_line(v, 300, label="An alias") for v in value]
    names = list(dict.fromkeys(n for n in names if n))
    if len(names) > MAX_ALIASES:
        raise FieldError(f"At most {MAX_ALIASES} aliases.")
    return names


def _check_bool(value) -> bool:
    """A JSON boolean."""
    if not isinstance(value, bool):
        raise FieldError("Must be true or false.")
    return value


def clean_organization(data: dict, *, partial: bool = False, org_id: int | None = None) -> dict:
    """Validate organization fields from a form or the API; raises InvalidData listing every field at fault.

    With partial=True only the fields present are checked (PATCH); otherwise a name is required.
    """
    checks = {
        "name": lambda v: check.text_line(v, 300, required=True, label="Name"),
        "acronym": lambda v: check.text_line(v, 40, label="Acronym") or None,
        "org_type": lambda v: check.choice(v, ORG_TYPES, "Type"),
        "scope": lambda v: check.choice(v, SCOPES, "Scope"),
        "city": lambda v: check.text_line(v, 120, label="City") or None,
        "state": check.us_state,
        "country": check.country,
        "website": check.web_url,
        "notes": lambda v: check.text_block(v, 20000, label="Notes"),
        "parent_id": lambda v: _check_parent(v, org_id),
        "issue_areas": _check_issue_areas,
        "aliases": _check_aliases,
        "archived": _check_bool,
    }
    clean: dict = {}
    errors: dict[str, list[str]] = {}
    for name, checker in checks.items():
        if name not in data and (partial or name != "name"):
            continue
        try:
            clean[name] = checker(data.get(name))
        except FieldError as exc:
            errors[name] = [str(exc)]
    if errors:
        raise InvalidData(errors)
    return clean


def _set_aliases(org: Organization, names: list[str]) -> None:
    """Make the organization's aliases exactly these names (kept ones keep their source and date)."""
    wanted = {fold(n): n for n in names if fold(n) and fold(n) != fold(org.name)}
    for alias in list(org.aliases):
        if alias.normalized not in wanted:
            org.aliases.remove(alias)
        else:
            alias.name = wanted.pop(alias.normalized)
    for normalized, name in wanted.items():
        org.aliases.append(OrganizationAlias(name=name, normalized=normalized[:300], source="manual"))


def _apply(org: Organization, clean: dict) -> None:
    """Copy cleaned values onto an organization and recompute its derived fields."""
    for name in EDITABLE_FIELDS:
        if name in clean:
            setattr(org, name, clean[name])
    if "parent_id" in clean:
        org.parent = db.session.get(Organization, clean["parent_id"]) if clean["parent_id"] else None
    if "issue_areas" in clean and sorted(clean["issue_areas"]) != sorted(a.slug for a in org.issue_areas):
        slugs = clean["issue_areas"]
        org.issue_areas = (
            list(db.session.scalars(select(IssueArea).where(IssueArea.slug.in_(slugs)).order_by(IssueArea.slug)))
            if slugs
            else []
        )
    if "aliases" in clean:
        _set_aliases(org, clean["aliases"])
    if "archived" in clean:
        org.archived = clean["archived"]
    refresh_search_text(org)


def create_organization(data: dict, user_id: int | None = None) -> Organization:
    """Create an organization from form or API data (validated here) and record it in the audit log."""
    clean = clean_organization(data)
    org = Organization(name=clean["name"], sort_name=sort_name(clean["name"])[:300], notes="")
    with db.session.no_autoflush:  # one INSERT, so a new organization starts at version 1
        _apply(org, clean)
        db.session.add(org)
    db.session.flush()
    record(
        "create", "organization", org.id, user_id=user_id, summary=f"Created {org.name}", after=snapshot(org)
    )
    db.session.commit()
    return org


def update_organization(
    org_id: int, data: dict, *, version: int | None, user_id: int | None = None, action: str = "update"
) -> Organization:
    """Change an organization if `version` is still current; raises NotFound, InvalidData or ConflictError.

    Nothing is written when nothing changed; otherwise the version goes up by one and the change is audited.
    """
    org = get_organization(org_id)
    if org is None:
        raise NotFound(org_id)
    check_version(org, version, "organization", get_organization)
    clean = clean_organization(data, partial=True, org_id=org.id)
    before = snapshot(org)
    old_acronym = org.acronym
    with db.session.no_autoflush:  # one UPDATE: the version goes up by exactly one per save
        _apply(org, clean)
        after = snapshot(org)
        if before == after:
            db.session.rollback()
            return get_organization(org_id)
        # Issue areas and aliases live in other tables: touching the row makes the version go up for them too.
        org.updated_at = utcnow()
    if before.get("parent_id") != after.get("parent_id") and org.parent_id is not None:
        try:
            _check_parent_cycle_locked(org)
        except InvalidData:
            db.session.rollback()
            raise
        except StaleDataError:
            raise conflict(org, "organization", get_organization) from None
    if org.acronym != old_acronym:
        for affiliate in org.affiliates:
            refresh_search_text(affiliate)
    changed = [k for k in after if before.get(k) != after.get(k)]
    verb = {"archive": "Archived", "restore": "Restored"}.get(action, "Edited")
    record(
        action,
        "organization",
        org.id,
        user_id=user_id,
        summary=f"{verb} {org.name}"
        + (f" ({', '.join(field_label(k).lower() for k in changed)})" if action == "update" else ""),
        before={k: before[k] for k in changed},
        after={k: after[k] for k in changed},
    )
    commit_versioned(org, "organization", get_organization)
    return org


def set_archived(
    org_id: int, archived: bool, *, version: int | None = None, user_id: int | None = None
) -> Organization:
    """Archive or restore an organization (version checked when given)."""
    org = get_organization(org_id)
    if org is None:
        raise NotFound(org_id)
    return update_organization(
        org_id,
        {"archived": archived},
        version=org.version if version is None else version,
        user_id=user_id,
        action="archive" if archived else "restore",
    )


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


def organization_name(org_id: int | None) -> str | None:
    """The name of an organization, for labels ("affiliates of …")."""
    if not org_id:
        return None
    return db.session.scalar(select(Organization.name).where(Organization.id == org_id))


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


# --- interactions --------------------------------------------------------------------------------------------


def interactions_of(org_id: int, limit: int = 200) -> list[Interaction]:
    """An organization's logged notes, calls and meetings, newest first, with who logged them."""
    return list(
        db.session.scalars(
            select(Interaction)
            .where(Interaction.organization_id == org_id)
            .order_by(Interaction.occurred_on.desc(), Interaction.id.desc())
            .limit(limit)
            .options(selectinload(Interaction.user), selectinload(Interaction.contact))
        )
    )


def add_interaction(org_id: int, data: dict, user_id: int | None = None) -> Interaction:
    """Log a dated note, call, meeting or email with an organization (validated here, audited)."""
    errors: dict[str, list[str]] = {}
    clean: dict = {}
    checks = {
        "kind": lambda v: check.choice(v, INTERACTION_KINDS, "Kind") or "note",
        "occurred_on": _check_date,
        "summary": lambda v: check.text_line(v, 300, required=True, label="Summary"),
        "body": lambda v: check.text_block(v, 20000, label="Details"),
        "contact_id": lambda v: _check_contact_of(v, org_id),
    }
    for name, checker in checks.items():
        try:
            clean[name] = checker(data.get(name))
        except FieldError as exc:
            errors[name] = [str(exc)]
    if errors:
        raise InvalidData(errors)
    if db.session.get(Organization, org_id) is None:
        raise NotFound(org_id)
    item = Interaction(organization_id=org_id, user_id=user_id, **clean)
    db.session.add(item)
    db.session.flush()
    record(
        "interaction",
        "organization",
        org_id,
        user_id=user_id,
        summary=f"Logged a {item.kind}: {item.summary}"[:2000],
    )
    db.session.commit()
    return item


def _check_date(value) -> date:
    """A date (a date object, or text written YYYY-MM-DD); defaults to today."""
    if value in (None, ""):
        return date.today()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError as exc:
        raise FieldError("Write the date as YYYY-MM-DD.") from exc


def _check_contact_of(value, org_id: int) -> int | None:
    """A contact id that belongs to this organization, or None."""
    if value in (None, "", 0, "0"):
        return None
    from crm.contacts.models import Contact

    try:
        contact_id = int(value)
    except (TypeError, ValueError) as exc:
        raise FieldError("Choose one of the organization's contacts.") from exc
    contact = db.session.get(Contact, contact_id)
    if contact is None or contact.organization_id != org_id:
        raise FieldError("Choose one of the organization's contacts.")
    return contact_id


# --- the issue-area vocabulary (admins) ----------------------------------------------------------------------


def _issue_area(slug: str) -> IssueArea:
    """The issue area with this slug; raises NotFound."""
    area = db.session.scalar(select(IssueArea).where(IssueArea.slug == slug))
    if area is None:
        raise NotFound(slug)
    return area


def _clean_issue_area_name(name: str) -> str:
    """An issue area's name as typed for a new area or a rename; raises InvalidData on `name`."""
    try:
        return check.text_line(name, 120, required=True, label="Name")
    except FieldError as exc:
        raise InvalidData({"name": [str(exc)]}) from exc


def rename_issue_area(slug: str, name: str, user_id: int | None = None) -> IssueArea:
    """Give an issue area a new display name (its slug, used in links and filters, stays)."""
    area = _issue_area(slug)
    name = _clean_issue_area_name(name)
    if name != area.name:
        before, area.name = area.name, name
        commit_audited("rename", "issue_area", area.id, user_id=user_id, summary=f"Renamed issue area {area.slug}",
                       before={"name": before}, after={"name": name})
    return area


def create_issue_area(name: str, user_id: int | None = None) -> IssueArea:
    """Add an issue area; its slug is made from the name."""
    from crm.common.text import slugify

    name = _clean_issue_area_name(name)
    slug = slugify(name)[:60]
    if not slug:
        raise InvalidData({"name": ["The name needs at least one letter or digit."]})
    if db.session.scalar(select(IssueArea.id).where(IssueArea.slug == slug)) is not None:
        raise InvalidData({"name": [f"There is already an issue area {slug!r}."]})
    area = IssueArea(slug=slug, name=name, retired=False)
    db.session.add(area)
    db.session.flush()
    commit_audited("create", "issue_area", area.id, user_id=user_id, summary=f"Added issue area {name}",
                   after={"slug": slug, "name": name})
    return area


def set_issue_area_retired(slug: str, retired: bool, user_id: int | None = None) -> IssueArea:
    """Retire an issue area (kept on records and in filters, no longer offered) or bring it back."""
    area = _issue_area(slug)
    if area.retired != retired:
        area.retired = retired
        commit_audited("retire" if retired else "unretire", "issue_area", area.id, user_id=user_id,
                       summary=f"{'Retired' if retired else 'Brought back'} issue area {area.name}",
                       before={"retired": not retired}, after={"retired": retired})
    return area


def _filter_with_area_replaced(params: dict, source_slug: str, target_slug: str) -> dict:
    """Stored filter parameters with one issue area slug replaced by another (in both lists, without doubles)."""
    changed = dict(params)
    for key in ("issue_area", "not_issue_area"):
        areas_in_filter = list(params.get(key) or [])
        if source_slug in areas_in_filter:
            changed[key] = list(dict.fromkeys(target_slug if s == source_slug else s for s in areas_in_filter))
    return changed


def merge_issue_areas(source_slug: str, target_slug: str, user_id: int | None = None) -> IssueArea:
    """Fold one issue area into another: its organizations, letters, segments and merge audiences move, then it
    is removed."""
    if source_slug == target_slug:
        raise InvalidData({"target": ["Choose two different issue areas."]})
    areas = {
        a.slug: a
        for a in db.session.scalars(select(IssueArea).where(IssueArea.slug.in_([source_slug, target_slug])))
    }
    if source_slug not in areas or target_slug not in areas:
        raise InvalidData({"source" if source_slug not in areas else "target": ["No such issue area."]})
    source, target = areas[source_slug], areas[target_slug]
    moved = 0
    for table, key in ((oia, "organization_id"), (lia, "letter_id")):
        ids = set(db.session.scalars(select(table.c[key]).where(table.c.issue_area_id == source.id)))
        have = (
            set(
                db.session.scalars(
                    select(table.c[key]).where(table.c.issue_area_id == target.id, table.c[key].in_(ids))
                )
            )
            if ids
            else set()
        )
        if ids - have:
            db.session.execute(
                table.insert(), [{key: i, "issue_area_id": target.id} for i in sorted(ids - have)]
            )
        db.session.execute(table.delete().where(table.c.issue_area_id == source.id))
        if table is oia:
            moved = len(ids)
            # Versions go up so that a form opened before the merge does not silently put the old area back.
            for org in (
                db.session.scalars(select(Organization).where(Organization.id.in_(ids))) if ids else []
            ):
                org.updated_at = utcnow()
    # Every stored filter naming the source area: segments, and merges' own audience filters.
    for segment in db.session.scalars(select(Segment)):
        changed = _filter_with_area_replaced(segment.filter, source_slug, target_slug)
        if changed != segment.filter:
            segment.filter = changed
    for merge in db.session.scalars(select(MailMerge)):
        stored = (merge.audience or {}).get("filter") or {}
        changed = _filter_with_area_replaced(stored, source_slug, target_slug)
        if changed != stored:
            merge.audience = {**merge.audience, "filter": changed}  # a new dict: the JSON column sees the change
    record(
        "merge",
        "issue_area",
        target.id,
        user_id=user_id,
        summary=f"Merged issue area {source.name} into {target.name} ({moved} organizations)",
        before={"merged": source.slug},
        after={"into": target.slug},
    )
    db.session.delete(source)
    db.session.commit()
    return target
