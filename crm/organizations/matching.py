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
match_organization() is the one-name convenience for callers that match a single name. Names are normalised
and compared in crm.organizations.names, and indexed in crm.organizations.name_index."""

import heapq
from collections import defaultdict
from dataclasses import dataclass, field
from itertools import islice

from rapidfuzz import fuzz, process

from crm.organizations.name_index import NameIndex
from crm.organizations.names import (
    FORMERLY,
    LOOKS_LIKE_ADDRESS,
    MAX_NAME,
    PARENS,
    SEPARATOR,
    STOPWORDS,
    adds_no_words,
    clean_text,
    close_word,
    compact,
    differ_by_typos_only,
    looks_like_acronym,
    name_variants,
    names_conflict,
    normalize_org_name,
    sister_base,
    sister_base_of_acronym,
    strip_edges,
    website_label,
    word_bag,
)

# A fuzzy or ambiguous result at or above this confidence is applied; below it, it is only proposed for
# review.
APPLY_THRESHOLD = 0.90
# Fuzzy candidates scoring below this (0–100) are not even proposed.
PROPOSE_CUTOFF = 78.0


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


class MatchIndex(NameIndex):
    """The organization index with its lookups: a written name to a Match, in order of trust."""

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
        for part in PARENS.findall(name or ""):  # "New Name (formerly Old Name)": the old name is ours
            cleaned = strip_edges(clean_text(part))
            if FORMERLY.match(cleaned) and FORMERLY.sub("", cleaned) in self.exact:
                return self._pick(self.exact[FORMERLY.sub("", cleaned)], 0.95, "name")
        for part in inner:  # "Electronic Frontier Foundation (EFF)" written with another long form
            # ... but "ACLU of Texas (American Civil Liberties Union)" names an affiliate, not the parent.
            if part in self.exact and not names_conflict(words, part.split()):
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
                        and not names_conflict(words, self.orgs[i].normalized.split())
                        and adds_no_words(words, self.orgs[i].normalized.split())
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
        label = website_label(name) if LOOKS_LIKE_ADDRESS.match(name.strip()) else ""
        if label and label in self.domains:
            return self._pick(self.domains[label], 0.95, "website")
        # "Surveillance Technology Oversight Project – STOP", "AAJC - Asian Americans Advancing Justice": the
        # long part names the organization when the short part is its acronym.
        if SEPARATOR.search(name):
            parts = [p.strip() for p in SEPARATOR.split(PARENS.sub(" ", name)) if p.strip()]
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
        short = sister_base_of_acronym(normalized)
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
        return by_acronym + [item for item in found if not names_conflict(words, self.orgs[item[0]].normalized.split())]

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
                if all(close_word(w, name) for w in rest if w not in STOPWORDS):
                    found.append((org_id, 0.86, "acronym"))
        return found

    def _shared_words(self, normalized: str, exclude: set[int], limit: int) -> list[tuple[int, float]]:
        """The organizations sharing the most of this name's rarer words, however loosely (for review only).

        A shared word counts for more the fewer organizations use it ("Benton" over "Foundation"); only the best
        few spellings are compared letter by letter."""
        tokens = [t for t in dict.fromkeys(normalized.split()) if t not in STOPWORDS]
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
            score *= 0.5 if names_conflict(words, key.split()) else 0.8
            best[org_id] = max(best.get(org_id, 0.0), round(score, 3))
        return sorted(best.items(), key=lambda item: (-item[1], item[0]))[:limit]

    def _candidates(self, tokens: list[str]) -> set[int]:
        """Spellings sharing a rare word with the name (rarest words first, a bounded number)."""
        keyed = sorted(
            {t for t in tokens if t not in STOPWORDS and t in self.postings},
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
            if names_conflict(tokens, self.key_text[position].split()):
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
        typo_only = any(differ_by_typos_only(tokens, key.split()) for key in self.keys[best_id])
        confidence = best_score / 100
        reasons = tuple((org_id, "similar spelling") for _, org_id in scored[:5])
        if typo_only and best_score >= 90 and best_score - runner_up >= 5:
            return Match(best_id, max(confidence, APPLY_THRESHOLD), "fuzzy", candidates, reasons)
        return Match(
            best_id, min(confidence * 0.95, APPLY_THRESHOLD - 0.01), "fuzzy-proposed", candidates, reasons
        )


def match_many(names: list[str], index: MatchIndex | None = None) -> list[Match]:
    """Match many names against one index built once (from the database unless given)."""
    index = index or MatchIndex.from_database()
    return [index.match(name) for name in names]


def match_organization(name: str, index: MatchIndex | None = None) -> Match:
    """Find the organization a written name refers to (builds an index; use match_many for batches)."""
    return match_many([name], index)[0]
