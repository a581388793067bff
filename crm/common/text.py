"""Text normalisation used for search, sorting and matching."""

import re
import unicodedata

from unidecode import unidecode

_SPACE = re.compile(r"\s+")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def fold(text: str | None) -> str:
    """Lower-case, accent-free, single-spaced form of text, for accent- and case-insensitive search."""
    if not text:
        return ""
    return _SPACE.sub(" ", unidecode(unicodedata.normalize("NFKC", text)).lower()).strip()


def sort_name(name: str) -> str:
    """The name an organization sorts under: case-folded, accents removed, a leading 'The' ignored."""
    folded = fold(name)
    if folded.startswith("the "):
        folded = folded[4:]
    return folded


def single_line(text: str | None) -> str:
    """Collapse CR, LF, NUL and other control characters so a value is safe in a header or one CSV line."""
    if not text:
        return ""
    return _SPACE.sub(" ", _CONTROL.sub("", text.replace("\x00", ""))).strip()


def slugify(text: str) -> str:
    """A URL slug from free text."""
    return re.sub(r"[^a-z0-9]+", "-", fold(text)).strip("-")[:80]


def plural(count: int, word: str, many: str | None = None) -> str:
    """A count with its noun: "1 name", "2 names" (`many` for irregular plurals: alias → aliases)."""
    return f"{count} {word if count == 1 else many or word + 's'}"


def shown_acronym(name: str, acronym: str | None) -> str:
    """The acronym to show after a name, or "" when the name already contains it ("… Foundation (EFF)")."""
    if not acronym or re.search(rf"(?<!\w){re.escape(acronym.strip())}(?!\w)", name or "", re.IGNORECASE):
        return ""
    return acronym.strip()
