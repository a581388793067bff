"""Reading a pasted signatory block (or a whole published letter): its limits, its lines, and why a line is skipped.

Lines are classified by what they look like before matching: headings, blank lines, footnotes, paragraphs of the
letter, addresses, dates, salutations, "Sincerely,", the cc block and individual signers are skipped; bullets and
numbering are stripped; a paragraph of names separated by commas or semicolons is split into names (keeping the
commas of "…, Inc." and the like); "Jane Doe, Director, Example Org" signs for Example Org. When the text has a
signatory heading ("Signatories:", "Sincerely,", "Signed,"), everything before the first one is the letter itself;
later headings ("Individuals") are hints, not switches.

The block is bounded before any pattern runs (MAX_TEXT_CHARS, MAX_LINES, MAX_LINE_CHARS: BlockTooLarge), a line
longer than LONG_LINE only goes through linear splitting, and every search pattern has bounded repetitions."""

import re

from crm.letters.signatory_names import (
    BULLET,
    CITY_STATE,
    HONORIFIC,
    LONG_LINE,
    PERSON_WITH_TITLE,
    TITLE_LINE,
    known_exactly,
    looks_like_inline_list,
    title_split,
    words_capitalised,
)
from crm.organizations.matching import MatchIndex

# Limits checked before any pattern runs: the whole block, its lines, and each line.
MAX_TEXT_CHARS = 500_000
MAX_LINES = 20_000
MAX_LINE_CHARS = 20_000

_SIGN_HEADING = re.compile(
    r"^(signatories|signatures|signed|signed by|sincerely|respectfully|respectfully submitted|in solidarity|"
    r"best regards|regards|thank you|(the )?undersigned( organizations)?|organizational (signatories|signers|"
    r"endorsements)|(signing |endorsing )?organizations|co-?signers|co-?signatories|endorsed by|"
    r"national organizations|state and local organizations|state organizations|local organizations|"
    r"state,? local,? and regional organizations|lead organizations|supporting organizations)"
    r"\b[^.]{0,40}[:,]?$",
    re.IGNORECASE,
)
_INDIVIDUAL_HEADING = re.compile(
    r"^(individual|individuals|individual (signatories|signers|endorsements))\b.*[:]?$", re.IGNORECASE
)
_CC_HEADING = re.compile(r"^(cc|c\.c\.|copy to|copies to)\s*:?\s*(.*)$", re.IGNORECASE)
_CLOSING = re.compile(
    r"^(sincerely|respectfully|regards|best|thank you|thanks|yours truly|in solidarity)\b.*,?$", re.IGNORECASE
)
_FOOTNOTE = re.compile(r"^\s*(?:[¹²³⁴⁵⁶⁷⁸⁹⁰]+|\[\d+\]|\^\d+|\d+\s*[:.]\s+\D.{60,}|\*{1,3}\s*\S.{60,}|†)")
_ZIP = re.compile(r"\b\d{5}(?:-\d{4})?\s*$")

# A street address: a number, at most six words, then a street word. Every repetition is bounded, so the
# pattern is linear in the line's length (the old `\d+[\w-]*\s+.*\b(...)` took 48 s on 64,000 characters).
_STREET = re.compile(
    r"^\s{0,10}(?:\d{1,6}[a-z-]{0,4}\s{1,5}(?:\S{1,40}\s{1,5}){0,6}?(?:st|street|ave|avenue|blvd|boulevard|"
    r"road|rd|suite|ste|floor|fl|drive|dr|way|lane|ln|place|pl|plaza|court|ct|parkway|pkwy|nw|ne|sw|se)\b|"
    r"p\.?\s?o\.?\s{1,5}box\b|suite\s{1,5}\d|room\s{1,5}\d)",
    re.IGNORECASE,
)
_DATE = re.compile(
    r"^(?:(?:mon|tues|wednes|thurs|fri|satur|sun)day,?\s+)?(?:jan|feb|mar|apr|may|jun|jul|aug|sep|"
    r"oct|nov|dec)[a-z]*\.?\s+\d{1,2},?\s+\d{4}$|^\d{1,2}/\d{1,2}/\d{2,4}$|^\d{4}-\d{2}-\d{2}$",
    re.IGNORECASE,
)
_SALUTATION = re.compile(
    r"^(dear|to|re|subject|from|attn|attention)\b.*[:,]$|^(dear|re:|subject:)", re.IGNORECASE
)
_URL = re.compile(r"^(https?://|www\.)\S+$|^\S+@\S+\.\S+$", re.IGNORECASE)


class BlockTooLarge(ValueError):
    """The pasted block is over the size limits; nothing was read."""


def check_block(text: str) -> list[str]:
    """The block's lines, or BlockTooLarge naming the limit (checked before any pattern runs)."""
    if len(text) > MAX_TEXT_CHARS:
        raise BlockTooLarge(
            f"The block is {len(text):,} characters long; at most {MAX_TEXT_CHARS:,} can be imported at once. "
            "Split it into parts."
        )
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if len(lines) > MAX_LINES:
        raise BlockTooLarge(f"The block has {len(lines):,} lines; at most {MAX_LINES:,} can be imported at once.")
    longest = max(range(len(lines)), key=lambda i: len(lines[i]))
    if len(lines[longest]) > MAX_LINE_CHARS:
        raise BlockTooLarge(
            f"Line {longest + 1} is {len(lines[longest]):,} characters long; a line can have at most "
            f"{MAX_LINE_CHARS:,}."
        )
    return lines


def _is_paragraph(text: str) -> bool:
    """A line of running prose rather than a name."""
    words = text.split()
    if len(text) > 150 or len(words) > 16:
        return True
    if re.search(r"[.!?;]\s+[A-Za-z]", text) and len(words) > 8:
        return True
    if text.endswith((".", ";", "!", "?")) and len(words) >= 7 and not text.endswith(("Inc.", "P.C.", "Co.")):
        return True
    return bool(re.search(r"[“”\"]", text) and len(words) > 8)


# Words that say a line names an organization rather than a person.
_ORG_WORDS = frozenset(
    (
        "center", "centre", "coalition", "project", "network", "alliance", "union", "foundation", "institute",
        "association", "fund", "committee", "council", "league", "society", "action", "law", "justice", "rights",
        "campaign", "party", "guild", "church", "inc", "llc", "organization", "organisation", "collective",
        "movement", "initiative", "lab", "media", "press", "watch", "defense", "defence", "group", "partnership",
        "services", "clinic", "advocates", "voices", "program", "federation", "conference", "caucus", "club",
        "agency", "university", "college", "school", "library", "congregation", "ministries", "ministry",
        "synagogue", "mosque", "temple", "workers", "immigrant", "immigrants", "coalition", "solidarity", "legal",
        "aid", "resource", "resources", "assembly", "forum", "trust", "office", "commission", "board",
        "cooperative", "co-op", "consortium", "associates", "community", "communities", "collaborative",
        "everyone", "together", "now", "freedom", "liberty", "democracy", "privacy",
    )
)


def looks_like_person(text: str) -> bool:
    """A person's name: two to four capitalised words and none of the words organizations are named with."""
    words = text.replace(",", " ").split()
    if not 2 <= len(words) <= 4 or any(w.lower().strip(".") in _ORG_WORDS for w in words):
        return False
    return all(w[:1].isupper() for w in words) and not any(ch.isdigit() for ch in text)


def looks_like_organization(text: str) -> bool:
    """A line with a word organizations are named with, written as a name (mostly capitalised words)."""
    words = [w.lower().strip(".,'’()") for w in text.split()]
    if any(w.endswith((".org", ".net")) for w in words):
        return True
    return any(w in _ORG_WORDS for w in words) and words_capitalised(text) >= 0.6 and len(words) <= 14


def classify(text: str) -> str | None:
    """Why a line inside the signatory section is skipped (None: it names an organization; "inline list": a
    paragraph of names)."""
    line = text.strip()
    if not line:
        return "blank"
    if _FOOTNOTE.match(line):  # anchored, linear
        return "footnote"
    body = BULLET.sub("", line).strip()
    if len(body) > LONG_LINE:
        # Only linear work on a long line: it is a paragraph of names or prose.
        return "inline list" if looks_like_inline_list(body) else "paragraph"
    if not body or not re.search(r"[A-Za-z]", body):
        return "no name"
    if _URL.match(body) and "@" in body:
        return "address"
    if _URL.match(body) and not re.match(r"(?i)^(https?://)?(www\.)?[\w-]+\.(org|net|com|us)/?$", body):
        return "address"
    if body.endswith(":") or (body.startswith("#") and not body.startswith("#\u200b")) or _SECTION.fullmatch(body):
        return "heading"
    if _CLOSING.match(body) and len(body.split()) <= 4:
        return "closing"
    if _DATE.match(body):
        return "date"
    if _SALUTATION.match(body):
        return "salutation"
    if _ZIP.search(body) or _STREET.match(body) or CITY_STATE.match(body):
        return "address"
    if PERSON_WITH_TITLE.match(body):
        # "Jane Doe, Executive Director, Example Org" signs for the organization; "Jane Doe, Director" alone
        # is a person.
        return None if title_split(body) else "individual signer"
    if HONORIFIC.match(body):  # "The Honorable Nancy Pelosi, Speaker, U.S. House …" is an addressee
        return "individual signer"
    if looks_like_inline_list(body):
        return "inline list"
    if _is_paragraph(body):
        return "paragraph"
    if TITLE_LINE.match(body) or HONORIFIC.match(body):
        return "individual signer"
    if re.fullmatch(r"page \d+( of \d+)?|-+|=+|_+|\*+", body, re.IGNORECASE):
        return "separator"
    return None


# A list's section titles: "NATIONAL", "State and Local", "Faith Organizations", "Companies".
_SECTION = re.compile(
    r"(?i)(?:national|state|local|regional|international|statewide|state and local|state & local|"
    r"state/local|national and state|faith|faith-based|labor|business(?:es)?|companies|academic|tribal)"
    r"(?: organizations| groups| signers| signatories| partners| endorsers)?"
)


def _is_heading(line: str) -> bool:
    """A signatory, individuals or cc heading."""
    return bool(_SIGN_HEADING.match(line) or (_INDIVIDUAL_HEADING.match(line) and len(line.split()) <= 5))


def split_lines(text: str, index: MatchIndex | None = None) -> list[tuple[int, str, str | None]]:
    """Each line with its number and the reason it is skipped (None for candidate lines).

    Headings are hints, not switches: after "Individuals" a line that looks like an organization is still one,
    and tab labels copied from a web page ("Organizations", "Individuals" one after the other) change
    nothing."""
    lines = check_block(text)
    short = [line.strip() if len(line) <= LONG_LINE else "" for line in lines]
    first_heading = next((i for i, line in enumerate(short) if _SIGN_HEADING.match(line)), None)
    result: list[tuple[int, str, str | None]] = []
    mode = "letter" if first_heading is not None else "signatories"
    previous = ""  # the last non-blank line
    for position, raw in enumerate(lines):
        line = short[position]
        after_heading = _is_heading(previous)
        before = previous  # a title line just above: this line is that person's affiliation
        if raw.strip():
            previous = line
        if position == first_heading:
            mode = "signatories"
            result.append((position + 1, raw, "heading"))
            continue
        if mode == "letter":
            result.append((position + 1, raw, "letter text"))
            continue
        if _SIGN_HEADING.match(line) and not _CLOSING.match(line):
            mode = "signatories"
            result.append((position + 1, raw, "heading"))
            continue
        if _SIGN_HEADING.match(line):
            result.append((position + 1, raw, "closing"))
            continue
        if _INDIVIDUAL_HEADING.match(line) and len(line.split()) <= 5:
            # Right after another heading it is a tab label of the page the block was copied from.
            if not after_heading:
                mode = "individuals"
            result.append((position + 1, raw, "heading"))
            continue
        cc = _CC_HEADING.match(line)
        if cc and (
            line.lower().startswith(("cc:", "cc ", "c.c.", "copy to", "copies to")) or line.lower() == "cc"
        ):
            mode = "cc"
            result.append((position + 1, raw, "cc block"))
            continue
        if mode == "cc":
            result.append((position + 1, raw, "cc block"))
            continue
        reason = classify(raw)
        # Under "Individuals" people sign for themselves (an organization after a title is for identification);
        # a line that looks like an organization's name still is one.
        if (
            mode == "individuals"
            and reason is None
            and (PERSON_WITH_TITLE.match(line) or not looks_like_organization(line))
            and not (index is not None and known_exactly(index, line) and not TITLE_LINE.match(before))
        ):
            reason = "individual signer"
        if reason is None and looks_like_person(line) and _next_is_title(short, position):
            reason = "individual signer"  # "Jane Doe" above "Executive Director" and the organization
        result.append((position + 1, raw, reason))
    return result


def _next_is_title(lines: list[str], index: int) -> bool:
    """True when the next non-blank line is a job title ("Executive Director")."""
    for line in lines[index + 1 : index + 3]:
        if line:
            return bool(TITLE_LINE.match(line))
    return False
