"""An organizer composes an invitation to the Clearview signers, previews it, queues it, watches it finish,
and
the message arrives at a real SMTP server with a personal sign-on link."""

import re

import pytest
from sqlalchemy import select

from crm.contacts.models import Contact
from crm.extensions import db
from crm.letters.models import Signature
from crm.seed import SEED_LETTER_SLUG
from tests.conftest import ARTIFACTS, browser_login, embedded_smtp_config
from tests.factories import LetterFactory

pytestmark = pytest.mark.browser


@pytest.fixture
def app_config(smtp_server):
    """Real SMTP to the smtp_server fixture; the embedded worker thread runs (this test asks for it)."""
    return embedded_smtp_config(smtp_server)


def test_invite_the_clearview_signers(live_server, page, seeded, users, smtp_server, worker_stopped):
    signers = list(db.session.scalars(select(Signature.organization_id).order_by(Signature.id).limit(3)))
    names = ["Ana", "Ben", ""]
    for i, org_id in enumerate(signers):
        db.session.add(
            Contact(
                organization_id=org_id,
                first_name=names[i],
                last_name="Tester",
                email=f"contact{i}@partner.example",
                is_primary=True,
            )
        )
    db.session.commit()
    # The invitation promotes a new letter collecting signatures (the delivered Clearview letter takes none).
    LetterFactory(slug="next-letter", title="The next letter", status="collecting")
    base = live_server.url
    browser_login(page, base, users["organizer"].email)
    page.goto(f"{base}/merges")
    page.get_by_role("link", name="New mail merge").click()
    page.get_by_label("Name (for you)").fill("Clearview follow-on invitation")
    page.get_by_label("Letter it promotes").select_option("next-letter")
    page.get_by_label("Subject").fill("{{ org.name }}: join us again")
    page.get_by_label("Body (Markdown with fields)").fill(
        "Dear {{ contact.first_name | default('friends') }},\n\n"
        "{{ org.name }} signed **{{ last_signed.title }}** ({{ last_signed.date }}).\n\n"
        "Sign the next one with one click: {{ sign_on_url }}"
    )
    page.locator(f"#signed-{SEED_LETTER_SLUG}").check()
    page.screenshot(path=str(ARTIFACTS / "mailmerge-compose.png"), full_page=True)
    page.get_by_role("button", name="Save draft").click()
    page.wait_for_selector("#audience-counts")
    counts = page.locator("#audience-counts").inner_text()
    assert re.search(r"Organizations\s+68", counts) and re.search(r"Mailable\s+3", counts)
    assert re.search(r"Organizations without a contact\s+65", counts)
    page.screenshot(path=str(ARTIFACTS / "mailmerge-draft.png"), full_page=True)
    page.get_by_role("link", name="Check every message").click()
    assert "No problems" in page.locator("#check-result").inner_text()
    page.go_back()
    page.get_by_role("link", name="Preview").click()
    assert "Dear Ana" in page.locator("#preview-text").inner_text()
    frame = page.frame_locator("iframe")
    assert "Dear Ana" in frame.locator("body").inner_text()
    page.screenshot(path=str(ARTIFACTS / "mailmerge-preview.png"), full_page=True)
    page.go_back()
    page.get_by_role("link", name="Queue and send").click()  # asks first (issue 13.4)
    page.get_by_role("button", name="Yes, send").click()
    page.wait_for_selector("#merge-progress[data-status='done']", timeout=30_000)
    assert page.locator("#count-sent").inner_text() == "3"
    page.screenshot(path=str(ARTIFACTS / "mailmerge-done.png"), full_page=True)
    assert len(smtp_server.messages) == 3
    received = {m["to"][0]: m["message"] for m in smtp_server.messages}
    message = received["contact0@partner.example"]
    text = message.get_payload()[0].get_payload(decode=True).decode()
    assert text.startswith("Dear Ana,")
    assert re.search(rf"{re.escape(base)}/sign/next-letter/p/\S+", text)
    assert (
        "Dear friends,"
        in received["contact2@partner.example"].get_payload()[0].get_payload(decode=True).decode()
    )
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    report = page.get_by_role("link", name="Report: every recipient's status and message").get_attribute(
        "href"
    )
    page.goto(base + report)
    assert page.locator("text=250 Message accepted for delivery").count() == 3
    page.goto(base + page.get_by_role("link", name="view", exact=True).first.get_attribute("href"))
    assert page.locator("#message-text").inner_text().startswith("Dear ")
    page.screenshot(path=str(ARTIFACTS / "mailmerge-message.png"), full_page=True)
