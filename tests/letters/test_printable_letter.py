"""The printable letter in a sign-on letter's order (text and sign-off, cc, signatories, notes), and a letter without
signatures said in a sentence, not as a numbered signatory."""

import re
from datetime import date

import pytest

from crm.common.markdown import render_markdown, render_markdown_and_notes
from tests.factories import LetterFactory, OrganizationFactory, SignatureFactory

BODY = ("Dear Acting Director:\n\nWe urge ICE to end its contracts.[^1] And its trials.^[Inline note.]\n\n"
        "Sincerely,\n\n[^1]: See our April 2021 letter on Clearview AI.\n")


def positions(page: str, *needles: str) -> list[int]:
    """Where each text first occurs in the page (each must occur)."""
    found = [page.find(needle) for needle in needles]
    assert -1 not in found, dict(zip(needles, found, strict=True))
    return found


@pytest.fixture
def letter(db):
    """A dated letter with footnotes, a cc line and two signatories."""
    letter = LetterFactory(title="End ICE contracts", recipients="Acting Director\nICE", cc="Secretary of DHS",
                           body=BODY, letter_date=date(2021, 4, 19), status="collecting")
    for name in ("Fight for the Future", "American Civil Liberties Union"):
        SignatureFactory(letter=letter, organization=OrganizationFactory(name=name))
    return letter


def test_the_printable_letter_puts_cc_and_signatories_after_the_sign_off_and_the_notes_last(letter, as_role):
    page = as_role("viewer").get(f"/letters/{letter.slug}/print").get_data(as_text=True)
    # As published sign-on letters run (the Clearview seed letter among them): cc right after the text.
    order = positions(page, "Acting Director", "April 19, 2021", "Sincerely,", "cc:", "Secretary of DHS",
                      "<h2>Signatories</h2>", "American Civil Liberties Union", "Fight for the Future",
                      '<section class="footnotes">', "See our April 2021 letter", "Inline note.")
    assert order == sorted(order)
    # The note marks in the text still lead to their notes, and back.
    assert 'href="#fn1" id="fnref1"' in page and '<li id="fn1">' in page and 'href="#fnref1"' in page
    assert page.count('<section class="footnotes">') == 1


def test_the_letter_page_puts_the_cc_line_before_the_notes(letter, as_role):
    page = as_role("viewer").get(f"/letters/{letter.slug}").get_data(as_text=True)
    order = positions(page, "Sincerely,", "cc:", "Secretary of DHS", '<section class="footnotes">')
    assert order == sorted(order)


def test_a_letter_without_notes_or_cc_prints_its_signatories_after_its_text(db, as_role):
    letter = LetterFactory(title="Plain", body="We ask.\n\nSincerely,")
    SignatureFactory(letter=letter, organization=OrganizationFactory(name="Upturn"))
    page = as_role("viewer").get(f"/letters/{letter.slug}/print").get_data(as_text=True)
    order = positions(page, "Sincerely,", "<h2>Signatories</h2>", "<li>Upturn</li>")
    assert order == sorted(order)
    assert "footnotes" not in page and "cc:" not in page and "No signatures yet" not in page


def test_no_signatures_is_a_sentence_not_a_numbered_signatory(db, as_role):
    letter = LetterFactory(title="Nobody yet")
    client = as_role("organizer")
    page = client.get(f"/letters/{letter.slug}").get_data(as_text=True)
    assert re.search(r'<p class="text-body-secondary" id="no-signatures">No signatures yet.</p>', page)
    assert 'class="signatory-list"' not in page and not re.search(r"<li[^>]*>\s*No signatures yet", page)
    printable = client.get(f"/letters/{letter.slug}/print").get_data(as_text=True)
    assert '<p class="no-signatures">No signatures yet.</p>' in printable
    assert '<ul class="signatories">' not in printable and "<li>" not in printable
    # The downloads are pasted into letters and web pages: they stay empty rather than say so.
    for fmt in ("txt", "md", "html", "csv"):
        body = client.get(f"/letters/{letter.slug}/signatories.{fmt}").get_data(as_text=True)
        assert "No signatures" not in body, fmt


@pytest.mark.parametrize("source", [BODY, "No notes here.", "", "[^9]: A note nobody cites.\n", "Text^[only inline]"])
def test_text_and_notes_together_are_the_whole_rendering(source):
    text, notes = render_markdown_and_notes(source)
    assert text + notes == render_markdown(source)
    assert "footnotes" not in text
    assert (notes == "") == ("footnotes" not in render_markdown(source))
