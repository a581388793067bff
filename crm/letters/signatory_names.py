"""Names inside a signatory line: the organization a line names (bullets, places and signers removed), and the names
of an inline paragraph ("Alpha Coalition, Beta Project, and Gamma Fund"), keeping the commas that belong to a name."""

import re

from crm.organizations.matching import MatchIndex
from crm.organizations.names import PLACE_WORDS

# A longer line is prose or a paragraph of names separated by commas; only linear splitting runs on it, never
# the line patterns (some of which would be quadratic on long input).
LONG_LINE = 300

BULLET = re.compile(r"^\s*(?:[-*•·▪◦●‣–—+]+|\(?\d{1,4}[.)]|\(?[a-z][.)]|#\d+)\s+", re.IGNORECASE)
_SUPERSCRIPT_TAIL = re.compile(r"[¹²³⁴⁵⁶⁷⁸⁹⁰*†‡]+$")
CITY_STATE = re.compile(r"^[A-Z][A-Za-z .'-]{1,30},\s*(?:[A-Z]{2}|D\.C\.?)(?:,?\s*\d{5}(?:-\d{4})?)?\.?$")
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
PERSON_WITH_TITLE = re.compile(r"^[A-Z][\w.'-]+(?:\s+[A-Z][\w.'-]*){1,3},\s*" + _TITLES, re.IGNORECASE)
TITLE_LINE = re.compile(r"^" + _TITLES + r"\s*(?:,|of\b|at\b|$)", re.IGNORECASE)
HONORIFIC = re.compile(
    r"^(?:the\s+)?(?:hon\.?|honorable|secretary|senator|representative|rep\.|sen\.|director|"
    r"chairman|chairwoman|chair|speaker|leader|mr\.?|ms\.?|mrs\.?|dr\.?|commissioner|"
    r"administrator|attorney general|governor|mayor|president)\s+[A-Z]",
    re.IGNORECASE,
)
_LOCATION_TAIL = re.compile(
    r"\s*(?:[,–—]|\s-)\s*(?:[A-Z][A-Za-z .'-]+,\s*)?(?:[A-Z]{2}|D\.C\.|National|Nationwide|"
    r"Statewide)\.?$"
)
_PAREN_PLACE = re.compile(
    r"\s*\((?:[A-Z]{2}|D\.C\.|National|Nationwide|Statewide|International|[A-Z][a-z]+,\s*"
    r"[A-Z]{2})\)$"
)

# Linking words that stay lower case inside a name ("Center for Democracy and Technology", "Centro de …").
_LINKING = frozenset(
    (
        "of", "for", "the", "and", "at", "in", "on", "a", "an", "to", "by", "with", "from", "de", "del", "la",
        "las", "los", "el", "y", "e", "et", "du", "des", "der", "und", "da", "do", "dos",
    )
)
_CORPORATE_PIECE = re.compile(r"^(?:inc|incorporated|llc|l\.l\.c|ltd|p\.c|pc|pllc|co|corp|lp|llp)\.?$", re.I)
_SUBUNIT_PIECE = re.compile(
    r"^(?:office|department|division|bureau|program|chapter|section|committee|ministries)\s+(?:of|on|for)\s",
    re.I,
)
_DIRECTION_PIECE = re.compile(r"^(?:north|south|east|west|northern|southern|eastern|western|central)$", re.I)
_LEAD_AND = re.compile(r"^(?:and|&|as well as|plus)\s+", re.I)


def words_capitalised(text: str) -> float:
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
    return words_capitalised(piece) >= 0.6 and not re.search(r"[.!?]\s+[a-z]", piece)


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
            if len(merged) >= 2 and CITY_STATE.match(merged[-1]):  # "Oakland, CA" after a name
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
            and not any(TITLE_LINE.match(p) or HONORIFIC.match(p) for p in pieces)
        )
    if len(pieces) < 3:
        return False
    namelike = sum(1 for p in pieces if _namelike(p) or _CORPORATE_PIECE.match(p) or _namelike(_strip_lead_in(p)))
    return namelike >= 0.8 * len(pieces) and words_capitalised(body) >= 0.6


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
            if known_exactly(index, joined) and not known_exactly(index, piece):
                merged[-1] = joined
                continue
        merged.append(piece)
    result: list[str] = []
    for position, piece in enumerate(merged):
        last = position == len(merged) - 1 and len(piece) <= LONG_LINE
        halves = _AND.split(piece, maxsplit=1) if last else [piece]
        if len(halves) == 2 and not (index is not None and known_exactly(index, piece)):
            left, right = halves
            known_half = index is not None and (known_exactly(index, left) or known_exactly(index, right))
            both_long = len(left.split()) >= 3 and len(right.split()) >= 3
            if _namelike(left) and _namelike(right) and (
                known_half or both_long or right.lower().startswith("the ")
            ):
                result.extend([left, right])
                continue
        result.append(piece)
    cleaned = [_LEAD_AND.sub("", p).strip(" ,;") for p in result]
    # "and thousands more", "among others": words in lower case only are no name.
    cleaned = [p for p in cleaned if len(p.split()) < 2 or words_capitalised(p) > 0]
    return [candidate_name(p) or p for p in cleaned]


def known_exactly(index: MatchIndex, text: str) -> bool:
    """True when a text is an organization's name or alias, written the same way up to case and punctuation."""
    return index.knows(text)


def title_split(body: str) -> tuple[str, str] | None:
    """(person, organization) of "Jane Doe, Executive Director, Example Org" or "Jane Doe, Director of Example
    Org"; None when no organization."""
    parts = [p.strip() for p in body.split(",")]
    for position in range(1, len(parts)):
        title = TITLE_LINE.match(parts[position])
        if title and title.group(0).rstrip().lower().endswith(("of", "at")):
            org = ", ".join(p for p in [parts[position][title.end() :].strip(), *parts[position + 1 :]] if p)
            return (", ".join(parts[:position]), org) if org else None
        if TITLE_LINE.match(parts[position]) or re.fullmatch(r"(?i)(esq|ph\.?d|j\.?d|m\.?d)\.?", parts[position]):
            org = ", ".join(p for p in parts[position + 1 :] if p)
            if org and not re.fullmatch(r"(?i)(esq|ph\.?d|j\.?d|m\.?d)\.?", org):
                return ", ".join(parts[:position]), org
            return None
    return None


def candidate_name(text: str) -> str:
    """The organization name of a line: bullets, numbering, footnote marks, places and signers removed."""
    name = BULLET.sub("", text).strip()[:LONG_LINE]
    name = _SUPERSCRIPT_TAIL.sub("", name).strip()
    if PERSON_WITH_TITLE.match(name):
        split = title_split(name)
        if split:
            name = split[1]
    name = _PAREN_PLACE.sub("", name).strip()
    name = _LOCATION_TAIL.sub("", name).strip()
    return name.strip(" ,;").strip()
