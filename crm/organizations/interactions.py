"""The interaction log: dated notes, calls, meetings and emails with an organization."""

from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from crm.audit.services import record
from crm.common import validation as check
from crm.common.errors import NotFound
from crm.common.validation import FieldError, InvalidData
from crm.extensions import db
from crm.organizations.models import Interaction, Organization

INTERACTION_KINDS = ("note", "call", "meeting", "email")


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
