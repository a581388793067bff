"""A test send never acts on the real recipient (issue 13, point 2): its links lead to a page that says "this was a
test link" and change nothing; the real handlers reject them. Sent through a real SMTP server on loopback."""

import email
import re
from email import policy

import pytest
from sqlalchemy import func, select

from crm.auth.services import create_token
from crm.extensions import db
from crm.letters.models import Signature
from crm.mailmerge import links, previews, suppressions
from crm.mailmerge.errors import MergeError
from crm.mailmerge.models import Suppression
from crm.mailmerge.worker import drain
from tests.conftest import login
from tests.mailmerge.conftest import make_recipients, new_merge, smtp_config

BODY = "Dear {{ contact.first_name }},\n\n[Sign for {{ org.name }}]({{ sign_on_url }})\n\nOr: {{ sign_on_url }}\n\n" \
       "Not interested? {{ unsubscribe_url }}"


@pytest.fixture
def app_config(sink):
    return smtp_config(sink)


def _links(message) -> set[str]:
    """Every http link of a received message: both parts and the List-Unsubscribe header."""
    found = set()
    for kind in ("plain", "html"):
        found |= set(re.findall(r"https?://[^\s\"<>)]+", message.get_body((kind,)).get_content()))
    found |= set(re.findall(r"<(https?://[^>]+)>", message["List-Unsubscribe"]))
    return found


def _received(sink, to: str):
    """The last message the sink received for `to`."""
    raw = [m["raw"] for m in sink.messages if to in m["to"]][-1]
    return email.message_from_bytes(raw, policy=policy.default)


def test_a_test_message_links_act_on_nobody(app, sink, users, client):
    make_recipients(1, letter_slug=None)
    from crm.letters.models import Letter

    letter = Letter(slug="stop-it", title="Stop it", status="collecting")
    db.session.add(letter)
    db.session.commit()
    merge = new_merge(body=BODY, letter="stop-it")
    login(client, users["organizer"].email)
    contact_id = previews.preview_contacts(merge, 1)[0][0]
    response = client.post(f"/merges/{merge.id}/test", data={"contact_id": str(contact_id)})
    assert response.status_code == 303
    token = create_token(users["organizer"].email).secret
    api = client.post(f"/api/v1/merges/{merge.id}/test", headers={"Authorization": f"Bearer {token}"},
                      json={"email": "Someone.Else@Example.org", "contact_id": contact_id})
    assert api.status_code == 202, api.get_json()
    assert api.get_json()["email"] == "someone.else@example.org"
    assert api.get_json()["subject"].startswith("[TEST] ")
    assert drain().sent == 2

    for to in (users["organizer"].email, "someone.else@example.org"):
        message = _received(sink, to)
        assert message["Subject"].startswith("[TEST] ")
        assert message["To"] == to
        found = _links(message)
        assert found and all("/t/" in link for link in found), found
        for link in found:
            path = link.split("://", 1)[1].split("/", 1)[1]
            page = client.get("/" + path)
            assert page.status_code == 200 and "This was a test link" in page.get_data(as_text=True)
            assert client.post("/" + path).status_code == 200  # RFC 8058 one-click on the test link
            token = path.rsplit("/", 1)[-1]
            # The real handlers refuse a test token.
            assert client.get(f"/u/{token}").status_code == 400
            assert client.post(f"/u/{token}").status_code == 400
            assert "not valid" in client.get(f"/sign/stop-it/p/{token}").get_data(as_text=True)
            client.post(f"/sign/stop-it/p/{token}", data={"listed_name": "Person Org 0"})
    assert db.session.scalar(select(func.count()).select_from(Suppression)) == 0
    assert db.session.scalar(select(func.count()).select_from(Signature)) == 0


def test_real_links_still_work_and_test_links_are_a_distinct_kind(app):
    make_recipients(1)
    real = links.unsubscribe_url("person0@example.net", 1).rsplit("/", 1)[-1]
    test = links.test_link_url("unsubscribe", 1, "person0@example.net").rsplit("/", 1)[-1]
    assert suppressions.read_unsubscribe(real)["email"] == "person0@example.net"
    with pytest.raises(MergeError):
        suppressions.read_unsubscribe(test)


def test_api_test_send_refuses_bad_input_and_viewers(app, users, client):
    make_recipients(1)
    merge = new_merge()
    organizer = {"Authorization": f"Bearer {create_token(users['organizer'].email).secret}"}
    viewer = {"Authorization": f"Bearer {create_token(users['viewer'].email).secret}"}
    url = f"/api/v1/merges/{merge.id}/test"
    assert client.post(url, headers=viewer, json={}).status_code == 403
    bad = client.post(url, headers=organizer, json={"email": "not an address"})
    assert bad.status_code == 400 and bad.content_type == "application/problem+json"
    assert client.post(url, headers=organizer, json={"contact_id": 999999}).status_code == 400
    assert client.post(url, headers=organizer, json={"contact_id": "x"}).status_code in (400, 422)
    assert client.post("/api/v1/merges/999999/test", headers=organizer, json={}).status_code == 404
    spec = client.get("/api/v1/openapi.json").get_json()
    assert "post" in spec["paths"]["/api/v1/merges/{merge_id}/test"]
