"""Contact logic: filtered lists, one primary per organization, moves and departures kept in the audit log."""

from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from crm.audit.labels import field_label
from crm.audit.services import record
from crm.audit.versioning import check_version, commit_versioned, conflict
from crm.common import validation as check
from crm.common.errors import ConflictError, NotFound
from crm.common.paging import Paged
from crm.common.types import utcnow
from crm.common.validation import FieldError, InvalidData
from crm.contacts.filters import ContactFilter, contact_conditions
from crm.contacts.models import CONTACT_STATUSES, Contact
from crm.contacts.queries import mailable_condition
from crm.extensions import db
from crm.mailmerge.models import Suppression
from crm.organizations.editing import resolve_organization_ref
from crm.organizations.filters import OrgFilter, org_ids_query
from crm.organizations.models import Organization

MAX_PER_PAGE = 200
AUDITED_FIELDS = (
    "first_name",
    "last_name",
    "title",
    "email",
    "phone",
    "organization_id",
    "is_primary",
    "status",
    "notes",
)


@dataclass
class ContactPage(Paged):
    """One page of a filtered contact list, with the filter's mailable count."""

    items: list[Contact]
    total: int
    mailable: int
    page: int
    per_page: int


def contacts_of(org_id: int) -> list[Contact]:
    """An organization's contacts: active primary first, then active, then those who left."""
    contacts = list(
        db.session.scalars(
            select(Contact)
            .where(Contact.organization_id == org_id)
            .order_by(
                (Contact.status != "active"),
                Contact.is_primary.desc(),
                Contact.last_name,
                Contact.first_name,
                Contact.id,
            )
        )
    )
    annotate_mailable(contacts)
    return contacts


def annotate_mailable(contacts: list[Contact]) -> None:
    """Set `.mailable` on each contact (active, has an address, not suppressed) with one query for the lot."""
    emails = {c.email for c in contacts if c.email}
    suppressed = (
        set(db.session.scalars(select(Suppression.email).where(Suppression.email.in_(emails))))
        if emails
        else set()
    )
    for contact in contacts:
        contact.mailable = bool(
            contact.status == "active" and contact.email and contact.email not in suppressed
        )


def _order(sort: str) -> list:
    """ORDER BY for a contact sort key."""
    orders = {
        "name": [Contact.last_name, Contact.first_name],
        "-name": [Contact.last_name.desc(), Contact.first_name.desc()],
        "email": [Contact.email.asc().nulls_last()],
        "-created": [Contact.created_at.desc()],
        "organization": [
            select(Organization.sort_name)
            .where(Organization.id == Contact.organization_id)
            .scalar_subquery()
            .asc()
            .nulls_last(),
            Contact.last_name,
        ],
    }
    return [*orders.get(sort, orders["name"]), Contact.id]


def list_contacts(
    f: ContactFilter | None = None, *, sort: str = "name", page: int = 1, per_page: int = 50
) -> ContactPage:
    """A page of contacts matching the filter, with their organizations; a fixed number of statements."""
    f = f or ContactFilter()
    per_page = max(1, min(per_page, MAX_PER_PAGE))
    page = max(1, page)
    where = contact_conditions(f)
    total = db.session.scalar(select(func.count()).select_from(Contact).where(*where)) or 0
    mailable = (
        db.session.scalar(select(func.count()).select_from(Contact).where(*where, mailable_condition())) or 0
    )
    items = list(
        db.session.scalars(
            select(Contact)
            .where(*where)
            .order_by(*_order(sort))
            .options(selectinload(Contact.organization))
            .limit(per_page)
            .offset((page - 1) * per_page)
        )
    )
    annotate_mailable(items)
    return ContactPage(items, total, mailable, page, per_page)


def iter_contacts(f: ContactFilter, sort: str = "name", batch: int = 1000) -> Iterator[Contact]:
    """Every matching contact, in order, loaded in batches (for exports)."""
    query = (
        select(Contact)
        .where(*contact_conditions(f))
        .order_by(*_order(sort))
        .options(selectinload(Contact.organization))
        .execution_options(yield_per=batch)
    )
    for partition in db.session.scalars(query).partitions():
        annotate_mailable(partition)
        yield from partition


def count_mailable(f: OrgFilter | None = None) -> int:
    """How many contacts can be mailed (at organizations matching `f`, when given)."""
    query = select(func.count(Contact.id)).where(mailable_condition())
    if f is not None:
        query = query.where(Contact.organization_id.in_(org_ids_query(f)))
    return db.session.scalar(query) or 0


def get_contact(contact_id: int) -> Contact | None:
    """One contact with its organization."""
    contact = db.session.scalar(
        select(Contact).where(Contact.id == contact_id).options(selectinload(Contact.organization))
    )
    if contact is not None:
        annotate_mailable([contact])
    return contact


def snapshot(contact: Contact) -> dict:
    """The audited fields of a contact."""
    return {name: getattr(contact, name) for name in AUDITED_FIELDS}


def _check_bool(value) -> bool:
    """A yes/no value from JSON (true/false) or a form checkbox."""
    if isinstance(value, bool):
        return value
    if value in ("y", "on", "true", "1"):
        return True
    if value in (None, "", "false", "0", "n", "off"):
        return False
    raise FieldError("Must be true or false.")


def _check_unique_email(email: str | None, contact_id: int | None) -> str | None:
    """An address no other contact has."""
    if email is None:
        return None
    other = db.session.scalar(select(Contact).where(Contact.email == email, Contact.id != (contact_id or 0)))
    if other is not None:
        where = f" at {other.organization.name}" if other.organization else ""
        raise FieldError(f"{other.full_name}{where} already has this address (contact #{other.id}).")
    return email


def clean_contact(data: dict, *, partial: bool = False, contact_id: int | None = None) -> dict:
    """Validate contact fields from a form or the API; raises InvalidData listing every field at fault."""
    checks = {
        "first_name": lambda v: check.text_line(v, 120, label="First name"),
        "last_name": lambda v: check.text_line(v, 120, label="Last name"),
        "title": lambda v: check.text_line(v, 200, label="Title"),
        "email": lambda v: _check_unique_email(check.email_address(v), contact_id),
        "phone": check.phone,
        "organization_id": resolve_organization_ref,
        "is_primary": _check_bool,
        "status": lambda v: check.choice(v, CONTACT_STATUSES, "Status") or "active",
        "notes": lambda v: check.text_block(v, 20000, label="Notes"),
    }
    clean: dict = {}
    errors: dict[str, list[str]] = {}
    for name, checker in checks.items():
        if name not in data and partial:
            continue
        try:
            clean[name] = checker(data.get(name))
        except FieldError as exc:
            errors[name] = [str(exc)]
    if (
        not partial
        and not errors
        and not (clean.get("first_name") or clean.get("last_name") or clean.get("email"))
    ):
        errors["first_name"] = ["Give at least a name or an email address."]
    if errors:
        raise InvalidData(errors)
    return clean


class PrimaryTaken(ConflictError):
    """Another contact of the organization became its primary contact at the same moment (a concurrent save)."""

    def __init__(self, current, last_change=None):
        super().__init__(current, last_change)
        self.args = ("Another contact of this organization was made its primary contact at the same moment; "
                     "nothing was saved. Reload and choose again.",)


def _final_state(contact: Contact, clean: dict) -> tuple[int | None, bool, str]:
    """(organization_id, is_primary, status) the contact will have once `clean` is applied (see _apply)."""
    org_id, primary, status = contact.organization_id, bool(contact.is_primary), contact.status or "active"
    moved = "organization_id" in clean and clean["organization_id"] != org_id
    org_id = clean.get("organization_id", org_id)
    primary = bool(clean.get("is_primary", primary and not moved))
    status = clean.get("status", status) or "active"
    if clean.get("is_primary") and org_id is None:
        raise InvalidData({"is_primary": ["A contact without an organization cannot be its primary contact: "
                                          "choose the organization too."]})
    return org_id, primary and org_id is not None and status == "active", status


def _demote_other_primaries(contact: Contact, clean: dict, user_id: int | None) -> list[Contact]:
    """One active primary contact per organization: when `clean` makes the contact primary, the organization's
    other primary stops being one, written at once (the database's unique index checks each statement, so the
    old primary must be demoted before the new one is saved). The demoted contacts."""
    org_id, primary, _ = _final_state(contact, clean)
    if not primary:
        return []
    others = list(db.session.scalars(
        select(Contact).where(
            Contact.organization_id == org_id,
            Contact.is_primary.is_(True),
            Contact.status == "active",
            Contact.id != (contact.id or 0),
        ).order_by(Contact.id)
    ))
    for other in others:
        other.is_primary = False
        record(
            "update",
            "contact",
            other.id,
            user_id=user_id,
            summary=f"{other.full_name} is no longer the primary contact",
            before={"is_primary": True},
            after={"is_primary": False},
        )
    if others:
        db.session.flush()  # only the demotions are pending here: the contact itself is changed after
    return others


def _say_replaced(contact: Contact, demoted: list[Contact]) -> None:
    """Tell the caller whom the contact replaced as primary (`replaced_primary`, shown by pages and the API)."""
    contact.replaced_primary = (
        {"id": demoted[0].id, "name": demoted[0].full_name} if demoted else None
    )


def _apply(contact: Contact, clean: dict) -> None:
    """Copy cleaned values onto a contact; a contact who left or moved is no longer primary unless told so."""
    moved = "organization_id" in clean and clean["organization_id"] != contact.organization_id
    for name, value in clean.items():
        setattr(contact, name, value)
    if moved and "is_primary" not in clean:
        contact.is_primary = False
    if contact.status == "left" or contact.organization_id is None:
        contact.is_primary = False


def create_contact(data: dict, user_id: int | None = None) -> Contact:
    """Create a contact from form or API data (validated here) and audit it."""
    clean = clean_contact(data)
    contact = Contact()
    demoted = _demote_other_primaries(contact, clean, user_id)
    _apply(contact, clean)
    db.session.add(contact)
    try:
        db.session.flush()
    except IntegrityError as exc:
        db.session.rollback()
        if _primary_clash(exc):
            raise PrimaryTaken(None) from None
        raise
    record(
        "create",
        "contact",
        contact.id,
        user_id=user_id,
        summary=f"Added contact {contact.full_name}",
        after=snapshot(contact),
    )
    if contact.organization_id:
        record(
            "contact",
            "organization",
            contact.organization_id,
            user_id=user_id,
            summary=f"Added contact {contact.full_name}",
        )
    db.session.commit()
    annotate_mailable([contact])
    _say_replaced(contact, demoted)
    return contact


def _primary_clash(exc: IntegrityError) -> bool:
    """Whether an integrity error is the one-active-primary index."""
    return "uq_contacts_one_active_primary" in str(exc.orig) or (
        "contacts.organization_id" in str(exc.orig) and "UNIQUE" in str(exc.orig)
    )


def update_contact(
    contact_id: int, data: dict, *, version: int | None, user_id: int | None = None
) -> Contact:
    """Change a contact if `version` is still current; raises NotFound, InvalidData or ConflictError."""
    contact = get_contact(contact_id)
    if contact is None:
        raise NotFound(contact_id)
    check_version(contact, version, "contact", get_contact)
    clean = clean_contact(data, partial=True, contact_id=contact.id)
    before = snapshot(contact)
    demoted = _demote_other_primaries(contact, clean, user_id)
    with db.session.no_autoflush:  # one UPDATE per save: the version goes up by one
        _apply(contact, clean)
        after = snapshot(contact)
        if before == after:
            db.session.rollback()
            return get_contact(contact_id)
        contact.updated_at = utcnow()
    changed = [k for k in after if before[k] != after[k]]
    if after["status"] == "left" and before["status"] != "left":
        summary = f"{contact.full_name} left the organization"
    elif "organization_id" in changed:
        summary = f"Moved {contact.full_name} to another organization"
    else:
        summary = f"Edited {contact.full_name} ({', '.join(field_label(k).lower() for k in changed)})"
    record(
        "update",
        "contact",
        contact.id,
        user_id=user_id,
        summary=summary,
        before={k: before[k] for k in changed},
        after={k: after[k] for k in changed},
    )
    for org_id in {before["organization_id"], after["organization_id"]} - {None}:
        record("contact", "organization", org_id, user_id=user_id, summary=summary)
    try:
        commit_versioned(contact, "contact", get_contact)
    except IntegrityError as exc:
        if not _primary_clash(exc):
            raise
        raise PrimaryTaken(conflict(contact, "contact", get_contact).current) from None
    annotate_mailable([contact])
    _say_replaced(contact, demoted)
    return contact


__all__ = [
    "ContactPage",
    "contacts_of",
    "list_contacts",
    "iter_contacts",
    "count_mailable",
    "get_contact",
    "create_contact",
    "update_contact",
    "clean_contact",
    "annotate_mailable",
    "InvalidData",
    "PrimaryTaken",
]
