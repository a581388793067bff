"""Markdown rendering with sanitising: user-written Markdown never yields live HTML or scripts."""

import re
from functools import lru_cache

import nh3
from markdown_it import MarkdownIt
from markdown_it.utils import PresetType
from markupsafe import Markup
from mdit_py_plugins.footnote import footnote_plugin

_ALLOWED_TAGS = {
    "a", "p", "br", "hr", "em", "strong", "b", "i", "u", "s", "blockquote", "code", "pre", "ul", "ol", "li",
    "h1", "h2", "h3", "h4", "h5", "h6", "sup", "sub", "section", "table", "thead", "tbody", "tr", "th", "td",
}
_ALLOWED_ATTRIBUTES = {"a": {"href", "title", "id"}, "sup": {"id", "class"}, "li": {"id"},
                       "section": {"class"}, "ol": {"start"}, "th": {"align"}, "td": {"align"}}


def _parser(breaks: bool) -> MarkdownIt:
    """CommonMark with tables and footnotes; raw HTML in the source is escaped, not passed through."""
    preset: PresetType = "commonmark"
    # linkify: a bare address (a personal sign-on link pasted into a merge) becomes a link, as mail clients expect.
    options = {"html": False, "linkify": True, "typographer": False, "breaks": breaks}
    return MarkdownIt(preset, options).enable(["table", "linkify"]).use(footnote_plugin)


# Documents (letters, notes) are often pasted hard-wrapped at ~72 columns: a single line break joins the paragraph.
# Mail is written line by line ("In solidarity,⏎The coalition team"): a single line break is a <br>, as the
# plain-text part keeps it. `breaks` changes only how a soft break is rendered, never the parse, so both parsers
# produce the same tokens (crm.mailmerge.plaintext walks them for the plain-text part).
_MD = _parser(breaks=False)
_MAIL_MD = _parser(breaks=True)
_parsers = {False: _MD, True: _MAIL_MD}
# One configured sanitiser, reused: building it costs more than cleaning a short message.
_CLEANER = nh3.Cleaner(
    tags=_ALLOWED_TAGS,
    attributes=_ALLOWED_ATTRIBUTES,
    url_schemes={"http", "https", "mailto"},
    link_rel="noopener noreferrer nofollow",
)


def render_markdown(source: str | None, *, breaks: bool = False) -> Markup:
    """Render Markdown to sanitised HTML, safe to insert into a page or an email; `breaks`: a single line break is
    a line break (<br>), as in mail, instead of joining the paragraph, as in a document."""
    return Markup(_CLEANER.clean(_parsers[breaks].render(source or "")))  # noqa: S704 - sanitised by nh3


def render_markdown_and_notes(source: str | None) -> tuple[Markup, Markup]:
    """render_markdown(source) cut in two: the text, and its footnotes (empty when it has none), for a page that
    puts something between them (a printed letter's signatories come before its notes)."""
    env: dict = {}
    tokens = _MD.parse(source or "", env)
    cut = next((i for i, token in enumerate(tokens) if token.type == "footnote_block_open"), len(tokens))
    # One env for both halves: the footnote numbers and anchors of the text and of the notes must agree.
    text, notes = (_MD.renderer.render(part, _MD.options, env) if part else "" for part in (tokens[:cut], tokens[cut:]))
    return Markup(_CLEANER.clean(text)), Markup(_CLEANER.clean(notes))  # noqa: S704 - sanitised by nh3


# --- many similar documents (mail merges)
# A merge renders the same body for thousands of recipients; most of its paragraphs are identical for all of them
# ("Thank you," …), only a few carry a field. When a document is made only of constructs that cannot reach across a
# blank line, its HTML is exactly the concatenation of its blocks' HTML, so each block is rendered once and reused.
# Anything that can span blocks sends the document through render_markdown whole:
# - indented lines (code blocks, list continuations), list items, block quotes and fences, whose blocks join
#   across blank lines;
# - a line starting with `[` (a link reference or footnote definition, used anywhere in the document) and
#   inline footnotes `^[…]` (numbered across the document);
# - CR and NUL, which the parser normalises before splitting.
_BLANK = re.compile(r"\n(?:[ \t]*\n)+")
_UNSPLITTABLE = re.compile(r"(?m)^(?:[ \t]|[-*+](?:[ \t]|$)|\d{1,9}[.)](?:[ \t]|$)|[>\[]|```|~~~)|\^\[|[\r\x00]")
_MAX_CACHED_BLOCK = 4_000


def _parsed(block: str, breaks: bool) -> str:
    """The sanitised HTML of one self-contained block."""
    return _CLEANER.clean(_parsers[breaks].render(block))


# A block that differs per recipient ("**Mijente** has stood with us …") differs in its words, not in its
# punctuation. A run of letters and digits is inert to every rule this parser applies — emphasis sees a letter,
# not its value; escaping leaves it unchanged; the sanitiser keeps text — except where it can take part in a link
# (linkify's `example.org`, `a@b`, `x:y`; an autolink `<…>`; a link destination `](…)`, which is percent-encoded),
# an entity (`&copy;`), or a list number at a line's start (excluded above). A block without those is rendered
# once per *shape* — its words replaced by placeholder characters from the Private Use Area, which the parser
# classes with letters — and each recipient's words are put back into that HTML.
_WORD = re.compile(r"[^\W_]+")
_WORD_SENSITIVE = re.compile(r"[.:@](?=\S)|[&<]|\]\(|[\ue000-\uf8ff]")
_PLACEHOLDER = re.compile(r"[\ue000-\uf8ff]")
_PUA_START, _PUA_SIZE = 0xE000, 0xF900 - 0xE000


def _block_html(block: str, breaks: bool) -> str:
    """The sanitised HTML of one self-contained block, through its shape when its words cannot matter."""
    if _WORD_SENSITIVE.search(block) is None:
        words: list[str] = []

        def placeholder(match: re.Match) -> str:
            words.append(match.group())
            return chr(_PUA_START + len(words) - 1)

        shape = _WORD.sub(placeholder, block)
        if len(words) <= _PUA_SIZE:
            return _PLACEHOLDER.sub(lambda m: words[ord(m.group()) - _PUA_START], _shape_html(shape, breaks))
    return _parsed(block, breaks)


_shape_html = lru_cache(maxsize=512)(_parsed)
_cached_block_html = lru_cache(maxsize=512)(_block_html)


def render_markdown_blocks(source: str | None, *, breaks: bool = False) -> Markup:
    """render_markdown(source, breaks=breaks), reusing the HTML of blocks already seen — for rendering one template
    for many recipients. Same output as render_markdown (tests/mailmerge/test_templates.py compares them)."""
    source = source or ""
    if _UNSPLITTABLE.search(source):
        return render_markdown(source, breaks=breaks)
    html = []
    for block in _BLANK.split(source.strip("\n")):
        html.append(_cached_block_html(block, breaks) if len(block) <= _MAX_CACHED_BLOCK else _parsed(block, breaks))
    return Markup("".join(html))  # noqa: S704 - every block sanitised by nh3
