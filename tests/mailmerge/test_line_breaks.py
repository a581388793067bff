"""Mail is written like mail: a single line break in a merge body ("In solidarity,⏎The coalition team", an address
block) is a line break in the HTML part too, as it is in the plain-text part — in what is sent, in the preview and in
a test message. Letters and other documents keep joining hard-wrapped lines into paragraphs."""

import email
import re
from email import policy

import pytest

from crm.common.markdown import render_markdown
from crm.mailmerge import previews, queueing
from crm.mailmerge.plaintext import html_and_text
from crm.mailmerge.worker import drain
from crm.signon import mails as signon_mails
from tests.conftest import login
from tests.factories import LetterFactory
from tests.mailmerge.conftest import make_recipients, new_merge, smtp_config

BODY = (
    "Dear {{ contact.first_name }},\n\n"
    "Please sign for **{{ org.name }}**.\n\n"
    "In solidarity,\nThe coalition team\n\n"
    "Coalition for Privacy\n1 Main Street\nSpringfield, IL"
)
SIGN_OFF_HTML = "<p>In solidarity,<br>\nThe coalition team</p>"
ADDRESS_HTML = "<p>Coalition for Privacy<br>\n1 Main Street<br>\nSpringfield, IL</p>"


@pytest.fixture
def app_config(sink):
    """Send to the sink."""
    return smtp_config(sink)


def _parts(raw: bytes | str) -> tuple[str, ...]:
    """The plain-text and HTML parts of a message (with the newlines of the source, not SMTP's CRLF)."""
    message = email.message_from_bytes(raw if isinstance(raw, bytes) else raw.encode(), policy=policy.default)
    return tuple(message.get_body((kind,)).get_content().replace("\r\n", "\n") for kind in ("plain", "html"))


def _body_of(html: str) -> str:
    """The HTML of the merge body, without the page wrapper and the footer (whose links differ in a test)."""
    return html.split("<body>", 1)[1].split('<hr><p style="font-size:small', 1)[0]


def test_a_sent_merge_keeps_single_line_breaks_in_its_html_part(app, sink):
    make_recipients(2)
    merge = new_merge(body=BODY)
    queueing.queue_merge(merge)
    assert drain().sent == 2
    text, html = _parts(sink.messages[0]["raw"])
    assert SIGN_OFF_HTML in html and ADDRESS_HTML in html
    assert "<strong>Person Org" in html
    # The plain-text part is as it was: it always kept the breaks.
    assert "In solidarity,\nThe coalition team\n\nCoalition for Privacy\n1 Main Street\nSpringfield, IL" in text


def test_the_preview_and_a_test_message_show_what_is_sent(app, sink, users, client):
    make_recipients(1)
    merge = new_merge(body=BODY)
    contact_id = previews.preview_contacts(merge, 1)[0][0]
    previewed = previews.preview(merge, contact_id)
    assert SIGN_OFF_HTML in previewed.html
    login(client, users["organizer"].email)
    page = client.get(f"/merges/{merge.id}/preview?contact_id={contact_id}").get_data(as_text=True)
    assert "In solidarity,&lt;br&gt;\nThe coalition team" in page  # in the iframe's srcdoc
    assert client.post(f"/merges/{merge.id}/test", data={"contact_id": str(contact_id)}).status_code == 303
    drain()
    queueing.queue_merge(merge)
    drain()
    (test_raw,) = [m["raw"] for m in sink.messages if m["to"] == [users["organizer"].email]]
    (sent_raw,) = [m["raw"] for m in sink.messages if m["to"] != [users["organizer"].email]]
    test_html, sent_html = _parts(test_raw)[1], _parts(sent_raw)[1]
    assert _body_of(test_html) == _body_of(sent_html) == _body_of(previewed.html)
    assert SIGN_OFF_HTML in _body_of(sent_html)


@pytest.mark.parametrize(
    ("source", "html"),
    [
        ("- one\n  more\n- two", "<ul>\n<li>one<br>\nmore</li>\n<li>two</li>\n</ul>\n"),
        ("1. one\n2. two", "<ol>\n<li>one</li>\n<li>two</li>\n</ol>\n"),
        ("> quoted\n> lines\n>\n> again", "<blockquote>\n<p>quoted<br>\nlines</p>\n<p>again</p>\n</blockquote>\n"),
        ("```\nkept\n  as is\n```", "<pre><code>kept\n  as is\n</code></pre>\n"),
        ("    indented\n    code", "<pre><code>indented\ncode\n</code></pre>\n"),
        ("hard  \nbreak\nsoft", "<p>hard<br>\nbreak<br>\nsoft</p>\n"),
        ("Intro\n- item", "<p>Intro</p>\n<ul>\n<li>item</li>\n</ul>\n"),
        ("<br> typed\nby hand", "<p>&lt;br&gt; typed<br>\nby hand</p>\n"),
    ],
)
def test_lists_quotes_and_code_render_right_with_breaks(source, html):
    rendered, _text = html_and_text(source)
    assert rendered == html


def test_letters_and_notes_keep_joining_hard_wrapped_lines(app, users, client):
    wrapped = (
        "The undersigned organizations have serious concerns about the federal\n"
        "government's use of facial recognition technology provided by private\n"
        "company Clearview AI.\n\nWe request that the Department stop."
    )
    flowing = (
        "<p>The undersigned organizations have serious concerns about the federal\n"
        "government's use of facial recognition technology provided by private\n"
        "company Clearview AI.</p>\n<p>We request that the Department stop.</p>\n"
    )
    assert render_markdown(wrapped) == flowing
    letter = LetterFactory(slug="wrapped", title="Wrapped", body=wrapped, status="collecting")
    login(client, users["organizer"].email)
    page = client.get(f"/letters/{letter.slug}").get_data(as_text=True)
    assert "about the federal\ngovernment's" in page.replace("&#39;", "'")
    assert not re.search(r"federal<br", page)


def test_sign_on_mails_keep_single_line_breaks_in_html_too(app):
    body = "Hello {{ contact.first_name }},\n\nThank you.\nThe coalition team"
    rendered = signon_mails.preview("thank-you", "Thanks", body)
    assert "<p>Thank you.<br>\nThe coalition team</p>" in rendered.html
    assert "Thank you.\nThe coalition team" in rendered.text
