"""The seed's organizations as the matcher indexes them, read from the seed file: matching tests need no database.

load_seed() stores each row of seed_signatories.csv as an organization (name on one line, acronym, parent, website)
and each former name as an alias; MatchIndex.from_database() reads those back. seed_index_rows() builds the same
rows from the file alone; tests/organizations/test_matching.py checks they equal what the seeded database gives.
"""

from functools import cache

from crm.common.text import fold, single_line
from crm.organizations.matching import MatchIndex
from crm.seed import default_seed_file, former_names, read_seed_rows

Row = tuple[int, str, str | None, int | None, bool, str | None]


@cache
def seed_index_rows() -> tuple[tuple[Row, ...], tuple[tuple[int, str], ...]]:
    """(id, name, acronym, parent_id, archived, website) per seed organization, ids in file order as a fresh
    database gives them, and (organization_id, alias) per former name, as add_alias() keeps them."""
    rows = read_seed_rows(default_seed_file())
    ids = {row["name"]: number for number, row in enumerate(rows, start=1)}
    orgs = tuple(
        (ids[row["name"]], single_line(row["name"]), row.get("acronym") or None, ids.get(row.get("parent") or ""),
         False, row.get("website") or None)
        for row in rows
    )
    aliases = []
    for row in rows:
        known = {fold(single_line(row["name"]))}
        for entry in former_names(row):  # "Name <source>", checked by read_seed_rows
            name = single_line(entry.rsplit("<", 1)[0].strip())[:300]
            if fold(name) and fold(name) not in known:
                known.add(fold(name))
                aliases.append((ids[row["name"]], name))
    return orgs, tuple(aliases)


def seed_match_index() -> MatchIndex:
    """A MatchIndex of the seed's organizations and former names, as MatchIndex.from_database() builds it after
    load_seed()."""
    orgs, aliases = seed_index_rows()
    return MatchIndex(orgs, aliases)


def seed_ids() -> dict[str, int]:
    """Seed organization name → its id in seed_index_rows()."""
    return {name: org_id for org_id, name, *_ in seed_index_rows()[0]}
