"""Two people edit the same organization in two browsers; the dashboard, the profile and the filters in Chromium."""

import re

import pytest
from playwright.sync_api import expect

from crm.organizations.models import Organization
from tests.conftest import ARTIFACTS, browser_login

pytestmark = pytest.mark.browser


def test_two_sessions_edit_the_same_organization(live_server, browser, seeded, users, db):
    org = db.session.scalar(db.select(Organization).where(Organization.name == "Mijente"))
    contexts = [browser.new_context(viewport={"width": 1280, "height": 1000}) for _ in range(2)]
    try:
        first, second = (context.new_page() for context in contexts)
        browser_login(first, live_server.url, users["organizer"].email)
        browser_login(second, live_server.url, users["admin"].email)
        edit_url = f"{live_server.url}/organizations/{org.id}/edit"
        first.goto(edit_url)
        second.goto(edit_url)  # both forms now carry the same version
        first.get_by_label("City").fill("Phoenix")
        first.get_by_role("button", name="Save").click()
        first.wait_for_url(f"{live_server.url}/organizations/{org.id}")
        assert "Mijente saved." in first.content()
        second.get_by_label("City").fill("Tucson")
        second.get_by_label("Notes").fill("Met at the border convening.")
        second.get_by_role("button", name="Save").click()
        conflict = second.locator("#conflict")
        conflict.wait_for()
        assert "Someone else saved this organization" in conflict.inner_text()
        assert "organizer@example.org" in conflict.inner_text()
        assert "Phoenix" in conflict.inner_text() and "Tucson" in conflict.inner_text()
        assert (
            second.get_by_label("City").input_value() == "Tucson"
        )  # nothing the second person typed is lost
        assert second.get_by_label("Notes").input_value() == "Met at the border convening."
        ARTIFACTS.mkdir(exist_ok=True)
        second.screenshot(path=str(ARTIFACTS / "workspace-conflict.png"), full_page=True)
        db.session.expire_all()
        assert db.session.get(Organization, org.id).city == "Phoenix"
        second.goto(f"{live_server.url}/audit")
        assert "Edited Mijente (city)" in second.content() and "Phoenix" in second.content()
        second.goto(edit_url)
        second.get_by_label("City").fill("Tucson")
        second.get_by_role("button", name="Save").click()
        second.wait_for_url(f"{live_server.url}/organizations/{org.id}")
        history = second.locator("#audit-history").inner_text()
        assert history.index("Phoenix → Tucson") < history.index("— → Phoenix")  # both changes, newest first
        second.screenshot(path=str(ARTIFACTS / "workspace-organization.png"), full_page=True)
    finally:
        for context in contexts:
            context.close()


def test_dashboard_charts_and_filters(live_server, page, seeded, users):
    browser_login(page, live_server.url, users["organizer"].email)
    chart = page.locator("svg#chart-areas")
    assert chart.get_attribute("role") == "group"  # a group of links (role=img would hide them; axe flags it)
    assert "issue area" in page.locator("#chart-areas-title").text_content()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "workspace-dashboard.png"), full_page=True)
    page.locator("svg#chart-areas a").first.click()
    page.wait_for_url("**/organizations?issue_area=*")
    page.get_by_label("Never signed anything").check()
    expect(page.locator("#result-count")).to_have_text(re.compile(r"^\s*0\b"))  # the CSP forbids eval
    assert "never_signed=1" in page.url
    page.goto(f"{live_server.url}/organizations?q=aclu")
    page.get_by_label("Segment name").fill("ACLU family")
    page.get_by_role("button", name="Save as segment").click()
    page.wait_for_url("**/segments/*")
    assert page.locator("#segment-orgs").inner_text() == "5"
    page.screenshot(path=str(ARTIFACTS / "workspace-segment.png"), full_page=True)
