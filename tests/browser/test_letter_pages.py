"""Browser: the review queue's choices and search, a bad decision explained, delivery, names and counts."""

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from crm.letters.models import Signature
from crm.organizations.models import Organization
from tests.conftest import ARTIFACTS, browser_login
from tests.letters.test_letter_ui import _letter, _org, _signon

pytestmark = pytest.mark.browser
SHOTS = ARTIFACTS / "letter-pages"


def _shot(page, name: str) -> None:
    """A full-page screenshot under test-artifacts/letter-pages/."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_review_queue_candidates_search_and_errors(live_server, browser, page, seeded, users, db):
    db.session.add_all([Organization(name=n, sort_name=n.lower())
                        for n in ("Border Rights Coalition", "Border Rights Collective")])
    db.session.commit()
    letter = _letter(db)
    misspelt = _signon(db, letter, "Border Rights Coalitoin", "a@border.example")
    _signon(db, letter, "Quite Unknown Collective", "b@unknown.example")
    base = live_server.url
    browser_login(page, base, users["organizer"].email)
    page.goto(f"{base}/letters/review")
    entry = page.locator(f"#signon-{misspelt.id}")
    expect(entry.get_by_role("radio", name=re.compile(r"^Border Rights Coalition .*% match proposed"))).to_be_checked()
    expect(entry.get_by_role("radio", name=re.compile(r"^Border Rights Collective .*% match"))).not_to_be_checked()
    _shot(page, "review-candidates")
    # Search as you type (htmx) offers the organization typed; choosing it signs as it.
    entry.get_by_label("Another organization").press_sequentially("upturn", delay=30)
    found = entry.get_by_role("radio", name="Upturn (DC)")
    # A search offers; it does not choose: the proposal stays chosen until the organizer picks a result.
    expect(found).not_to_be_checked()
    expect(entry.get_by_role("radio", name=re.compile(r"^Border Rights Coalition .*% match proposed"))).to_be_checked()
    found.check()
    _shot(page, "review-search-as-you-type")
    entry.get_by_role("button", name="Accept as the chosen organization").click()
    expect(page.get_by_text("Border Rights Coalitoin accepted; the signer was told.")).to_be_visible()
    sig = db.session.scalar(select(Signature).where(Signature.letter_id == letter.id))
    assert sig.organization_id == _org(db, "Upturn").id
    # Nothing close and nothing chosen: the reason is shown next to the choices, the flash says nothing happened.
    page.get_by_role("button", name="Accept as the chosen organization").click()
    expect(page.get_by_text("Choose an organization (or search for one), or create a new one.")).to_be_visible()
    expect(page.get_by_text("Nothing was decided for Quite Unknown Collective.")).to_be_visible()
    _shot(page, "review-error")


def test_review_search_without_javascript(live_server, browser, seeded, users, db):
    letter = _letter(db)
    row = _signon(db, letter, "Quite Unknown Collective", "b@unknown.example")
    context = browser.new_context(java_script_enabled=False, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    try:
        browser_login(page, live_server.url, users["organizer"].email)
        page.goto(f"{live_server.url}/letters/review")
        page.get_by_label("Another organization").fill("upturn")
        page.get_by_label("Another organization").press("Enter")  # Enter searches; it never decides
        expect(page.get_by_role("radio", name="Upturn (DC)")).not_to_be_checked()
        page.get_by_role("radio", name="Upturn (DC)").check()
        _shot(page, "review-search-no-js")
        page.get_by_role("button", name="Accept as the chosen organization").click()
        expect(page.get_by_text("Quite Unknown Collective accepted")).to_be_visible()
    finally:
        context.close()
    db.session.refresh(row)
    assert row.status == "accepted"


def test_letter_delivery_org_names_merge_preview_and_matrix(live_server, page, seeded, users, db):
    base = live_server.url
    letter = _letter(db)
    db.session.add(Signature(letter_id=letter.id, organization_id=_org(db, "Upturn").id, listed_name="Upturn",
                             status="confirmed"))
    db.session.commit()
    browser_login(page, base, users["organizer"].email)
    page.goto(f"{base}/letters/ui-letter")
    expect(page.locator("#status")).not_to_contain_text("delivered")
    expect(page.get_by_role("heading", name="Record delivery")).to_have_count(0)  # not while collecting
    page.locator("#status").select_option("closed")
    page.get_by_role("button", name="Change status").click()
    expect(page.get_by_role("heading", name="Record delivery")).to_be_visible()
    expect(page.get_by_label("Also send each confirmed signer a thank-you message")).not_to_be_checked()
    expect(page.get_by_text("Confirmed signers: 1.")).to_be_visible()
    _shot(page, "letter-collecting")
    page.get_by_label("Delivered on").fill("2025-06-02")
    page.get_by_role("button", name="Record delivery").click()
    expect(page.get_by_text("Delivered on June 2, 2025.")).to_be_visible()
    expect(page.get_by_role("heading", name="Record delivery")).to_have_count(0)
    _shot(page, "letter-delivered")
    eff = _org(db, "Electronic Frontier Foundation (EFF)")
    page.goto(f"{base}/organizations/{eff.id}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Electronic Frontier Foundation (EFF)")
    _shot(page, "organization-eff")
    keep, remove = _org(db, "Upturn"), _org(db, "X-Lab")
    page.goto(f"{base}/organizations/merge?keep={keep.id}&remove={remove.id}")
    expect(page.get_by_text("Adds 1 alias (including “X-Lab”)")).to_be_visible()
    _shot(page, "merge-preview")
    page.goto(f"{base}/letters/participation?q=frontier")
    expect(page.get_by_text("a blank cell means no answer")).to_be_visible()
    expect(page.locator("td.cell-none")).to_have_text("no answer")  # read out, not shown
    _shot(page, "participation-matrix")
