"""Mobile (issue 13, point 15): at 390 px no page scrolls sideways; tables scroll inside their own box, the
organization and contact filters fold behind a "Filters" button, long emails wrap readably, and the public sign-on
and personal link pages fit a phone.

Screenshots of every page at 390 px go to test-artifacts/mobile-*.png (look at them)."""

import re
from datetime import date
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from crm.contacts.models import Contact
from crm.letters.models import Letter
from crm.organizations.models import Organization
from crm.seed import SEED_LETTER_SLUG
from tests.conftest import ARTIFACTS, browser_login

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
OVERFLOW = "() => [document.documentElement.scrollWidth, window.innerWidth]"
# The widest element when a page overflows, to say what to fix.
WIDEST = """() => { let w = null; for (const e of document.querySelectorAll('body *')) {
  const r = e.getBoundingClientRect(); if (r.right > window.innerWidth + 1 && (!w || r.right > w.r))
  w = {r: r.right, tag: e.tagName, id: e.id, cls: String(e.className).slice(0, 60),
       text: (e.textContent || '').slice(0, 60)}; } return w; }"""


def _shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"mobile-{name}.png"), full_page=True)


def _fits(page, url: str, name: str, failures: list | None = None) -> None:
    """Open a page at phone width, save its screenshot, and check nothing scrolls sideways (collecting the pages
    that do in `failures` when given, to report them all at once)."""
    response = page.goto(url)
    assert response.status < 400, (url, response.status)
    page.wait_for_load_state("load")
    _shot(page, name)
    scroll_width, inner_width = page.evaluate(OVERFLOW)
    if scroll_width > inner_width and failures is not None:
        failures.append((url, scroll_width, page.evaluate(WIDEST)))
    else:
        assert scroll_width <= inner_width, (url, scroll_width, inner_width, page.evaluate(WIDEST))


@pytest.fixture
def phone_page(browser, request):
    """A browser page 390 px wide."""
    # Not is_mobile: mobile emulation widens the layout viewport to fit overflowing content, so innerWidth would
    # grow with scrollWidth and hide the very overflow this looks for.
    context = browser.new_context(viewport=PHONE)
    tab = context.new_page()
    tab.set_default_timeout(10_000)
    yield tab
    context.close()


def _world(db):
    """A collecting letter with public sign-on, a contact and a segment, so every detail page has content."""
    from crm.letters.links import personal_signon_url
    from crm.mailmerge.links import unsubscribe_url
    from crm.segments.services import create_segment

    letter = Letter(slug="phone-letter", title="Stop facial recognition in public housing across every state now",
                    body="We, the undersigned organizations, ask you to **stop**.\n\n" + "A long paragraph. " * 40,
                    status="collecting", public_signon=True, review_required=True, recipients="Secretary X",
                    deadline=date(2099, 1, 1))
    db.session.add(letter)
    org = db.session.scalar(select(Organization).where(Organization.name == "Mijente"))
    contact = Contact(organization_id=org.id, first_name="Ana", last_name="Ruiz", email="ana@mijente.example",
                      is_primary=True)
    db.session.add(contact)
    db.session.commit()
    segment = create_segment("Privacy, not immigration", {"issue_area": ["privacy"],
                                                         "not_issue_area": ["immigration"]})
    return {
        "letter": letter, "org": org, "contact": contact, "segment": segment,
        "personal": personal_signon_url(letter, org, contact),
        "unsubscribe": unsubscribe_url(contact.email, None),
    }


def test_no_page_scrolls_sideways_at_390_px(live_server, phone_page, seeded, users, db):
    page, base = phone_page, live_server.url
    failures = []
    world = _world(db)
    # Public pages first, logged out.
    assert page.goto(f"{base}/login") and page.evaluate("innerWidth") == PHONE["width"]
    _fits(page, f"{base}/login", "login")
    _fits(page, f"{base}/sign/phone-letter", "public-signon")
    _fits(page, world["personal"].replace("http://localhost", base), "personal-link")
    _fits(page, world["unsubscribe"].replace("http://localhost", base), "unsubscribe")
    # The sign-on form is usable on a phone: its fields are as wide as the screen allows, the button is reachable.
    page.goto(f"{base}/sign/phone-letter")
    field = page.locator("form input[type=text]:visible, form input[type=email]:visible").first
    assert field.bounding_box()["width"] >= 300
    browser_login(page, base, users["admin"].email)
    # Every page the navigation links to (the menu unfolds behind its toggler at this width).
    page.get_by_role("button", name="Toggle navigation").click()
    hrefs = page.eval_on_selector_all("#nav a[href^='/']", "links => links.map(a => a.getAttribute('href'))")
    nav = sorted({h for h in hrefs if h != "#"})
    assert {"/organizations", "/contacts", "/letters", "/segments", "/merges", "/imports", "/audit"} <= set(nav)
    _shot(page, "menu-open")
    pages = nav + [
        f"/organizations/{world['org'].id}", "/organizations/new", "/organizations/issue-areas",
        "/organizations/duplicates", f"/contacts/{world['contact'].id}", "/contacts/new",
        f"/letters/{SEED_LETTER_SLUG}", "/letters/phone-letter", "/letters/new", "/letters/participation",
        "/letters/review", f"/segments/{world['segment'].id}", "/merges/new", "/organizations?per_page=200",
    ]
    for path in pages:
        name = re.sub(r"[^a-z0-9]+", "-", urlsplit(path).path.strip("/")) or "dashboard"
        _fits(page, base + path, name, failures)
    assert not failures, failures


def test_organization_filters_fold_behind_a_button_on_a_phone(live_server, phone_page, seeded, users):
    page, base = phone_page, live_server.url
    browser_login(page, base, users["viewer"].email)
    page.goto(f"{base}/organizations")
    expect(page.locator("#org-filters")).to_be_hidden()
    expect(page.locator("#org-table")).to_be_visible()
    page.get_by_role("button", name="Filters").click()
    expect(page.locator("#q")).to_be_visible()
    page.locator("#ia-privacy").check()
    page.locator("#nia-immigration").check()
    expect(page.locator("#result-count strong")).to_have_text("12")
    assert "not_issue_area=immigration" in page.url
    _shot(page, "organization-filters-open")
    # The table scrolls inside its own box, not the page.
    assert page.evaluate(OVERFLOW)[0] <= PHONE["width"]


def test_contact_filters_fold_and_emails_wrap_readably_on_a_phone(live_server, phone_page, seeded, users, db):
    page, base = phone_page, live_server.url
    org = db.session.scalar(select(Organization).where(Organization.name == "Mijente"))
    email = "maria.fernanda.hernandez-rodriguez@american-civil-liberties-union-test.org"
    db.session.add(Contact(organization_id=org.id, first_name="María", last_name="Hernández", email=email,
                           title="Senior Policy Counsel", is_primary=True))
    db.session.commit()
    browser_login(page, base, users["viewer"].email)
    page.goto(f"{base}/contacts")
    # The list starts near the top: the filters (over 1,500 px of them) wait behind the button.
    expect(page.locator("#contact-filters")).to_be_hidden()
    assert page.locator("#contact-table").bounding_box()["y"] < 450
    # The email stays a few lines in a column wide enough to read, not one character a line.
    cell = page.locator("#contact-table td.email-cell", has_text="maria.fernanda")
    box = cell.bounding_box()
    line = page.evaluate("e => parseFloat(getComputedStyle(e).lineHeight)", cell.element_handle())
    assert box["width"] >= 150 and box["height"] <= 8 * line, (box, line)  # 74 characters: six lines, not 74
    assert box["x"] + box["width"] <= PHONE["width"]  # next to the name, in view without scrolling the table
    _shot(page, "contacts-list")
    page.get_by_role("button", name="Filters").click()
    page.locator("#contact_q").fill("hernandez")
    page.locator("#contact_q").press("Enter")
    expect(page.locator("#result-count strong").first).to_have_text("1")
    expect(page.get_by_role("button", name="Filters on")).to_be_visible()
    assert page.evaluate(OVERFLOW)[0] <= PHONE["width"]
