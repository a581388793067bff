"""Stored XSS payloads, opened in a real browser: no script runs, no dialog opens, no on* attribute survives."""

import pytest

from crm.letters.writing import create_letter
from crm.organizations.creation import create_organization
from tests.conftest import browser_login
from tests.hostile.payloads import XSS

pytestmark = pytest.mark.browser


def test_payloads_never_execute(live_server, page, seeded, users, db):
    org_ids = []
    for n, payload in enumerate(XSS):
        org = create_organization({"name": f"{payload[:250]} #{n}", "notes": payload, "city": payload[:120]})
        org_ids.append(org.id)
    create_letter({"title": "XSS " + XSS[0], "slug": "xss-check", "summary": XSS[1], "recipients": XSS[2],
                   "body": "\n\n".join(XSS)}, user_id=None)
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    browser_login(page, live_server.url, users["organizer"].email)
    paths = ["/organizations?per_page=100&sort=-created", "/letters/xss-check", "/letters/xss-check/print",
             "/audit", "/"] + [f"/organizations/{i}" for i in org_ids[:8]]
    for path in paths:
        page.goto(live_server.url + path)
        page.wait_for_load_state("load")
        handlers = page.evaluate("""() => [...document.querySelectorAll('*')].flatMap(el =>
            [...el.attributes].filter(a => a.name.startsWith('on')).map(a => el.tagName + ' ' + a.name))""")
        assert handlers == [], (path, handlers)
        assert page.locator("main script").count() == 0, path
    assert dialogs == []
