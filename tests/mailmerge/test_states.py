"""One vocabulary for a message's state on the merge page, its report, the outbox and a message (issue 13, point 8,
merge part)."""

import re

from sqlalchemy import insert, select

from crm.common.types import utcnow
from crm.contacts.models import Contact
from crm.extensions import db
from crm.mailmerge import reports
from crm.mailmerge.models import Message
from crm.mailmerge.states import LISTED, MESSAGE_STATES
from tests.conftest import login
from tests.mailmerge.conftest import make_recipients, new_merge

STATUSES = ["queued", "claimed", "sending", "sent", "outbox", "failed", "suppressed", "uncertain", "cancelled"]


def _merge_with_every_state():
    make_recipients(len(STATUSES))
    merge = new_merge()
    now = utcnow()
    contacts = db.session.execute(select(Contact.id, Contact.email, Contact.organization_id)
                                  .order_by(Contact.id)).all()
    db.session.execute(insert(Message), [
        {"merge_id": merge.id, "contact_id": c.id, "organization_id": c.organization_id, "email": c.email,
         "kind": "merge", "status": status, "queued_at": now, "updated_at": now, "attempts": 0,
         "last_response": "", "message_id": "", "subject": "Hello", "raw": "x", "claimed_by": ""}
        for c, status in zip(contacts, STATUSES, strict=True)
    ])
    merge.status = "paused"
    db.session.commit()
    return merge


def _badges(html: str) -> set[str]:
    return set(re.findall(r'<span class="badge [^"]*" title="[^"]*" data-status="\w+">([^<]+)</span>', html))


def test_every_page_uses_the_same_words_for_a_message_state(app, client, users):
    merge = _merge_with_every_state()
    login(client, users["organizer"].email)
    labels = {state.label for state in MESSAGE_STATES.values()}
    report = client.get(f"/merges/{merge.id}/report").get_data(as_text=True)
    assert _badges(report) == labels  # claimed and sending both read "Sending"
    assert ">claimed<" not in report and "claimed:" not in report.lower()
    filters = re.search(r'id="report-filters">(.*?)</p>', report, re.S).group(1)
    assert "Sending: 2" in filters and "Sent: 1" in filters and "Uncertain: 1" in filters
    for status in LISTED:  # the legend explains every label shown
        assert MESSAGE_STATES[status].help.split(":")[0][:30] in report.replace("&#39;", "'").replace("&amp;", "&")
    sending = client.get(f"/merges/{merge.id}/report?status=sending").get_data(as_text=True)
    assert sending.count('data-status="claimed"') == 1 and sending.count('data-status="sending"') == 1
    outbox = client.get("/outbox").get_data(as_text=True)
    assert _badges(outbox) == labels
    show = client.get(f"/merges/{merge.id}").get_data(as_text=True)
    progress = re.search(r'id="progress-counts">(.*?)</p>', show, re.S).group(1)
    for word in ("Sent", "Failed", "Suppressed", "Uncertain", "Queued or sending"):
        assert word in progress
    message_id = db.session.scalar(select(Message.id).where(Message.status == "uncertain"))
    message = client.get(f"/outbox/{message_id}").get_data(as_text=True)
    assert ">Uncertain</span>" in message and "may or may not have arrived" in message
    assert reports.report_page(merge.id, 1, status="sending").total == 2
