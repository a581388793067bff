"""The in-memory index of organization spellings that matching searches, built once per batch.

Names, aliases, acronyms, compact and word-bag forms, sister-fund bases, web-address labels, and word postings
for the fuzzy search."""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Self

from sqlalchemy import select

from crm.extensions import db
from crm.organizations.models import Organization, OrganizationAlias
from crm.organizations.names import (
    STOPWORDS,
    clean_text,
    compact,
    looks_like_acronym,
    name_variants,
    separated_parts,
    sister_base,
    website_label,
    word_bag,
)


@dataclass
class OrgRecord:
    """What the index keeps of one organization."""

    id: int
    name: str
    normalized: str
    tokens: frozenset[str]
    parent_id: int | None
    archived: bool


class NameIndex:
    """An in-memory index of organization names, aliases and acronyms, built once per batch (searched by
    MatchIndex)."""

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
            for part in separated_parts(name):
                if looks_like_acronym(part):
                    self.acronyms[compact(part)].add(org_id)
                else:
                    self._add_name(org_id, part)
            if acronym and clean_text(acronym):
                self.acronyms[compact(clean_text(acronym))].add(org_id)
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
            if token not in STOPWORDS:
                self.postings[token].add(position)

    @classmethod
    def from_database(cls) -> Self:
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

    def name_of(self, org_id: int | None) -> str:
        """The indexed name of an organization id ('' for None)."""
        return self.orgs[org_id].name if org_id in self.orgs else ""
