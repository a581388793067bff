"""The main forms with the keyboard alone: Tab reaches every field in order, then the submit button, each with a
visible focus indicator; typing, Space and the arrow keys fill them; Enter or Space submits; no mouse anywhere.

Each test saves the filled form (focus on its submit button) to test-artifacts/keyboard-<form>.png.
"""

import re

import pytest
from playwright.sync_api import expect

from crm.contacts.models import Contact
from crm.letters.models import Letter
from crm.mailmerge.models import MailMerge
from crm.organizations.models import Organization
from crm.seed import SEED_LETTER_SLUG
from tests.conftest import ARTIFACTS, browser_login

pytestmark = pytest.mark.browser

# What has focus, and how it shows it (Runtime.evaluate, which the page's CSP does not govern).
DESCRIBE_FOCUS = """() => {
  const e = document.activeElement, s = getComputedStyle(e);
  return {id: e.id, tag: e.tagName, type: e.type || "", text: (e.innerText || "").trim().slice(0, 40),
          value: e.type === "select-multiple" ? [...e.selectedOptions].map(o => o.value) : (e.value ?? null),
          checked: e.checked ?? null, focusVisible: e.matches(":focus-visible"),
          outline: s.outlineStyle, outlineWidth: s.outlineWidth, boxShadow: s.boxShadow};
}"""
SUBMIT = "submit"


def focused(page) -> dict:
    """The element that has focus."""
    return page.evaluate(DESCRIBE_FOCUS)


def is_target(element: dict, target: str) -> bool:
    """Whether the focused element is the field `target` (an id) or, for SUBMIT, the form's submit button."""
    if target == SUBMIT:
        return element["tag"] == "BUTTON" and element["type"] == "submit"
    return element["id"] == target


def shows_focus(element: dict) -> bool:
    """A keyboard focus indicator is drawn: :focus-visible matches and there is an outline or a visible shadow."""
    outline = element["outline"] != "none" and element["outlineWidth"] not in ("0px", "")
    return element["focusVisible"] and (outline or visible_shadow(element["boxShadow"]))


def visible_shadow(box_shadow: str) -> bool:
    """A computed box-shadow that draws something: not none, not fully transparent, not all lengths zero."""
    if box_shadow in ("none", ""):
        return False
    transparent = re.search(r"rgba\([^)]*,\s*0\)", box_shadow) is not None
    lengths = [float(n) for n in re.findall(r"(-?[\d.]+)px", box_shadow)]
    return not transparent and any(lengths)


def tab_to(page, target: str, later: list[str], limit: int = 80) -> dict:
    """Press Tab until `target` has focus; fail on reaching a later field first, or leaving the page (a wrap)."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        element = focused(page)
        if is_target(element, target):
            assert shows_focus(element), f"no visible focus indicator on {target}: {element}"
            return element
        assert element["tag"] != "BODY", f"Tab left the page before reaching {target}"
        assert not any(is_target(element, other) for other in later), f"Tab reached {element} before {target}"
    raise AssertionError(f"{limit} presses of Tab never reached {target}")


def replace_text(page, text: str) -> None:
    """Select what the focused text field holds and type over it."""
    page.keyboard.press("Control+A")
    page.keyboard.type(text) if text else page.keyboard.press("Delete")


def fill_with_keyboard(page, steps: list[tuple[str, object]]) -> None:
    """Tab through the form in order; at each field run its action (a string is typed over the field's value)."""
    targets = [target for target, _ in steps]
    for index, (target, action) in enumerate(steps):
        tab_to(page, target, later=targets[index + 1:])
        if isinstance(action, str):
            replace_text(page, action)
        elif action is not None:
            action(page)


def keys(*names: str):
    """An action that presses these keys in turn."""

    def press(page) -> None:
        for name in names:
            page.keyboard.press(name)

    return press


def type_ahead(text: str):
    """An action for a closed select or a list box: type the start of an option's label to choose it."""

    def choose(page) -> None:
        page.keyboard.type(text)

    return choose


def value_of(page) -> object:
    """The focused field's value (a list of values for a multiple select)."""
    return focused(page)["value"]


def submit(page, name: str, key: str = "Enter") -> None:
    """Reach the submit button with Tab, save the filled form's picture, and press it with `key`."""
    button = tab_to(page, SUBMIT, later=[])
    assert button["text"] == "Save" if name != "merge-compose" else button["text"] == "Save draft"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"keyboard-{name}.png"), full_page=True)
    page.keyboard.press(key)


@pytest.fixture
def organizer_page(live_server, page, seeded, users):
    """The browser, logged in as an organizer, with transitions off so focus styles are read at their end."""
    page.emulate_media(reduced_motion="reduce")
    browser_login(page, live_server.url, users["organizer"].email)
    return page


def test_organization_edit_form_with_the_keyboard(live_server, organizer_page, db):
    page = organizer_page
    org = db.session.scalar(db.select(Organization).where(Organization.name == "Mijente"))
    page.goto(f"{live_server.url}/organizations/{org.id}/edit")
    fill_with_keyboard(page, [
        ("name", "Mijente Support Committee"),
        ("acronym", "MSC"),
        ("org_type", type_ahead("Advocacy")),
        ("scope", type_ahead("National")),
        ("city", "Phoenix"),
        ("state", "AZ"),
        ("country", "US"),
        ("website", "https://mijente.example"),
        ("parent", None),
        ("issue_areas-labor", keys("Space")),  # checkboxes: tick labor, keep the areas it had
        ("aliases", "Mijente PAC"),
        ("notes", "Edited without a mouse.\nSecond line."),
    ])
    submit(page, "organization-edit")
    page.wait_for_url(f"{live_server.url}/organizations/{org.id}")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Mijente Support Committee")
    expect(page.locator("body")).to_contain_text("Mijente Support Committee saved.")
    db.session.expire_all()
    saved = db.session.get(Organization, org.id)
    assert (saved.acronym, saved.org_type, saved.scope, saved.city, saved.state, saved.country) == (
        "MSC", "advocacy", "national", "Phoenix", "AZ", "US")
    assert saved.website == "https://mijente.example"
    assert sorted(a.slug for a in saved.issue_areas) == ["immigration", "labor", "racial-justice", "surveillance"]
    assert [a.name for a in saved.aliases] == ["Mijente PAC"]
    assert saved.notes.replace("\r\n", "\n") == "Edited without a mouse.\nSecond line."  # browsers send CRLF


def test_contact_create_form_with_the_keyboard(live_server, organizer_page, db):
    page = organizer_page
    page.goto(f"{live_server.url}/contacts/new")
    fill_with_keyboard(page, [
        ("first_name", "Keyboard"),
        ("last_name", "Only"),
        ("title", "Campaigns director"),
        ("email", "keyboard.only@example.org"),
        ("phone", "+1 555 0100"),
        ("organization", "Mijente"),
        ("status", None),
        ("is_primary", keys("Space")),
        ("notes", "Added with Tab, typing and Space."),
    ])
    assert focused(page)["value"] == "Added with Tab, typing and Space."
    submit(page, "contact-create", key="Space")
    page.wait_for_url(re.compile(r"/contacts/\d+$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text("Keyboard Only")
    expect(page.locator("body")).to_contain_text("Keyboard Only added.")
    contact = db.session.scalar(db.select(Contact).where(Contact.email == "keyboard.only@example.org"))
    assert contact.organization.name == "Mijente" and contact.is_primary and contact.title == "Campaigns director"


def test_letter_create_form_with_the_keyboard(live_server, organizer_page, db):
    page = organizer_page
    page.goto(f"{live_server.url}/letters/new")

    def deadline(page) -> None:
        page.keyboard.type("12312026")  # month, day, year: the date field moves between its parts itself
        assert value_of(page) == "2026-12-31"

    fill_with_keyboard(page, [
        ("title", "Keyboard letter on facial recognition"),
        ("slug", "keyboard-letter"),
        ("recipients", "The Honorable Secretary\nDepartment of Homeland Security"),
        ("cc", ""),
        ("summary", "Written without a mouse."),
        ("body", "We, the undersigned organizations,\n\nask you to stop.[^1]\n\n[^1]: A footnote."),
        ("issue_areas-surveillance", keys("Space")),
        ("deadline", deadline),
        ("public_signon", keys("Space")),
        ("review_required", None),
    ])
    submit(page, "letter-create")
    page.wait_for_url(f"{live_server.url}/letters/keyboard-letter")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Keyboard letter on facial recognition")
    letter = db.session.scalar(db.select(Letter).where(Letter.slug == "keyboard-letter"))
    assert letter.public_signon and letter.review_required and letter.deadline.isoformat() == "2026-12-31"
    assert [a.slug for a in letter.issue_areas] == ["surveillance"]
    assert "ask you to stop." in letter.body


def test_merge_compose_form_with_the_keyboard(live_server, organizer_page, db):
    page = organizer_page
    page.goto(f"{live_server.url}/merges/new")
    fill_with_keyboard(page, [
        ("name", "Keyboard invitation"),
        ("letter", type_ahead("Urge")),
        ("sender", None),
        ("reply_to", "replies@example.org"),
        ("subject", "{{ org.name }}: one more letter"),
        ("body", "Dear {{ contact.first_name | default('friends') }},\n\nsign here: {{ sign_on_url }}"),
        ("throttle_per_minute", None),
        ("segment", None),
        (f"signed-{SEED_LETTER_SLUG}", keys("Space")),  # checkboxes, not a ctrl-click list
        ("match", None),
        ("state", None),
        ("extra_filter", None),
        ("after_merge", None),
        ("contacts-0", keys("ArrowDown")),  # the radio group: arrows choose "all active contacts"
    ])
    assert focused(page)["id"] == "contacts-1" and focused(page)["checked"]
    submit(page, "merge-compose")
    page.wait_for_url(re.compile(r"/merges/\d+$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text("Keyboard invitation")
    merge = db.session.scalar(db.select(MailMerge).where(MailMerge.name == "Keyboard invitation"))
    assert merge.status == "draft" and merge.letter.slug == SEED_LETTER_SLUG
    assert merge.reply_to == "replies@example.org" and merge.subject_template == "{{ org.name }}: one more letter"
    assert merge.audience["contacts"] == "all" and SEED_LETTER_SLUG in str(merge.audience), merge.audience


def test_an_error_after_enter_takes_the_focus_to_a_summary_that_leads_to_the_field(live_server, organizer_page, db):
    page = organizer_page
    org = db.session.scalar(db.select(Organization).where(Organization.name == "Mijente"))
    page.goto(f"{live_server.url}/organizations/{org.id}/edit")
    fill_with_keyboard(page, [("name", None), ("acronym", None), ("org_type", None), ("scope", None),
                              ("city", None), ("state", "Massachusetts")])
    with page.expect_navigation():
        page.keyboard.press("Enter")
    # The page comes back with the focus on the summary at its top, not on the body above a message far below.
    summary = page.locator(".error-summary")
    expect(summary).to_be_focused()
    expect(summary).to_have_attribute("role", "alert")
    expect(summary).to_contain_text("Nothing was saved: correct the field marked below.")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "keyboard-organization-edit-error.png"), full_page=True)
    # Tab reaches the error's link; Enter on it puts the cursor in the field, which says it is invalid and why.
    page.keyboard.press("Tab")
    assert focused(page)["text"].startswith("State: Use a two-letter")
    page.keyboard.press("Enter")
    state = page.locator("#state")
    expect(state).to_be_focused()
    expect(state).to_have_attribute("aria-invalid", "true")
    expect(state).to_have_accessible_description(re.compile(r"Two letters, e\.g\. NY Use a two-letter US state code"))
    replace_text(page, "MA")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    expect(page.locator("body")).to_contain_text("Mijente saved.")
    db.session.expire_all()
    assert db.session.get(Organization, org.id).state == "MA"
