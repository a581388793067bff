"""Markdown rendering with sanitising: user-written Markdown never yields live HTML or scripts."""

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


def _parser() -> MarkdownIt:
    """CommonMark with tables and footnotes; raw HTML in the source is escaped, not passed through."""
    preset: PresetType = "commonmark"
    # linkify: a bare address (a personal sign-on link pasted into a merge) becomes a link, as mail clients expect.
    return MarkdownIt(preset, {"html": False, "linkify": True, "typographer": False}).enable(["table", "linkify"]).use(
        footnote_plugin
    )


_MD = _parser()


def render_markdown(source: str | None) -> Markup:
    """Render Markdown to sanitised HTML, safe to insert into a page or an email."""
    html = _MD.render(source or "")
    clean = nh3.clean(
        html,
        tags=_ALLOWED_TAGS,
        attributes=_ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )
    return Markup(clean)  # noqa: S704 - sanitised by nh3 just above
