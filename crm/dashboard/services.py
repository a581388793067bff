"""Numbers for the dashboard."""

from sqlalchemy import func, select

from crm.contacts.models import Contact
from crm.extensions import db
from crm.letters.models import Letter, Signature
from crm.organizations.models import Organization


def counts() -> dict[str, int]:
    """Headline counts."""
    return {
        "organizations": db.session.scalar(select(func.count(Organization.id))
                                           .where(Organization.archived.is_(False))) or 0,
        "contacts": db.session.scalar(select(func.count(Contact.id))) or 0,
        "letters": db.session.scalar(select(func.count(Letter.id))) or 0,
        "signatures": db.session.scalar(select(func.count(Signature.id))
                                        .where(Signature.status == "confirmed")) or 0,
    }
