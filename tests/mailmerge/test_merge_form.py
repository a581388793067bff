"""Loose ends of the mail-merge compose form (issue 13, points 7, 8 and 12 on the merge form; the field picker on a
phone) and of the import report's counts."""

import re

from sqlalchemy import select

from crm.audit.models import AuditEvent
from crm.extensions import db
from crm.imports.models import ImportBatch
from crm.mailmerge import checking
from crm.mailmerge.models import MailMerge
from tests.factories import IssueAreaFactory, SignatureFactory

PRIVACY_NOT_IMMIGRATION = 12  # on the seed: 12 organizations work on privacy and not on immigration
SENTENCE = "Organizations: works on privacy, not immigration · primary contacts only"
AUDIENCE_LISTS = ("signed", "not_signed", "issue_area", "not_issue_area")


def _compose(client, **audience):
    """Save a draft through the compose form."""
    data = {"name": "Privacy partners", "subject": "Hello {{ org.name }}", "body": "Dear {{ org.name }},\n\nHi.",
            "contacts": "primary", "match": "any", **audience}
    return client.post("/merges/new", data=data)


def test_the_audience_excludes_issue_areas_live_and_saved(seeded, users, as_role):
    client = as_role("organizer")
    form = client.get("/merges/new").get_data(as_text=True)
    assert "Works on none of" in form
    assert 'type="checkbox" name="not_issue_area" value="immigration"' in form
    # the live count takes the excluded area into account before anything is saved
    live = client.get("/merges/audience-count?contacts=primary&issue_area=privacy&match=any"
                      "&not_issue_area=immigration").get_data(as_text=True)
    counts = checking.count_audience({"filter": {"issue_area": ["privacy"], "match": "any",
                                                 "not_issue_area": ["immigration"]}, "contacts": "primary"})
    assert counts.organizations == PRIVACY_NOT_IMMIGRATION
    # the seed has organizations and no contacts: all 12 show as "without a contact" (14 with privacy alone)
    assert counts.without_contact == PRIVACY_NOT_IMMIGRATION
    assert f"{PRIVACY_NOT_IMMIGRATION} organizations without a contact" in live
    privacy_only = client.get("/merges/audience-count?contacts=primary&issue_area=privacy&match=any")
    assert f"{PRIVACY_NOT_IMMIGRATION} organizations without a contact" not in privacy_only.get_data(as_text=True)
    # saved, it reaches the 12 organizations, and the edit form shows the box ticked
    response = _compose(client, issue_area="privacy", not_issue_area="immigration")
    assert response.status_code == 302, response.get_data(as_text=True)
    merge = db.session.scalar(select(MailMerge))
    assert merge.audience["filter"]["not_issue_area"] == ["immigration"]
    assert checking.audience_counts(merge).organizations == PRIVACY_NOT_IMMIGRATION
    edit = client.get(f"/merges/{merge.id}/edit").get_data(as_text=True)
    assert 'name="not_issue_area" value="immigration" id="not_issue_area-immigration" checked' in edit
    assert "not_issue_area" not in re.search(r'name="extra_filter"[^>]*>', edit).group(0)


def test_the_audience_lists_are_checkboxes(users, as_role):
    SignatureFactory(organization__issue_areas=["privacy", "immigration"])  # a letter and issue areas to list
    form = as_role("organizer").get("/merges/new").get_data(as_text=True)
    assert "<select multiple" not in form and not re.search(r"<select[^>]*multiple", form)
    for name in AUDIENCE_LISTS:
        assert re.search(rf'<fieldset class="mb-3" id="{name}"', form), name
        assert f'type="checkbox" name="{name}"' in form, name


def test_the_audit_log_shows_the_audience_as_a_sentence(users, as_role):
    IssueAreaFactory(slug="privacy")
    IssueAreaFactory(slug="immigration")
    client = as_role("organizer")
    assert _compose(client, issue_area="privacy", not_issue_area="immigration").status_code == 302
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.entity_type == "merge"))
    assert event.changes["audience"] == [None, SENTENCE]
    log = as_role("admin").get("/audit").get_data(as_text=True)
    assert SENTENCE in log and "segment_id" not in log


def test_the_field_picker_follows_the_body(app, users, as_role):
    """On a phone the blocks stack in source order: the picker comes right after the body, before the rest."""
    form = as_role("organizer").get("/merges/new").get_data(as_text=True)
    body, picker = form.index('name="body"'), form.index('id="field-picker"')
    between = form[body:picker]
    assert body < picker < form.index("Save draft")
    assert not re.search(r"<(input|select)\b", between.split("</textarea>", 1)[1])


def test_no_errors_is_not_a_red_badge(app, users, as_role):
    client = as_role("organizer")
    clean = ImportBatch(kind="orgs", filename="a.csv", rows=2, created=2, errors=0)
    failing = ImportBatch(kind="orgs", filename="b.csv", rows=2, created=1, errors=1)
    db.session.add_all([clean, failing])
    db.session.commit()

    def badge(batch, text):
        page = client.get(f"/imports/batches/{batch.id}").get_data(as_text=True)
        return re.search(rf'<span class="badge ([^"]+)">{text} with errors skipped', page).group(1)

    assert "danger" not in badge(clean, "0 rows")
    assert "text-bg-danger" in badge(failing, "1 row")
