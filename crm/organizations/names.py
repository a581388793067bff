"""How organization names are written: normalising, the other forms a name answers to, comparing two names.

Normalising: case, accents, punctuation, "The", "Inc.", state codes, ordinals, web addresses. Other forms:
parenthesised and separated parts, sister-fund bases, word bags, a web address's label. Comparing: whether two
names differ in a way that makes them different organizations (a place, a number, an "of …" tail). Pure text,
no database."""

import re

from rapidfuzz import fuzz

from crm.common.text import fold

_DROP = re.compile(r"['’`.]")  # apostrophes and dots vanish: "America's" → americas, "S.T.O.P." → stop
_PUNCT = re.compile(r"[^a-z0-9 ]+")
PARENS = re.compile(r"\(([^()]*)\)")
_TRAILING = ("inc", "incorporated", "llc", "ltd", "pc", "pllc", "corp", "corporation", "co", "fund", "org")
STOPWORDS = frozenset(["of", "the", "for", "and", "at", "in", "on", "a", "an", "to"])
_US_STATE_NAMES = (
    "alabama alaska arizona arkansas california colorado connecticut delaware florida georgia hawaii idaho "
    "illinois "
    "indiana iowa kansas kentucky louisiana maine maryland massachusetts michigan minnesota mississippi "
    "missouri "
    "montana nebraska nevada new hampshire jersey mexico york carolina dakota ohio oklahoma oregon "
    "pennsylvania "
    "rhode island tennessee texas utah vermont virginia washington west wisconsin wyoming puerto rico guam"
)
_STATE_CODES = (
    "al ak az ar ca co ct de dc fl ga hi id il in ia ks ky la me md ma mi mn ms mo mt ne nv nh nj nm ny "
    "nc nd oh ok or pa ri sc sd tn tx ut vt va wa wv wi wy pr"
)
_DIRECTIONS = (
    "north south east west northern southern eastern western central northeast northwest southeast "
    "southwest northeastern northwestern southeastern southwestern greater upstate downstate mid coastal "
    "bay city county metro chapter affiliate"
)
_BIG_CITIES = (
    "chicago houston phoenix philadelphia san antonio diego dallas jose austin jacksonville columbus "
    "charlotte francisco indianapolis seattle denver boston detroit nashville portland memphis louisville "
    "baltimore milwaukee albuquerque tucson fresno sacramento atlanta miami oakland minneapolis tulsa "
    "cleveland orleans tampa pittsburgh cincinnati newark buffalo st paul los angeles brooklyn bronx "
    "queens harlem richmond raleigh durham birmingham laredo dearborn vancouver toronto"
)
# Words that name a place: two names differing in one of these are different organizations (affiliates,
# chapters).
PLACE_WORDS = frozenset(
    (_US_STATE_NAMES + " " + _STATE_CODES + " " + _DIRECTIONS + " " + _BIG_CITIES).split()
)


# A state written as its postal code ("MA Jobs with Justice", "ACLU of Northern CA") is the state's name. Only
# a code in capitals, in a name not written all in capitals, and never IN, OR, ME or DC, which are also words
# ("Justice IN Motion") or spelled with dots ("D.C.").
_STATE_BY_CODE = {
    "AL": "Alabama", "AK": "Alaska", "AZ": "Arizona", "AR": "Arkansas", "CA": "California", "CO": "Colorado",
    "CT": "Connecticut", "DE": "Delaware", "FL": "Florida", "GA": "Georgia", "HI": "Hawaii", "ID": "Idaho",
    "IL": "Illinois", "IA": "Iowa", "KS": "Kansas", "KY": "Kentucky", "LA": "Louisiana", "MD": "Maryland",
    "MA": "Massachusetts", "MI": "Michigan", "MN": "Minnesota", "MS": "Mississippi", "MO": "Missouri",
    "MT": "Montana", "NE": "Nebraska", "NV": "Nevada", "NH": "New Hampshire", "NJ": "New Jersey", "NM": "New Mexico",
    "NY": "New York", "NC": "North Carolina", "ND": "North Dakota", "OH": "Ohio", "OK": "Oklahoma",
    "PA": "Pennsylvania", "RI": "Rhode Island", "SC": "South Carolina", "SD": "South Dakota", "TN": "Tennessee",
    "TX": "Texas", "UT": "Utah", "VT": "Vermont", "VA": "Virginia", "WA": "Washington", "WV": "West Virginia",
    "WI": "Wisconsin", "WY": "Wyoming", "PR": "Puerto Rico",
}
_STATE_CODE = re.compile(r"\b(?:" + "|".join(_STATE_BY_CODE) + r")\b(?![.'’])")
# Ordinals as words: "Restore the 4th" is "Restore The Fourth".
_ORDINALS = {
    "1st": "first", "2nd": "second", "3rd": "third", "4th": "fourth", "5th": "fifth", "6th": "sixth",
    "7th": "seventh", "8th": "eighth", "9th": "ninth", "10th": "tenth", "11th": "eleventh", "12th": "twelfth",
    "13th": "thirteenth", "14th": "fourteenth", "15th": "fifteenth", "16th": "sixteenth", "17th": "seventeenth",
    "18th": "eighteenth", "19th": "nineteenth", "20th": "twentieth",
}
_ORDINAL = re.compile(r"\b(?:" + "|".join(_ORDINALS) + r")\b")
# A web address written for a name ("justfutureslaw.org", "www.ColorOfChange.org"): the scheme, "www." and the
# top-level domain go, so what is left meets the name written out. Bounded quantifiers: linear on any input.
_WEB = re.compile(r"\bhttps?://|\bwww\.|\.(?:org|net|com|us|info|io|edu)\b(?:/[^\s]{0,200})?")
# "America's" → "america": a possessive is the same name ("New America's Open Technology Institute").
_POSSESSIVE_S = re.compile(r"['’]s\b")
_HAS_DIGIT = re.compile(r"\d").search


def clean_text(text: str) -> str:
    """Folded text with dots/apostrophes dropped, '&' as 'and', other punctuation as spaces; state codes and
    ordinals as words."""
    if not text.isupper() and _STATE_CODE.search(text):
        text = _STATE_CODE.sub(lambda m: _STATE_BY_CODE[m.group()], text)
    # Plain ASCII (most names) needs no Unicode folding: lower-casing is enough and far faster in bulk.
    text = text.lower() if text.isascii() else fold(text)
    if "." in text or "/" in text:
        text = _WEB.sub(" ", text)
    if "'" in text or "’" in text:
        text = _POSSESSIVE_S.sub("", text)
    if _HAS_DIGIT(text):
        text = _ORDINAL.sub(lambda m: _ORDINALS[m.group()], text)
    text = text.replace("&", " and ").replace("+", " and ")
    text = _DROP.sub("", text)
    return " ".join(_PUNCT.sub(" ", text).split())


def strip_edges(text: str) -> str:
    """Drop a leading 'the' and trailing corporate words (inc, p.c., fund, …) from a cleaned name."""
    words = text.split()
    if len(words) > 1 and words[0] == "the":
        words = words[1:]
    while len(words) > 1 and words[-1] in _TRAILING:
        words = words[:-1]
    return " ".join(words)


def normalize_org_name(name: str) -> str:
    """A comparable name: case, accents, punctuation, &/and, 'The', 'Inc.'/'Fund', '(ACR)' removed."""
    outside = PARENS.sub(" ", name or "")
    return strip_edges(clean_text(outside))


FORMERLY = re.compile(r"^(?:formerly|previously|fka|f k a|once|now|also)\s+(?:known as\s+)?")


def name_variants(name: str) -> tuple[str, list[str]]:
    """The normalised name and its normalised parenthesised parts ('… (ACLU)' → 'aclu'; '(formerly X)' → 'x')."""
    inner = [FORMERLY.sub("", strip_edges(clean_text(part))) for part in PARENS.findall(name or "")]
    return normalize_org_name(name), [part for part in inner if part]


# Bounded repetitions: searched at every position, `\s+` would be quadratic on a long run of spaces.
SEPARATOR = re.compile(r"\s{1,5}[|–—-]\s{1,5}|\s{0,5}\|\s{0,5}")
# No organization's name is longer (the column holds 300 characters); a longer text names none.
MAX_NAME = 300
_POSSESSIVE = re.compile(r"^[^()]{2,60}?['’]s\s+(.+)$")


def separated_parts(name: str) -> list[str]:
    """Other names a compound name answers to.

    "S.T.O.P. – Surveillance Technology Oversight Project" and "Asian Americans Advancing Justice | AAJC" are
    known by each part when one part is an acronym; "New America's Open Technology Institute" by its program's
    own name."""
    if not any(mark in (name or "") for mark in ("|", " - ", "–", "—", "'s ", "’s ")):
        return []
    outside = PARENS.sub(" ", name or "")
    parts = [strip_edges(clean_text(p)) for p in SEPARATOR.split(outside)]
    parts = [p for p in parts if p]
    found: list[str] = []
    if len(parts) == 2 and any(looks_like_acronym(p) for p in parts):
        found.extend(parts)
    possessive = _POSSESSIVE.match(outside.strip())
    if possessive:
        program = strip_edges(clean_text(possessive.group(1)))
        if len(program.split()) >= 2:
            found.append(program)
    return found


# Words that make a sister organization of the same coalition partner: "X Action Fund", "X Education Fund",
# "X Foundation", "X Action", "X Institute", "X Network", "X PAC", "X Votes" (a trailing "Fund" is already gone).
_SISTER_TAILS = tuple(
    tail.split()
    for tail in (
        "action network", "education and defense", "legal defense and educational", "legal defense and education",
        "legal defense", "educational", "education", "action", "foundation", "institute", "network", "pac",
        "votes", "c3", "c4", "in action", "action center", "action committee",
    )
)
_BAG_IGNORED = STOPWORDS | frozenset(_TRAILING)
LOOKS_LIKE_ADDRESS = re.compile(r"^(?:https?://)?(?:www\.)?[\w-]{2,63}(?:\.[\w-]{2,63}){0,3}\.[a-z]{2,6}/?$", re.I)


_SISTER_LAST = frozenset(tail[-1] for tail in _SISTER_TAILS)


def sister_base(normalized: str) -> str:
    """The name without a sister-organization tail ("free press action" → "free press"), or ''."""
    words = normalized.split()
    if not words or words[-1] not in _SISTER_LAST:
        return ""
    for tail in _SISTER_TAILS:
        if len(words) > len(tail) + 0 and words[-len(tail):] == tail:
            base = words[: -len(tail)]
            while base and base[-1] in STOPWORDS:
                base = base[:-1]
            # One short word left is too little to say two organizations are related ("Free Action").
            if len(base) >= 2 or (len(base) == 1 and len(base[0]) >= 6):
                return " ".join(base)
    return ""


def sister_base_of_acronym(normalized: str) -> str:
    """The acronym a sister organization's name starts with ("eff action" → "eff"), or ''."""
    words = normalized.split()
    for tail in _SISTER_TAILS:
        if len(words) == len(tail) + 1 and words[1:] == tail and 2 <= len(words[0]) <= 8:
            return words[0]
    return ""


def word_bag(normalized: str) -> str:
    """The content words of a name, sorted: the same words in another order and with other linking words meet
    ("Georgetown Law Center on Privacy and Technology" / "Center on Privacy & Technology at Georgetown Law")."""
    words = sorted({w for w in normalized.split() if w not in _BAG_IGNORED})
    return " ".join(words) if len(words) >= 2 else ""


def website_label(address: str) -> str:
    """The distinctive part of a web address ("https://www.justfutureslaw.org/about" → "justfutureslaw")."""
    text = (address or "").strip().lower()
    text = re.sub(r"^[a-z]{3,6}://", "", text)[:300]
    host = text.split("/", 1)[0].split(":", 1)[0]
    labels = [label for label in host.split(".") if label]
    if labels and labels[0] == "www":
        labels = labels[1:]
    if len(labels) < 2:
        return ""
    # "law.georgetown.edu/privacy-technology-center" names the university, not the centre: only a site's own
    # domain counts.
    label = labels[-2] if labels[-1] not in ("uk", "au", "ca") or len(labels) < 3 else labels[-3]
    return label if len(label) >= 4 else ""


def compact(normalized: str) -> str:
    """A normalised name without spaces, so 'Open Media' meets 'OpenMedia'."""
    return normalized.replace(" ", "")


def looks_like_acronym(text: str) -> bool:
    """A short single word, such as ACLU, EFF or S.T.O.P."""
    word = clean_text(text)
    return bool(word) and " " not in word and len(word) <= 12


def names_conflict(a: list[str], b: list[str]) -> bool:
    """True when two names differ in a way that makes them different organizations.

    A place word or a number present in only one of them (an affiliate or chapter: "ACLU of Minnesota", "SEIU
    Local 32BJ"), or an "of …" tail that one has and the other lacks."""
    only_a, only_b = set(a) - set(b), set(b) - set(a)
    for word in only_a | only_b:
        if word in PLACE_WORDS or any(ch.isdigit() for ch in word):
            return True
    return any("of" in mine and "of" not in theirs for mine, theirs in ((a, b), (b, a)))


def differ_by_typos_only(a: list[str], b: list[str]) -> bool:
    """True when the names have the same words up to small spelling differences and stop words."""
    left = [w for w in a if w not in STOPWORDS]
    right = [w for w in b if w not in STOPWORDS]
    if len(left) != len(right) or not left:
        return False
    unmatched = list(right)
    for word in left:
        if word in unmatched:
            unmatched.remove(word)
            continue
        close = [w for w in unmatched if len(word) >= 4 and fuzz.ratio(word, w) >= 80]
        if not close:
            return False
        unmatched.remove(close[0])
    return True


def close_word(word: str, others: list[str]) -> bool:
    """True when a word is among others, up to a small spelling difference."""
    return word in others or (len(word) >= 4 and any(fuzz.ratio(word, w) >= 80 for w in others))


def adds_no_words(a: list[str], b: list[str]) -> bool:
    """True when every word of name a (stop words aside) is in name b, up to small spelling differences."""
    return all(close_word(w, b) for w in a if w not in STOPWORDS)
