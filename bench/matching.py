"""Benchmark: match 1,000 signatory lines against 20,000 generated organizations (the bar is 2 s).

Run from the repository root: `python bench/matching.py [--orgs 20000] [--lines 1000]`. The index is built
once for the batch (that time is included), as the signatory import and the CSV import do. `cpu` is the process's
own CPU time: on a shared, loaded machine the wall time says more about the neighbours than about the matcher."""

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from crm.organizations.matching import MatchIndex  # noqa: E402

_WORD_TEXT = (
    "Immigrant Rights Justice Legal Defense Privacy Technology Workers Community Alliance Coalition Network "
    "Center Project Fund Council Action Education Freedom Future Liberty Equality Solidarity Voices Youth "
    "Women Families Faith Labor Housing Health Climate Media Digital Policy Research Law Union League "
    "Society Foundation Institute Committee Partnership Collective Movement Advocates Services Initiative"
)
_PLACE_TEXT = (
    "Alabama Arizona California Colorado Florida Georgia Illinois Maryland Michigan Minnesota Nevada Ohio "
    "Oregon Texas Virginia Washington Chicago Boston Denver Seattle Oakland Miami Atlanta Detroit"
)
WORDS = tuple(_WORD_TEXT.split(" "))
PLACES = tuple(_PLACE_TEXT.split(" "))
BAR_SECONDS = 2.0


def generate_orgs(count: int, rng: random.Random) -> list[tuple[int, str, str | None, int | None, bool]]:
    """Distinct organization names built from common words (the worst case for a word index)."""
    seen: set[str] = set()
    rows = []
    while len(rows) < count:
        words = rng.sample(WORDS, rng.randint(2, 5))
        name = " ".join(words)
        if rng.random() < 0.3:
            name += f" of {rng.choice(PLACES)}"
        if rng.random() < 0.1:
            name = "The " + name
        if name in seen:
            continue
        seen.add(name)
        acronym = "".join(w[0] for w in name.split() if w[0].isupper()) if rng.random() < 0.3 else None
        rows.append((len(rows) + 1, name, acronym, None, False))
    return rows


def generate_lines(orgs, count: int, rng: random.Random) -> list[str]:
    """A mix of exact names, acronyms, typos, case changes and names that are not in the database."""
    lines = []
    for _ in range(count):
        _, name, acronym, _, _ = rng.choice(orgs)
        kind = rng.random()
        if kind < 0.4:
            lines.append(name)
        elif kind < 0.5 and acronym:
            lines.append(acronym)
        elif kind < 0.7:
            pos = rng.randrange(len(name))
            lines.append(name[:pos] + name[pos + 1 :])
        elif kind < 0.8:
            lines.append(name.upper().replace(" AND ", " & "))
        else:
            lines.append(" ".join(rng.sample(WORDS, 3)) + f" of {rng.choice(PLACES)}")
    return lines


def main() -> int:
    """Build, match, print the timing and its ratio to the bar; exit 1 when over the bar."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orgs", type=int, default=20_000)
    parser.add_argument("--lines", type=int, default=1_000)
    parser.add_argument("--seed", type=int, default=4)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    orgs = generate_orgs(args.orgs, rng)
    lines = generate_lines(orgs, args.lines, rng)
    started, cpu_started = time.perf_counter(), time.process_time()
    index = MatchIndex(orgs)
    built = time.perf_counter()
    results = [index.match(line) for line in lines]
    finished, cpu = time.perf_counter(), time.process_time() - cpu_started
    actions: dict[str, int] = {}
    for found in results:
        actions[found.action] = actions.get(found.action, 0) + 1
    total = finished - started
    print(
        f"orgs={args.orgs} lines={args.lines} index={built - started:.3f}s match={finished - built:.3f}s "
        f"total={total:.3f}s cpu={cpu:.3f}s bar={BAR_SECONDS:.1f}s ratio={total / BAR_SECONDS:.2f} "
        f"actions={actions}"
    )
    return 0 if total <= BAR_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
