"""Audiences (segments, filters, follow-ups), suppressions, unsubscribe, CR/LF in names, and the pages."""

import io
import re

import pytest
from sqlalchemy import func, select

from crm.contacts.models import Contact
from crm.extensions import db
from crm.letters.models import Letter, Signature
from crm.mailmerge import checking, compose, queueing, reports, suppressions
from crm.mailmerge.errors import MergeError
from crm.mailmerge.links import unsubscribe_token
from crm.mailmerge.models import Message, Suppression
from crm.mailmerge.worker import drain
from crm.segments.models import Segment
from tests.mailmerge.conftest import make_recipients, new_merge, smtp_config


@pytest.fixture
def app_config(sink):
    """Send to the sink."""
    return smtp_config(sink)


def test_audience_counts_and_follow_ups(app, sink):
    signers = make_recipients(4, prefix="signer", letter_slug="l1")
    others = make_recipients(3, prefix="other")
    org_without_contact = make_recipients(1, prefix="lonely")
    db.session.execute(Contact.__table__.delete().where(Contact.organization_id == org_without_contact[0]))
    extra = Contact(
        organization_id=signers[0], first_name="Second", email="second@example.net", is_primary=False
    )
    db.session.add(extra)
    db.session.add(Suppression(email="signer1@example.net", reason="manual"))
    db.session.commit()
    merge = new_merge(audience={"filter": {"signed": ["l1"]}, "contacts": "all"})
    counts = checking.audience_counts(merge)
    assert counts.as_dict() == {
        "organizations": 4,
        "contacts": 5,
        "mailable": 4,
        "suppressed": 1,
        "without_contact": 0,
        "mailable_organizations": 3,
    }
    everyone = new_merge(audience={"contacts": "primary"})
    assert checking.audience_counts(everyone).without_contact == 1
    assert checking.audience_counts(everyone).contacts == 7
    queueing.queue_merge(merge)
    drain()
    assert len(sink.messages) == 4
    # A second letter: two of the signers sign it; the follow-up goes to recipients who have not.
    letter2 = Letter(slug="l2", title="Second letter", status="collecting")
    db.session.add(letter2)
    db.session.flush()
    for org_id in signers[:2]:
        db.session.add(
            Signature(letter_id=letter2.id, organization_id=org_id, listed_name="x", status="confirmed")
        )
    db.session.commit()
    follow = new_merge(
        audience={"after_merge": merge.id, "filter": {"not_signed": ["l2"]}, "contacts": "all"}
    )
    assert checking.audience_counts(follow).mailable == 2
    both = new_merge(audience={"filter": {"signed": ["l1"], "not_signed": ["l2"]}, "contacts": "primary"})
    assert checking.audience_counts(both).organizations == 2
    segment = Segment(name="Others", filter={"q": "other org"})
    db.session.add(segment)
    db.session.commit()
    by_segment = new_merge(audience={"segment_id": segment.id, "contacts": "primary"})
    assert checking.audience_counts(by_segment).mailable == 3
    assert others


def test_bad_audiences_are_refused(app):
    for audience, field in (
        ({"filter": {"signed": ["nope"]}}, "audience.filter.signed"),
        ({"segment_id": 99}, "audience.segment_id"),
        ({"contacts": "everyone"}, "audience.contacts"),
        ({"after_merge": "x"}, "audience.after_merge"),
        ({"filter": {"state": ["ZZ"]}}, "audience.filter.state"),
        ({"bogus": 1}, "audience"),
    ):
        with pytest.raises(MergeError) as caught:
            new_merge(audience=audience)
        assert field in caught.value.errors, (audience, caught.value.errors)


def test_suppressed_contact_re_added_is_never_mailed(app, sink):
    make_recipients(5)
    suppressions.add_suppression("Person2@Example.net", "unsubscribed")
    # The contact leaves and is re-imported under another record with the same address: still suppressed.
    db.session.execute(Contact.__table__.delete().where(Contact.email == "person2@example.net"))
    org_id = db.session.scalar(select(Contact.organization_id).where(Contact.email == "person3@example.net"))
    db.session.add(
        Contact(organization_id=org_id, first_name="Again", email="person2@example.net", is_primary=False)
    )
    db.session.commit()
    suppressions.import_suppressions(b"email,reason\nperson2@example.net,manual\n")
    assert (
        db.session.scalar(select(Suppression.reason).where(Suppression.email == "person2@example.net"))
        == "unsubscribed"
    )  # an import never weakens or removes a suppression
    merge = new_merge(audience={"contacts": "all"})
    summary = queueing.queue_merge(merge)
    assert summary["suppressed"] == 1
    # Suppressed after queueing: checked again right before sending.
    suppressions.add_suppression("person4@example.net", "manual")
    drain()
    received = sink.received_by()
    assert "person2@example.net" not in received and "person4@example.net" not in received
    assert len(received) == 3
    statuses = dict(
        db.session.execute(select(Message.email, Message.status).where(Message.merge_id == merge.id)).all()
    )
    assert statuses["person4@example.net"] == "suppressed" and statuses["person2@example.net"] == "suppressed"


def test_names_with_cr_lf_give_one_recipient_and_clean_headers(app, sink):
    make_recipients(2)
    contact = db.session.scalar(select(Contact).where(Contact.email == "person0@example.net"))
    contact.first_name = "Ana\r\nBcc: victim@example.com"
    contact.last_name = "Ruiz\n\tX-Evil: 1\r"  # (PostgreSQL text cannot hold NUL; single_line strips it too)
    db.session.commit()
    merge = new_merge(subject="Hi {{ contact.first_name }}", body="Dear {{ contact.first_name }}")
    queueing.queue_merge(merge)
    drain()
    assert len(sink.messages) == 2
    message = [m for m in sink.messages if m["to"] == ["person0@example.net"]][0]
    assert message["to"] == ["person0@example.net"]
    headers = message["raw"].split(b"\r\n\r\n", 1)[0].decode()
    assert "victim" not in message["message"].get_all("Bcc", []) and message["message"]["Bcc"] is None
    assert message["message"]["X-Evil"] is None
    assert message["message"]["Subject"] == "Hi Ana Bcc: victim@example.com"
    assert "\x00" not in headers
    assert "victim@example.com" not in {a for m in sink.messages for a in m["to"]}


def test_unsubscribe_get_changes_nothing_post_suppresses(app, client):
    token = unsubscribe_token("someone@example.net", 1)
    response = client.get(f"/u/{token}")
    assert response.status_code == 200 and b"someone@example.net" in response.data
    assert db.session.scalar(select(func.count()).select_from(Suppression)) == 0
    app.config["WTF_CSRF_ENABLED"] = True  # one-click POST carries no CSRF token and no cookie
    response = client.post(
        f"/u/{token}", data="List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 200
    response = client.post(f"/u/{token}")
    assert response.status_code == 200
    assert (
        db.session.scalar(select(Suppression.reason).where(Suppression.email == "someone@example.net"))
        == "unsubscribed"
    )
    assert client.get("/u/forged-token").status_code == 400
    assert client.post("/u/forged-token").status_code == 400


def test_queueing_needs_a_postal_address_and_freezes_the_merge(app):
    make_recipients(2)
    merge = new_merge()
    app.config["CRM_POSTAL_ADDRESS"] = ""
    with pytest.raises(MergeError, match="CRM_POSTAL_ADDRESS"):
        queueing.queue_merge(merge)
    assert db.session.scalar(select(func.count()).select_from(Message)) == 0
    app.config["CRM_POSTAL_ADDRESS"] = "1 Test Street"
    queueing.queue_merge(merge)
    with pytest.raises(MergeError, match="frozen"):
        compose.update_merge(merge, {"name": "x", "subject": "s", "body": "b"})
    with pytest.raises(MergeError):
        queueing.queue_merge(merge)
    assert db.session.scalar(select(func.count()).select_from(Message)) == 2


def test_dev_outbox_keeps_mail(app, sink, client, users, as_role):
    app.config["MAIL_BACKEND"] = "outbox"
    make_recipients(3)
    merge = new_merge()
    queueing.queue_merge(merge)
    drain()
    assert sink.messages == []
    assert reports.merge_counts(merge.id)["outbox"] == 3
    as_role("organizer")
    row = db.session.scalar(select(Message).where(Message.merge_id == merge.id).order_by(Message.id))
    page = client.get(f"/outbox/{row.id}")
    assert page.status_code == 200 and b"Dear First0" in page.data
    assert b"Person Org 0" in client.get("/outbox").data


def test_suppression_pages(app, client, users, as_role):
    as_role("organizer")
    assert (
        client.post("/suppressions", data={"email": "not an address", "reason": "manual"}).status_code == 400
    )
    assert (
        client.post("/suppressions", data={"email": "x@example.net", "reason": "manual"}).status_code == 303
    )
    data = {"file": (io.BytesIO(b"email,reason\ny@example.net,complaint\nz@example.net,\n"), "s.csv")}
    client.post("/suppressions/import", data=data, content_type="multipart/form-data")
    bad = {"file": (io.BytesIO(b"email\nnope\n"), "s.csv")}
    client.post("/suppressions/import", data=bad, content_type="multipart/form-data")
    csv_text = client.get("/suppressions.csv").get_data(as_text=True)
    assert csv_text.splitlines()[0] == "email,reason,note,created_at"
    assert {"x@example.net", "y@example.net", "z@example.net"} == {
        line.split(",")[0] for line in csv_text.splitlines()[1:]
    }
    client.post("/suppressions/remove", data={"email": "x@example.net", "reason": ""})
    assert db.session.scalar(select(func.count()).select_from(Suppression)) == 3
    client.post(
        "/suppressions/remove", data={"email": "x@example.net", "reason": "asked to be re-added by phone"}
    )
    assert db.session.scalar(select(func.count()).select_from(Suppression)) == 2
    from crm.audit.models import AuditEvent

    assert db.session.scalar(select(AuditEvent.summary).where(AuditEvent.action == "unsuppress")).endswith(
        "asked to be re-added by phone"
    )


def test_compose_check_preview_queue_pages(app, client, users, as_role):
    from datetime import date

    from crm.seed import SEED_LETTER_SLUG
    from tests.factories import LetterFactory

    LetterFactory(slug=SEED_LETTER_SLUG, title="Urge DHS to stop using Clearview AI facial recognition",
                  status="delivered", letter_date=date(2021, 4, 19))
    make_recipients(3, letter_slug=SEED_LETTER_SLUG)
    # The invitation promotes a letter collecting signatures, to the signers of the delivered seed letter.
    LetterFactory(slug="next-letter", title="The next letter", status="collecting")
    as_role("organizer")
    assert client.get("/merges/new").status_code == 200
    bad = client.post("/merges/new", data={"name": "Bad", "subject": "x", "body": "{{ config }}"})
    assert bad.status_code == 400 and b"unknown field config" in bad.data, re.findall(
        rb"invalid-feedback[^<]*", bad.data
    )
    response = client.post(
        "/merges/new",
        data={
            "name": "Invite",
            "letter": "next-letter",
            "subject": "Join {{ letter.title }}",
            "body": "Dear {{ contact.first_name | default('friends') }}, sign: {{ sign_on_url }}",
            "signed": [SEED_LETTER_SLUG],
            "contacts": "primary",
            "extra_filter": "q=person",
        },
    )
    assert response.status_code == 302, response.data[:3000]
    merge_id = int(response.headers["Location"].rsplit("/", 1)[1])
    show = client.get(f"/merges/{merge_id}").get_data(as_text=True)
    assert 'id="audience-counts"' in show and ">3</td>" in show
    check = client.get(f"/merges/{merge_id}/check").get_data(as_text=True)
    assert "No problems" in check
    preview = client.get(f"/merges/{merge_id}/preview").get_data(as_text=True)
    assert 'sandbox=""' in preview and "srcdoc=" in preview and "Dear First0" in preview
    assert client.post(f"/merges/{merge_id}/test", data={"contact_id": ""}).status_code == 303
    assert db.session.scalar(select(Message.subject).where(Message.kind == "test")).startswith("[TEST] Join")
    assert client.post(f"/merges/{merge_id}/queue", data={"confirmed": "yes"}).status_code == 303
    assert client.get(f"/merges/{merge_id}/edit").status_code == 303
    assert b"merge-progress" in client.get(f"/merges/{merge_id}/progress").data
    drain()
    report = client.get(f"/merges/{merge_id}/report").get_data(as_text=True)
    assert report.count("250 2.0.0") == 3
    org_id = db.session.scalar(select(Message.organization_id).where(Message.merge_id == merge_id))
    org_page = client.get(f"/organizations/{org_id}").get_data(as_text=True)
    # The organization page names the message's state in the same words as the merge's report, not the raw status.
    assert 'id="org-merges"' in org_page and 'data-status="sent"' in org_page and ">Sent</span>" in org_page
    as_role("viewer")
    assert client.get(f"/merges/{merge_id}").status_code == 200
    assert client.post(f"/merges/{merge_id}/pause").status_code == 403
