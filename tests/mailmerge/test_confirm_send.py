"""Sending asks first (issue 13, point 4): "Queue and send" shows who, from whom and the first subject, and only a
second click (a form POST that works without JavaScript) queues."""

import pytest

from crm.mailmerge import reports
from tests.conftest import login
from tests.mailmerge.conftest import make_recipients, new_merge


@pytest.fixture
def organizer(client, users):
    login(client, users["organizer"].email)
    return client


def test_queue_and_send_asks_with_the_counts_sender_and_first_subject(app, organizer):
    org_ids = make_recipients(3)
    from crm.contacts.models import Contact
    from crm.extensions import db

    # A second contact at the first organization: 4 contacts at 3 organizations.
    db.session.add(Contact(organization_id=org_ids[0], first_name="Bo", last_name="Two", email="bo@example.net",
                           is_primary=False, status="active"))
    db.session.commit()
    merge = new_merge(sender="Ana Ruiz <ana@example.org>", audience={"filter": {}, "contacts": "all"})
    show = organizer.get(f"/merges/{merge.id}").get_data(as_text=True)
    assert f'href="/merges/{merge.id}/queue"' in show  # a link to the question, not a button that sends
    page = organizer.get(f"/merges/{merge.id}/queue").get_data(as_text=True)
    assert "Send to 4 contacts at 3 organizations now?" in page
    assert "Ana Ruiz &lt;ana@example.org&gt;" in page
    assert "Hello Person Org 0" in page  # the first recipient's rendered subject
    assert reports.get_merge(merge.id).status == "draft"
    # A POST without the confirmation (an old form, a double-submitted first click) only asks again.
    again = organizer.post(f"/merges/{merge.id}/queue")
    assert again.status_code == 200 and "now?" in again.get_data(as_text=True)
    assert reports.get_merge(merge.id).status == "draft"
    sent = organizer.post(f"/merges/{merge.id}/queue", data={"confirmed": "yes"})
    assert sent.status_code == 303
    db.session.expire_all()
    assert reports.get_merge(merge.id).status == "queued"
    # Once queued, the question is not asked again.
    assert organizer.get(f"/merges/{merge.id}/queue").status_code == 303


def test_one_contact_reads_in_the_singular(app, organizer):
    make_recipients(1)
    merge = new_merge()
    assert "Send to 1 contact at 1 organization now?" in organizer.get(f"/merges/{merge.id}/queue").get_data(
        as_text=True)
