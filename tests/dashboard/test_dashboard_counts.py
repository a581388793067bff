"""The dashboard's headline counts agree with counting the records themselves."""

import pytest
import sqlalchemy as sa

from crm.contacts import services as contacts
from crm.contacts.models import Contact
from crm.contacts.queries import mailable_condition, mailable_count
from crm.dashboard.services import counts
from crm.extensions import db
from crm.mailmerge.suppressions import add_suppression
from tests.factories import OrganizationFactory

# Aggregate SQL: on PostgreSQL too (tests/conftest.py).
pytestmark = pytest.mark.bothdb


def test_mailable_count_equals_the_mailable_condition(app):
    org = OrganizationFactory().id
    for i, (email, status) in enumerate([("a@example.org", "active"), ("b@example.org", "active"),
                                         ("c@example.org", "left"), (None, "active"), ("d@example.org", "active")]):
        contacts.create_contact({"first_name": f"P{i}", "email": email, "status": status, "organization_id": org})
    add_suppression("b@example.org")
    add_suppression("c@example.org")
    add_suppression("nobody@example.org")
    direct = db.session.scalar(sa.select(sa.func.count(Contact.id)).where(mailable_condition()))
    assert mailable_count() == direct == 2
    assert counts()["mailable"] == 2 and counts()["contacts"] == 5
