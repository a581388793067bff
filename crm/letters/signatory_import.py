"""Signatory import: a pasted signatory block (or a whole published letter) → one candidate per name, matched.

Lines are classified by what they look like before matching: headings, blank lines, footnotes, paragraphs of the
letter, addresses, dates, salutations, "Sincerely,", the cc block and individual signers are skipped; bullets and
numbering are stripped; a paragraph of names separated by commas or semicolons is split into names (keeping the
commas of "…, Inc." and the like); "Jane Doe, Director, Example Org" signs for Example Org. When the text has a
signatory heading ("Signatories:", "Sincerely,", "Signed,"), everything before the first one is the letter itself;
later headings ("Individuals") are hints, not switches.

The block is bounded before any pattern runs (MAX_TEXT_CHARS, MAX_LINES, MAX_LINE_CHARS: BlockTooLarge), a line
longer than LONG_LINE only goes through linear splitting, and every search pattern has bounded repetitions."""

import csv
import io
import re
from dataclasses import dataclass, field

from sqlalchemy import select

from crm.audit.services import record
from crm.common.text import single_line
from crm.common.types import utcnow
from crm.extensions import db
from crm.letters.models import Letter, Signature
from crm.organizations.creation import add_named_organization
from crm.organizations.editing import add_alias
from crm.organizations.matching import MatchIndex
from crm.organizations.models import Organization
from crm.organizations.names import PLACE_WORDS, normalize_org_name

REPORT_COLUMNS = ("line", "text", "action", "organization", "confidence", "candidates", "reason")
ACTIONS = ("matched", "new", "review", "skipped")
# Limits checked before any pattern runs: the whole block, its lines, and each line.
MAX_TEXT_CHARS = 500_000
MAX_LINES = 20_000
MAX_LINE_CHARS = 20_000
# A longer line is prose or a paragraph of names separated by commas; only linear splitting runs on it, never
# the line patterns below (some of which would be quadratic on long input).
LONG_LINE = 300

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
_BULLET = re.compile(r"^\s*(?:[-*•·▪◦●‣–—+]+|\(?\d{1,4}[.)]|\(?[a-z][.)]|#\d+)\s+", re.IGNORECASE)
_FOOTNOTE = re.compile(r"^\s*(?:[¹²³⁴⁵⁶⁷⁸⁹⁰]+|\[\d+\]|\^\d+|\d+\s*[:.]\s+\D.{60,}|\*{1,3}\s*\S.{60,}|†)")
_SUPERSCRIPT_TAIL = re.compile(r"[¹²³⁴⁵⁶⁷⁸⁹⁰*†‡]+$")
_ZIP = re.compile(r"\b\d{5}(?:-\d{4})?\s*$")
# A street address: a number, at most six words, then a street word. Every repetition is bounded, so the
# pattern is linear in the line's length (the old `\d+[\w-]*\s+.*\b(...)` took 48 s on 64,000 characters).
_STREET = re.compile(
    r"^\s{0,10}(?:\d{1,6}[a-z-]{0,4}\s{1,5}(?:\S{1,40}\s{1,5}){0,6}?(?:st|street|ave|avenue|blvd|boulevard|"
    r"road|rd|suite|ste|floor|fl|drive|dr|way|lane|ln|place|pl|plaza|court|ct|parkway|pkwy|nw|ne|sw|se)\b|"
    r"p\.?\s?o\.?\s{1,5}box\b|suite\s{1,5}\d|room\s{1,5}\d)",
    re.IGNORECASE,
)
_CITY_STATE = re.compile(r"^[A-Z][A-Za-z .'-]{1,30},\s*(?:[A-Z]{2}|D\.C\.?)(?:,?\s*\d{5}(?:-\d{4})?)?\.?$")
_DATE = re.compile(
    r"^(?:(?:mon|tues|wednes|thurs|fri|satur|sun)day,?\s+)?(?:jan|feb|mar|apr|may|jun|jul|aug|sep|"
    r"oct|nov|dec)[a-z]*\.?\s+\d{1,2},?\s+\d{4}$|^\d{1,2}/\d{1,2}/\d{2,4}$|^\d{4}-\d{2}-\d{2}$",
    re.IGNORECASE,
)
_SALUTATION = re.compile(
    r"^(dear|to|re|subject|from|attn|attention)\b.*[:,]$|^(dear|re:|subject:)", re.IGNORECASE
)
_TITLES = (
    r"(?:executive |managing |legal |policy |program |campaign |national |deputy |associate |senior |"
    r"interim |chief |general |vice |founding |acting |state |regional |legislative |communications |"
    r"development |organizing |research |operations |field |digital |membership |board |co-?)*"
    r"(?:director|president|ceo|coo|cfo|founder|co-founder|chair|chairperson|chairman|chairwoman|"
    r"secretary|treasurer|organizer|coordinator|manager|counsel|attorney|lawyer|esq|professor|fellow|"
    r"member|pastor|rabbi|reverend|rev|minister|advocate|analyst|staff attorney|partner|principal|"
    r"representative|officer|lead|vp|vice president|head|dean|spokesperson|trustee|convener|strategist|"
    r"specialist|assistant|executive|phd|ph\.d|md|j\.d|jd)\b"
)
_PERSON_WITH_TITLE = re.compile(r"^[A-Z][\w.'-]+(?:\s+[A-Z][\w.'-]*){1,3},\s*" + _TITLES, re.IGNORECASE)
_TITLE_LINE = re.compile(r"^" + _TITLES + r"\s*(?:,|of\b|at\b|$)", re.IGNORECASE)
_HONORIFIC = re.compile(
    r"^(?:the\s+)?(?:hon\.?|honorable|secretary|senator|representative|rep\.|sen\.|director|"
    r"chairman|chairwoman|chair|speaker|leader|mr\.?|ms\.?|mrs\.?|dr\.?|commissioner|"
    r"administrator|attorney general|governor|mayor|president)\s+[A-Z]",
    re.IGNORECASE,
)
_URL = re.compile(r"^(https?://|www\.)\S+$|^\S+@\S+\.\S+$", re.IGNORECASE)
_LOCATION_TAIL = re.compile(
    r"\s*(?:[,–—]|\s-)\s*(?:[A-Z][A-Za-z .'-]+,\s*)?(?:[A-Z]{2}|D\.C\.|National|Nationwide|"
    r"Statewide)\.?$"
)
_PAREN_PLACE = re.compile(
    r"\s*\((?:[A-Z]{2}|D\.C\.|National|Nationwide|Statewide|International|[A-Z][a-z]+,\s*"
    r"[A-Z]{2})\)$"
)


@dataclass
class Candidate:
    """One line of the pasted text (or one name of an inline paragraph) and what the import would do with it."""

    line: int
    text: str
    action: str
    name: str = ""
    organization_id: int | None = None
    organization: str = ""
    confidence: float = 0.0
    reason: str = ""
    # Where this name sits: "12" for a line, "12.3" for the third name of an inline paragraph on line 12.
    key: str = ""
    # Up to three (organization id, name, score, why) proposed for review, best first.
    proposals: list[tuple[int, str, float, str]] = field(default_factory=list)

    def report_row(self) -> list[str]:
        """The line as a report CSV row."""
        skipped = self.action == "skipped"
        return [
            str(self.line),
            self.text,
            self.action,
            self.organization,
            f"{self.confidence:.2f}" if not skipped else "",
            "; ".join(f"{name} ({score:.2f})" for _, name, score, _ in self.proposals[:3]),
            self.reason,
        ]


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


# Linking words that stay lower case inside a name ("Center for Democracy and Technology", "Centro de …").
_LINKING = frozenset(
    (
        "of", "for", "the", "and", "at", "in", "on", "a", "an", "to", "by", "with", "from", "de", "del", "la",
        "las", "los", "el", "y", "e", "et", "du", "des", "der", "und", "da", "do", "dos",
    )
)
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
_CORPORATE_PIECE = re.compile(r"^(?:inc|incorporated|llc|l\.l\.c|ltd|p\.c|pc|pllc|co|corp|lp|llp)\.?$", re.I)
_SUBUNIT_PIECE = re.compile(
    r"^(?:office|department|division|bureau|program|chapter|section|committee|ministries)\s+(?:of|on|for)\s",
    re.I,
)
_DIRECTION_PIECE = re.compile(r"^(?:north|south|east|west|northern|southern|eastern|western|central)$", re.I)
_LEAD_AND = re.compile(r"^(?:and|&|as well as|plus)\s+", re.I)


def _words_capitalised(text: str) -> float:
    """The share of a text's words (linking words aside) that start with a capital, a digit or a symbol."""
    words = [w for w in text.split() if w.lower().strip(".,'’()") not in _LINKING]
    if not words:
        return 0.0
    return sum(1 for w in words if not w[:1].islower()) / len(words)


def _namelike(piece: str) -> bool:
    """True when a piece of an inline paragraph looks like an organization's name, not a clause of prose."""
    piece = _LEAD_AND.sub("", piece.strip()).strip(" .")
    if piece.lower().startswith("the "):
        piece = piece[4:]
    words = piece.split()
    if not words or len(words) > 14 or len(piece) > LONG_LINE or any(q in piece for q in "“”\"/"):
        return False
    if len(words) == 1:
        return True  # "reddit", "Mozilla", "CREDO"
    halves = _AND.split(piece, maxsplit=1)
    if len(halves) == 2 and all(h.strip() and len(h.split()) <= 8 for h in halves):
        return all(_namelike(h) for h in halves)  # "Mozilla and reddit", the last two names of a list
    return _words_capitalised(piece) >= 0.6 and not re.search(r"[.!?]\s+[a-z]", piece)


_STATE_NAMES = frozenset(
    (
        "alabama", "alaska", "arizona", "arkansas", "california", "colorado", "connecticut", "delaware", "florida",
        "georgia", "hawaii", "idaho", "illinois", "indiana", "iowa", "kansas", "kentucky", "louisiana", "maine",
        "maryland", "massachusetts", "michigan", "minnesota", "mississippi", "missouri", "montana", "nebraska",
        "nevada", "ohio", "oklahoma", "oregon", "pennsylvania", "tennessee", "texas", "utah", "vermont",
        "virginia", "washington", "wisconsin", "wyoming",
    )
)
_STATE_PIECE = re.compile(r"^(?:[A-Z]{2}|D\.C\.?|[A-Z][a-z]+(?: [A-Z][a-z]+)?)\.?$")


# Bounded repetitions: a search tries every position, and `\s+` there would be quadratic on a run of spaces.
_BULLET_SEPARATOR = re.compile(r"\s{1,3}[•·▪●]\s{1,3}")
_AND = re.compile(r"\s{1,5}(?:and|&)\s{1,5}")
# Columns of a table or a PDF copied as one line: a tab, or three spaces or more.
_COLUMN_GAP = re.compile(r"\t{1,20}| {3,40}")


def _inline_pieces(body: str) -> list[str]:
    """A paragraph split on semicolons (when it has them) or commas; the final "and" dropped; commas that belong
    to a name kept ("…, Inc.", "…, LLC", "Writers Guild of America, West", "Church of Zeta, Office of
    Communication", "Just Futures Law, Oakland, CA")."""
    if len(_BULLET_SEPARATOR.findall(body)) >= 2:  # "ACLU • EFF • Mijente" copied from a web page
        body = _BULLET_SEPARATOR.sub("; ", body)
    elif body.count(",") + body.count(";") < 2 and _COLUMN_GAP.search(body):
        body = ";".join(_COLUMN_GAP.split(body)) + ";"
    separator = ";" if body.count(";") >= 2 else ","
    pieces = [_LEAD_AND.sub("", p.strip()).strip() for p in body.split(separator)]
    if pieces:
        pieces[0] = _strip_lead_in(pieces[0])
    if pieces:
        pieces[-1] = pieces[-1].rstrip(" .")
    merged: list[str] = []
    for piece in pieces:
        if not piece:
            continue
        if merged and separator == "," and (
            _CORPORATE_PIECE.match(piece)
            or _SUBUNIT_PIECE.match(piece)
            or _DIRECTION_PIECE.match(piece)
            or (len(piece) <= 60 and _STATE_PIECE.match(piece) and _state_name(piece))
        ):
            merged[-1] = f"{merged[-1]}, {piece}"
            if len(merged) >= 2 and _CITY_STATE.match(merged[-1]):  # "Oakland, CA" after a name
                merged[-2:] = [f"{merged[-2]}, {merged[-1]}"]
            continue
        merged.append(piece)
    return merged


# "The signers include …", "signed by organizations including …", "Participants include: …".
_LEAD_IN = re.compile(
    r"^.{0,150}\b(?:include|includes|including|included|signed by|joined by|signers are|signatories are)\b"
    r"\s*:?\s+(?=\S)|^[^,:]{0,150}:\s+(?=\S)",
    re.IGNORECASE,
)


def _strip_lead_in(piece: str) -> str:
    """The first name of an inline paragraph without the sentence that introduces the list."""
    if len(piece) > LONG_LINE:
        return piece
    stripped = _LEAD_IN.sub("", piece, count=1)
    return stripped if stripped != piece and stripped.strip() else piece


def _state_name(piece: str) -> bool:
    """True for a US state's postal code or name ("CA", "D.C.", "New Mexico")."""
    word = piece.strip(" .").lower()
    return word in PLACE_WORDS and (len(word) == 2 or word in _STATE_NAMES) or word in ("d.c", "dc")


def looks_like_inline_list(body: str) -> bool:
    """True when a line is a paragraph of names: "Alpha Coalition, Beta Project, …, and Epsilon Alliance."""
    columns = body.count(",") + body.count(";") < 2 and _COLUMN_GAP.search(body)
    if body.count(",") + body.count(";") < 2 and len(_BULLET_SEPARATOR.findall(body)) < 2 and not columns:
        return False
    pieces = _inline_pieces(body)
    if columns:  # "ACLU      Mijente": two columns are enough, but every one must be a name
        return (
            len(pieces) >= 2
            and all(_namelike(p) for p in pieces)
            and not any(_TITLE_LINE.match(p) or _HONORIFIC.match(p) for p in pieces)
        )
    if len(pieces) < 3:
        return False
    namelike = sum(1 for p in pieces if _namelike(p) or _CORPORATE_PIECE.match(p) or _namelike(_strip_lead_in(p)))
    return namelike >= 0.8 * len(pieces) and _words_capitalised(body) >= 0.6


def split_inline(body: str, index: MatchIndex | None = None) -> list[str]:
    """The names of an inline paragraph, keeping the commas that belong to a name.

    "…, Inc.", "…, LLC" and "Writers Guild of America, West" stay whole; so does "Church of Zeta, Office of
    Communication"; and two pieces whose joined text is a known organization's name are kept together. A last
    piece "Mozilla and reddit" is two names when each half is known, or when the second starts with "the"."""
    pieces = _inline_pieces(body)
    merged: list[str] = []
    for piece in pieces:
        if merged and index is not None and len(merged[-1]) + len(piece) < LONG_LINE:
            joined = f"{merged[-1]}, {piece}"
            if _known_exactly(index, joined) and not _known_exactly(index, piece):
                merged[-1] = joined
                continue
        merged.append(piece)
    result: list[str] = []
    for position, piece in enumerate(merged):
        last = position == len(merged) - 1 and len(piece) <= LONG_LINE
        halves = _AND.split(piece, maxsplit=1) if last else [piece]
        if len(halves) == 2 and not (index is not None and _known_exactly(index, piece)):
            left, right = halves
            known_half = index is not None and (_known_exactly(index, left) or _known_exactly(index, right))
            both_long = len(left.split()) >= 3 and len(right.split()) >= 3
            if _namelike(left) and _namelike(right) and (
                known_half or both_long or right.lower().startswith("the ")
            ):
                result.extend([left, right])
                continue
        result.append(piece)
    cleaned = [_LEAD_AND.sub("", p).strip(" ,;") for p in result]
    # "and thousands more", "among others": words in lower case only are no name.
    cleaned = [p for p in cleaned if len(p.split()) < 2 or _words_capitalised(p) > 0]
    return [candidate_name(p) or p for p in cleaned]


def _known_exactly(index: MatchIndex, text: str) -> bool:
    """True when a text is an organization's name or alias, written the same way up to case and punctuation."""
    return index.knows(text)


def _title_split(body: str) -> tuple[str, str] | None:
    """(person, organization) of "Jane Doe, Executive Director, Example Org" or "Jane Doe, Director of Example
    Org"; None when no organization."""
    parts = [p.strip() for p in body.split(",")]
    for position in range(1, len(parts)):
        title = _TITLE_LINE.match(parts[position])
        if title and title.group(0).rstrip().lower().endswith(("of", "at")):
            org = ", ".join(p for p in [parts[position][title.end() :].strip(), *parts[position + 1 :]] if p)
            return (", ".join(parts[:position]), org) if org else None
        if _TITLE_LINE.match(parts[position]) or re.fullmatch(r"(?i)(esq|ph\.?d|j\.?d|m\.?d)\.?", parts[position]):
            org = ", ".join(p for p in parts[position + 1 :] if p)
            if org and not re.fullmatch(r"(?i)(esq|ph\.?d|j\.?d|m\.?d)\.?", org):
                return ", ".join(parts[:position]), org
            return None
    return None


def candidate_name(text: str) -> str:
    """The organization name of a line: bullets, numbering, footnote marks, places and signers removed."""
    name = _BULLET.sub("", text).strip()[:LONG_LINE]
    name = _SUPERSCRIPT_TAIL.sub("", name).strip()
    if _PERSON_WITH_TITLE.match(name):
        split = _title_split(name)
        if split:
            name = split[1]
    name = _PAREN_PLACE.sub("", name).strip()
    name = _LOCATION_TAIL.sub("", name).strip()
    return name.strip(" ,;").strip()


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
    return any(w in _ORG_WORDS for w in words) and _words_capitalised(text) >= 0.6 and len(words) <= 14


def classify(text: str) -> str | None:
    """Why a line inside the signatory section is skipped (None: it names an organization; "inline list": a
    paragraph of names)."""
    line = text.strip()
    if not line:
        return "blank"
    if _FOOTNOTE.match(line):  # anchored, linear
        return "footnote"
    body = _BULLET.sub("", line).strip()
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
    if _ZIP.search(body) or _STREET.match(body) or _CITY_STATE.match(body):
        return "address"
    if _PERSON_WITH_TITLE.match(body):
        # "Jane Doe, Executive Director, Example Org" signs for the organization; "Jane Doe, Director" alone
        # is a person.
        return None if _title_split(body) else "individual signer"
    if _HONORIFIC.match(body):  # "The Honorable Nancy Pelosi, Speaker, U.S. House …" is an addressee
        return "individual signer"
    if looks_like_inline_list(body):
        return "inline list"
    if _is_paragraph(body):
        return "paragraph"
    if _TITLE_LINE.match(body) or _HONORIFIC.match(body):
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
            and (_PERSON_WITH_TITLE.match(line) or not looks_like_organization(line))
            and not (index is not None and _known_exactly(index, line) and not _TITLE_LINE.match(before))
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
            return bool(_TITLE_LINE.match(line))
    return False


def analyse(text: str, index: MatchIndex | None = None) -> list[Candidate]:
    """Classify and match every line of a pasted signatory block (reads the database, changes nothing).

    Raises BlockTooLarge when the block is over the limits."""
    check_block(text)
    index = index or MatchIndex.from_database()
    lines = split_lines(text, index)
    candidates: list[Candidate] = []
    for number, raw, reason in lines:
        shown = single_line(raw)[:300]
        if reason == "inline list":
            body = _BULLET.sub("", raw.strip()).strip()
            for part, piece in enumerate(split_inline(body, index), start=1):
                candidates.append(_matched(index, number, f"{number}.{part}", piece, piece[:LONG_LINE]))
            continue
        if reason is not None:
            candidates.append(Candidate(number, shown, "skipped", reason=reason, key=str(number)))
            continue
        candidates.append(_matched(index, number, str(number), shown, candidate_name(raw)[:300]))
    return candidates


def _matched(index: MatchIndex, number: int, key: str, shown: str, name: str) -> Candidate:
    """One name matched: matched, review (with up to three proposals and why), new, or skipped."""
    if len(name) > LONG_LINE or not re.search(r"[A-Za-z]", name):
        return Candidate(number, shown, "skipped", reason="no name", key=key)
    found = index.match(name)
    if found.action == "skipped":
        return Candidate(number, shown, "skipped", reason="no name", key=key)
    proposals: list[tuple[int, str, float, str]] = []
    if found.action == "review":
        pairs = list(found.candidates) or [(found.organization_id, found.confidence)]
        for org_id, score in pairs[:3]:
            why = found.reason_for(org_id) or _METHOD_REASONS.get(found.method.split("-")[0], found.method)
            proposals.append((org_id, index.name_of(org_id), round(score, 2), why))
    reason = proposals[0][3] if proposals else _METHOD_REASONS.get(found.method, found.method)
    known = index.orgs.get(found.organization_id)
    if found.method == "name" and known is not None and known.normalized != normalize_org_name(name):
        reason = "alias"  # a former name, or a spelling learned from an earlier review
    return Candidate(
        number,
        shown,
        found.action,
        name=name,
        organization_id=found.organization_id,
        organization=index.name_of(found.organization_id),
        confidence=round(found.confidence, 2),
        reason=reason if found.action != "new" else "no organization shares a word with this name",
        key=key,
        proposals=proposals,
    )


# How each kind of match reads in the report and on the review page.
_METHOD_REASONS = {
    "name": "same name",
    "name-ambiguous": "several organizations have this name",
    "compact": "same name written together or apart",
    "acronym": "acronym",
    "acronym+name": "acronym",
    "same words": "same words",
    "website": "website",
    "name+acronym": "name and acronym",
    "fuzzy": "similar spelling",
    "none": "",
}


def method_reason(method: str) -> str:
    """A match method in words ("similar spelling", "acronym"), as the import and the review queue show it."""
    return _METHOD_REASONS.get(method, _METHOD_REASONS.get(method.split("-")[0], method))


def report_csv(candidates: list[Candidate]) -> str:
    """The report as CSV text: line,text,action,organization,confidence,candidates,reason."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(REPORT_COLUMNS)
    for candidate in candidates:
        row = candidate.report_row()
        writer.writerow(["'" + cell if cell[:1] in ("=", "+", "-", "@") else cell for cell in row])
    return out.getvalue()


@dataclass
class ImportResult:
    """What applying an import changed."""

    signatures: int = 0
    already: int = 0
    organizations: int = 0
    aliases: int = 0


class ImportError_(ValueError):
    """The import cannot be applied; nothing was changed."""


def apply_import(
    letter: Letter,
    decisions: list[tuple[str, int | None, str]],
    *,
    user_id: int | None = None,
    status: str = "confirmed",
) -> ImportResult:
    """Create the signatures in one transaction.

    `decisions` are (listed name, organization id or None to create a new organization, original line text).
    Spellings that differ from the organization's name become aliases. An organization already on the letter
    is left as it is (counted in `already`)."""
    result = ImportResult()
    try:
        existing = set(
            db.session.scalars(select(Signature.organization_id).where(Signature.letter_id == letter.id))
        )
        for listed_name, org_id, _line in decisions:
            listed_name = single_line(listed_name)[:300]
            if not listed_name:
                continue
            if org_id is None:
                org = add_named_organization(listed_name, user_id=user_id,
                                             summary=f"Created {listed_name} (signatory import)")
                result.organizations += 1
            else:
                org = db.session.get(Organization, org_id)
                if org is None:
                    raise ImportError_(f"Organization {org_id} does not exist.")
                if add_alias(org, listed_name, source="import") is not None:
                    result.aliases += 1
            if org.id in existing:
                result.already += 1
                continue
            existing.add(org.id)
            signature = Signature(
                letter_id=letter.id,
                organization_id=org.id,
                role="signatory",
                listed_name=listed_name,
                status=status,
                source="import",
                signed_at=utcnow(),
            )
            db.session.add(signature)
            result.signatures += 1
        db.session.flush()
        record(
            "import",
            "letter",
            letter.id,
            user_id=user_id,
            summary=f"Imported {result.signatures} signatures into {letter.slug} "
            f"({result.organizations} new organizations, {result.aliases} aliases)",
        )
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    return result


__all__ = ["Candidate", "analyse", "apply_import", "report_csv", "REPORT_COLUMNS"]
