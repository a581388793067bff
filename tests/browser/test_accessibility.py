"""Every page a person uses passes an axe-core scan: no serious or critical violations."""

import pytest

from crm.seed import SEED_LETTER_SLUG
from tests.browser.a11y import serious_violations
from tests.conftest import browser_login

pytestmark = pytest.mark.browser

PAGES = ["/", "/organizations", "/organizations?issue_area=immigration&match=all", "/organizations/1",
         "/organizations/new", "/contacts", "/letters", f"/letters/{SEED_LETTER_SLUG}", "/segments", "/merges",
         "/imports", "/outbox", "/suppressions", "/audit", "/users", "/account"]


@pytest.mark.slow
def test_pages_have_no_serious_accessibility_violations(live_server, browser, seeded, users):
    context = browser.new_context(bypass_csp=True)
    page = context.new_page()
    try:
        page.goto(f"{live_server.url}/login")
        assert serious_violations(page) == [], "/login"
        browser_login(page, live_server.url, users["admin"].email)
        found = {}
        for path in PAGES:
            page.goto(live_server.url + path)
            violations = serious_violations(page)
            if violations:
                found[path] = violations
        assert found == {}
    finally:
        context.close()


def test_forms_showing_their_errors_have_no_serious_violations(live_server, browser, seeded, users):
    """The error summary, its links and the fields marked invalid (a text box, a group of checkboxes, the contact
    form's organization box) pass the scan too."""
    context = browser.new_context(bypass_csp=True)
    page = context.new_page()
    try:
        browser_login(page, live_server.url, users["admin"].email)
        found = {}
        for path, fill in [("/organizations/1/edit", {"#state": "Massachusetts"}),
                           ("/contacts/new", {"#email": "not an address", "#organization": "No such org"}),
                           ("/letters/new", {"#title": "A letter", "#slug": "Bad Slug", "#deadline": "2099-01-01"}),
                           ("/users", {"#email": "not an address"})]:
            page.goto(live_server.url + path)
            for selector, value in fill.items():
                page.fill(selector, value)
            with page.expect_navigation():  # Enter in the first box submits its own form
                page.press(next(iter(fill)), "Enter")
            assert page.locator(".error-summary").count() == 1, path
            violations = serious_violations(page)
            if violations:
                found[path] = violations
        assert found == {}
    finally:
        context.close()


def test_login_form_works_with_the_keyboard_alone(live_server, page, users):
    page.goto(f"{live_server.url}/login")
    page.keyboard.press("Tab")  # skip link
    page.keyboard.press("Tab")  # brand
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "email"
    page.keyboard.type(users["viewer"].email)
    page.keyboard.press("Tab")
    page.keyboard.type("correct horse battery")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{live_server.url}/")


def test_the_scan_finds_a_violation(browser):
    """The scan itself works (axe loads from its loopback address and reports): an image with no text is found."""
    context = browser.new_context(bypass_csp=True)
    try:
        page = context.new_page()
        page.set_content('<html lang="en"><title>t</title><main><h1>t</h1><img src="data:,"></main></html>')
        assert [v["id"] for v in serious_violations(page)] == ["image-alt"]
    finally:
        context.close()
