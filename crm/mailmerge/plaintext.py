"""The plain-text part of a merge message: the Markdown body as a person reads it, not its source.

`**Mijente**` becomes `Mijente`, `[sign here](https://…)` becomes `sign here (https://…)`, a bare address stays
itself, lists keep their bullets and numbers, quotes their `>`. Converted from the same markdown-it parse as the
HTML part (crm.common.markdown), walking its syntax tree, so both parts say the same thing.
"""

from functools import lru_cache

from markdown_it.tree import SyntaxTreeNode
from markupsafe import Markup

from crm.common.markdown import (
    _BLANK,
    _CLEANER,
    _MAIL_MD,
    _MAX_CACHED_BLOCK,
    _PLACEHOLDER,
    _PUA_SIZE,
    _PUA_START,
    _UNSPLITTABLE,
    _WORD,
    _WORD_SENSITIVE,
    render_markdown_blocks,
)

_RULE = "-" * 20


def markdown_to_text(source: str | None) -> str:
    """Readable plain text of a Markdown document. A document made of self-contained blocks is converted block by
    block with a cache (a merge renders the same paragraphs for thousands of recipients), as the HTML part is."""
    source = source or ""
    if _UNSPLITTABLE.search(source):
        return _convert(source)
    parts = []
    for block in _BLANK.split(source.strip("\n")):
        text = _cached(block) if len(block) <= _MAX_CACHED_BLOCK else _convert(block)
        if text:
            parts.append(text)
    return "\n\n".join(parts)


def html_and_text(source: str | None) -> tuple[Markup, str]:
    """The sanitised HTML (exactly render_markdown's with breaks: a single line break is a <br> in mail, as it is
    a line break in the text) and the plain text of a mail body, parsing it once when it cannot be taken block by
    block (lists, quotes, footnotes…), so the text part costs no second parse."""
    source = source or ""
    if not _UNSPLITTABLE.search(source):
        return render_markdown_blocks(source, breaks=True), markdown_to_text(source)
    env: dict = {}
    tokens = _MAIL_MD.parse(source, env)
    text = _blocks(SyntaxTreeNode(tokens).children, tight=False)
    html = Markup(_CLEANER.clean(_MAIL_MD.renderer.render(tokens, _MAIL_MD.options, env)))  # noqa: S704 - sanitised
    return html, text


def _convert(source: str) -> str:
    """Convert a whole document."""
    root = SyntaxTreeNode(_MAIL_MD.parse(source))
    return _blocks(root.children, tight=False)


def _block_text(block: str) -> str:
    """The text of one self-contained block, through its shape when its words cannot matter — the same reasoning
    as crm.common.markdown._block_html: a block that differs per recipient ("**Mijente** signed …") is converted
    once per shape, with each recipient's words put back."""
    if _WORD_SENSITIVE.search(block) is None:
        words: list[str] = []

        def placeholder(match) -> str:
            words.append(match.group())
            return chr(_PUA_START + len(words) - 1)

        shape = _WORD.sub(placeholder, block)
        if len(words) <= _PUA_SIZE:
            return _PLACEHOLDER.sub(lambda m: words[ord(m.group()) - _PUA_START], _shape_text(shape))
    return _convert(block)


_shape_text = lru_cache(maxsize=512)(_convert)
_cached = lru_cache(maxsize=512)(_block_text)


def _blocks(children, tight: bool) -> str:
    """Block nodes one after another: a blank line between them (one newline inside a tight list item)."""
    texts = [text for text in (_block(child) for child in children) if text]
    return ("\n" if tight else "\n\n").join(texts)


def _indent(text: str, first: str, rest: str) -> str:
    """Prefix the first line with `first` and the others with `rest` (a list marker and its hanging indent)."""
    lines = text.split("\n")
    return "\n".join([first + lines[0], *[(rest + line) if line else line for line in lines[1:]]])


def _block(node) -> str:
    """One block node as text."""
    kind = node.type
    if kind in ("paragraph", "heading"):
        return _inline(node.children[0]) if node.children else ""
    if kind == "bullet_list" or kind == "ordered_list":
        tight = all(
            paragraph.hidden for item in node.children for paragraph in item.children if paragraph.type == "paragraph"
        )
        number = int(node.attrs.get("start", 1)) if kind == "ordered_list" else None
        items = []
        for offset, item in enumerate(node.children):
            marker = f"{number + offset}. " if number is not None else "- "
            items.append(_indent(_blocks(item.children, tight), marker, " " * len(marker)))
        return ("\n" if tight else "\n\n").join(items)
    if kind == "blockquote":
        return "\n".join(f"> {line}".rstrip() for line in _blocks(node.children, False).split("\n"))
    if kind in ("fence", "code_block", "html_block"):
        return node.content.rstrip("\n")
    if kind == "hr":
        return _RULE
    if kind == "table":
        rows = []
        for section in node.children:
            for row in section.children:
                rows.append(" | ".join(_inline(cell.children[0]) if cell.children else "" for cell in row.children))
        return "\n".join(rows)
    if kind == "footnote_block":
        notes = []
        for note in node.children:
            number = note.meta.get("id", 0) + 1
            notes.append(_indent(_blocks(note.children, True), f"[{number}] ", "    "))
        return "\n".join(notes)
    if node.children:
        return _blocks(node.children, False)
    return node.content or ""


def _inline(node) -> str:
    """The text of an inline node and its children."""
    out = []
    for child in node.children or []:
        kind = child.type
        if kind == "text" or kind == "code_inline" or kind == "html_inline":
            out.append(child.content)
        elif kind in ("softbreak", "hardbreak"):
            out.append("\n")
        elif kind == "link":
            out.append(_link(_inline(child), str(child.attrs.get("href", ""))))
        elif kind == "image":
            out.append(_link(_inline(child) or str(child.attrs.get("alt", "")), str(child.attrs.get("src", ""))))
        elif kind == "footnote_ref":
            out.append(f"[{child.meta.get('id', 0) + 1}]")
        elif kind == "footnote_anchor":
            continue
        else:  # strong, em, s: their words without the marks
            out.append(_inline(child))
    return "".join(out)


def _link(text: str, href: str) -> str:
    """'text (url)', or the address alone when the text is the address (a bare or autolinked URL, an email)."""
    if not href:
        return text
    bare = href.removeprefix("mailto:")
    if not text or text in (href, bare) or f"http://{text}" == href or f"https://{text}" == href:
        return text or bare
    return f"{text} ({href})"
