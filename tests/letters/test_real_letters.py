"""Real published signatory blocks (tests/letters/corpus/): precision, recall and assisted recall of the matcher.

Each letter is a block as an organizer would paste it, with a truth file: its source, the organizations the
database knows for it (besides the 68 of the seed, in their own spelling, which can differ from the letter's),
and what every name in the block is. The measure, over all letters:

- precision: automatic matches that are right / all automatic matches (a sister fund matched silently, a name
  that is new, or a line that names nothing all count as wrong);
- recall: lines naming an organization in the database (by its name or a former name) matched automatically;
- assisted recall: those lines and the sister funds of known partners, matched or with the right organization
  as the first candidate proposed for review.

Run `python -m pytest tests/letters/test_real_letters.py -s` to see the table."""

import re
from dataclasses import dataclass, field
from pathlib import Path

from crm.letters.signatory_import import analyse
from crm.organizations.matching import MatchIndex
from crm.organizations.names import normalize_org_name
from tests.seed_index import seed_index_rows

CORPUS = Path(__file__).parent / "corpus"
BARS = {"precision": 0.98, "recall": 0.75, "assisted": 0.90}
_KNOWN = re.compile(r"^(?P<name>[^\[<]+?)\s*(?:\[(?P<acronym>[^\]]+)\])?\s*(?:<(?P<website>[^>]+)>)?$")


@dataclass
class Letter:
    """One corpus letter: its block, the organizations it adds to the database, and the truth per name."""

    slug: str
    text: str
    source: str
    known: list[tuple[str, str | None, str | None]] = field(default_factory=list)
    truth: dict[str, tuple[str, str]] = field(default_factory=dict)  # key → (kind, organization name)


def load_letters() -> list[Letter]:
    """Every letter of the corpus with its truth file."""
    letters = []
    for path in sorted(CORPUS.glob("*.txt")):
        letter = Letter(path.stem, path.read_text(encoding="utf-8"), "")
        for line in path.with_suffix(".truth").read_text(encoding="utf-8").splitlines():
            if line.startswith("# Source:"):
                letter.source = line.split(":", 1)[1].strip()
            elif line.startswith("# known:"):
                found = _KNOWN.match(line.split(":", 1)[1].strip())
                letter.known.append((found["name"], found["acronym"], found["website"]))
            elif line.strip() and not line.startswith("#"):
                listed, verdict = (part.strip() for part in line.split("=>"))
                if verdict == "new":
                    kind, org = "new", ""
                elif verdict.startswith("same partner: sister fund of "):
                    kind, org = "sister", verdict.removeprefix("same partner: sister fund of ")
                elif verdict.startswith("former name of "):
                    kind, org = "former", verdict.removeprefix("former name of ")
                else:
                    kind, org = "org", verdict
                letter.truth[normalize_org_name(listed)] = (kind, org)
        letters.append(letter)
    return letters


@dataclass
class Score:
    """Counts for one letter (or all)."""

    auto: int = 0
    auto_right: int = 0
    known: int = 0
    known_matched: int = 0
    assisted_total: int = 0
    assisted_right: int = 0
    misses: list[str] = field(default_factory=list)

    def add(self, other: "Score") -> None:
        """Add another letter's counts."""
        for name in ("auto", "auto_right", "known", "known_matched", "assisted_total", "assisted_right"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.misses += other.misses

    @property
    def precision(self) -> float:
        return self.auto_right / self.auto if self.auto else 1.0

    @property
    def recall(self) -> float:
        return self.known_matched / self.known if self.known else 1.0

    @property
    def assisted(self) -> float:
        return self.assisted_right / self.assisted_total if self.assisted_total else 1.0


def score_letter(letter: Letter, base_rows, base_aliases) -> Score:
    """Match one letter against the seed plus its known organizations; count against its truth."""
    rows = list(base_rows)
    names = {name: org_id for org_id, name, *_ in rows}
    for offset, (name, acronym, website) in enumerate(letter.known, start=1):
        rows.append((100_000 + offset, name, acronym, None, False, website))
        names[name] = 100_000 + offset
    index = MatchIndex(rows, base_aliases)
    score = Score()
    seen: set[str] = set()
    for c in analyse(letter.text, index):
        if c.action == "skipped":
            continue
        key = normalize_org_name(c.name)
        kind, org = letter.truth.get(key, ("extra", ""))
        assert kind == "extra" or kind in ("new", "sister") or org in names, f"{letter.slug}: unknown {org!r}"
        seen.add(key)
        wanted = names.get(org)
        if c.action == "matched":
            score.auto += 1
            right = kind in ("org", "former") and c.organization_id == wanted
            score.auto_right += right
            if not right:
                score.misses.append(f"{letter.slug}: WRONG {c.name!r} → {c.organization!r} (truth {kind} {org!r})")
        first = c.organization_id if c.action == "matched" else (c.proposals[0][0] if c.proposals else None)
        if kind in ("org", "former"):
            score.known += 1
            score.known_matched += c.action == "matched" and c.organization_id == wanted
        if kind in ("org", "former", "sister"):
            score.assisted_total += 1
            score.assisted_right += first == wanted
            if first != wanted:
                shown = c.organization or (c.proposals[0][1] if c.proposals else "—")
                score.misses.append(f"{letter.slug}: miss {c.name!r} ({c.action}, first {shown!r}; truth {org!r})")
    for key, (kind, org) in letter.truth.items():
        if key not in seen and kind in ("org", "former", "sister"):
            score.assisted_total += 1
            score.known += kind != "sister"
            score.misses.append(f"{letter.slug}: not offered {key!r} (truth {org!r})")
    return score


def test_the_corpus_is_real_and_varied():
    letters = load_letters()
    assert len(letters) >= 12
    assert all(letter.source and letter.truth for letter in letters)
    assert len({letter.source.split("/")[2] for letter in letters if "://" in letter.source}) >= 6


def test_real_letters_meet_the_bars():
    rows, aliases = seed_index_rows()
    total = Score()
    print(f"\n{'letter':42} {'auto':>5} {'prec':>6} {'known':>6} {'recall':>7} {'assisted':>9}")
    for letter in load_letters():
        score = score_letter(letter, rows, aliases)
        total.add(score)
        print(
            f"{letter.slug:42} {score.auto:5} {score.precision:6.2f} {score.known:6} {score.recall:7.2f} "
            f"{score.assisted:9.2f}"
        )
    print(
        f"{'ALL':42} {total.auto:5} {total.precision:6.2f} {total.known:6} {total.recall:7.2f} "
        f"{total.assisted:9.2f}"
    )
    print("\n".join(total.misses))
    assert total.precision >= BARS["precision"], total.misses
    assert total.recall >= BARS["recall"], total.misses
    assert total.assisted >= BARS["assisted"], total.misses
