"""Two organizers editing one draft merge: the later save is refused with what changed, and saving again
overwrites knowingly; a save that loses the race at commit, or meets a merge queued meanwhile, changes nothing."""

import re

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm.attributes import set_committed_value

from crm.audit.models import AuditEvent
from crm.common.errors import ConflictError
from crm.mailmerge import compose
from crm.mailmerge.errors import MergeError
from crm.mailmerge.models import MailMerge
from tests.conftest import login

# Optimistic locking (versioned updates): on PostgreSQL too (tests/conftest.py).
pytestmark = pytest.mark.bothdb


def text(response) -> str:
    """A response body as text."""
    return response.get_data(as_text=True)


@pytest.fixture
def merge(app, users, db):
    """A draft merge to primary contacts."""
    return compose.create_merge({"name": "Invitation", "subject": "Join us, {{ org.name }}",
                                  "body": "Dear {{ org.name }},\n\nSign on.", "audience": {"contacts": "primary"}})


def edit_data(merge: MailMerge, page: str, **changes) -> dict:
    """The compose form as the browser sends it, opened at the version the page carries, with changes."""
    data = {
        "name": merge.name,
        "letter": "",
        "sender": merge.sender,
        "reply_to": merge.reply_to,
        "subject": merge.subject_template,
        "body": merge.body_template,
        "throttle_per_minute": "",
        "segment": "",
        "match": "any",
        "state": "",
        "extra_filter": "",
        "after_merge": "",
        "contacts": "primary",
        "version": re.search(r'name="version" type="hidden" value="(\d+)"', page).group(1),
    }
    return {**data, **changes}


def saved(db, merge_id: int) -> MailMerge:
    """The merge as it is saved now."""
    db.session.expire_all()
    return db.session.get(MailMerge, merge_id)


def test_two_organizers_on_one_draft(app, users, merge, db):
    first, second = app.test_client(), app.test_client()
    login(first, users["organizer"].email)
    login(second, users["admin"].email)
    url = f"/merges/{merge.id}/edit"
    page_first, page_second = text(first.get(url)), text(second.get(url))
    version = merge.version
    assert f'name="version" type="hidden" value="{version}"' in page_first
    form_first, form_second = edit_data(merge, page_first), edit_data(merge, page_second)

    assert first.post(url, data={**form_first, "subject": "Please join, {{ org.name }}"}).status_code == 302
    response = second.post(url, data={**form_second, "name": "Invitation (final)", "contacts": "all"})
    assert response.status_code == 409
    page = text(response)
    assert "Someone else saved this merge" in page and users["organizer"].email in page
    assert re.search(r'<th scope="row">Subject</th>\s*<td[^>]*>Please join, {{ org.name }}</td>\s*'
                     r"<td[^>]*>Join us, {{ org.name }}</td>", page)
    assert re.search(r'<th scope="row">Contacts per organization</th>\s*<td[^>]*>Primary contact only</td>\s*'
                     r"<td[^>]*>All active contacts</td>", page)
    assert 'value="Invitation (final)"' in page  # the second organizer's input is kept
    current = saved(db, merge.id)
    assert (current.name, current.subject_template, current.version) == (
        "Invitation", "Please join, {{ org.name }}", version + 1)

    again = re.search(r'name="version" type="hidden" value="(\d+)"', page).group(1)
    assert again == str(version + 1)
    overwrite = second.post(url, data={**form_second, "name": "Invitation (final)", "contacts": "all",
                                       "version": again})
    assert overwrite.status_code == 302
    current = saved(db, merge.id)
    assert (current.name, current.subject_template, current.audience["contacts"], current.version) == (
        "Invitation (final)", "Join us, {{ org.name }}", "all", version + 2)
    edits = db.session.scalars(select(AuditEvent).where(AuditEvent.entity_type == "merge",
                                                        AuditEvent.action == "update")).all()
    assert [e.user_id for e in edits] == [users["organizer"].id, users["admin"].id]


def test_an_unchanged_save_writes_nothing(app, users, merge, db):
    client = app.test_client()
    login(client, users["organizer"].email)
    url = f"/merges/{merge.id}/edit"
    version = merge.version
    assert client.post(url, data=edit_data(merge, text(client.get(url)))).status_code == 302
    assert saved(db, merge.id).version == version
    assert db.session.scalar(select(AuditEvent).where(AuditEvent.action == "update")) is None


def test_a_save_that_loses_the_race_at_commit_is_a_conflict(users, merge, db):
    """Both organizers read version N; the other's save lands between this one's check and its commit."""
    version = merge.version
    db.session.execute(update(MailMerge).where(MailMerge.id == merge.id)
                       .values(name="Theirs", version=MailMerge.version + 1))
    db.session.commit()
    # This session still holds the merge as it read it, at version N.
    set_committed_value(merge, "version", version)
    set_committed_value(merge, "name", "Invitation")
    data = {"name": "Mine", "subject": merge.subject_template, "body": merge.body_template,
            "audience": {"contacts": "primary"}}
    with pytest.raises(ConflictError) as caught:
        compose.update_merge(merge, data, users["admin"].id, version=version)
    assert caught.value.current.name == "Theirs" and caught.value.current.version == version + 1
    assert saved(db, merge.id).name == "Theirs"


def test_a_merge_queued_meanwhile_stays_frozen(users, merge, db):
    version = merge.version
    db.session.execute(update(MailMerge).where(MailMerge.id == merge.id)
                       .values(status="queued", version=MailMerge.version + 1))
    db.session.commit()
    data = {"name": "Mine", "subject": "s", "body": "b", "audience": {"contacts": "primary"}}
    with pytest.raises(MergeError, match="frozen"):
        compose.update_merge(merge, data, users["admin"].id, version=version)
    assert saved(db, merge.id).name == "Invitation"
