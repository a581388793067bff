"""A new organization known only by its name (a signatory line, a public sign-on, an imported contact's employer).

Form and API creation validate every field (crm.organizations.services.create_organization); these callers have a
name they already cleaned and, at most, a few fields they checked themselves.
"""

from crm.audit.services import record
from crm.common.text import fold, sort_name
from crm.extensions import db
from crm.organizations.models import Organization
from crm.organizations.services import refresh_search_text, snapshot


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
