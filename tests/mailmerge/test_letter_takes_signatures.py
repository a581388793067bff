"""A merge whose messages carry personal sign-on links (`sign_on_url`) is not queued while its letter takes no
signatures (a draft, closed or delivered letter, or one past its deadline): every link would tell its recipient
that nothing can be recorded. The merge page, the check, the confirmation, the API and the CLI all say so before
anything is sent, and name the fix; a merge that does not use `sign_on_url` (a thank-you) is not held back."""

import json
import re
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from crm.auth.services import create_token
from crm.extensions import db
from crm.mailmerge import checking, queueing, reports
from crm.mailmerge.errors import MergeError
from crm.mailmerge.models import Message
from crm.mailmerge.templating import uses_field
from tests.factories import LetterFactory
from tests.mailmerge.conftest import make_recipients, new_merge

pytestmark = pytest.mark.bothdb

INVITATION = "Dear {{ contact.first_name }},\n\nSign for {{ org.name }} in one click: {{ sign_on_url }}"


def _messages(merge_id: int) -> int:
    """Outbox rows of a merge."""
    return db.session.scalar(select(func.count()).select_from(Message).where(Message.merge_id == merge_id))


def _invitation(letter_slug: str):
    """Two recipients and a draft merge inviting them to sign `letter_slug` with their personal links."""
    make_recipients(2)
    return new_merge(body=INVITATION, letter=letter_slug)


def test_a_draft_letter_blocks_queueing_on_every_page_with_the_fix(app, client, as_role):
    letter = LetterFactory(slug="new-letter", title="End the dragnet", status="draft")
    merge = _invitation(letter.slug)
    as_role("organizer")

    show = client.get(f"/merges/{merge.id}").get_data(as_text=True)
    assert 'id="letter-problem"' in show and "“End the dragnet” is a draft" in show
    assert "Set the letter to collecting first" in show and 'href="/letters/new-letter"' in show

    check = client.get(f"/merges/{merge.id}/check").get_data(as_text=True)
    assert "No problems" not in check and "These problems block queueing" in check
    assert "Set the letter to collecting first" in check and 'href="/letters/new-letter"' in check

    confirm = client.get(f"/merges/{merge.id}/queue").get_data(as_text=True)
    assert 'id="letter-problem"' in confirm and "Set the letter to collecting first" in confirm
    assert re.search(r"<button[^>]*\bdisabled\b[^>]*>Yes, send", confirm)

    # A confirmation sent anyway (an old page, a hand-made POST) is refused and changes nothing.
    refused = client.post(f"/merges/{merge.id}/queue", data={"confirmed": "yes"}, follow_redirects=True)
    assert "Not queued: “End the dragnet” is a draft" in refused.get_data(as_text=True)
    db.session.expire_all()
    assert reports.get_merge(merge.id).status == "draft" and _messages(merge.id) == 0

    # Once the letter collects, the same merge queues.
    letter.status = "collecting"
    db.session.commit()
    assert 'id="letter-problem"' not in client.get(f"/merges/{merge.id}").get_data(as_text=True)
    assert checking.check_merge(merge).ok
    assert queueing.queue_merge(merge)["queued"] == 2


def test_the_api_and_the_cli_refuse_alike(app, client, users, runner):
    LetterFactory(slug="new-letter", title="End the dragnet", status="draft")
    merge = _invitation("new-letter")
    headers = {"Authorization": f"Bearer {create_token(users['organizer'].email).secret}"}

    checked = client.get(f"/api/v1/merges/{merge.id}/check", headers=headers).get_json()
    assert checked["ok"] is False
    assert checked["problems"][0]["part"] == "Letter" and checked["problems"][0]["letter"] == "new-letter"
    assert "Set the letter to collecting first" in checked["problems"][0]["message"]
    for action in ("queue", "send"):
        answer = client.post(f"/api/v1/merges/{merge.id}/{action}", headers=headers)
        assert answer.status_code == 400 and answer.content_type == "application/problem+json"
        body = answer.get_json()
        assert "Set the letter to collecting first" in body["detail"] and "letter" in body["errors"]

    check = runner.invoke(args=["merge", "check", str(merge.id)])
    assert check.exit_code == 1 and "Letter: “End the dragnet” is a draft" in check.output
    for command in ("queue", "send"):
        result = runner.invoke(args=["merge", command, str(merge.id)])
        assert result.exit_code == 1 and "Set the letter to collecting first" in result.output, result.output
    as_json = json.loads(runner.invoke(args=["merge", "check", str(merge.id), "--json"]).output)
    assert as_json["problems"][0]["letter"] == "new-letter"
    db.session.expire_all()
    assert reports.get_merge(merge.id).status == "draft" and _messages(merge.id) == 0


@pytest.mark.parametrize(
    ("letter", "words"),
    [
        ({"status": "closed"}, "“Old news” is closed and takes no signatures"),
        ({"status": "delivered", "delivered_on": date(2024, 3, 5)},
         "“Old news” was delivered on 5 March 2024 and takes no more signatures"),
        ({"status": "collecting", "deadline": date.today() - timedelta(days=3)},
         "The sign-on deadline of “Old news” passed"),
    ],
)
def test_every_state_that_takes_no_signatures_is_named(app, letter, words):
    LetterFactory(slug="old-news", title="Old news", **letter)
    merge = _invitation("old-news")
    result = checking.check_merge(merge)
    assert not result.ok and result.problems[0].part == "Letter" and words in result.problems[0].message
    with pytest.raises(MergeError, match=words):
        queueing.queue_merge(merge)
    assert _messages(merge.id) == 0


def test_the_link_in_the_subject_counts_too(app):
    LetterFactory(slug="new-letter", status="draft")
    make_recipients(1)
    merge = new_merge(subject="Sign: {{ sign_on_url }}", body="Hello {{ org.name }}", letter="new-letter")
    assert checking.letter_problem(merge) is not None


def test_a_thank_you_for_a_delivered_letter_is_still_sent(app):
    """No personal link, nothing to refuse: thanking the signers of a delivered letter is what follows delivery."""
    LetterFactory(slug="delivered", title="Delivered letter", status="delivered", delivered_on=date(2024, 3, 5))
    make_recipients(2, letter_slug="delivered")
    merge = new_merge(
        body="Thank you, {{ org.name }}, for signing {{ letter.title }} ({{ letter.url }}). Not a field: sign_on_url",
        letter="delivered",
        audience={"filter": {"signed": ["delivered"]}, "contacts": "primary"},
    )
    assert checking.letter_problem(merge) is None and checking.check_merge(merge).ok
    assert queueing.queue_merge(merge)["queued"] == 2


def test_uses_field_reads_the_template_not_the_text():
    assert uses_field("sign_on_url", "", "Sign: {{ sign_on_url }}")
    assert uses_field("sign_on_url", "{% if sign_on_url is defined %}x{% endif %}", "")
    assert not uses_field("sign_on_url", "sign_on_url", "Write sign_on_url in braces to add the link.")
    assert not uses_field("sign_on_url", "", "{% set sign_on_url = 'x' %}{{ sign_on_url }}")
    assert not uses_field("sign_on_url", "", "{{ sign_on_url ")  # a syntax error is reported on its own
