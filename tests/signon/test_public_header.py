"""The public pages (sign-on, thanks, personal links, unsubscribe) say who is asking and do not point signers at the
staff login."""

import re

import pytest

from crm.config import from_environment
from crm.contacts.models import Contact
from crm.extensions import db
from crm.letters.links import personal_signon_url
from crm.letters.models import Letter
from crm.mailmerge.links import unsubscribe_token
from tests.conftest import login
from tests.factories import OrganizationFactory

COALITION = "Border Privacy Coalition"


@pytest.fixture
def letter(app):
    """A collecting letter with public sign-on."""
    row = Letter(slug="end-dragnets", title="End border dragnets", body="We ask you to **stop**.",
                 status="collecting", public_signon=True)
    db.session.add(row)
    db.session.commit()
    return row


def _public_pages(client, letter) -> dict[str, str]:
    """The public pages a signer or mail recipient reaches, by name: their HTML."""
    token = unsubscribe_token("someone@example.net", 1)
    upturn = OrganizationFactory(name="Upturn")
    ana = Contact(organization_id=upturn.id, first_name="Ana", last_name="Ruiz", email="ana@upturn.example")
    db.session.add(ana)
    db.session.commit()
    personal = personal_signon_url(letter, upturn, ana).removeprefix("http://localhost")
    return {
        "sign-on": client.get(f"/sign/{letter.slug}").text,
        "personal link": client.get(personal).text,
        "thanks": client.post(personal, data={"seen": "none", "action": "sign", "listed_name": "Upturn"}).text,
        "broken personal link": client.get(f"/sign/{letter.slug}/p/not-a-token").text,
        "unsubscribe": client.get(f"/u/{token}").text,
        "unsubscribed": client.post(f"/u/{token}").text,
        "test link": client.get("/t/not-a-token").text,
    }


def test_public_pages_name_the_coalition_not_the_staff_login(app, client, letter):
    app.config["CRM_COALITION_NAME"] = COALITION
    pages = _public_pages(client, letter)
    for name, html in pages.items():
        assert f'<span class="navbar-brand fw-semibold text-wrap" id="coalition-name">{COALITION}</span>' in html, name
        assert re.search(rf"<title>[^<]* · {COALITION}</title>", html), name
        assert 'href="/login"' not in html and ">Undersigned<" not in html, name
        assert html.count("<h1") == 1 and html.count("<header") == 1 and html.count("<main") == 1, name
        assert "<nav" not in html.split("<main")[0], f"{name}: no navigation landmark without links"
        assert "Back to the dashboard" not in html, name
    assert "Ask your partners to sign too" in pages["thanks"]
    assert f"Stop all mail from {COALITION} to <strong>someone@example.net</strong>?" in pages["unsubscribe"]
    assert f"someone@example.net will not receive mail from {COALITION} again." in pages["unsubscribed"]


@pytest.mark.parametrize(("sender", "shown"), [
    ("Border Privacy Coalition <info@bpc.example>", "Border Privacy Coalition"),
    ('"Coalition, Inc." <info@bpc.example>', "Coalition, Inc."),
    ("info@bpc.example", "Undersigned"),
])
def test_without_a_setting_the_name_comes_from_the_sender(app, client, letter, sender, shown):
    app.config.update(CRM_COALITION_NAME="  ", MAIL_DEFAULT_SENDER=sender)
    html = client.get(f"/sign/{letter.slug}").text
    assert f'id="coalition-name">{shown}</span>' in html


def test_staff_pages_keep_the_app_and_staff_find_their_way_back(app, client, users, letter):
    app.config["CRM_COALITION_NAME"] = COALITION
    login_page = client.get("/login").text
    assert ">Undersigned</a>" in login_page and COALITION not in login_page
    login(client, users["viewer"].email)
    assert COALITION not in client.get("/").text
    sign_page = client.get(f"/sign/{letter.slug}").text
    assert f'id="coalition-name">{COALITION}</span>' in sign_page
    assert '<a class="link-light small" href="/">Back to the dashboard</a>' in sign_page


def test_the_name_is_read_from_the_environment():
    assert from_environment({"CRM_COALITION_NAME": COALITION})["CRM_COALITION_NAME"] == COALITION
