"""A composer for organizers (issue 13, point 10): field picker, live audience count, Duplicate, follow-ups that
copy the content."""

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import func, select

from crm.extensions import db
from crm.mailmerge import compose, queueing
from crm.mailmerge.models import MailMerge
from tests.conftest import ARTIFACTS, browser_login, login
from tests.mailmerge.conftest import make_recipients, new_merge


@pytest.fixture
def organizer(client, users):
    login(client, users["organizer"].email)
    return client


def test_duplicate_copies_name_letter_sender_subject_body_and_audience(app, organizer):
    make_recipients(2, letter_slug="l1")
    merge = new_merge(letter="l1", sender="Ana Ruiz <ana@example.org>", reply_to="team@example.org",
                      subject="Join {{ org.name }}", body="Dear **{{ contact.first_name }}**",
                      audience={"filter": {"signed": ["l1"]}, "contacts": "all"})
    queueing.queue_merge(merge)  # any merge, sent or not, can be duplicated
    response = organizer.post(f"/merges/{merge.id}/duplicate")
    assert response.status_code == 303 and "/edit" in response.headers["Location"]
    copy = db.session.scalar(select(MailMerge).where(MailMerge.id != merge.id))
    assert copy.name == "Copy of Test merge" and copy.status == "draft"
    assert (copy.letter_id, copy.sender, copy.reply_to) == (merge.letter_id, "Ana Ruiz <ana@example.org>",
                                                          "team@example.org")
    assert (copy.subject_template, copy.body_template) == (merge.subject_template, merge.body_template)
    assert copy.audience["filter"] == {"signed": ["l1"]} and copy.audience["contacts"] == "all"
    assert organizer.post("/merges/999999/duplicate").status_code == 404


def test_follow_up_starts_from_the_original_content(app, organizer):
    make_recipients(2, letter_slug="l1")
    merge = new_merge(letter="l1", sender="ana@example.org", subject="Sign {{ letter.title }}",
                      body="Dear {{ contact.first_name }}, sign: {{ sign_on_url }}")
    queueing.queue_merge(merge)
    queueing.set_state(merge, "pause")
    show = organizer.get(f"/merges/{merge.id}").get_data(as_text=True)
    link = re.search(r'href="(/merges/new\?[^"]+)">Follow up with those who did not sign', show).group(1)
    page = organizer.get(link.replace("&amp;", "&")).get_data(as_text=True)
    assert 'value="Follow-up: Test merge"' in page
    assert 'value="Sign {{ letter.title }}"' in page and "sign: {{ sign_on_url }}</textarea>" in page
    assert 'value="ana@example.org"' in page
    assert f'<option selected value="{merge.id}">' in page  # only those who received it …
    assert 'name="not_signed" value="l1" id="not_signed-l1" checked' in page  # … and have not signed


def test_audience_count_before_saving(app, organizer):
    make_recipients(3, letter_slug="l1")
    make_recipients(2, prefix="other")
    everyone = organizer.get("/merges/audience-count?contacts=primary").get_data(as_text=True)
    assert "reaches <strong id=\"live-audience-contacts\">5 contacts</strong>" in everyone
    assert "5 organizations" in everyone
    signed = organizer.get("/merges/audience-count?contacts=primary&signed=l1").get_data(as_text=True)
    assert "3 contacts" in signed and "3 organizations" in signed
    bad = organizer.get("/merges/audience-count?signed=no-such-letter")
    assert bad.status_code == 200 and "text-danger" in bad.get_data(as_text=True)
    assert organizer.get("/merges/audience-count?extra_filter=%ZZ&after_merge=x&segment=abc").status_code == 200
    assert db.session.scalar(select(func.count()).select_from(MailMerge)) == 0  # counting saves nothing


@pytest.mark.browser
def test_field_picker_inserts_at_the_cursor_and_the_count_follows_the_audience(live_server, page, users, app):
    make_recipients(3, letter_slug="l1")
    make_recipients(2, prefix="other")
    base = live_server.url
    browser_login(page, base, users["organizer"].email)
    page.goto(f"{base}/merges/new")
    live = page.locator("#live-audience")
    expect(live).to_contain_text("5 contacts")
    body = page.get_by_label("Body (Markdown with fields)")
    body.fill("Dear ,\n\nThanks.")
    body.evaluate("(el) => el.setSelectionRange(5, 5)")  # the cursor after "Dear "
    page.get_by_role("button", name="Insert Recipient's first name").click()
    assert body.input_value() == "Dear {{ contact.first_name }},\n\nThanks."
    subject = page.get_by_label("Subject")
    subject.fill("Hello ")
    subject.focus()
    page.get_by_role("button", name="Insert Organization's name").click()
    assert subject.input_value() == "Hello {{ org.name }}"
    assert "Inserted {{ org.name }} into the subject" in page.locator("#field-picker-status").text_content()
    page.locator("#signed-l1").check()
    expect(live).to_contain_text("3 contacts")
    assert "3 organizations" in live.text_content()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "mailmerge-composer.png"), full_page=True)
    page.get_by_label("Name (for you)").fill("Thanks")
    page.get_by_role("button", name="Save draft").click()
    page.wait_for_selector("#audience-counts")
    merge = db.session.scalar(select(MailMerge))
    assert merge.body_template == "Dear {{ contact.first_name }},\n\nThanks."


@pytest.mark.browser
def test_without_javascript_the_fields_are_a_plain_list(live_server, browser, users, app):
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    try:
        browser_login(page, live_server.url, users["organizer"].email)
        page.goto(f"{live_server.url}/merges/new")
        items = page.locator("#field-picker li")
        assert items.count() == len(compose.field_list())
        assert "{{ contact.first_name }}" in items.first.text_content()
        assert page.get_by_role("button", name="Insert Recipient's first name").count() == 0  # hidden
    finally:
        context.close()


def test_the_signed_filter_says_it_serves_invitations_and_thank_yous(app, organizer):
    """"Signed" is mostly how past signers are invited to a new letter, not only who is thanked."""
    page = organizer.get("/merges/new").get_data(as_text=True)
    assert "Signed (all of these letters)" in page and "for thank-yous" not in page
    assert "invite them to the letter this merge promotes, or thank them" in page
    assert "Inviting past signers: choose the new letter" in page


def test_the_audit_log_names_a_merges_letter_by_its_slug(app, as_role):
    from crm.audit.models import AuditEvent
    from crm.letters import writing

    writing.create_letter({"slug": "next-letter", "title": "The next letter"})
    merge = new_merge(letter="next-letter")
    changes = db.session.scalar(select(AuditEvent.changes).where(AuditEvent.entity_type == "merge",
                                                                 AuditEvent.entity_id == merge.id))
    assert changes["letter"] == [None, "next-letter"] and "letter_id" not in changes
    page = as_role("admin").get("/audit").get_data(as_text=True)
    assert "next-letter" in page
