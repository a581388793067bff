"""Browser: an anonymous signer uses the public page and the link mailed through a real SMTP server; an
organizer accepts the match; a personal link signs in one click."""

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from crm.letters.links import personal_signon_url
from crm.letters.models import Letter
from crm.organizations.models import Organization
from tests.browser.test_organizer_loop import _text, _wait_for_mail
from tests.conftest import ARTIFACTS, browser_login, embedded_smtp_config

# Every test here runs the embedded outbox worker: stop it, or it outlives the test and sends another test's
# mail (same PostgreSQL database) to this test's closed SMTP port.
pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("worker_stopped")]


@pytest.fixture
def app_config(smtp_server):
    """Real SMTP through the embedded outbox worker; a short minimum fill time (the browser is fast)."""
    return embedded_smtp_config(smtp_server, SIGNON_MIN_FILL_SECONDS=1)


def _letter(db) -> Letter:
    """A collecting letter with public sign-on."""
    letter = Letter(
        slug="stop-face-recognition",
        title="Stop face recognition at the border",
        body="We, the undersigned, ask you to **stop**.",
        status="collecting",
        public_signon=True,
        review_required=True,
    )
    db.session.add(letter)
    db.session.commit()
    return letter


def test_public_sign_on_confirm_and_review(live_server, page, seeded, users, db, smtp_server):
    letter = _letter(db)
    base = live_server.url
    page.goto(f"{base}/sign/{letter.slug}")
    page.get_by_label("Organization name").fill("Electronic Frontier Foundation")
    page.get_by_label("List the organization as").fill("EFF")
    page.get_by_label("Your name").fill("Cindy Cohn")
    page.get_by_label("Your title").fill("Executive Director")
    page.get_by_label("Your email").fill("cindy@eff.example")
    page.get_by_label("City").fill("San Francisco")
    page.get_by_label("State").fill("CA")
    page.get_by_label("You may list our organization publicly").check()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "signon-public-form.png"), full_page=True)
    page.wait_for_timeout(1100)
    page.get_by_role("button", name="Sign the letter").click()
    page.get_by_role("heading", name="Check your mail").wait_for()
    mailed = _wait_for_mail(smtp_server, lambda m: m["to"] == ["cindy@eff.example"])[0]
    link = re.search(rf"{re.escape(base)}/sign/{letter.slug}/confirm/\S+", _text(mailed["message"])).group(0)
    page.goto(link)
    page.get_by_role("button", name="Confirm the sign-on of Electronic Frontier Foundation").click()
    page.get_by_role("heading", name="Thank you: your sign-on is confirmed").wait_for()
    browser_login(page, base, users["organizer"].email)
    page.goto(f"{base}/letters/{letter.slug}")
    page.get_by_role("link", name="Open the review queue").click()
    page.screenshot(path=str(ARTIFACTS / "signon-review-queue.png"), full_page=True)
    # The proposed match is chosen, with its confidence shown.
    expect(page.get_by_role("radio", name=re.compile(r"Electronic Frontier Foundation \(EFF\).*match"))).to_be_checked()
    page.get_by_role("button", name="Accept as the chosen organization").click()
    page.get_by_text("accepted; the signer was told").wait_for()
    told = _wait_for_mail(smtp_server, lambda m: m["message"]["Subject"].startswith("Your signature is confirmed"))
    assert told[0]["to"] == ["cindy@eff.example"]
    eff = db.session.scalar(select(Organization).where(Organization.acronym == "EFF"))
    page.goto(f"{base}/organizations/{eff.id}")
    row = page.locator(".timeline-item", has_text=re.compile("Stop face recognition at the border"))
    assert "EFF" in row.inner_text() and "confirmed" in row.inner_text()
    page.screenshot(path=str(ARTIFACTS / "signon-org-timeline.png"), full_page=True)


def test_personal_link_one_click(live_server, page, seeded, db):
    letter = _letter(db)
    org = db.session.scalar(select(Organization).where(Organization.name == "Upturn"))
    url = personal_signon_url(letter, org, None)
    page.goto(url)
    assert page.get_by_label("List us as").input_value() == "Upturn"
    page.screenshot(path=str(ARTIFACTS / "signon-personal-link.png"), full_page=True)
    page.get_by_role("button", name="Add Upturn as a signatory").click()
    page.get_by_text("Upturn is listed as a signatory").wait_for()
    # The thank-you page: how many signed so far, and the public page to pass on.
    expect(page.locator("#signed-count")).to_contain_text("1 organization signed")
    expect(page.locator("#share-link")).to_have_value(f"{live_server.url}/sign/{letter.slug}")
    page.screenshot(path=str(ARTIFACTS / "signon-personal-thanks.png"), full_page=True)
    page.goto(url)  # opened again: where Upturn stands, and a way to withdraw
    expect(page.locator("#signon-state")).to_contain_text("Upturn signed on")
    page.get_by_role("button", name="Withdraw Upturn’s signature").click()
    page.get_by_role("heading", name="Your signature is withdrawn").wait_for()
