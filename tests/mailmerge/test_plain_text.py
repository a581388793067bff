"""The plain-text part is readable text, not Markdown source (issue 13, point 10)."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crm.common.markdown import render_markdown
from crm.mailmerge import previews
from crm.mailmerge.plaintext import _convert, html_and_text, markdown_to_text
from tests.mailmerge.conftest import make_recipients, new_merge

CASES = [
    ("Dear **Mijente**,", "Dear Mijente,"),
    ("*Thank you*, __all__ of ~~you~~ you", "Thank you, all of ~~you~~ you"),
    ("Please [sign the letter](https://crm.example.org/sign/x/p/t).",
     "Please sign the letter (https://crm.example.org/sign/x/p/t)."),
    ("Or open https://crm.example.org/sign/x", "Or open https://crm.example.org/sign/x"),
    ("Write to <ana@example.org>", "Write to ana@example.org"),
    ("[https://a.example](https://a.example)", "https://a.example"),
    ("# Our letter\n\nText", "Our letter\n\nText"),
    ("- one\n- two\n\n1. first\n2. second", "- one\n- two\n\n1. first\n2. second"),
    ("3. third\n4. fourth", "3. third\n4. fourth"),
    ("> quoted **words**\n> more", "> quoted words\n> more"),
    ("Line one\nline two  \nline three", "Line one\nline two\nline three"),
    ("Use `code` here", "Use code here"),
    ("```\n**kept** as is\n```", "**kept** as is"),
    ("a\n\n---\n\nb", "a\n\n--------------------\n\nb"),
    ("| Org | State |\n|---|---|\n| Mijente | AZ |", "Org | State\nMijente | AZ"),
    ("Signed[^1]\n\n[^1]: In 2021.", "Signed[1]\n\n[1] In 2021."),
    ("Fish &amp; chips \\*not emphasis\\*", "Fish & chips *not emphasis*"),
    ("<b>raw html</b> stays text", "<b>raw html</b> stays text"),
]


@pytest.mark.parametrize(("source", "text"), CASES)
def test_markdown_becomes_readable_text(source, text):
    assert markdown_to_text(source) == text


@given(st.lists(st.sampled_from([
    "Dear **{name}**,", "Please [sign]({url}).", "Thanks,\n{name}", "See {url}", "*{name}* and _us_",
    "Plain words here.", "# Heading {name}", "A | B\n---|---\n1 | 2", "Ana's \"quote\" & co.",
]), min_size=1, max_size=8), st.sampled_from(["Mijente", "Just Futures Law", "O'Brien & Co", "José"]))
@settings(max_examples=60, deadline=None)
def test_block_by_block_conversion_equals_the_whole_document(blocks, name):
    source = "\n\n".join(b.format(name=name, url="https://crm.example.org/sign/x/p/abc") for b in blocks)
    assert markdown_to_text(source) == _convert(source)


@pytest.mark.parametrize("source", [source for source, _ in CASES] + ["\n\n".join(s for s, _ in CASES)])
def test_one_parse_gives_the_same_html_and_text_as_two(source):
    html, text = html_and_text(source)
    assert html == render_markdown(source, breaks=True)
    assert text == markdown_to_text(source)


def test_the_message_text_part_has_no_markdown_marks(app):
    make_recipients(1)
    merge = new_merge(body="Dear {{ contact.first_name }},\n\n**{{ org.name }}** signed. "
                           "[Read the letter](https://example.org/letter).")
    text = previews.preview(merge).text
    assert text.startswith("Dear First0,\n\nPerson Org 0 signed. Read the letter (https://example.org/letter).")
    assert "**" not in text and "](" not in text
    assert "<strong>Person Org 0</strong>" in previews.preview(merge).html
