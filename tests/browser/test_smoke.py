"""A person logs in through the real login form in Chromium and opens the Clearview letter."""

import re

import pytest
from playwright.sync_api import expect

from crm.seed import SEED_LETTER_SLUG
from tests.conftest import ARTIFACTS, browser_login

pytestmark = pytest.mark.browser


def test_login_open_organizations_and_the_clearview_letter(live_server, page, seeded, users):
    base = live_server.url
    page.goto(f"{base}/letters")
    assert "/login" in page.url
    browser_login(page, base, users["viewer"].email)
    page.get_by_role("link", name="Organizations").first.click()
    page.wait_for_url(f"{base}/organizations")
    assert page.locator("#result-count").inner_text().startswith("68")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "smoke-organizations.png"), full_page=True)
    page.locator("#ia-immigration").check()  # "Works on" (the same label is under "Works on none of")
    expect(page.locator("#result-count")).not_to_have_text(re.compile(r"^\s*68 "))
    assert "issue_area=immigration" in page.url
    page.get_by_role("link", name="Letters").first.click()
    page.get_by_role("link", name="Urge DHS to stop using Clearview AI facial recognition").click()
    page.wait_for_url(f"{base}/letters/{SEED_LETTER_SLUG}")
    items = page.locator(".signatory-list li")
    assert items.count() == 68
    assert items.nth(0).inner_text().startswith("Mijente")
    assert "Dear Secretary Mayorkas" in page.content()
    page.screenshot(path=str(ARTIFACTS / "smoke-letter.png"), full_page=True)


def test_form_without_javascript_still_filters(live_server, browser, seeded, users):
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    try:
        browser_login(page, live_server.url, users["viewer"].email)
        page.goto(f"{live_server.url}/organizations")
        page.locator("#ia-privacy").check()
        page.get_by_role("button", name="Apply filters").click()
        assert "issue_area=privacy" in page.url
        count = int(page.locator("#result-count strong").inner_text())
        assert 0 < count < 68
    finally:
        context.close()
