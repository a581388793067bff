"""Merge templates: fields, defaults, errors with lines and recipients, and injection attempts refused."""

import re

import pytest
from sqlalchemy import select

from crm.contacts.models import Contact
from crm.extensions import db
from crm.mailmerge import checking, compose, previews, queueing
from crm.mailmerge.errors import MergeError
from crm.mailmerge.templating import compile_templates
from tests.mailmerge.conftest import make_recipients, new_merge

INJECTIONS = [
    "{{ ''.__class__.__mro__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ config }}",
    "{{ config.SECRET_KEY }}",
    "{{ self }}",
    "{{ self.__init__.__globals__ }}",
    "{{ 'a' * 10**9 }}",
    "{{ 10 ** 10 ** 10 }}",
    "{{ contact.__class__ }}",
    "{{ contact._path }}",
    "{{ contact|attr('__class__') }}",
    "{{ contact['__class__'] }}",
    "{{ contact.items() }}",
    "{{ contact.update({'x': 1}) }}",
    "{{ lipsum.__globals__ }}",
    "{{ cycler.__init__.__globals__.os }}",
    "{{ namespace }}",
    "{{ range(10**9)|list }}",
    "{{ request }}",
    "{{ g }}",
    "{{ url_for }}",
    "{% for x in history %}{% for y in history %}{% endfor %}{% endfor %}",
    "{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}",
    "{% include 'base.html' %}",
    "{% import 'x' as y %}",
    "{{ '%s' % contact }}",
    "{{ '{0.__class__}'.format(contact) }}",
    "{{ contact.first_name|format }}",
    "{{ 'x'|center(1000000000) }}",
    "{{ ('a' ~ 'b') * 100000 }}",
    "{{ history|map(attribute='__class__')|list }}",
    "{{ contact.email.__len__ }}",
]


@pytest.mark.parametrize("payload", INJECTIONS)
def test_template_injection_is_refused_at_check_time(app, payload):
    make_recipients(2)
    try:
        merge = new_merge(body=f"Hello\n\n{payload}")
    except MergeError as exc:
        message = str(exc)
    else:
        result = checking.check_merge(merge)
        assert not result.ok, payload
        message = " ".join(str(p) for p in result.problems)
        with pytest.raises(MergeError):
            queueing.queue_merge(merge)
    assert message
    for leak in (
        "test-secret-key",
        "<class",
        "Flask",
        "<module",
        "<function",
        "built-in method",
        "TemplateReference",
        "SQLALCHEMY",
        "Traceback",
    ):
        assert leak not in message, (payload, message)


def test_syntax_error_names_the_line(app):
    with pytest.raises(MergeError) as caught:
        new_merge(body="Dear {{ contact.first_name | default('friends') }},\n\nline two\n{% if %}\n")
    assert "Body, line 4: syntax error" in str(caught.value)


def test_unknown_field_is_refused(app):
    with pytest.raises(MergeError) as caught:
        new_merge(body="Dear {{ contact.frist_name }}")
    assert "unknown field contact.frist_name" in str(caught.value)


def test_empty_field_blocks_with_the_recipients_affected_and_default_fixes_it(app):
    make_recipients(5)
    contact = db.session.scalar(select(Contact).where(Contact.email == "person2@example.net"))
    contact.first_name = ""
    db.session.commit()
    merge = new_merge(body="Dear {{ contact.first_name }},\n\nhello")
    result = checking.check_merge(merge)
    assert result.recipients == 5
    assert len(result.problems) == 1
    problem = result.problems[0]
    assert problem.line == 1 and problem.count == 1 and problem.recipients == ["person2@example.net"]
    assert "contact.first_name is empty" in str(problem)
    with pytest.raises(MergeError):
        queueing.queue_merge(merge)
    compose.update_merge(
        merge,
        {
            "name": "x",
            "subject": "Hi",
            "body": "Dear {{ contact.first_name | default('friends') }},",
            "audience": {"contacts": "primary"},
        },
    )
    assert checking.check_merge(merge).ok
    assert previews.preview(merge, contact.id).text.startswith("Dear friends,")


def test_every_field_renders(app):
    from datetime import date

    from crm.seed import SEED_LETTER_SLUG
    from tests.factories import LetterFactory

    LetterFactory(slug=SEED_LETTER_SLUG, title="Urge DHS to stop using Clearview AI facial recognition",
                  status="delivered", letter_date=date(2021, 4, 19))
    make_recipients(1, letter_slug=SEED_LETTER_SLUG)
    # The merge promotes a new letter that takes signatures; the delivered seed letter is the signers' history.
    LetterFactory(slug="next-letter", title="The next letter", status="collecting")
    body = (
        "{{ contact.first_name }} {{ contact.last_name }} {{ contact.full_name }} {{ contact.email }} "
        "{{ org.name }} {{ letter.title }} {{ letter.url }} {{ last_signed.title }} {{ last_signed.date }} "
        "{{ sign_on_url }} {{ unsubscribe_url }} {{ contact.title | default('friend') }} "
        "{{ org.acronym | default('') }} {{ letter.deadline | default('soon') }}\n"
        "{% for h in history %}- {{ h.title }} ({{ h.date }}, {{ h.role }})\n{% endfor %}"
    )
    merge = new_merge(
        body=body, letter="next-letter", audience={"filter": {"q": "person org"}, "contacts": "primary"}
    )
    result = checking.check_merge(merge)
    assert result.ok, [str(p) for p in result.problems]
    text = previews.preview(merge).text
    assert "First0 Last0 First0 Last0 person0@example.net Person Org 0" in text
    assert "/sign/next-letter/p/" in text
    assert "Clearview" in text and "friend" in text and "soon" in text


def test_sign_on_url_without_a_letter_is_refused(app):
    make_recipients(1)
    merge = new_merge(body="Sign: {{ sign_on_url }}")
    result = checking.check_merge(merge)
    assert not result.ok and "sign_on_url" in str(result.problems[0])


def test_size_limits():
    assert compile_templates("x", "y" * 60_000).problems
    assert compile_templates("x" * 2000, "y").problems


# Pieces of Markdown that exercise every rule the per-block cache must respect: constructs that join blocks across
# blank lines (lists, quotes, fences, indented code, link references, footnotes) and ones that do not.
_MARKDOWN_PIECES = [
    "Dear Ana,", "Dear  Ana (x)  ", "Hello \"q\" 's!", "Ünï Çode;", "42", "x  ", "Dear <b>", "x & y",
    "**Bold** first", "*em* first", "-not list", "1.5 million", "2)x", "```", "~~~", "``x``", "- ", "* * *", "-",
    "1.", "+x", "+ x", "3) y", "**", "--", "# Heading", "Title\n=====", "a | b\n--|--\n1 | 2", "see [ref] and [^1]",
    "[ref]: http://example.org", "[^1]: note", "inline ^[fn]", "visit https://example.org/x?y=1 now", "a@b.org",
    "<script>alert(1)</script>", "line one\nline two", "trailing  \nbreak", "___", "&amp; &copy;", "`code",
    "x\\\ny", "_em_ and *em", "[link](https://e.org)", "para\n- list", "para\n1. one", "> quote", "    code",
    "\tcode", "www.example.com", "x\n===", "\x0b", "\u00a0", "a\\", "In solidarity,\nThe team",
    "Ana Ruiz \n1 Main St\nSpringfield", "> a\nb", "- a\nb",
]


@pytest.mark.parametrize("breaks", [True, False], ids=["mail-breaks", "document"])
def test_markdown_blocks_render_exactly_like_the_whole_document(breaks):
    """render_markdown_blocks (per-block cache for merges) must never differ from render_markdown: with breaks,
    as mail is rendered (a single line break is a <br>), and without, as the Markdown filter renders documents."""
    import random

    from crm.common.markdown import render_markdown, render_markdown_blocks

    rng = random.Random(5)
    separators = ["\n\n", "\n\n\n", "\n \n", "\n\t\n", "\n", " ", "\n\n  ", "\n\x0b\n", " \n"]
    with_br = 0
    for _ in range(3000):
        document = "".join(
            rng.choice(_MARKDOWN_PIECES) + rng.choice(separators) for _ in range(rng.randint(1, 6))
        )
        whole = render_markdown(document, breaks=breaks)
        assert render_markdown_blocks(document, breaks=breaks) == whole, repr(document)
        with_br += "<br>" in whole
    # Soft breaks are what `breaks` changes: many documents must have them, or the comparison proves little.
    assert with_br > 1000 if breaks else with_br > 100


# Per-recipient blocks: the same punctuation with different words, which the shape cache renders once.
_SHAPES = [
    "Dear {w},", "**{w}** has stood with us before. Please sign, {w}!", "{w} {w} *{w}*", "# {w} {w}", "`{w}`",
    "{w}_{w}_{w} _{w}_", "***{w}*** {w}", "{w}\\*{w}", "{w} | {w}\n--|--\n{w} | {w}", "{w}  \n{w}", "{w}.{w}",
    "{w}@{w}", "&{w};", "<{w}>", "see [{w}]({w})", "a <{w}:{w}>", "{w}://{w}", "{w}:{w}@{w}", "{w}:{w}", "~~{w}~~",
    "({w}) \"{w}\" '{w}'", "{w}**{w}**{w}", "_{w}_{w}", "{w}\n===", "{w}\n---", "{w}\t{w}", "**{w} {w}**,",
    "*{w}* and **{w}**", "{w}\\\n{w}", "{w},\n{w} {w}", "{w} {w} \n{w}\n{w}, {w}",
]
_WORDS = ["Ana", "Zoë", "42", "1", "ǅ", "日本", "x2", "\ue000", "ß", "İ", "Ⅻ", "٣", "a\u0301", "www", "http", "amp",
          "copy", "nbsp", "Mijente", "ACLU", "e", "_", "Example", "org", "com", "mailto", "localhost"]


@pytest.mark.parametrize("breaks", [True, False], ids=["mail-breaks", "document"])
def test_per_recipient_blocks_render_exactly_like_the_whole_document(breaks):
    """The shape cache (a block rendered once per punctuation, its words put back) must never differ either."""
    import random

    from crm.common.markdown import render_markdown, render_markdown_blocks

    rng = random.Random(11)
    with_br = 0
    for _ in range(4000):
        blocks = [
            re.sub(r"\{w\}", lambda _m: rng.choice(_WORDS), rng.choice(_SHAPES)) for _ in range(rng.randint(1, 4))
        ]
        document = "\n\n".join(blocks)
        whole = render_markdown(document, breaks=breaks)
        assert render_markdown_blocks(document, breaks=breaks) == whole, repr(document)
        with_br += "<br>" in whole
    assert with_br > 500 if breaks else with_br > 50
