"""Contact logic."""

from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from crm.contacts.models import Contact
from crm.contacts.queries import mailable_condition
from crm.extensions import db


def contacts_of(org_id: int) -> list[Contact]:
    """An organization's contacts: active primary first, then active, then those who left."""
    return list(db.session.scalars(
        select(Contact).where(Contact.organization_id == org_id)
        .order_by((Contact.status != "active"), Contact.is_primary.desc(), Contact.last_name, Contact.first_name)))


def list_contacts(q: str = "", page: int = 1, per_page: int = 50):
    """A page of contacts with their organization, searchable by name or email."""
    query = select(Contact).options(selectinload(Contact.organization)).order_by(
        Contact.last_name, Contact.first_name, Contact.id)
    if q:
        pattern = f"%{q.lower()}%"
        query = query.where(func.lower(Contact.first_name + " " + Contact.last_name + " " +
                                       func.coalesce(Contact.email, "")).like(pattern))
    return db.paginate(query, page=page, per_page=per_page, error_out=False)


def count_mailable() -> int:
    """How many contacts can be mailed."""
    return db.session.scalar(select(func.count(Contact.id)).where(mailable_condition())) or 0
