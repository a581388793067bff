"""Organization matching: one service for the review queue, signatory import, CSV import and the API.

A written name is normalised (case, accents, punctuation, "&"/"and", a leading "The", trailing "Inc."/"P.C."/
"Fund", parenthesised acronyms, possessives, a web address's "www." and ".org") and looked up, in order of trust,
among the exact names, aliases (former names, spellings learned in review) and acronyms of the organizations;
then as the same name written another way (together or apart, its words in another order, a web address, a
name with its acronym after a dash); only then fuzzily (rapidfuzz). A fuzzy match is applied only when the names
differ by typos. Anything looser is *proposed* for review (Match.applied is False) with up to five candidates
and the reason for each: a sister organization ("X Action Fund" / "X Education Fund" / "X Foundation" / "X
Network" of a known X), an acronym, a similar spelling, or only shared rarer words (then nobody's proposal:
organization_id is None, the candidates are for the reviewer). A name that differs from a candidate by a place
("ACLU of Southern California" vs "ACLU of Northern California") or an "of <somewhere>" tail (an affiliate, "ACLU
of Minnesota" vs the ACLU) is never matched to it: a wrong match is worse than a missed one.

match_many() builds one in-memory index per batch (1,000 lines against 20,000 organizations in under 2 s of CPU);
match_organization() is the one-name convenience for callers that match a single name."""

import heapq
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import islice

from rapidfuzz import fuzz, process
from sqlalchemy import select

from crm.common.text import fold
from crm.extensions import db
from crm.organizations.models import Organization, OrganizationAlias

# A fuzzy or ambiguous result at or above this confidence is applied; below it, it is only proposed for
# review.
APPLY_THRESHOLD = 0.90
# Fuzzy candidates scoring below this (0–100) are not even proposed.
PROPOSE_CUTOFF = 78.0

_DROP = re.compile(r"['’`.]")  # apostrophes and dots vanish: "America's" → americas, "S.T.O.P." → stop
_PUNCT = re.compile(r"[^a-z0-9 ]+")
_PARENS = re.compile(r"\(([^()]*)\)")
_TRAILING = ("inc", "incorporated", "llc", "ltd", "pc", "pllc", "corp", "corporation", "co", "fund", "org")
_STOPWORDS = frozenset(["of", "the", "for", "and", "at", "in", "on", "a", "an", "to"])
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


def _clean(text: str) -> str:
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


def _strip_edges(text: str) -> str:
    """Drop a leading 'the' and trailing corporate words (inc, p.c., fund, …) from a cleaned name."""
    words = text.split()
    if len(words) > 1 and words[0] == "the":
        words = words[1:]
    while len(words) > 1 and words[-1] in _TRAILING:
        words = words[:-1]
    return " ".join(words)


def normalize_org_name(name: str) -> str:
    """A comparable name: case, accents, punctuation, &/and, 'The', 'Inc.'/'Fund', '(ACR)' removed."""
    outside = _PARENS.sub(" ", name or "")
    return _strip_edges(_clean(outside))


_FORMERLY = re.compile(r"^(?:formerly|previously|fka|f k a|once|now|also)\s+(?:known as\s+)?")


def name_variants(name: str) -> tuple[str, list[str]]:
    """The normalised name and its normalised parenthesised parts ('… (ACLU)' → 'aclu'; '(formerly X)' → 'x')."""
    inner = [_FORMERLY.sub("", _strip_edges(_clean(part))) for part in _PARENS.findall(name or "")]
    return normalize_org_name(name), [part for part in inner if part]


# Bounded repetitions: searched at every position, `\s+` would be quadratic on a long run of spaces.
_SEPARATOR = re.compile(r"\s{1,5}[|–—-]\s{1,5}|\s{0,5}\|\s{0,5}")
# No organization's name is longer (the column holds 300 characters); a longer text names none.
MAX_NAME = 300
_POSSESSIVE = re.compile(r"^[^()]{2,60}?['’]s\s+(.+)$")


def _separated_parts(name: str) -> list[str]:
    """Other names a compound name answers to.

    "S.T.O.P. – Surveillance Technology Oversight Project" and "Asian Americans Advancing Justice | AAJC" are
    known by each part when one part is an acronym; "New America's Open Technology Institute" by its program's
    own name."""
    if not any(mark in (name or "") for mark in ("|", " - ", "–", "—", "'s ", "’s ")):
        return []
    outside = _PARENS.sub(" ", name or "")
    parts = [_strip_edges(_clean(p)) for p in _SEPARATOR.split(outside)]
    parts = [p for p in parts if p]
    found: list[str] = []
    if len(parts) == 2 and any(looks_like_acronym(p) for p in parts):
        found.extend(parts)
    possessive = _POSSESSIVE.match(outside.strip())
    if possessive:
        program = _strip_edges(_clean(possessive.group(1)))
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
_BAG_IGNORED = _STOPWORDS | frozenset(_TRAILING)
_LOOKS_LIKE_ADDRESS = re.compile(r"^(?:https?://)?(?:www\.)?[\w-]{2,63}(?:\.[\w-]{2,63}){0,3}\.[a-z]{2,6}/?$", re.I)


_SISTER_LAST = frozenset(tail[-1] for tail in _SISTER_TAILS)


def sister_base(normalized: str) -> str:
    """The name without a sister-organization tail ("free press action" → "free press"), or ''."""
    words = normalized.split()
    if not words or words[-1] not in _SISTER_LAST:
        return ""
    for tail in _SISTER_TAILS:
        if len(words) > len(tail) + 0 and words[-len(tail):] == tail:
            base = words[: -len(tail)]
            while base and base[-1] in _STOPWORDS:
                base = base[:-1]
            # One short word left is too little to say two organizations are related ("Free Action").
            if len(base) >= 2 or (len(base) == 1 and len(base[0]) >= 6):
                return " ".join(base)
    return ""


def _sister_base_of_acronym(normalized: str) -> str:
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
    word = _clean(text)
    return bool(word) and " " not in word and len(word) <= 12


@dataclass(frozen=True)
class Match:
    """The organization a name matched (None: no match), how sure we are (0–1), and how it was found.

    `applied` says whether callers may use the match without a person looking at it; a Match with an
    organization_id but applied False is a proposal for the review queue.
    """

    organization_id: int | None
    confidence: float
    method: str
    candidates: tuple[tuple[int, float], ...] = field(default=(), compare=False)
    # Why each candidate was proposed ("sister fund of …", "same words", "acronym", "website", "shares words").
    reasons: tuple[tuple[int, str], ...] = field(default=(), compare=False)

    def reason_for(self, org_id: int | None) -> str:
        """The reason a candidate was proposed ('' when none was recorded)."""
        return next((reason for i, reason in self.reasons if i == org_id), "")

    @property
    def applied(self) -> bool:
        """True when the match is trusted enough to apply without review."""
        return self.organization_id is not None and self.confidence >= APPLY_THRESHOLD

    @property
    def action(self) -> str:
        """matched (apply), review (a proposal or a tie) or new (nothing close)."""
        if self.method == "empty":
            return "skipped"
        if self.applied:
            return "matched"
        return "review" if self.organization_id is not None or self.candidates else "new"


@dataclass
class OrgRecord:
    """What the index keeps of one organization."""

    id: int
    name: str
    normalized: str
    tokens: frozenset[str]
    parent_id: int | None
    archived: bool


class MatchIndex:
    """An in-memory index of organization names, aliases and acronyms, built once per batch."""

    def __init__(
        self,
        records: Iterable[tuple[int, str, str | None, int | None, bool]],
        aliases: Iterable[tuple[int, str]] = (),
    ):
        """Index (id, name, acronym, parent_id, archived) rows and (organization_id, alias) rows."""
        self.orgs: dict[int, OrgRecord] = {}
        self.exact: dict[str, set[int]] = defaultdict(set)
        self.compact: dict[str, set[int]] = defaultdict(set)
        self.acronyms: dict[str, set[int]] = defaultdict(set)
        # Every spelling (words sorted, for token-order-free comparison) with its organization, and word
        # postings
        # pointing into that list: fuzzy matching compares a name only with spellings sharing a rare word.
        self.key_text: list[str] = []
        self.key_sorted: list[str] = []
        self.key_org: list[int] = []
        self.postings: dict[str, set[int]] = defaultdict(set)
        self.keys: dict[int, set[str]] = defaultdict(set)
        # The same content words in any order ("Georgetown Law Center on Privacy" / "Center on Privacy at
        # Georgetown Law"), a sister organization's base name ("Free Press" for "Free Press Action Fund"), and
        # the web address a name may be written as.
        self.bags: dict[str, set[int]] = defaultdict(set)
        self.sisters: dict[str, set[int]] = defaultdict(set)
        self.domains: dict[str, set[int]] = defaultdict(set)
        for row in records:
            org_id, name, acronym, parent_id, archived = row[:5]
            website = row[5] if len(row) > 5 else None
            if website:
                domain = website_label(website)
                if domain:
                    self.domains[domain].add(org_id)
            normalized, inner = name_variants(name)
            self.orgs[org_id] = OrgRecord(
                org_id, name, normalized, frozenset(normalized.split()), parent_id, bool(archived)
            )
            self._add_name(org_id, normalized)
            for part in inner:
                if looks_like_acronym(part):
                    self.acronyms[compact(part)].add(org_id)
                else:
                    self._add_name(org_id, part)
            for part in _separated_parts(name):
                if looks_like_acronym(part):
                    self.acronyms[compact(part)].add(org_id)
                else:
                    self._add_name(org_id, part)
            if acronym and _clean(acronym):
                self.acronyms[compact(_clean(acronym))].add(org_id)
        for org_id, alias in aliases:
            if org_id in self.orgs:
                normalized, inner = name_variants(alias)
                self._add_name(org_id, normalized)
                if looks_like_acronym(alias) and alias.strip().isupper():
                    self.acronyms[compact(normalized)].add(org_id)

    def _add_name(self, org_id: int, normalized: str) -> None:
        """Index one normalised spelling of an organization."""
        if not normalized:
            return
        if normalized in self.keys[org_id]:
            return
        self.exact[normalized].add(org_id)
        self.compact[compact(normalized)].add(org_id)
        self.keys[org_id].add(normalized)
        bag = word_bag(normalized)
        if bag:
            self.bags[bag].add(org_id)
        base = sister_base(normalized)
        if base:
            self.sisters[base].add(org_id)
        position = len(self.key_text)
        self.key_text.append(normalized)
        self.key_sorted.append(" ".join(sorted(normalized.split())))
        self.key_org.append(org_id)
        for token in set(normalized.split()):
            if token not in _STOPWORDS:
                self.postings[token].add(position)

    @classmethod
    def from_database(cls) -> "MatchIndex":
        """Build the index from every organization and alias (two queries)."""
        rows = db.session.execute(
            select(
                Organization.id,
                Organization.name,
                Organization.acronym,
                Organization.parent_id,
                Organization.archived,
                Organization.website,
            )
        )
        aliases = db.session.execute(select(OrganizationAlias.organization_id, OrganizationAlias.name))
        return cls(rows, aliases)

    # --- lookup -------------------------------------------------------------------------------------------

    def _pick(self, ids: set[int], confidence: float, method: str) -> Match:
        """One id from a set of exact hits: active beats archived; a tie among several is a proposal."""
        active = sorted(i for i in ids if not self.orgs[i].archived) or sorted(ids)
        if len(active) == 1:
            return Match(active[0], confidence, method)
        # Two organizations answer to the same name: ask a person, never guess.
        return Match(
            active[0],
            min(confidence, 0.6),
            method + "-ambiguous",
            tuple((i, min(confidence, 0.6)) for i in active[:5]),
        )

    def match(self, name: str) -> Match:
        """Find the organization a written name refers to."""
        if len(name or "") > MAX_NAME:
            return Match(None, 0.0, "none")
        normalized, inner = name_variants(name or "")
        if not normalized and not inner:
            return Match(None, 0.0, "empty")
        if normalized in self.exact:
            return self._pick(self.exact[normalized], 1.0, "name")
        if normalized and compact(normalized) in self.compact:
            return self._pick(self.compact[compact(normalized)], 0.97, "compact")
        # "ACLU", "the ACLU", "S.T.O.P.": one short word after cleaning.
        if normalized and " " not in normalized and len(normalized) <= 12 and normalized in self.acronyms:
            return self._pick(self.acronyms[normalized], 0.95, "acronym")
        words = normalized.split()
        for part in _PARENS.findall(name or ""):  # "New Name (formerly Old Name)": the old name is ours
            cleaned = _strip_edges(_clean(part))
            if _FORMERLY.match(cleaned) and _FORMERLY.sub("", cleaned) in self.exact:
                return self._pick(self.exact[_FORMERLY.sub("", cleaned)], 0.95, "name")
        for part in inner:  # "Electronic Frontier Foundation (EFF)" written with another long form
            # ... but "ACLU of Texas (American Civil Liberties Union)" names an affiliate, not the parent.
            if part in self.exact and not _conflicts(words, part.split()):
                return self._pick(self.exact[part], 0.95, "name")
            if looks_like_acronym(part) and compact(part) in self.acronyms and not normalized:
                return self._pick(self.acronyms[compact(part)], 0.95, "acronym")
        if inner and normalized:
            for part in inner:
                if looks_like_acronym(part) and compact(part) in self.acronyms:
                    ids = self.acronyms[compact(part)]
                    # The long form must agree with the acronym's organization, or the acronym is someone
                    # else's.
                    # "American Civil Liberties Union of Texas (ACLU)" or "EPIC Europe (EPIC)" is not it.
                    close = {
                        i
                        for i in ids
                        if fuzz.token_sort_ratio(normalized, self.orgs[i].normalized) >= 85
                        and not _conflicts(words, self.orgs[i].normalized.split())
                        and _adds_no_words(words, self.orgs[i].normalized.split())
                    }
                    if close:
                        return self._pick(close, 0.93, "acronym+name")
        found = self._same_spelling(name or "", normalized)
        if found is not None:
            return found
        return self._propose(normalized)

    def knows(self, name: str) -> bool:
        """True when a name is an organization's name or alias up to case, punctuation and spacing (cheap: no
        fuzzy search)."""
        if len(name or "") > MAX_NAME:
            return False
        normalized = normalize_org_name(name)
        return bool(normalized) and (normalized in self.exact or compact(normalized) in self.compact)

    def _same_spelling(self, name: str, normalized: str) -> Match | None:
        """The same name written another way: its words in another order, a web address, a dash and acronym."""
        bag = word_bag(normalized)
        if bag and bag in self.bags:
            return self._pick(self.bags[bag], 0.93, "same words")
        label = website_label(name) if _LOOKS_LIKE_ADDRESS.match(name.strip()) else ""
        if label and label in self.domains:
            return self._pick(self.domains[label], 0.95, "website")
        # "Surveillance Technology Oversight Project – STOP", "AAJC - Asian Americans Advancing Justice": the
        # long part names the organization when the short part is its acronym.
        if _SEPARATOR.search(name):
            parts = [p.strip() for p in _SEPARATOR.split(_PARENS.sub(" ", name)) if p.strip()]
            if len(parts) == 2:
                for long, short in (parts, parts[::-1]):
                    if not looks_like_acronym(short) or looks_like_acronym(long):
                        continue
                    key = normalize_org_name(long)
                    ids = self.exact.get(key) or self.compact.get(compact(key)) or self.bags.get(word_bag(key))
                    if ids:
                        return self._pick(set(ids), 0.93, "name+acronym")
        return None

    def _propose(self, normalized: str) -> Match:
        """Not the same name: propose the closest organizations for review (sister funds first), or typo-level
        matches to apply."""
        fuzzy = self._fuzzy(normalized)
        if fuzzy.applied:
            return fuzzy
        scores: dict[int, float] = {}
        reasons: dict[int, str] = dict(fuzzy.reasons)
        for org_id, score in fuzzy.candidates:
            scores[org_id] = score
        # A sister fund or a parent's acronym is structural evidence: it comes before names that are only
        # spelled alike (unless one is spelled nearly the same).
        top = max(scores.values(), default=0.0)
        lead = top + 0.01 if top < 0.92 else 0.0
        for org_id, score, reason in self._sister_candidates(normalized) + self._acronym_candidates(normalized):
            scores[org_id] = max(score, lead, scores.get(org_id, 0.0) if org_id in reasons else 0.0)
            reasons[org_id] = reason
        if len(scores) < 3:
            for org_id, score in self._shared_words(normalized, exclude=set(scores), limit=3 - len(scores)):
                scores[org_id] = score
                reasons.setdefault(org_id, "shares words")
        if not scores:
            return Match(None, 0.0, "none")
        ranked = sorted(scores.items(), key=lambda item: (-item[1], item[0]))
        best_id, best = ranked[0]
        method = "sister" if reasons.get(best_id, "").startswith("sister") else "fuzzy-proposed"
        if reasons.get(best_id, "shares words") == "shares words":
            # Only loosely related names: shown to the reviewer, but nobody's proposal (a sign-on keeps none).
            best_id, method = None, "shares-words"
        return Match(
            best_id,
            min(best, APPLY_THRESHOLD - 0.01),
            method,
            tuple((org_id, round(score, 3)) for org_id, score in ranked[:5]),
            tuple((org_id, reasons.get(org_id, "shares words")) for org_id, _ in ranked[:5]),
        )

    def _sister_candidates(self, normalized: str) -> list[tuple[int, float, str]]:
        """Organizations that are this name's sister fund, action arm, foundation or network ("X" / "X Action
        Fund" / "X Education Fund"): the same coalition partner for an organizer, but never applied silently."""
        found: list[tuple[int, float, str]] = []
        base = sister_base(normalized)
        words = normalized.split()
        # "EFF Action", "NALEO Educational Fund": the base is an organization's acronym (no place to compare).
        short = _sister_base_of_acronym(normalized)
        by_acronym = [
            (org_id, 0.85, f"sister fund of {self.orgs[org_id].name}")
            for org_id in (self.acronyms.get(short, ()) if short else ())
        ]
        if base:
            for org_id in self.exact.get(base, ()):
                found.append((org_id, 0.88, f"sister fund of {self.orgs[org_id].name}"))
            for org_id in self.sisters.get(base, ()):
                found.append((org_id, 0.85, "sister fund"))
        for org_id in self.sisters.get(normalized, ()):
            found.append((org_id, 0.88, "sister fund"))
        return by_acronym + [item for item in found if not _conflicts(words, self.orgs[item[0]].normalized.split())]

    def _acronym_candidates(self, normalized: str) -> list[tuple[int, float, str]]:
        """"NAACP LDF": a word is an organization's acronym and every other word is in its name."""
        words = normalized.split()
        if not 2 <= len(words) <= 4:
            return []
        found = []
        for position, word in enumerate(words):
            rest = words[:position] + words[position + 1 :]
            for org_id in self.acronyms.get(word, ()):
                name = self.orgs[org_id].normalized.split()
                if all(_close_word(w, name) for w in rest if w not in _STOPWORDS):
                    found.append((org_id, 0.86, "acronym"))
        return found

    def _shared_words(self, normalized: str, exclude: set[int], limit: int) -> list[tuple[int, float]]:
        """The organizations sharing the most of this name's rarer words, however loosely (for review only).

        A shared word counts for more the fewer organizations use it ("Benton" over "Foundation"); only the best
        few spellings are compared letter by letter."""
        tokens = [t for t in dict.fromkeys(normalized.split()) if t not in _STOPWORDS]
        if limit <= 0 or not tokens:
            return []
        weight = {t: 1.0 / len(self.postings[t]) if t in self.postings else 1.0 for t in tokens}
        total = sum(weight.values())
        overlap: dict[int, float] = defaultdict(float)
        for token in sorted((t for t in tokens if t in self.postings), key=lambda t: len(self.postings[t])):
            posting = self.postings[token]
            if overlap and len(overlap) + len(posting) > 1500:
                break  # a word thousands of names share adds nothing worth the scan
            for position in islice(posting, 1500):
                overlap[position] += weight[token]
        best: dict[int, float] = {}
        words = normalized.split()
        for position, shared in heapq.nlargest(limit * 8, overlap.items(), key=lambda item: item[1]):
            org_id = self.key_org[position]
            if org_id in exclude:
                continue
            key = self.key_text[position]
            score = 0.6 * shared / total + 0.4 * fuzz.token_set_ratio(normalized, key) / 100
            # An affiliate or a chapter is still worth showing, below the others.
            score *= 0.5 if _conflicts(words, key.split()) else 0.8
            best[org_id] = max(best.get(org_id, 0.0), round(score, 3))
        return sorted(best.items(), key=lambda item: (-item[1], item[0]))[:limit]

    def _candidates(self, tokens: list[str]) -> set[int]:
        """Spellings sharing a rare word with the name (rarest words first, a bounded number)."""
        keyed = sorted(
            {t for t in tokens if t not in _STOPWORDS and t in self.postings},
            key=lambda t: len(self.postings[t]),
        )
        found: set[int] = set()
        for token in keyed:
            posting = self.postings[token]
            if found and len(found) + len(posting) > 4000:
                break
            found |= posting
            if len(found) >= 300:
                break
        return found

    def _fuzzy(self, normalized: str) -> Match:
        """Fuzzy match on shared words; applied only for typo-level differences, otherwise proposed."""
        if not normalized:
            return Match(None, 0.0, "none")
        tokens = normalized.split()
        positions = self._candidates(tokens)
        if not positions:
            return Match(None, 0.0, "none")
        wanted = " ".join(sorted(tokens))
        choices = {position: self.key_sorted[position] for position in positions}
        best_by_org: dict[int, float] = {}
        for _, score, position in process.extract(
            wanted, choices, scorer=fuzz.ratio, score_cutoff=PROPOSE_CUTOFF, limit=12
        ):
            org_id = self.key_org[position]
            if _conflicts(tokens, self.key_text[position].split()):
                continue
            score = max(score, fuzz.ratio(normalized, self.key_text[position]))
            best_by_org[org_id] = max(best_by_org.get(org_id, 0.0), score)
        if not best_by_org:
            return Match(None, 0.0, "none")
        scored = sorted(
            ((score, org_id) for org_id, score in best_by_org.items()), key=lambda i: (-i[0], i[1])
        )
        best_score, best_id = scored[0]
        candidates = tuple((org_id, round(score / 100, 3)) for score, org_id in scored[:5])
        runner_up = scored[1][0] if len(scored) > 1 else 0.0
        typo_only = any(_typo_only(tokens, key.split()) for key in self.keys[best_id])
        confidence = best_score / 100
        reasons = tuple((org_id, "similar spelling") for _, org_id in scored[:5])
        if typo_only and best_score >= 90 and best_score - runner_up >= 5:
            return Match(best_id, max(confidence, APPLY_THRESHOLD), "fuzzy", candidates, reasons)
        return Match(
            best_id, min(confidence * 0.95, APPLY_THRESHOLD - 0.01), "fuzzy-proposed", candidates, reasons
        )

    def name_of(self, org_id: int | None) -> str:
        """The indexed name of an organization id ('' for None)."""
        return self.orgs[org_id].name if org_id in self.orgs else ""


def _conflicts(a: list[str], b: list[str]) -> bool:
    """True when two names differ in a way that makes them different organizations.

    A place word or a number present in only one of them (an affiliate or chapter: "ACLU of Minnesota", "SEIU
    Local 32BJ"), or an "of …" tail that one has and the other lacks."""
    only_a, only_b = set(a) - set(b), set(b) - set(a)
    for word in only_a | only_b:
        if word in PLACE_WORDS or any(ch.isdigit() for ch in word):
            return True
    return any("of" in mine and "of" not in theirs for mine, theirs in ((a, b), (b, a)))


def _typo_only(a: list[str], b: list[str]) -> bool:
    """True when the names have the same words up to small spelling differences and stop words."""
    left = [w for w in a if w not in _STOPWORDS]
    right = [w for w in b if w not in _STOPWORDS]
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


def _close_word(word: str, others: list[str]) -> bool:
    """True when a word is among others, up to a small spelling difference."""
    return word in others or (len(word) >= 4 and any(fuzz.ratio(word, w) >= 80 for w in others))


def _adds_no_words(a: list[str], b: list[str]) -> bool:
    """True when every word of name a (stop words aside) is in name b, up to small spelling differences."""
    return all(_close_word(w, b) for w in a if w not in _STOPWORDS)


def match_many(names: list[str], index: MatchIndex | None = None) -> list[Match]:
    """Match many names against one index built once (from the database unless given)."""
    index = index or MatchIndex.from_database()
    return [index.match(name) for name in names]


def match_organization(name: str, index: MatchIndex | None = None) -> Match:
    """Find the organization a written name refers to (builds an index; use match_many for batches)."""
    return match_many([name], index)[0]
