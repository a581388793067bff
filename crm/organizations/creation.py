"""Creating organizations: from a form or the API (every field checked), or from a bare name.

A bare name comes from a signatory line, a public sign-on or an imported contact's employer: its callers have a
name they already cleaned and, at most, a few fields they checked themselves."""

from crm.audit.services import record
from crm.common.text import fold, sort_name
from crm.extensions import db
from crm.organizations.editing import _apply, clean_organization, refresh_search_text, snapshot
from crm.organizations.models import Organization


def named_organization_values(name: str) -> dict:
    """The column values of an organization that has only a name (also for bulk INSERTs of many)."""
    return {"name": name, "sort_name": sort_name(name)[:300], "search_text": fold(name), "notes": ""}


def add_named_organization(name: str, *, user_id: int | None, summary: str, **fields) -> Organization:
    """Add an organization by name (plus `fields`, already checked) inside the caller's transaction: flushed,
    searchable and in the audit log under `summary`; the caller commits."""
    org = Organization(**named_organization_values(name), **fields)
    db.session.add(org)
    db.session.flush()
    refresh_search_text(org)
    record("create", "organization", org.id, user_id=user_id, summary=summary, after=snapshot(org))
    return org


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
