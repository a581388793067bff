"""The date printed on a letter: set on the form and from the command line (the API: tests/api/test_api.py),
checked the same way everywhere, and shown where the letter's date is used (list, timeline, printable, merge field)."""

import json
from datetime import date

import pytest
from sqlalchemy import func, select

from crm.audit.models import AuditEvent
from crm.letters.models import Letter
from crm.mailmerge.rendering import letter_record
from tests.factories import LetterFactory, OrganizationFactory, SignatureFactory

# The date is stored in a Date column of each database and read back through it.
pytestmark = pytest.mark.bothdb


def saved(db, letter_id: int) -> Letter:
    """The letter as it is saved now."""
    db.session.expire_all()
    return db.session.get(Letter, letter_id)


def form_data(letter: Letter, **changes) -> dict:
    """The edit form as the browser sends it, at the letter's current version, with changes."""
    data = {"title": letter.title, "slug": letter.slug, "recipients": letter.recipients, "cc": letter.cc,
            "summary": letter.summary, "body": letter.body,
            "letter_date": letter.letter_date.isoformat() if letter.letter_date else "", "deadline": "",
            "version": str(letter.version)}
    if letter.review_required:
        data["review_required"] = "y"
    return {**data, **changes}


def test_a_new_letter_takes_its_date_and_every_page_shows_it(db, as_role):
    client = as_role("organizer")
    form = client.get("/letters/new").get_data(as_text=True)
    assert 'name="letter_date" type="date"' in form and 'min="1900-01-01"' in form and 'max="2100-12-31"' in form
    assert "The date printed on the letter; when empty, the delivery date is used." in form
    response = client.post("/letters/new", data={"title": "Stop Clearview", "letter_date": "2021-04-19"})
    assert response.status_code == 303
    letter = db.session.scalar(select(Letter).where(Letter.slug == "stop-clearview"))
    assert letter.letter_date == date(2021, 4, 19) and letter.date == date(2021, 4, 19)
    org = OrganizationFactory(name="Mijente")
    SignatureFactory(letter=letter, organization=org)

    assert "Apr 19, 2021" in client.get("/letters").get_data(as_text=True)  # the list's Date column
    assert "Dated Apr 19, 2021" in client.get(f"/letters/{letter.slug}").get_data(as_text=True)
    assert "April 19, 2021" in client.get(f"/letters/{letter.slug}/print").get_data(as_text=True)
    timeline = client.get(f"/organizations/{org.id}").get_data(as_text=True)
    assert "Apr 19, 2021" in timeline and "undated" not in timeline
    assert letter_record(letter)["date"] == "April 19, 2021"  # {{ letter.date }} in a mail merge
    edit = client.get(f"/letters/{letter.slug}/edit").get_data(as_text=True)
    assert 'value="2021-04-19"' in edit


def test_editing_changes_and_clears_the_date_on_record(db, as_role):
    letter = LetterFactory(title="Dated later", status="delivered", delivered_on=date(2021, 5, 3))
    client = as_role("organizer")
    url = f"/letters/{letter.slug}/edit"
    assert client.post(url, data=form_data(letter, letter_date="2021-04-19")).status_code == 303
    letter = saved(db, letter.id)
    assert letter.letter_date == date(2021, 4, 19) and letter.date == date(2021, 4, 19)
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "update"))
    assert "letter_date" in json.dumps(event.changes) and "2021-04-19" in json.dumps(event.changes)

    assert client.post(url, data=form_data(letter, letter_date="")).status_code == 303
    letter = saved(db, letter.id)
    assert letter.letter_date is None and letter.date == date(2021, 5, 3)  # undated: the delivery date stands in


@pytest.mark.parametrize(("value", "message"), [
    ("2021-02-30", "Not a valid date value"),
    ("19/04/2021", "Not a valid date value"),
    ("1850-04-19", "The letter date 1850-04-19 is not between 1900 and 2100; check the year."),
    ("0021-04-19", "The letter date 0021-04-19 is not between 1900 and 2100; check the year."),
    ("2201-04-19", "The letter date 2201-04-19 is not between 1900 and 2100; check the year."),
])
def test_a_bad_date_is_explained_next_to_the_field_and_changes_nothing(db, as_role, value, message):
    letter = LetterFactory(title="Kept", letter_date=date(2021, 4, 19))
    version = letter.version
    client = as_role("organizer")
    response = client.post(f"/letters/{letter.slug}/edit", data=form_data(letter, letter_date=value, summary="New"))
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert 'id="letter_date-errors"' in page and message in page
    letter = saved(db, letter.id)
    assert (letter.letter_date, letter.summary, letter.version) == (date(2021, 4, 19), "", version)
    before = db.session.scalar(select(func.count(Letter.id)))
    assert client.post("/letters/new", data={"title": "Other", "letter_date": value}).status_code == 400
    assert db.session.scalar(select(func.count(Letter.id))) == before


def test_the_first_and_last_accepted_years(db, as_role):
    client = as_role("organizer")
    for value in ("1900-01-01", "2100-12-31"):
        assert client.post("/letters/new", data={"title": f"Letter {value}", "letter_date": value}).status_code == 303
    dates = set(db.session.scalars(select(Letter.letter_date)))
    assert {date(1900, 1, 1), date(2100, 12, 31)} <= dates


def test_the_command_line_sets_changes_and_clears_the_date(runner, db):
    created = runner.invoke(args=["letter", "create", "--title", "From the shell", "--date", "2021-04-19"])
    assert created.exit_code == 0, created.output
    slug = created.output.strip().splitlines()[-1]
    letter = db.session.scalar(select(Letter).where(Letter.slug == slug))
    assert letter.letter_date == date(2021, 4, 19)
    assert "dated: 2021-04-19" in runner.invoke(args=["letter", "show", slug]).output
    assert json.loads(runner.invoke(args=["letter", "show", slug, "--json"]).output)["date"] == "2021-04-19"

    assert runner.invoke(args=["letter", "edit", slug, "--date", "2021-04-20"]).exit_code == 0
    assert saved(db, letter.id).letter_date == date(2021, 4, 20)
    assert runner.invoke(args=["letter", "edit", slug, "--date", ""]).exit_code == 0
    assert saved(db, letter.id).letter_date is None


@pytest.mark.parametrize(("value", "message"), [
    ("2021-02-30", "--date must be a date written YYYY-MM-DD, not '2021-02-30' (there is no such day)"),
    ("19/04/2021", "--date must be a date written YYYY-MM-DD, not '19/04/2021'"),
    ("20210419", "--date must be a date written YYYY-MM-DD, not '20210419'"),
    ("1850-04-19", "The letter date 1850-04-19 is not between 1900 and 2100; check the year."),
])
def test_the_command_line_refuses_a_bad_date_in_one_line(runner, db, value, message):
    letter = LetterFactory(title="Kept", letter_date=date(2021, 4, 19))
    before = db.session.scalar(select(func.count(Letter.id)))
    for args in (["letter", "create", "--title", "Other", "--date", value],
                 ["letter", "edit", letter.slug, "--date", value]):
        result = runner.invoke(args=args)
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert result.exit_code == 1 and lines == [f"Error: {message}"], result.output
    assert db.session.scalar(select(func.count(Letter.id))) == before
    assert saved(db, letter.id).letter_date == date(2021, 4, 19)
