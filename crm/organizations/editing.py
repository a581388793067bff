"""Changing an organization: field checks, the parent-cycle check, aliases, the versioned and audited update."""

import re
from collections.abc import Callable

from sqlalchemy import func, select
from sqlalchemy.orm.exc import StaleDataError

from crm.audit.labels import field_label
from crm.audit.services import record
from crm.audit.versioning import check_version, commit_versioned, conflict
from crm.common import validation as check
from crm.common.errors import NotFound
from crm.common.text import fold, single_line, sort_name
from crm.common.types import utcnow
from crm.common.validation import FieldError, InvalidData, whole_number
from crm.extensions import db
from crm.organizations.models import ORG_TYPES, SCOPES, IssueArea, Organization, OrganizationAlias
from crm.organizations.queries import get_organization

# The columns a create or an update copies from cleaned values (issue areas, aliases and archived have their
# own steps in _apply), and those the audit log compares: the same plus archived.
EDITABLE_FIELDS = ("name", "acronym", "org_type", "scope", "city", "state", "country", "website", "notes", "parent_id")
AUDITED_FIELDS = (*EDITABLE_FIELDS, "archived")
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
