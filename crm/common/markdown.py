"""Markdown rendering with sanitising: user-written Markdown never yields live HTML or scripts."""

import re
from functools import lru_cache

import nh3
from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml
from markdown_it.utils import PresetType
from markupsafe import Markup
from mdit_py_plugins.footnote import footnote_plugin

_ALLOWED_TAGS = {
    "a", "p", "br", "hr", "em", "strong", "b", "i", "u", "s", "blockquote", "code", "pre", "ul", "ol", "li",
    "h1", "h2", "h3", "h4", "h5", "h6", "sup", "sub", "section", "table", "thead", "tbody", "tr", "th", "td",
}
_ALLOWED_ATTRIBUTES = {"a": {"href", "title", "id"}, "sup": {"id", "class"}, "li": {"id"},
                       "section": {"class"}, "ol": {"start"}, "th": {"align"}, "td": {"align"}}


def _parser() -> MarkdownIt:
    """CommonMark with tables and footnotes; raw HTML in the source is escaped, not passed through."""
    preset: PresetType = "commonmark"
    # linkify: a bare address (a personal sign-on link pasted into a merge) becomes a link, as mail clients expect.
    return MarkdownIt(preset, {"html": False, "linkify": True, "typographer": False}).enable(["table", "linkify"]).use(
        footnote_plugin
    )


_MD = _parser()
# One configured sanitiser, reused: building it costs more than cleaning a short message.
_CLEANER = nh3.Cleaner(
    tags=_ALLOWED_TAGS,
    attributes=_ALLOWED_ATTRIBUTES,
    url_schemes={"http", "https", "mailto"},
    link_rel="noopener noreferrer nofollow",
)


def render_markdown(source: str | None) -> Markup:
    """Render Markdown to sanitised HTML, safe to insert into a page or an email."""
    return Markup(_CLEANER.clean(_MD.render(source or "")))  # noqa: S704 - sanitised by nh3


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
# One line of words and punctuation that no Markdown rule (nor linkify: no `.`, `:`, `@` or `/`) acts on — the
# "Dear Ana," of a letter, different for every recipient — is a paragraph of its escaped text.
_PLAIN_LINE = re.compile(r"(?:[^\W_]|[ ,;'\"!?()])+")


def _plain_or_parsed(block: str) -> str:
    """The (unsanitised) HTML of one self-contained block."""
    if _PLAIN_LINE.fullmatch(block):
        return f"<p>{escapeHtml(block.rstrip(' '))}</p>\n"
    return _MD.render(block)


_block_html = lru_cache(maxsize=512)(_plain_or_parsed)


def render_markdown_blocks(source: str | None) -> Markup:
    """render_markdown(source), reusing the HTML of blocks already seen — for rendering one template for many
    recipients. Same output as render_markdown (tests/mailmerge/test_templates.py compares them)."""
    source = source or ""
    if _UNSPLITTABLE.search(source):
        return render_markdown(source)
    html = []
    for block in _BLANK.split(source.strip("\n")):
        html.append(_block_html(block) if len(block) <= _MAX_CACHED_BLOCK else _plain_or_parsed(block))
    return Markup(_CLEANER.clean("".join(html)))  # noqa: S704 - sanitised by nh3
