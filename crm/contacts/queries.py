"""Query pieces about contacts shared by filters, counts and mail-merge audiences."""

from sqlalchemy import and_, exists, select

from crm.contacts.models import Contact
from crm.mailmerge.models import Suppression


def mailable_condition():
    """A contact can be mailed: active, has an email, and the address is not suppressed."""
    return and_(
        Contact.status == "active",
        Contact.email.is_not(None),
        Contact.email != "",
        Contact.email.not_in(select(Suppression.email)),
    )


def mailable_contact_exists(organization_id_column):
    """EXISTS a mailable contact at the given organization."""
    return exists().where(Contact.organization_id == organization_id_column, mailable_condition())
