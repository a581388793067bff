"""The contact form picks its organization by search (issue 13, point 12), in Chromium with htmx."""

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from crm.contacts.models import Contact
from tests.conftest import ARTIFACTS, browser_login

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("width", [1280, 390])
def test_type_part_of_a_name_pick_it_and_save(live_server, browser, seeded, users, db, width):
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    try:
        browser_login(page, live_server.url, users["organizer"].email)
        page.goto(f"{live_server.url}/contacts/new")
        page.get_by_label("First name").fill("Ana")
        page.get_by_label("Email").fill(f"ana{width}@mijente.example")
        page.get_by_label("Organization", exact=True).press_sequentially("mije")
        choice = page.get_by_role("radio", name="Mijente")
        expect(choice).to_be_visible()
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"contact-org-picker-{width}.png"), full_page=True)
        choice.check()
        expect(page.get_by_label("Organization", exact=True)).to_have_value("Mijente")
        page.get_by_role("button", name="Save").click()
        page.wait_for_url(re.compile(r"/contacts/\d+$"))
        contact = db.session.scalar(select(Contact).where(Contact.email == f"ana{width}@mijente.example"))
        assert contact.organization.name == "Mijente"
    finally:
        context.close()
