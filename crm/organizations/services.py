"""Organization logic: listing with filters, profiles, participation history, editing with audit."""

import re
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import joinedload, selectinload
from sqlalchemy.orm.exc import StaleDataError

from crm.audit.labels import field_label
from crm.audit.models import AuditEvent
from crm.audit.services import commit_audited, record
from crm.common import validation as check
from crm.common.paging import Paged
from crm.common.text import fold, single_line, sort_name
from crm.common.types import utcnow
from crm.common.validation import FieldError, InvalidData, whole_number
from crm.extensions import db
from crm.letters.models import Letter, Signature
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

MAX_PER_PAGE = 200


@dataclass
class OrgPage(Paged):
    """One page of a filtered organization list."""

    items: list[Organization]
    total: int
    page: int
    per_page: int
    letters_signed: dict[int, int]


def list_organizations(
    f: OrgFilter, *, sort: str = "name", page: int = 1, per_page: int = 50, with_aliases: bool = False
) -> OrgPage:
    """A page of organizations matching the filter, with their issue areas, parent and letters-signed counts.

    A fixed number of statements whatever the page size: count, page (parent joined; letters signed is a column
    kept by triggers), issue areas, and aliases when asked for (the API shows them, the list page does not).
    """
    per_page = max(1, min(per_page, MAX_PER_PAGE))
    page = max(1, page)
    where = conditions(f)
    total = db.session.scalar(select(func.count()).select_from(Organization).where(*where)) or 0
    options = [selectinload(Organization.issue_areas), joinedload(Organization.parent)]
    if with_aliases:
        options.append(selectinload(Organization.aliases))
    query = (
        select(Organization)
        .where(*where)
        .order_by(*order_clause(sort))
        .options(*options)
        .limit(per_page)
        .offset((page - 1) * per_page)
    )
    items = list(db.session.scalars(query))
    return OrgPage(items, total, page, per_page, {o.id: o.letters_signed for o in items})


# Slotted, not frozen: a page builds up to 200 rows with their parents and areas, and a frozen dataclass's
# __init__ (object.__setattr__ per field) costs five times a plain one's. Nothing changes them after building.
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
class OrgRow:
    """One organization as a list page shows it: plain values, no ORM instance."""

    id: int
    name: str
    acronym: str | None
    org_type: str | None
    scope: str | None
    city: str | None
    state: str | None
    archived: bool
    letters_signed: int
    parent: ParentRef | None
    issue_areas: list[AreaRef]


def _read(statement):
    """Run a column-only SELECT on the session's connection (its transaction): plain rows, without the ORM's
    result machinery, which costs more than the SQL for a page of values. Flushes first when the session
    autoflushes, as session.execute would, so the rows include this session's pending changes."""
    if db.session.autoflush:
        db.session.flush()
    return db.session.connection().execute(statement)


# The list page's three statements, built once from the tables: a list page reads plain columns, so it runs them
# on the session's connection as Core statements and skips the ORM's result machinery (entities, identity map),
# which cost more than the SQL. Only the WHERE and ORDER BY, LIMIT and OFFSET are added per request.
_ORGS = Organization.__table__
_PARENTS = _ORGS.alias("parent")
_AREAS = IssueArea.__table__
_ROW_PAGE = select(
    _ORGS.c.id, _ORGS.c.name, _ORGS.c.acronym, _ORGS.c.org_type, _ORGS.c.scope, _ORGS.c.city, _ORGS.c.state,
    _ORGS.c.archived, _ORGS.c.letters_signed, _ORGS.c.parent_id, _PARENTS.c.name.label("parent_name"),
).select_from(_ORGS.outerjoin(_PARENTS, _PARENTS.c.id == _ORGS.c.parent_id))
_ROW_COUNT = select(func.count()).select_from(_ORGS)
_ROW_AREAS = (
    select(oia.c.organization_id, _AREAS.c.slug, _AREAS.c.name)
    .join(_AREAS, _AREAS.c.id == oia.c.issue_area_id)
    .order_by(_AREAS.c.slug)
)


def list_organization_rows(f: OrgFilter, *, sort: str = "name", page: int = 1, per_page: int = 50) -> OrgPage:
    """Like list_organizations, for pages: the same rows as plain values (count, page with parents, areas).

    A list page shows ten columns of fifty organizations; building ORM instances (every column, identity map,
    collections) cost more than the SQL, so this reads columns and the issue areas and parents of the page.
    """
    per_page = max(1, min(per_page, MAX_PER_PAGE))
    page = max(1, page)
    where = conditions(f)
    total = _read(_ROW_COUNT.where(*where)).scalar() or 0
    rows = _read(
        _ROW_PAGE.where(*where).order_by(*order_clause(sort)).limit(per_page).offset((page - 1) * per_page)
    ).all()
    areas: dict[int, list[AreaRef]] = {row[0]: [] for row in rows}
    if areas:
        for org_id, slug, name in _read(_ROW_AREAS.where(oia.c.organization_id.in_(list(areas)))).all():
            areas[org_id].append(AreaRef(slug, name))
    items = [
        OrgRow(org_id, name, acronym, org_type, scope, city, state, archived, letters_signed,
               ParentRef(parent_id, parent_name) if parent_id else None, areas[org_id])
        for org_id, name, acronym, org_type, scope, city, state, archived, letters_signed, parent_id, parent_name
        in rows
    ]
    return OrgPage(items, total, page, per_page, {o.id: o.letters_signed for o in items})


def iter_organizations(f: OrgFilter, sort: str = "name", batch: int = 1000):
    """Every matching organization, in sort order, loaded in batches (for exports)."""
    query = (
        select(Organization)
        .where(*conditions(f))
        .order_by(*order_clause(sort))
        .options(selectinload(Organization.issue_areas), selectinload(Organization.parent))
        .execution_options(yield_per=batch)
    )
    for partition in db.session.scalars(query).partitions():
        for org in partition:
            yield org, org.letters_signed


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


# The filter form's options, built once from the tables' columns (ORM-annotated columns cost ~25 us more per
# execution in cache key and result set-up: a quarter of this query's time).
_AREA_OPTIONS = select(_AREAS.c.slug, _AREAS.c.name, _AREAS.c.retired).order_by(_AREAS.c.name)
_ACTIVE_AREA_OPTIONS = _AREA_OPTIONS.where(_AREAS.c.retired.is_(False))


def issue_area_options(include_retired: bool = False) -> list:
    """The issue-area vocabulary by name as plain rows (slug, name, retired), for filter forms."""
    return _read(_AREA_OPTIONS if include_retired else _ACTIVE_AREA_OPTIONS).all()


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


class NotFound(LookupError):
    """The record asked for does not exist."""


class ConflictError(Exception):
    """The record changed since the form (or API client) read it; `current` is the record as saved now."""

    def __init__(self, current, last_change: AuditEvent | None = None):
        super().__init__("This record was changed by someone else after you opened it.")
        self.current = current
        self.last_change = last_change


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


def _check_parent(parent_ref, org_id: int | None) -> int | None:
    """A parent id that exists and does not make an organization its own ancestor."""
    parent_id = resolve_organization_ref(parent_ref)
    if parent_id is None or org_id is None:
        return parent_id
    seen, cursor = set(), parent_id
    while cursor is not None and cursor not in seen:
        if cursor == org_id:
            raise FieldError("An organization cannot be its own parent or an affiliate of its affiliates.")
        seen.add(cursor)
        cursor = db.session.scalar(select(Organization.parent_id).where(Organization.id == cursor))
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
    seen: set[int] = set()
    cursor = org.parent_id
    while cursor is not None and cursor not in seen:
        if cursor == org.id:
            raise InvalidData({"parent_id": [
                "An organization cannot be its own parent or an affiliate of its affiliates "
                "(someone may just have made this parent an affiliate of it)."]})
        seen.add(cursor)
        cursor = db.session.scalar(select(Organization.parent_id).where(Organization.id == cursor))


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


def last_change(entity_type: str, entity_id: int) -> AuditEvent | None:
    """The newest audit event of a record (who changed it last, for conflict messages)."""
    return db.session.scalar(
        select(AuditEvent)
        .where(AuditEvent.entity_type == entity_type, AuditEvent.entity_id == entity_id)
        .order_by(AuditEvent.id.desc())
        .limit(1)
    )


def _conflict(org_id: int) -> ConflictError:
    """A ConflictError carrying the organization as it is saved now."""
    db.session.rollback()
    db.session.expire_all()
    return ConflictError(get_organization(org_id), last_change("organization", org_id))


def update_organization(
    org_id: int, data: dict, *, version: int | None, user_id: int | None = None, action: str = "update"
) -> Organization:
    """Change an organization if `version` is still current; raises NotFound, InvalidData or ConflictError.

    Nothing is written when nothing changed; otherwise the version goes up by one and the change is audited.
    """
    org = get_organization(org_id)
    if org is None:
        raise NotFound(org_id)
    if version is None or version != org.version:
        raise _conflict(org_id)
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
            db.session.rollback()
            raise _conflict(org_id) from None
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
    try:
        db.session.commit()
    except StaleDataError:
        raise _conflict(org_id) from None
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
# Newest first, built once from the table's columns, like _AREA_OPTIONS (every filter form runs it).
_LETTERS = Letter.__table__
_LETTER_OPTIONS = select(_LETTERS.c.slug, _LETTERS.c.title).order_by(
    func.coalesce(_LETTERS.c.letter_date, _LETTERS.c.deadline).desc().nulls_first(), _LETTERS.c.id.desc()
)


def letter_options(
    selected: list[str] | tuple[str, ...] = (), limit: int = FILTER_LETTERS
) -> list[tuple[str, str]]:
    """(slug, title) of the most recent letters plus any already selected, newest first, for filter forms.

    Not all thousand: a select that long is no use to a person and costs the page most of its time; any letter
    still works through the URL (and the chosen ones are always listed).
    """
    query = _LETTER_OPTIONS
    options = [(slug, title) for slug, title in _read(query.limit(limit))]
    missing = [s for s in selected if s not in {slug for slug, _ in options}]
    if missing:
        options += [(slug, title) for slug, title in _read(query.where(_LETTERS.c.slug.in_(missing)))]
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


def merge_issue_areas(source_slug: str, target_slug: str, user_id: int | None = None) -> IssueArea:
    """Fold one issue area into another: its organizations, letters and saved segments move, then it is removed."""
    from crm.letters.models import letter_issue_areas as lia
    from crm.segments.models import Segment

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
    for segment in db.session.scalars(select(Segment)):
        changed = dict(segment.filter)
        for key in ("issue_area", "not_issue_area"):
            areas_in_filter = list(segment.filter.get(key) or [])
            if source_slug in areas_in_filter:
                replaced = [target_slug if s == source_slug else s for s in areas_in_filter]
                changed[key] = list(dict.fromkeys(replaced))
        if changed != segment.filter:
            segment.filter = changed
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
