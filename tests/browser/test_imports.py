"""The import wizard in Chromium with the sample file: a column the wizard cannot guess is mapped by hand, the
preview shows every row, the import commits, the report downloads, and the contacts appear on their organization."""

import csv
import io
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.conftest import ARTIFACTS, browser_login

pytestmark = pytest.mark.browser
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "contacts.csv"


def test_import_wizard_end_to_end(live_server, page, seeded, users, tmp_path):
    base = live_server.url
    ARTIFACTS.mkdir(exist_ok=True)
    # The sample file with its email column renamed to something the wizard does not know.
    text = EXAMPLE.read_text(encoding="utf-8").replace("first_name,last_name,email,",
                                                       "first_name,last_name,Courriel,", 1)
    upload = tmp_path / "partners.csv"
    upload.write_text(text, encoding="utf-8")
    rows = len(text.strip().splitlines()) - 1
    browser_login(page, base, users["organizer"].email)
    page.get_by_role("link", name="Imports").click()
    page.get_by_label("What the file holds").select_option("contacts")
    page.get_by_label("CSV file").set_input_files(str(upload))
    page.get_by_role("button", name="Upload and continue").click()
    page.wait_for_url("**/mapping")
    assert page.get_by_label("Courriel").input_value() == ""
    assert page.get_by_label("first_name").input_value() == "first_name"
    page.screenshot(path=str(ARTIFACTS / "imports-mapping.png"), full_page=True)
    page.get_by_role("button", name="Preview the import").click()
    expect(page.locator("body")).to_contain_text("No column is mapped to Email")
    page.get_by_label("Courriel").select_option("email")
    page.get_by_label("Save this mapping as (optional)").fill("Partner list")
    page.get_by_role("button", name="Preview the import").click()
    page.wait_for_url("**/preview")
    counts = page.locator("#import-counts").inner_text()
    assert f"{rows} rows" in counts and f"{rows} to create" in counts and "0 with errors" in counts
    page.screenshot(path=str(ARTIFACTS / "imports-preview.png"), full_page=True)
    page.get_by_role("button", name="Import", exact=True).click()
    page.wait_for_url("**/imports/batches/*")
    assert f"{rows} created" in page.locator("#import-counts").inner_text()
    with page.expect_download() as info:
        page.get_by_role("link", name="Download the report (CSV)").click()
    report = list(csv.reader(io.StringIO(Path(info.value.path()).read_text(encoding="utf-8"))))
    assert report[0] == ["row", "action", "record", "errors", "organization", "organization_match"]
    assert len(report) == rows + 1 and {r[1] for r in report[1:]} == {"create"}
    page.screenshot(path=str(ARTIFACTS / "imports-batch.png"), full_page=True)
    page.goto(f"{base}/organizations?q=mijente")
    page.get_by_role("link", name="Mijente", exact=True).click()
    page.wait_for_url("**/organizations/*")
    expect(page.locator("body")).to_contain_text("sample.person.mijente@example.org")
    page.screenshot(path=str(ARTIFACTS / "imports-organization.png"), full_page=True)
