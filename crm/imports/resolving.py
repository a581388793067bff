"""Organization names and issue-area cells of an import resolved to records, each distinct value once."""

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sqlalchemy import select

from crm.common.text import fold, single_line, slugify, sort_name
from crm.extensions import db
from crm.imports.batches import Changes
from crm.imports.fields import org_key as normalize_org_name
from crm.organizations.matching import match_many
from crm.organizations.models import IssueArea, Organization, OrganizationAlias

CONFIDENT = 0.9


# How a match was found, in the words of the report; a method not named here is "matched".
MATCH_WORDS = {"alias": "matched by alias", "acronym": "matched by acronym", "acronym+name": "matched by acronym",
               "compact": "matched by name", "name": "matched by name", "fuzzy": "close match"}


@dataclass
class OrgRef:
    """How a name resolved: an organization id (matched or created by this import), a doubtful match, or none.

    `name` is the organization's name as stored (for "none", the name the file gives it). A row's outcome holds the
    ref of the organization it goes to, shared by every row naming it: the report's words come from here.
    """

    state: str  # "match" | "review" | "none"
    org_id: int | None = None
    confidence: float = 0.0
    method: str = ""
    name: str = ""

    @property
    def is_new(self) -> bool:
        """The import creates this organization."""
        return self.method == "created" or self.state == "none"

    @property
    def exact(self) -> bool:
        """The row names the organization by its own name."""
        return self.state == "match" and self.method == "name" and self.confidence >= 1

    @property
    def how(self) -> str:
        """How the row's name found it, for the report: "same name", "matched by alias", "close match 93%",
        "new organization"…"""
        if self.is_new:
            return "new organization"
        if self.exact:
            return "same name"
        if self.state == "review":
            return f"uncertain match {self.confidence:.0%}, accepted"
        words = MATCH_WORDS.get(self.method, "matched")
        return words if self.confidence >= 1 else f"{words} {self.confidence:.0%}"

    def as_dict(self) -> dict:
        """The API's view: the id only of a stored organization (a preview's new ones have none)."""
        return {"id": self.org_id if self.org_id and self.org_id > 0 else None, "name": self.name,
                "match": "new" if self.is_new else self.method, "confidence": round(self.confidence, 2),
                "new": self.is_new}


class OrgResolver:
    """Organization names → organizations, each distinct name matched once.

    Names are matched before the import writes anything (prepare), so the matcher compares them with the
    organizations the user already had; names that normalize alike within the file are one organization.
    """

    def __init__(self):
        self.refs: dict[str, OrgRef] = {}
        self.names: dict[int, str] = {}

    def prepare(self, names: Iterable[str]) -> None:
        """Match every distinct name: exact names and aliases in bulk, the rest with match_many (one index)."""
        wanted: dict[str, str] = {}
        for name in names:
            key = normalize_org_name(name)
            if key and key not in self.refs and key not in wanted:
                wanted[key] = name
        keys = list(wanted)
        if keys and db.session.scalar(select(Organization.id).limit(1)) is None:
            # Nothing to match against (a first import into an empty database): every name is new.
            for key in keys:
                self.refs[key] = OrgRef("none", name=wanted[key])
            return
        for start in range(0, len(keys), 500):
            part = {k: wanted[k] for k in keys[start:start + 500]}
            by_sort = {sort_name(n)[:300] for n in part.values()}
            for org_id, org_name in db.session.execute(
                    select(Organization.id, Organization.name).where(Organization.sort_name.in_(by_sort),
                                                                     Organization.archived.is_(False))):
                key = normalize_org_name(org_name)
                if key in part and key not in self.refs:
                    self.refs[key] = OrgRef("match", org_id, 1.0, "name", org_name)
            for org_id, alias, org_name in db.session.execute(
                    select(OrganizationAlias.organization_id, OrganizationAlias.name, Organization.name)
                    .join(Organization).where(OrganizationAlias.normalized.in_({fold(n) for n in part.values()}),
                                              Organization.archived.is_(False))):
                key = normalize_org_name(alias)
                if key in part and key not in self.refs:
                    self.refs[key] = OrgRef("match", org_id, 1.0, "alias", org_name)
        rest = [key for key in keys if key not in self.refs]
        # One matching index for all the names left (it holds every organization and alias): built per name, a
        # file naming 400 new organizations took 74 s against 5,000 organizations.
        for key, match in zip(rest, match_many([wanted[key] for key in rest]) if rest else [], strict=True):
            if match.organization_id is None:
                self.refs[key] = OrgRef("none", name=wanted[key])
            else:
                # Once per distinct name (label caches it), so that a row's outcome can name its organization.
                self.refs[key] = OrgRef("match" if match.confidence >= CONFIDENT else "review", match.organization_id,
                                        match.confidence, match.method, self.label(match.organization_id))

    def get(self, name: str) -> OrgRef:
        """How a name resolved (prepare must have seen it)."""
        key = normalize_org_name(name)
        ref = self.refs.get(key)
        if ref is None:
            self.prepare([name])
            ref = self.refs.get(key, OrgRef("none", name=name))
        return ref

    def created(self, name: str, org_id: int, stored_name: str | None = None) -> OrgRef:
        """Remember an organization this import created (named `name` in the file, `stored_name` in the CRM)."""
        ref = self.refs[normalize_org_name(name)] = OrgRef("match", org_id, 1.0, "created", stored_name or name)
        self.names[org_id] = ref.name
        return ref

    def label(self, org_id: int) -> str:
        """An organization's name, for messages."""
        if org_id not in self.names:
            self.names[org_id] = db.session.scalar(select(Organization.name).where(Organization.id == org_id)) or "?"
        return self.names[org_id]


class AreaResolver:
    """Issue-area cells (slugs or names) → IssueArea ids; unknown ones created only when the user asked."""

    def __init__(self, create: bool, changes: "Changes", new_id: Callable[[], int] | None = None):
        self.create = create
        self.changes = changes
        self.new_id = new_id  # a dry run's: areas it would create are not written
        self.ids: dict[str, int] = {}
        for area_id, slug, name in db.session.execute(select(IssueArea.id, IssueArea.slug, IssueArea.name)):
            self.ids[slug] = area_id
            self.ids.setdefault(fold(name), area_id)

    def resolve(self, values: list[str], row: int) -> tuple[list[int], list[str]]:
        """(ids, unknown names)."""
        ids, unknown = [], []
        for value in values:
            area_id = self.ids.get(value.lower()) or self.ids.get(fold(value)) or self.ids.get(slugify(value))
            if area_id is None and self.create and slugify(value):
                area = IssueArea(slug=slugify(value)[:60], name=single_line(value)[:120])
                if self.new_id is not None:
                    area.id = self.new_id()
                else:
                    db.session.add(area)
                    db.session.flush()
                self.changes.created("issue_area", area.id, row)
                area_id = self.ids[area.slug] = self.ids[fold(value)] = area.id
            if area_id is None:
                unknown.append(value)
            elif area_id not in ids:
                ids.append(area_id)
        return ids, unknown
