"""Two organizers editing one letter: the later save is refused with what changed (page and API), and saving again
overwrites knowingly; a save that loses the race at commit is refused the same way; an unchanged save writes nothing."""

import re

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm.attributes import set_committed_value

from crm.audit.models import AuditEvent
from crm.auth.services import create_token
from crm.common.errors import ConflictError
from crm.letters import queries, writing
from crm.letters.models import Letter
from crm.seed import SEED_LETTER_SLUG
from tests.conftest import login

# Optimistic locking (versioned updates): on PostgreSQL too (tests/conftest.py).
pytestmark = pytest.mark.bothdb


def text(response) -> str:
    """A response body as text."""
    return response.get_data(as_text=True)


@pytest.fixture
def letter(app, users, db):
    """A draft letter, as the organizers find it."""
    return writing.create_letter({"title": "Stop face surveillance", "recipients": "Mayor Lee",
                                   "body": "We, the undersigned, ask you to stop.", "issue_areas": []})


def edit_data(letter: Letter, page: str, **changes) -> dict:
    """The edit form as the browser sends it, opened at the version the page carries, with changes."""
    data = {
        "title": letter.title,
        "slug": letter.slug,
        "recipients": letter.recipients,
        "cc": letter.cc,
        "summary": letter.summary,
        "body": letter.body,
        "deadline": "",
        "issue_areas": [a.slug for a in letter.issue_areas],
        "version": re.search(r'name="version" type="hidden" value="(\d+)"', page).group(1),
    }
    if letter.review_required:
        data["review_required"] = "y"
    return {**data, **changes}


def saved(db, letter_id: int) -> Letter:
    """The letter as it is saved now."""
    db.session.expire_all()
    return db.session.get(Letter, letter_id)


def test_two_organizers_on_one_letter_page(app, users, letter, db):
    first, second = app.test_client(), app.test_client()
    login(first, users["organizer"].email)
    login(second, users["admin"].email)
    url = f"/letters/{letter.slug}/edit"
    page_first, page_second = text(first.get(url)), text(second.get(url))
    version = letter.version
    assert f'name="version" type="hidden" value="{version}"' in page_first
    form_first, form_second = edit_data(letter, page_first), edit_data(letter, page_second)

    assert first.post(url, data={**form_first, "recipients": "Mayor Lee\nCouncil"}).status_code == 303
    response = second.post(url, data={**form_second, "recipients": "Governor Ruiz", "summary": "Short."})
    assert response.status_code == 409
    page = text(response)
    assert "Someone else saved this letter" in page and users["organizer"].email in page
    assert re.search(r'<th scope="row">Recipients</th>\s*<td[^>]*>Mayor Lee\s+Council</td>\s*'
                     r"<td[^>]*>Governor Ruiz</td>", page)
    assert re.search(r'<th scope="row">Summary</th>\s*<td[^>]*>—</td>\s*<td[^>]*>Short.</td>', page)
    assert "Governor Ruiz</textarea>" in page  # the second organizer's input is kept
    current = saved(db, letter.id)
    assert (current.recipients, current.summary, current.version) == ("Mayor Lee\nCouncil", "", version + 1)

    again = re.search(r'name="version" type="hidden" value="(\d+)"', page).group(1)
    assert again == str(version + 1)
    overwrite = second.post(url, data={**form_second, "recipients": "Governor Ruiz", "summary": "Short.",
                                       "version": again})
    assert overwrite.status_code == 303
    current = saved(db, letter.id)
    assert (current.recipients, current.summary, current.version) == ("Governor Ruiz", "Short.", version + 2)
    edits = db.session.scalars(select(AuditEvent).where(AuditEvent.entity_type == "letter",
                                                        AuditEvent.action == "update")).all()
    assert [e.user_id for e in edits] == [users["organizer"].id, users["admin"].id]  # both saves are on record


def test_a_letter_date_saved_in_between_is_a_conflict_row_and_an_unchanged_one_is_no_change(app, users, letter, db):
    from datetime import date

    first, second = app.test_client(), app.test_client()
    login(first, users["organizer"].email)
    login(second, users["admin"].email)
    url = f"/letters/{letter.slug}/edit"
    form_first, form_second = edit_data(letter, text(first.get(url))), edit_data(letter, text(second.get(url)))
    version = letter.version
    assert first.post(url, data={**form_first, "letter_date": "2021-04-19"}).status_code == 303
    response = second.post(url, data={**form_second, "letter_date": "", "summary": "Short."})
    assert response.status_code == 409
    page = text(response)
    assert re.search(r'<th scope="row">Letter date</th>\s*<td[^>]*>2021-04-19</td>\s*<td[^>]*>—</td>', page)
    assert 'name="letter_date" type="date" value=""' in page  # the second organizer's (empty) input is kept
    current = saved(db, letter.id)
    assert (current.letter_date, current.summary, current.version) == (date(2021, 4, 19), "", version + 1)

    # Saving the same date again is no change: no new version, no audit event.
    again = edit_data(current, text(first.get(url)), letter_date="2021-04-19", summary="")
    assert first.post(url, data=again).status_code == 303
    assert saved(db, letter.id).version == version + 1


def test_an_unchanged_save_writes_nothing(app, users, letter, db):
    client = app.test_client()
    login(client, users["organizer"].email)
    url = f"/letters/{letter.slug}/edit"
    version = letter.version
    assert client.post(url, data=edit_data(letter, text(client.get(url)))).status_code == 303
    assert saved(db, letter.id).version == version  # nothing changed: no new version, no audit event
    assert db.session.scalar(select(AuditEvent).where(AuditEvent.action == "update")) is None


def test_the_api_refuses_a_stale_version_and_takes_patches_without_one(client, users, letter, db):
    headers = {"Authorization": f"Bearer {create_token(users['organizer'].email).secret}"}
    url = f"/api/v1/letters/{letter.slug}"
    read = client.get(url, headers=headers).get_json()
    assert read["version"] == letter.version
    first = client.patch(url, json={"summary": "One.", "version": read["version"]}, headers=headers)
    assert first.status_code == 200 and first.get_json()["version"] == read["version"] + 1
    stale = client.patch(url, json={"summary": "Two.", "version": read["version"]}, headers=headers)
    assert stale.status_code == 409 and stale.mimetype == "application/problem+json"
    body = stale.get_json()
    assert body["current"]["summary"] == "One." and body["current"]["version"] == read["version"] + 1
    assert body["errors"] == {"version": [f"The current version is {read['version'] + 1}."]}
    assert saved(db, letter.id).summary == "One."  # nothing overwritten
    # A status change alone is refused at a stale version too, and nothing moves.
    status = client.patch(url, json={"status": "collecting", "version": read["version"]}, headers=headers)
    assert status.status_code == 409 and saved(db, letter.id).status == "draft"
    # Without a version (scripts written before letters had one) the change is made, as before.
    blind = client.patch(url, json={"summary": "Three."}, headers=headers)
    assert blind.status_code == 200 and blind.get_json()["summary"] == "Three."
    for bad in (0, -1, "2", 2**31):
        assert client.patch(url, json={"version": bad}, headers=headers).status_code == 400, bad


def test_a_save_that_loses_the_race_at_commit_is_a_conflict(users, letter, db):
    """Both organizers read version N; the other's save lands between this one's check and its commit."""
    version = letter.version
    db.session.execute(update(Letter).where(Letter.id == letter.id)
                       .values(summary="Theirs.", version=Letter.version + 1))
    db.session.commit()
    # This session still holds the letter as it read it, at version N.
    set_committed_value(letter, "version", version)
    set_committed_value(letter, "summary", "")
    with pytest.raises(ConflictError) as caught:
        writing.update_letter(letter, {"summary": "Mine."}, user_id=users["admin"].id, version=version)
    assert caught.value.current.summary == "Theirs." and caught.value.current.version == version + 1
    assert saved(db, letter.id).summary == "Theirs."


def test_a_delivered_letter_takes_its_own_text_back_from_a_browser(app, seeded, users, db):
    """A browser sends a textarea back with CRLF line ends: that is no change to a delivered letter's text."""
    letter = queries.get_letter(SEED_LETTER_SLUG)
    assert letter.status == "delivered" and "\n" in letter.body
    client = app.test_client()
    login(client, users["organizer"].email)
    url = f"/letters/{letter.slug}/edit"
    body = letter.body
    data = edit_data(letter, text(client.get(url)), body=body.replace("\n", "\r\n"), cc="DHS Privacy Office")
    assert client.post(url, data=data).status_code == 303
    current = saved(db, letter.id)
    assert (current.cc, current.body) == ("DHS Privacy Office", body)
    data = edit_data(current, text(client.get(url)), body=body + "\r\nP.S.")
    response = client.post(url, data=data)
    assert response.status_code == 400 and "its text can no longer change" in text(response)
    assert saved(db, letter.id).body == body


def _lose_the_race(db, letter) -> int:
    """Another organizer's save lands after this session read the letter: the session still holds version N."""
    version = letter.version
    db.session.execute(update(Letter).where(Letter.id == letter.id)
                       .values(summary="Theirs.", version=Letter.version + 1))
    db.session.commit()
    set_committed_value(letter, "version", version)
    return version


def test_status_and_deadline_changes_that_lose_the_race_are_conflicts_not_500s(app, users, letter, db):
    """A status change or a new deadline saved over someone's save in between: refused, nothing moves, and the
    page and the API say so (they used to end in StaleDataError, a 500)."""
    from datetime import date, timedelta

    from crm.letters import deadlines

    _lose_the_race(db, letter)
    with pytest.raises(ConflictError):
        writing.set_status(letter, "collecting", user_id=users["admin"].id)
    assert saved(db, letter.id).status == "draft"
    letter = queries.get_letter(letter.slug)
    _lose_the_race(db, letter)
    with pytest.raises(ConflictError):
        deadlines.extend_deadline(letter, date.today() + timedelta(days=30), user_id=users["admin"].id)
    assert saved(db, letter.id).deadline is None

    # Through the page and the API: the organizer is told, nothing changes (the race itself is staged in the
    # service above; here what the view and the API do with the ConflictError is checked, with every commit of a
    # change to a letter losing it).
    from sqlalchemy.orm.exc import StaleDataError

    client = app.test_client()
    login(client, users["organizer"].email)
    headers = {"Authorization": f"Bearer {create_token(users['organizer'].email).secret}"}
    real_commit = db.session.commit

    def losing_commit():
        """A commit carrying a change to a letter loses the race, as the versioned UPDATE does (others pass)."""
        if any(isinstance(record, Letter) for record in db.session.dirty):
            raise StaleDataError("UPDATE statement on table 'letters' expected to update 1 row(s); 0 were matched.")
        real_commit()

    db.session.commit = losing_commit
    try:
        response = client.post(f"/letters/{letter.slug}/status", data={"status": "collecting"},
                               follow_redirects=True)
        assert response.status_code == 200 and "Someone saved this letter at the same moment" in text(response)
        response = client.post(f"/letters/{letter.slug}/deadline",
                               data={"deadline": (date.today() + timedelta(days=3)).isoformat()},
                               follow_redirects=True)
        assert response.status_code == 200 and "The deadline was not changed" in text(response)
        api = client.patch(f"/api/v1/letters/{letter.slug}", json={"status": "collecting"}, headers=headers)
        assert api.status_code == 409 and api.get_json()["current"]["status"] == "draft"
        # The command line says so in one line too, for a status change and for an edit (no traceback).
        from crm.cli import main as cli

        for args in (["letter", "status", letter.slug, "collecting"], ["letter", "edit", letter.slug, "--title", "X"]):
            ran = app.test_cli_runner().invoke(cli, args)
            assert ran.exit_code == 1 and "Someone saved this letter at the same moment" in ran.output, ran.output
    finally:
        db.session.commit = real_commit
    assert saved(db, letter.id).status == "draft"
