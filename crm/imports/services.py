"""Imports: one engine for the wizard, `crm import` and POST /api/v1/imports.

The engine reads a file row by row (crm.imports.reader), checks every cell (crm.imports.fields), decides each
row's outcome against the database in chunks, and writes in the session's one transaction: committed at the end
when there was no error (or the user chose to import the valid rows), rolled back otherwise. A dry run (the
wizard's preview) takes the same decisions without writing anything: the records it would create get ids of
their own (negative, never stored) and stay in memory, the changes it would make to existing records stay in the
session, unflushed, until the rollback at the end. So a preview only reads, and on SQLite never holds the
database's one write lock (a 50 MB preview held it for 40 s, and every other write in the app failed meanwhile).
Every record an import creates or changes is tagged with its ImportBatch (ImportChange rows), which is what undo
reads.

Rules: contacts are the same person when their normalized emails are equal; organizations are matched with
crm.organizations.matching (a match at 0.9 or more is the same organization, a weaker one needs the user's
confirmation and is otherwise reported as 'review'); an import never touches suppressions; an empty cell never
erases a value.
"""

import pickle
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import date, datetime
from itertools import count, islice
from pathlib import Path
from types import SimpleNamespace
from typing import NamedTuple

from sqlalchemy import delete, insert, literal, literal_column, select
from sqlalchemy.orm import selectinload

from crm.audit.services import record
from crm.common.text import fold, plural, single_line, slugify, sort_name
from crm.common.types import utcnow
from crm.contacts.models import Contact
from crm.extensions import db
from crm.imports.fields import (
    CellError,
    cell_checker,
    check_mapping,
    field_map,
    split_full_name,
)
from crm.imports.fields import org_key as normalize_org_name
from crm.imports.models import ImportBatch, ImportChange, ImportMapping
from crm.imports.reader import FileProblem, SourceInfo, iter_rows, sniff
from crm.letters.models import Letter, Signature
from crm.mailmerge.models import Suppression
from crm.organizations.matching import match_organization
from crm.organizations.models import IssueArea, Organization, OrganizationAlias, organization_issue_areas

CHUNK_ROWS = 2000
SPOOL_BYTES = 4 * 1024 * 1024
CONFIDENT = 0.9
DUPLICATE_MODES = ("skip", "fill", "overwrite")
# A row making a contact primary where the organization has another active primary: keep that one (the row's
# contact is imported as a plain contact) or replace it (it stays a contact, no longer primary).
PRIMARY_MODES = ("keep", "replace")
ACTIONS = ("create", "update", "duplicate", "error", "review")
REPORT_COLUMNS = ("row", "action", "record", "errors")


class ImportError_(ValueError):
    """An import request that cannot be carried out (unknown letter, mapping, batch already undone…)."""


class RowProblem(NamedTuple):
    """What is wrong with a row: the column as the file names it, and why."""

    column: str
    message: str


class UncertainMatch(RowProblem):
    """An organization name matched without certainty: the organizer confirms it ('review'), it is not an error."""

    __slots__ = ()


@dataclass
class ImportOptions:
    """What to import and how: the column mapping (a field key or '' per column) and the user's choices."""

    kind: str
    columns: list[str]
    on_duplicate: str = "skip"
    skip_invalid: bool = False
    accept_uncertain: bool = False
    create_issue_areas: bool = False
    letter_slug: str | None = None
    dry_run: bool = False
    primary: str = "keep"

    def as_dict(self) -> dict:
        """The choices as stored on the batch."""
        return {"on_duplicate": self.on_duplicate, "skip_invalid": self.skip_invalid, "primary": self.primary,
                "accept_uncertain": self.accept_uncertain, "create_issue_areas": self.create_issue_areas,
                "letter": self.letter_slug, "columns": self.columns}


@dataclass
class RowOutcome:
    """What happened (or would happen) to one row of the file."""

    row: int
    action: str
    record: str = ""
    errors: list[tuple[str, str]] = field(default_factory=list)
    cells: list[str] | None = None
    # The record cell if nothing is committed: a created record's id is then gone (and SQLite hands it out again).
    unsaved: str = ""

    @property
    def error_text(self) -> str:
        """The row's problems in one cell: 'Column: why; Column: why'."""
        return "; ".join(f"{column}: {message}" for column, message in self.errors)

    def as_report_row(self) -> list[str]:
        """The row of the report CSV."""
        return [str(self.row), self.action, self.record, self.error_text]

    def as_dict(self) -> dict:
        """The row as JSON for the API."""
        return {"row": self.row, "action": self.action, "record": self.record,
                "errors": [{"column": c, "message": m} for c, m in self.errors]}


@dataclass
class ImportResult:
    """Counts and what happened; created + updated + skipped + errors == rows, always."""

    kind: str
    filename: str = ""
    encoding: str = ""
    delimiter: str = ""
    header: list[str] = field(default_factory=list)
    rows: int = 0
    created: int = 0
    updated: int = 0
    skipped: int = 0
    errors: int = 0
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    dry_run: bool = False
    committed: bool = False
    batch_id: int | None = None

    def count(self, outcome: RowOutcome) -> None:
        """Add one row's outcome to the counts."""
        self.rows += 1
        if outcome.action == "create":
            self.created += 1
        elif outcome.action == "update":
            self.updated += 1
        elif outcome.action == "duplicate":
            self.skipped += 1
        else:
            self.errors += 1

    def reset_counts(self) -> None:
        """Forget the counts (the file stopped being readable part-way: nothing was imported)."""
        self.rows = self.created = self.updated = self.skipped = self.errors = 0

    @property
    def counts(self) -> dict[str, int]:
        """The counts by name."""
        return {"rows": self.rows, "created": self.created, "updated": self.updated, "skipped": self.skipped,
                "errors": self.errors}

    @property
    def summary(self) -> str:
        """The counts in words: "3 created, 0 updated, 1 duplicate skipped, 2 rows with errors"."""
        return (f"{self.created} created, {self.updated} updated, {plural(self.skipped, 'duplicate')} skipped, "
                f"{plural(self.errors, 'row')} with errors")

    @property
    def ok(self) -> bool:
        """The file was readable and (unless invalid rows were skipped) every row was valid."""
        return not self.problems and not self.errors


def _jsonable(value):
    """A field value as it can be kept in an ImportChange."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def _chunks(rows: Iterator, size: int) -> Iterator[list]:
    """Consecutive lists of `size` items."""
    while True:
        chunk = list(islice(rows, size))
        if not chunk:
            return
        yield chunk


# --- organization names and issue areas ------------------------------------------------------------------------

@dataclass
class _OrgRef:
    """How a name resolved: an organization id (matched or created by this import), a doubtful match, or none."""

    state: str  # "match" | "review" | "none"
    org_id: int | None = None
    confidence: float = 0.0
    method: str = ""
    name: str = ""


class OrgResolver:
    """Organization names → organizations, each distinct name matched once.

    Names are matched before the import writes anything (prepare), so the matcher compares them with the
    organizations the user already had; names that normalize alike within the file are one organization.
    """

    def __init__(self):
        self.refs: dict[str, _OrgRef] = {}
        self.names: dict[int, str] = {}

    def prepare(self, names: Iterable[str]) -> None:
        """Match every distinct name: exact names and aliases in bulk, the rest with match_organization."""
        wanted: dict[str, str] = {}
        for name in names:
            key = normalize_org_name(name)
            if key and key not in self.refs and key not in wanted:
                wanted[key] = name
        keys = list(wanted)
        if keys and db.session.scalar(select(Organization.id).limit(1)) is None:
            # Nothing to match against (a first import into an empty database): every name is new.
            for key in keys:
                self.refs[key] = _OrgRef("none", name=wanted[key])
            return
        for start in range(0, len(keys), 500):
            part = {k: wanted[k] for k in keys[start:start + 500]}
            by_sort = {sort_name(n)[:300] for n in part.values()}
            for org_id, org_name in db.session.execute(
                    select(Organization.id, Organization.name).where(Organization.sort_name.in_(by_sort),
                                                                     Organization.archived.is_(False))):
                key = normalize_org_name(org_name)
                if key in part and key not in self.refs:
                    self.refs[key] = _OrgRef("match", org_id, 1.0, "name", org_name)
            for org_id, alias in db.session.execute(
                    select(OrganizationAlias.organization_id, OrganizationAlias.name)
                    .join(Organization).where(OrganizationAlias.normalized.in_({fold(n) for n in part.values()}),
                                              Organization.archived.is_(False))):
                key = normalize_org_name(alias)
                if key in part and key not in self.refs:
                    self.refs[key] = _OrgRef("match", org_id, 1.0, "alias")
        for key in keys:
            if key in self.refs:
                continue
            match = match_organization(wanted[key])
            if match.organization_id is None:
                self.refs[key] = _OrgRef("none", name=wanted[key])
            elif match.confidence >= CONFIDENT:
                self.refs[key] = _OrgRef("match", match.organization_id, match.confidence, match.method)
            else:
                self.refs[key] = _OrgRef("review", match.organization_id, match.confidence, match.method,
                                         wanted[key])

    def get(self, name: str) -> _OrgRef:
        """How a name resolved (prepare must have seen it)."""
        key = normalize_org_name(name)
        ref = self.refs.get(key)
        if ref is None:
            self.prepare([name])
            ref = self.refs.get(key, _OrgRef("none", name=name))
        return ref

    def created(self, name: str, org_id: int) -> None:
        """Remember an organization this import created."""
        self.refs[normalize_org_name(name)] = _OrgRef("match", org_id, 1.0, "created", name)
        self.names[org_id] = name

    def label(self, org_id: int) -> str:
        """An organization's name, for messages."""
        if org_id not in self.names:
            self.names[org_id] = db.session.scalar(select(Organization.name).where(Organization.id == org_id)) or "?"
        return self.names[org_id]


class AreaResolver:
    """Issue-area cells (slugs or names) → IssueArea ids; unknown ones created only when the user asked."""

    def __init__(self, create: bool, changes: "_Changes", new_id: Callable[[], int] | None = None):
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


class _Changes:
    """ImportChange rows for one batch, written in bulk: one row per changed record, one per chunk of created ones."""

    def __init__(self, batch_id: int | None, dry: bool = False):
        self.batch_id = batch_id
        self.dry = dry
        self.pending: list[dict] = []
        self.created_ids: dict[str, list[int]] = {}

    def created(self, entity_type: str, entity_id: int, row: int | None = None) -> None:
        """Tag a record this import created."""
        self.created_ids.setdefault(entity_type, []).append(entity_id)

    def updated(self, entity_type: str, entity_id: int, row: int, before: dict, after: dict) -> None:
        """Tag a record this import changed, with the old values of the fields it changed."""
        self.pending.append({"batch_id": self.batch_id, "entity_type": entity_type, "entity_id": entity_id,
                             "action": "update", "row": row, "ids": None,
                             "before": {k: _jsonable(v) for k, v in before.items()},
                             "after": {k: _jsonable(v) for k, v in after.items()}})

    def flush(self) -> None:
        """Write what is pending."""
        for entity_type, ids in self.created_ids.items():
            self.pending.append({"batch_id": self.batch_id, "entity_type": entity_type, "entity_id": None,
                                 "action": "create", "row": None, "ids": ids, "before": None, "after": None})
        self.created_ids = {}
        if self.dry:
            self.pending = []
        if self.pending:
            db.session.execute(insert(ImportChange.__table__), self.pending)
            self.pending = []


def _insert_returning(table, rows: list[dict], key: str, same: dict) -> dict:
    """INSERT `rows` (dicts with the same keys) plus the values `same` for every row, in one executemany; their
    new ids by the value of `key` (unique among the rows).

    SQLAlchemy batches the rows into multi-row INSERT … RETURNING statements ("insertmanyvalues") on SQLite and
    PostgreSQL alike. The rows come back in no promised order (asking for the parameters' order makes SQLite's
    dialect send one statement per row), so each id is paired with its row by `key`. The values common to all
    rows (timestamps, version) are written into the statement as literals, rendered by SQLAlchemy for the
    dialect: as bound parameters they were converted again for every row, a third of the insert's time.
    """
    if not rows:
        return {}
    dialect = db.session.get_bind().dialect
    constants = {name: literal_column(str(literal(value, table.c[name].type).compile(
        dialect=dialect, compile_kwargs={"literal_binds": True})), table.c[name].type)
        for name, value in same.items()}
    statement = insert(table).values(constants).returning(table.c[key], table.c.id)
    return dict(db.session.execute(statement, rows).all())


def _insert_orgs(rows: list[dict], now: datetime) -> list[int]:
    """Insert organizations (distinct names); their ids in the order of `rows`."""
    ids = _insert_returning(Organization.__table__, rows, "name",
                            {"archived": False, "version": 1, "created_at": now, "updated_at": now})
    return [ids[row["name"]] for row in rows]


def _merge(current: dict, incoming: dict, mode: str) -> dict:
    """The fields to change: with 'fill' only empty ones, with 'overwrite' every different one given."""
    changes = {}
    for key, new in incoming.items():
        old = current.get(key)
        if new is None or new == "" or new == old:
            continue
        if mode == "overwrite" or old in (None, "", False) or old == []:
            changes[key] = new
    return changes


# --- the engine -------------------------------------------------------------------------------------------------

class _Engine:
    """Shared row parsing and bookkeeping; subclasses decide outcomes for their kind of record."""

    kind = ""
    org_fields: tuple[str, ...] = ()

    def __init__(self, batch: ImportBatch, options: ImportOptions, info: SourceInfo):
        self.batch = batch
        self.options = options
        self.info = info
        self.fields = field_map(options.kind)
        self.columns = options.columns
        self.column_of = {key: index for index, key in enumerate(self.columns) if key}
        # (index, key, checker, required, header) of each mapped column: parse() runs for every row.
        self.mapped = [(index, key, cell_checker(self.fields[key]), self.fields[key].required, info.header[index])
                       for index, key in enumerate(self.columns) if key]
        self.dry = options.dry_run
        self.changes = _Changes(batch.id, dry=self.dry)
        self.orgs = OrgResolver()
        self._fake_ids = count(-1, -1)

    def new_id(self) -> int:
        """An id for a record a dry run would create: negative, so it never names a stored record."""
        return next(self._fake_ids)

    def flush(self) -> None:
        """Write the chunk's changes (a dry run writes nothing)."""
        if not self.dry:
            db.session.flush()
        self.changes.flush()

    def header(self, key: str) -> str:
        """The file's name for the column mapped to a field."""
        index = self.column_of.get(key)
        return self.info.header[index] if index is not None else self.fields[key].label

    def org_names(self, rows: Iterator[tuple[int, list[str]]]) -> Iterator[str]:
        """The organization names in the file's organization columns (for OrgResolver.prepare)."""
        checks = [(self.column_of[k], cell_checker(self.fields[k])) for k in self.org_fields if k in self.column_of]
        for _, cells in rows:
            for index, check in checks:
                if index < len(cells):
                    try:
                        value = check(cells[index])
                    except CellError:
                        continue
                    if value:
                        yield value

    def parse(self, cells: list[str]) -> tuple[dict, list[tuple[str, str]]]:
        """A row's values by field, and its problems by column."""
        values: dict = {}
        errors: list[tuple[str, str]] = []
        width = len(self.info.header)
        if len(cells) > width and any(cell.strip() for cell in cells[width:]):
            errors.append(("row", f"has {len(cells)} cells but the header names {width} columns."))
        count = len(cells)
        for index, key, check, required, column in self.mapped:
            try:
                value = check(cells[index] if index < count else "")
            except CellError as exc:
                errors.append((column, str(exc)))
                continue
            if value is None:
                if required:
                    errors.append((column, "is empty; every row needs one."))
                continue
            values[key] = value
        return values, errors

    def resolve_org(self, values: dict, key: str, errors: list, *, create: bool) -> _OrgRef | None:
        """The organization a row names in field `key`, or None; adds 'review' or 'unknown' problems."""
        name = values.get(key)
        if not name:
            return None
        ref = self.orgs.get(name)
        if ref.state == "review" and not self.options.accept_uncertain:
            errors.append(UncertainMatch(self.header(key), f"'{name}' may be {self.orgs.label(ref.org_id)} "
                                                           f"({ref.confidence:.0%} sure); confirm uncertain "
                                                           f"matches to use it, or correct the name."))
            return None
        if ref.state == "none" and not create:
            errors.append((self.header(key), f"no organization called '{name}'."))
            return None
        return ref

    @staticmethod
    def action_for(errors: list[tuple[str, str]]) -> str:
        """'review' when the only problem is an uncertain match, else 'error'."""
        return "review" if errors and all(isinstance(problem, UncertainMatch) for problem in errors) else "error"

    @staticmethod
    def describe(outcome: RowOutcome, entity: str, entity_id: int, label: str) -> None:
        """Name the record a row created: by its id if the import is committed, as 'new …' if not."""
        outcome.unsaved = f"new {entity} ({label}){outcome.record}"
        outcome.record = f"{entity} {entity_id} ({label}){outcome.record}"

    def create_orgs(self, names: dict[str, tuple[str, int]]) -> dict[str, int]:
        """Insert organizations that only have a name (named by contacts or signatures); key → id."""
        if not names:
            return {}
        now = utcnow()
        keys = list(names)
        rows = [{"name": single_line(names[k][0])[:300], "sort_name": sort_name(names[k][0])[:300],
                 "search_text": fold(names[k][0]), "notes": ""} for k in keys]
        ids = [self.new_id() for _ in rows] if self.dry else _insert_orgs(rows, now)
        result = {}
        for key, org_id in zip(keys, ids, strict=True):
            self.orgs.created(names[key][0], org_id)
            self.changes.created("organization", org_id, names[key][1])
            result[key] = org_id
        return result


class _ContactEngine(_Engine):
    """Contacts, matched by normalized email; their organization matched or created."""

    kind = "contacts"
    org_fields = ("organization",)
    FIELDS = ("organization_id", "first_name", "last_name", "title", "phone", "is_primary", "status", "notes")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # A dry run's new contacts by email (later rows with the same address find them here, not in the database).
        self.unsaved: dict[str, Contact] = {}
        # Each organization's active primary contact as the import goes: organization id → (email, name) or None.
        self.holders: dict[int, tuple[str, str] | None] = {}

    def process(self, chunk: list[tuple[int, list[str]]]) -> list[RowOutcome]:
        """Outcomes of a chunk of rows, written to the session."""
        parsed = []
        for row, cells in chunk:
            values, errors = self.parse(cells)
            ref = self.resolve_org(values, "organization", errors, create=True)
            parsed.append((row, values, errors, ref))
        emails = {v["email"] for _, v, e, _ in parsed if "email" in v and not e}
        existing = {c.email: c for c in db.session.scalars(select(Contact).where(Contact.email.in_(emails)))} \
            if emails else {}
        existing.update((e, self.unsaved[e]) for e in emails if e in self.unsaved)
        suppressed = set(db.session.scalars(select(Suppression.email).where(Suppression.email.in_(emails)))) \
            if emails else set()
        outcomes: list[RowOutcome] = []
        pending: dict[str, dict] = {}
        created_rows: dict[str, RowOutcome] = {}
        new_orgs: dict[str, tuple[str, int]] = {}
        updates: list[tuple[RowOutcome, Contact, dict]] = []
        mode = self.options.on_duplicate
        for row, values, errors, ref in parsed:
            outcome = RowOutcome(row, "error", errors=errors)
            outcomes.append(outcome)
            if errors:
                outcome.action = self.action_for(errors)
                continue
            data = {k: values[k] for k in ("first_name", "last_name", "title", "phone", "is_primary", "status",
                                           "notes") if k in values}
            if "full_name" in values:
                data["first_name"], data["last_name"] = split_full_name(values["full_name"])
            org_key = None
            if ref is not None and ref.state == "none":
                org_key = normalize_org_name(values["organization"])
            elif ref is not None:
                data["organization_id"] = ref.org_id
            email = values["email"]
            note = " — suppressed: stays unmailable" if email in suppressed else ""
            creates_org = False
            if email in pending:
                target = pending[email]
                changes = _merge(target, data, mode) if mode != "skip" else {}
                if org_key and mode != "skip" and (mode == "overwrite" or not target.get("_org_key")
                                                   and not target.get("organization_id")):
                    changes["_org_key"] = creates_org = org_key
                target.update(changes)
                outcome.action = "update" if changes else "duplicate"
                outcome.record = f"same address as row {created_rows[email].row}{note}"
            elif email in existing:
                contact = existing[email]
                outcome.action = "duplicate"
                outcome.record = f"contact {contact.id} ({email}){note}"
                if mode != "skip":
                    if org_key and (mode == "overwrite" or contact.organization_id is None):
                        data["_org_key"] = creates_org = org_key
                    updates.append((outcome, contact, data))
            else:
                data.update(email=email, _org_key=org_key)
                creates_org = bool(org_key)
                pending[email] = data
                created_rows[email] = outcome
                outcome.action = "create"
                outcome.record = note
            if creates_org:
                new_orgs.setdefault(org_key, (values["organization"], row))
        org_ids = self.create_orgs(new_orgs)
        for data in pending.values():
            org_key = data.pop("_org_key", None)
            if org_key:
                data["organization_id"] = org_ids.get(org_key) or self.orgs.get(org_key).org_id
        changed: dict[int, tuple[RowOutcome, Contact, dict, dict]] = {}
        for outcome, contact, data in updates:
            org_key = data.pop("_org_key", None)
            if org_key:
                data["organization_id"] = org_ids.get(org_key) or self.orgs.get(new_orgs[org_key][0]).org_id
            key = id(contact)
            current = {k: getattr(contact, k) for k in self.FIELDS}
            if key in changed:  # the same contact again in this chunk: its earlier row's changes are the base
                current.update(changed[key][3])
            row_changes = _merge(current, data, mode)
            changes = {**(changed[key][3] if key in changed else {}), **row_changes}
            original = changed[key][2] if key in changed else {k: getattr(contact, k) for k in self.FIELDS}
            changed[key] = (outcome, contact, original, changes)
            if row_changes:
                outcome.action = "update"
        with db.session.no_autoflush:  # the order of the writes below is what keeps one primary per organization
            early = self._one_primary(pending, created_rows, changed)
            for outcome, contact, original, changes in early:
                self._update(outcome, contact, original, changes)
            if early and not self.dry:
                db.session.flush()
            self._insert(pending, created_rows)
            for outcome, contact, original, changes in changed.values():
                if all(contact is not c for _, c, _, _ in early):
                    self._update(outcome, contact, original, changes)
            self.flush()
        return outcomes

    def _update(self, outcome: RowOutcome, contact: Contact, original: dict, changes: dict) -> None:
        """Apply a row's changes to an existing contact (recorded for undo)."""
        changes = {k: v for k, v in changes.items() if v != original.get(k)}
        if not changes:
            return
        for key, value in changes.items():
            setattr(contact, key, value)
        if contact.id is not None and contact.id > 0:
            self.changes.updated("contact", contact.id, outcome.row, {k: original[k] for k in changes}, changes)
        outcome.action = "update"

    @staticmethod
    def _label(first: str | None, last: str | None, email: str) -> str:
        """A contact's name for the report."""
        return f"{first or ''} {last or ''}".strip() or email

    def _holder(self, org_id: int) -> tuple[str, str] | None:
        """The organization's active primary contact as the import stands: (email, name), or None."""
        if org_id not in self.holders:
            found = db.session.execute(select(Contact.email, Contact.first_name, Contact.last_name).where(
                Contact.organization_id == org_id, Contact.is_primary.is_(True), Contact.status == "active")).first()
            self.holders[org_id] = (found[0], self._label(found[1], found[2], found[0])) if found else None
        return self.holders[org_id]

    def _one_primary(self, pending: dict[str, dict], created_rows: dict[str, RowOutcome],
                     changed: dict[int, tuple[RowOutcome, Contact, dict, dict]]) -> list:
        """Keep one active primary contact per organization, in file order, as the organizer chose (keep the one
        there is, or replace it), saying so on the row; returns the updates to write before anything else (the
        contacts that stop being an active primary somewhere: the database's unique index checks each
        statement)."""
        if not changed and not any(data.get("is_primary") for data in pending.values()):
            return []  # only new contacts, none of them primary: nothing to decide
        replace = self.options.primary == "replace"
        subjects = [(o.row, "new", email, pending[email]) for email, o in created_rows.items()]
        subjects += [(o.row, "old", c, (orig, ch)) for o, c, orig, ch in changed.values()]
        by_email = {c.email: key for key, (_, c, _, _) in changed.items()}
        early: dict[int, tuple] = {}
        for row, what, who, values in sorted(subjects, key=lambda s: s[0]):
            if what == "new":
                email, final, was = who, values, {}
                outcome = created_rows[email]
            else:
                original, changes = values
                email, final, was = who.email, {**original, **changes}, original
                outcome = changed[id(who)][0]
                # As on the contact pages: a contact who moves or leaves is no longer primary unless told so.
                moved = final.get("organization_id") != original.get("organization_id")
                if original.get("is_primary") and (moved and "is_primary" not in changes or
                                                   final.get("status") == "left"):
                    changes["is_primary"] = final["is_primary"] = False
            org_id = final.get("organization_id")
            primary = bool(final.get("is_primary")) and org_id is not None and \
                (final.get("status") or "active") == "active"
            if was.get("is_primary") and (was.get("status") or "active") == "active" and \
                    was.get("organization_id") is not None and (not primary or org_id != was["organization_id"]):
                early[id(who)] = changed[id(who)]  # stops being a primary there: written first
                if (self._holder(was["organization_id"]) or ("",))[0] == email:
                    self.holders[was["organization_id"]] = None
            if not primary:
                continue
            holder = self._holder(org_id)
            if holder is None or holder[0] == email:
                self.holders[org_id] = (email, self._label(final.get("first_name"), final.get("last_name"), email))
                continue
            org_name = self.orgs.label(org_id)
            if not replace:
                if what == "new":
                    final["is_primary"] = False
                else:
                    values[1].pop("is_primary", None)
                    if not {k: v for k, v in values[1].items() if v != values[0].get(k)}:
                        outcome.action = "duplicate"
                outcome.record += f" — {holder[1]} stays the primary contact of {org_name}"
                continue
            outcome.record += f" — replaces {holder[1]} as the primary contact of {org_name}"
            self.holders[org_id] = (email, self._label(final.get("first_name"), final.get("last_name"), email))
            if holder[0] in pending:
                pending[holder[0]]["is_primary"] = False
            elif holder[0] in by_email:
                key = by_email[holder[0]]
                changed[key][3]["is_primary"] = False
                early[key] = changed[key]
            else:
                contact = self.unsaved.get(holder[0]) or db.session.scalar(
                    select(Contact).where(Contact.email == holder[0]))
                entry = (RowOutcome(row, "update"), contact, {k: getattr(contact, k) for k in self.FIELDS},
                         {"is_primary": False})
                early[id(contact)] = entry
        return list(early.values())

    def _insert(self, pending: dict[str, dict], created_rows: dict[str, RowOutcome]):
        """Insert the chunk's new contacts in one statement."""
        if not pending:
            return
        now = utcnow()
        rows = []
        for email, data in pending.items():
            org_id = data.get("organization_id")
            rows.append({"organization_id": org_id, "first_name": data.get("first_name") or "",
                         "last_name": data.get("last_name") or "", "title": data.get("title") or "",
                         "email": email, "phone": data.get("phone") or "",
                         "is_primary": bool(data.get("is_primary")) and org_id is not None
                         and data.get("status") != "left", "status": data.get("status") or "active",
                         "notes": data.get("notes") or ""})
        if self.dry:
            ids = {}
            for row in rows:
                ids[row["email"]] = contact_id = self.new_id()
                self.unsaved[row["email"]] = Contact(id=contact_id, **row)  # never added to the session
        else:
            ids = _insert_returning(Contact.__table__, rows, "email",
                                    {"version": 1, "created_at": now, "updated_at": now})
        for email in pending:
            contact_id = ids[email]
            outcome = created_rows[email]
            self.describe(outcome, "contact", contact_id, email)
            self.changes.created("contact", contact_id, outcome.row)


class _OrgEngine(_Engine):
    """Organizations, matched by name (and alias, acronym) with the organization matcher."""

    kind = "orgs"
    org_fields = ("name", "parent")
    FIELDS = ("acronym", "org_type", "scope", "city", "state", "country", "website", "notes", "parent_id")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.areas = AreaResolver(self.options.create_issue_areas, self.changes, self.new_id if self.dry else None)
        # A dry run's new organizations by id, as plain values (later rows naming them update these).
        self.unsaved: dict[int, SimpleNamespace] = {}

    def process(self, chunk: list[tuple[int, list[str]]]) -> list[RowOutcome]:
        """Outcomes of a chunk of rows, written to the session."""
        parsed = []
        for row, cells in chunk:
            values, errors = self.parse(cells)
            ref = self.resolve_org(values, "name", errors, create=True) if "name" in values else None
            parent = self.resolve_org(values, "parent", errors, create=False)
            if parent is not None:
                values["parent_id"] = parent.org_id
            if "issue_areas" in values:
                ids, unknown = self.areas.resolve(values["issue_areas"], row)
                values["issue_areas"] = ids
                if unknown:
                    errors.append((self.header("issue_areas"),
                                   f"unknown issue area{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)} "
                                   f"(choose 'create missing issue areas' to add them)."))
            parsed.append((row, values, errors, ref))
        matched_ids = {ref.org_id for _, _, e, ref in parsed if ref is not None and ref.state != "none" and not e}
        existing = {o.id: o for o in db.session.scalars(
            select(Organization).where(Organization.id.in_(matched_ids))
            .options(selectinload(Organization.issue_areas)))} if matched_ids else {}
        mode = self.options.on_duplicate
        outcomes: list[RowOutcome] = []
        pending: dict[str, dict] = {}
        created_rows: dict[str, RowOutcome] = {}
        for row, values, errors, ref in parsed:
            outcome = RowOutcome(row, "error", errors=errors)
            outcomes.append(outcome)
            if errors:
                outcome.action = self.action_for(errors)
                continue
            key = normalize_org_name(values["name"])
            data = {k: values[k] for k in (*self.FIELDS, "issue_areas") if k in values}
            if key in pending:
                target = pending[key]
                changes = _merge(target, data, mode) if mode != "skip" else {}
                target.update(changes)
                outcome.action = "update" if changes else "duplicate"
                outcome.record = f"same organization as row {created_rows[key].row}"
            elif ref is not None and ref.state != "none":
                org = existing.get(ref.org_id) or self.unsaved.get(ref.org_id) \
                    or db.session.get(Organization, ref.org_id)
                if self._makes_cycle(org, data, mode):
                    outcome.action = "error"
                    outcome.errors.append((self.header("parent"), self._cycle_message(org, values["parent"])))
                    continue
                outcome.action, outcome.record = self._update(org, data, row, mode)
            else:
                data["name"] = values["name"]
                pending[key] = data
                created_rows[key] = outcome
                outcome.action = "create"
        self._insert(pending, created_rows)
        self.flush()
        return outcomes

    def _makes_cycle(self, org, data: dict, mode: str) -> bool:
        """Whether the parent this row would give `org` makes its parent chain come back to it: through the
        database or through this file's earlier rows (read from the records this import changed in memory)."""
        from crm.organizations.editing import makes_parent_cycle

        if mode == "skip" or "parent_id" not in _merge({"parent_id": org.parent_id}, data, mode):
            return False

        def parent_of(org_id: int) -> int | None:
            known = self.unsaved.get(org_id)
            if known is None:
                with db.session.no_autoflush:  # a dry run writes nothing, not even to read
                    known = db.session.get(Organization, org_id)
            return known.parent_id if known is not None else None

        return makes_parent_cycle(org.id, data["parent_id"], parent_of)

    @staticmethod
    def _cycle_message(org, parent_name: str) -> str:
        from crm.organizations.editing import PARENT_CYCLE

        return f"'{parent_name}' is {org.name} or one of its affiliates. {PARENT_CYCLE}"

    def _update(self, org: Organization, data: dict, row: int, mode: str) -> tuple[str, str]:
        """Apply a duplicate row to an existing organization as the user chose; (action, record)."""
        record_text = f"organization {org.id} ({org.name})"
        if mode == "skip":
            return "duplicate", record_text
        current = {k: getattr(org, k) for k in self.FIELDS}
        current["issue_areas"] = sorted(a.id for a in org.issue_areas)
        if "issue_areas" in data:
            data["issue_areas"] = sorted(data["issue_areas"])
        changes = _merge(current, data, mode)
        if not changes:
            return "duplicate", record_text
        before = {k: current[k] for k in changes}
        for key, value in changes.items():
            if key == "issue_areas" and isinstance(org, SimpleNamespace):
                org.issue_areas = [SimpleNamespace(id=area_id) for area_id in value]
            elif key == "issue_areas":
                org.issue_areas = list(db.session.scalars(select(IssueArea).where(IssueArea.id.in_(value))))
            else:
                setattr(org, key, value)
        if "acronym" in changes and isinstance(org, Organization):
            from crm.organizations.editing import refresh_search_text

            refresh_search_text(org)
        self.changes.updated("organization", org.id, row, before, changes)
        return "update", record_text

    def _insert(self, pending: dict[str, dict], created_rows: dict[str, RowOutcome]) -> None:
        """Insert the chunk's new organizations and their issue areas."""
        if not pending:
            return
        now = utcnow()
        parent_acronyms = {}
        parent_ids = {d["parent_id"] for d in pending.values() if d.get("parent_id")}
        if parent_ids:
            parent_acronyms = dict(db.session.execute(
                select(Organization.id, Organization.acronym).where(Organization.id.in_(parent_ids))).all())
        rows = []
        for data in pending.values():
            name = single_line(data["name"])[:300]
            search = [name, data.get("acronym") or "", parent_acronyms.get(data.get("parent_id")) or ""]
            rows.append({"name": name, "sort_name": sort_name(name)[:300],
                         "search_text": " | ".join(fold(p) for p in search if p),
                         **{k: data.get(k) for k in self.FIELDS if k != "notes"}, "notes": data.get("notes") or ""})
        if self.dry:
            ids = [self.new_id() for _ in rows]
            for row, org_id, data in zip(rows, ids, pending.values(), strict=True):
                self.unsaved[org_id] = SimpleNamespace(id=org_id, **row, issue_areas=[
                    SimpleNamespace(id=area_id) for area_id in data.get("issue_areas", [])])
        else:
            ids = _insert_orgs(rows, now)
        links = []
        for (key, data), org_id in zip(pending.items(), ids, strict=True):
            outcome = created_rows[key]
            self.describe(outcome, "organization", org_id, data["name"])
            self.orgs.created(data["name"], org_id)
            self.changes.created("organization", org_id, outcome.row)
            links.extend({"organization_id": org_id, "issue_area_id": a} for a in data.get("issue_areas", []))
        if links and not self.dry:
            db.session.execute(insert(organization_issue_areas), links)


class _SignatureEngine(_Engine):
    """Signatures of one letter; an organization not found is created."""

    kind = "signatures"
    org_fields = ("organization",)
    FIELDS = ("listed_name", "role", "status", "signed_at")

    def __init__(self, *args, letter: Letter, **kwargs):
        super().__init__(*args, **kwargs)
        self.letter = letter
        # A dry run's new signatures by organization id (never added to the session).
        self.unsaved: dict[int, Signature] = {}

    def process(self, chunk: list[tuple[int, list[str]]]) -> list[RowOutcome]:
        """Outcomes of a chunk of rows, written to the session."""
        outcomes: list[RowOutcome] = []
        mode = self.options.on_duplicate
        work = []
        new_orgs: dict[str, tuple[str, int]] = {}
        for row, cells in chunk:
            values, errors = self.parse(cells)
            if values.get("letter") and values["letter"] != self.letter.slug:
                errors.append((self.header("letter"), f"is '{values['letter']}', not the letter being imported "
                                                      f"({self.letter.slug})."))
            ref = self.resolve_org(values, "organization", errors, create=True)
            outcome = RowOutcome(row, self.action_for(errors) if errors else "create", errors=errors)
            outcomes.append(outcome)
            if not errors:
                if ref.state == "none":
                    new_orgs.setdefault(normalize_org_name(values["organization"]), (values["organization"], row))
                work.append((outcome, values))
        self.create_orgs(new_orgs)
        org_ids = {self.orgs.get(v["organization"]).org_id for _, v in work}
        existing = {s.organization_id: s for s in db.session.scalars(
            select(Signature).where(Signature.letter_id == self.letter.id,
                                    Signature.organization_id.in_(org_ids)))} if org_ids else {}
        existing.update((org_id, self.unsaved[org_id]) for org_id in org_ids if org_id in self.unsaved)
        created: list[tuple[RowOutcome, Signature]] = []
        for outcome, values in work:
            org_id = self.orgs.get(values["organization"]).org_id
            data = {"listed_name": values.get("listed_as"), "role": values.get("role"),
                    "status": values.get("status"), "signed_at": values.get("signed_at")}
            data = {k: v for k, v in data.items() if v is not None}
            signature = existing.get(org_id)
            if signature is None:
                signature = Signature(letter_id=self.letter.id, organization_id=org_id,
                                      listed_name=single_line(data.get("listed_name") or values["organization"]),
                                      role=data.get("role", "signatory"), status=data.get("status", "confirmed"),
                                      signed_at=data.get("signed_at") or utcnow(), source="import")
                if self.dry:
                    signature.id = self.unsaved_id(org_id, signature)
                else:
                    db.session.add(signature)
                existing[org_id] = signature
                created.append((outcome, signature))
                continue
            outcome.record = f"signature of {self.orgs.label(org_id)}"
            current = {k: getattr(signature, k) for k in self.FIELDS}
            changes = _merge(current, data, mode) if mode != "skip" else {}
            if signature.id is None or signature.id < 0 or not changes:
                outcome.action = "duplicate" if not changes else "update"
                for key, value in changes.items():
                    setattr(signature, key, value)
                continue
            for key, value in changes.items():
                setattr(signature, key, value)
            self.changes.updated("signature", signature.id, outcome.row, {k: current[k] for k in changes}, changes)
            outcome.action = "update"
        if not self.dry:
            db.session.flush()
        for outcome, signature in created:
            self.describe(outcome, "signature", signature.id, self.orgs.label(signature.organization_id))
            self.changes.created("signature", signature.id, outcome.row)
        self.changes.flush()
        return outcomes

    def unsaved_id(self, org_id: int, signature: Signature) -> int:
        """Keep a dry run's new signature for the rows after it; its id."""
        self.unsaved[org_id] = signature
        return self.new_id()


class _Outcomes:
    """Row outcomes on their way to on_row, in file order.

    A dry run's go out at once. A real run's wait in a temporary file (memory stays flat in file size) until the
    run is committed or rolled back: only then is it known whether a created record may be named by its id.
    """

    def __init__(self, on_row: Callable[[RowOutcome, list[str]], None] | None, hold: bool):
        self.on_row = on_row
        # Closed by close(), which run_import calls in a finally.
        self.spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) if on_row and hold else None  # noqa: SIM115

    def add(self, outcomes: list[RowOutcome], cells_by_row: dict[int, list[str]]) -> None:
        """A chunk's outcomes."""
        if self.spool is not None:
            pickle.dump([(o.row, o.action, o.record, o.errors, o.unsaved, cells_by_row[o.row]) for o in outcomes],
                        self.spool)
        elif self.on_row is not None:
            for outcome in outcomes:
                outcome.record = outcome.unsaved or outcome.record
                self.on_row(outcome, cells_by_row[outcome.row])

    def release(self, saved: bool) -> None:
        """Send what was held, naming created records by id only when they were `saved`."""
        if self.spool is None:
            return
        self.spool.seek(0)
        while True:
            try:
                chunk = pickle.load(self.spool)  # noqa: S301 (our own temporary file)
            except EOFError:
                break
            for row, action, text, errors, unsaved, cells in chunk:
                self.on_row(RowOutcome(row, action, text if saved else unsaved or text, errors), cells)

    def close(self) -> None:
        """Drop the temporary file."""
        if self.spool is not None:
            self.spool.close()


def run_import(path: Path, options: ImportOptions, *, filename: str = "", user_id: int | None = None,
               on_row: Callable[[RowOutcome, list[str]], None] | None = None,
               info: SourceInfo | None = None) -> ImportResult:
    """Import a file in one transaction (or preview it with dry_run); never raises for bad input.

    `on_row(outcome, cells)` sees every row's outcome in file order (to write a report, to show a preview); a real
    run's outcomes come once it has been committed or rolled back, so that a report never names an id that was
    rolled back.
    """
    result = ImportResult(kind=options.kind, filename=filename, dry_run=options.dry_run)
    if options.on_duplicate not in DUPLICATE_MODES:
        result.problems.append(f"on duplicate must be one of: {', '.join(DUPLICATE_MODES)}.")
        return result
    if options.primary not in PRIMARY_MODES:
        result.problems.append(f"primary must be one of: {', '.join(PRIMARY_MODES)}.")
        return result
    try:
        info = info or sniff(path)
    except FileProblem as exc:
        result.problems.append(str(exc))
        return result
    result.encoding, result.delimiter, result.header = info.encoding_label, info.delimiter_label, info.header
    columns = (list(options.columns) + [""] * len(info.header))[:len(info.header)]
    options.columns = columns
    result.problems.extend(check_mapping(options.kind, info.header, columns))
    letter = None
    if options.kind == "signatures":
        letter = db.session.scalar(select(Letter).where(Letter.slug == (options.letter_slug or "")))
        if letter is None:
            result.problems.append(f"Choose the letter these signatures belong to (unknown letter "
                                   f"'{options.letter_slug or ''}').")
    if result.problems:
        return result
    ignored = [info.header[i] for i, key in enumerate(columns) if not key]
    if ignored:
        result.notes.append(f"Ignored column{'s' if len(ignored) > 1 else ''}: {', '.join(ignored)}.")
    outcomes = _Outcomes(on_row, hold=not options.dry_run)
    try:
        return _run(path, options, info, letter, result, outcomes, filename, user_id)
    finally:
        outcomes.close()


def _run(path: Path, options: ImportOptions, info: SourceInfo, letter: Letter | None, result: ImportResult,
         outcomes: _Outcomes, filename: str, user_id: int | None) -> ImportResult:
    """run_import once the file and the options are known to be usable."""
    try:
        batch = ImportBatch(kind=options.kind, filename=single_line(filename)[:255], user_id=user_id,
                            options=options.as_dict(), letter_id=letter.id if letter else None)
        if not options.dry_run:
            db.session.add(batch)
            db.session.flush()
        engine_class = {"orgs": _OrgEngine, "contacts": _ContactEngine, "signatures": _SignatureEngine}[options.kind]
        engine = engine_class(batch, options, info, **({"letter": letter} if letter else {}))
        # A dry run changes existing records only in the session: nothing may flush them to the database.
        with db.session.no_autoflush if options.dry_run else nullcontext():
            engine.orgs.prepare(engine.org_names(iter_rows(path, info)))
            for chunk in _chunks(iter_rows(path, info), CHUNK_ROWS):
                processed = engine.process(chunk)
                for outcome in processed:
                    result.count(outcome)
                outcomes.add(processed, dict(chunk))
    except FileProblem as exc:
        db.session.rollback()
        outcomes.release(saved=False)
        result.reset_counts()
        result.problems.append(f"{exc} Nothing was imported.")
        return result
    except Exception:
        db.session.rollback()
        raise
    if result.rows == 0:
        db.session.rollback()
        result.problems.append("The file has a header row but no data rows.")
        return result
    if options.dry_run or (result.errors and not options.skip_invalid):
        db.session.rollback()
        outcomes.release(saved=False)
        return result
    batch.rows, batch.created, batch.updated = result.rows, result.created, result.updated
    batch.skipped, batch.errors = result.skipped, result.errors
    record("import", "import_batch", batch.id, user_id=user_id,
           summary=f"Imported {options.kind} from {batch.filename or 'a file'}: {result.summary} skipped.")
    db.session.commit()
    result.committed, result.batch_id = True, batch.id
    outcomes.release(saved=True)
    return result


# --- undo -------------------------------------------------------------------------------------------------------

_MODELS = {"contact": Contact, "organization": Organization, "signature": Signature, "issue_area": IssueArea}


def _restore_value(entity_type: str, key: str, value):
    """A value from ImportChange.before as the model's attribute wants it."""
    if key == "signed_at" and value:
        return datetime.fromisoformat(value)
    return value


def created_ids(batch_id: int, entity_type: str) -> list[int]:
    """The ids of the records of one type an import created."""
    ids: list[int] = []
    for part in db.session.scalars(select(ImportChange.ids).where(ImportChange.batch_id == batch_id,
                                                                  ImportChange.entity_type == entity_type,
                                                                  ImportChange.action == "create")):
        ids.extend(part or [])
    return ids


def _parts(ids: list[int], size: int = 1000) -> Iterator[list[int]]:
    """ids in lists of `size` (for IN clauses)."""
    for start in range(0, len(ids), size):
        yield ids[start:start + size]


def undo_blockers(batch: ImportBatch) -> list[str]:
    """Why an import cannot be undone safely (records made since depend on what it created), or []."""
    orgs = created_ids(batch.id, "organization")
    if not orgs:
        return []
    problems = []
    for label, model, entity_type in (("contact", Contact, "contact"), ("signature", Signature, "signature")):
        ours = set(created_ids(batch.id, entity_type))
        foreign = sum(1 for part in _parts(orgs) for record_id in db.session.scalars(
            select(model.id).where(model.organization_id.in_(part))) if record_id not in ours)
        if foreign:
            problems.append(f"{foreign} {label}(s) added since belong to organizations this import created.")
    return problems


def undo_import(batch_id: int, user_id: int | None = None) -> ImportBatch:
    """Undo a committed import in one transaction: restore changed fields, delete created records."""
    batch = db.session.get(ImportBatch, batch_id)
    if batch is None:
        raise ImportError_("No such import.")
    if batch.status != "committed":
        raise ImportError_("This import was already undone.")
    blockers = undo_blockers(batch)
    if blockers:
        raise ImportError_("This import cannot be undone: " + " ".join(blockers))
    try:
        updates = db.session.scalars(select(ImportChange).where(ImportChange.batch_id == batch.id,
                                                                ImportChange.action == "update")
                                     .order_by(ImportChange.id.desc()))
        # A contact the import demoted becomes primary again only once the import's own primaries are gone (the
        # one-active-primary index checks each statement): those restorations wait until the end.
        promotions = []
        for change in updates:
            target = db.session.get(_MODELS[change.entity_type], change.entity_id)
            if target is None:
                continue
            for key, value in (change.before or {}).items():
                if key == "issue_areas":
                    target.issue_areas = list(db.session.scalars(select(IssueArea).where(IssueArea.id.in_(value))))
                elif change.entity_type == "contact" and key == "is_primary" and value:
                    promotions.append(target)
                else:
                    setattr(target, key, _restore_value(change.entity_type, key, value))
        db.session.flush()
        for entity_type in ("signature", "contact", "organization", "issue_area"):
            model = _MODELS[entity_type]
            for part in _parts(created_ids(batch.id, entity_type)):
                db.session.execute(delete(model).where(model.id.in_(part)).execution_options(
                    synchronize_session=False))
        created_contacts = set(created_ids(batch.id, "contact"))
        for target in promotions:
            if target.id not in created_contacts:  # a contact this import made and then demoted is gone
                target.is_primary = True
        batch.status, batch.undone_at = "undone", utcnow()
        record("undo", "import_batch", batch.id, user_id=user_id,
               summary=f"Undid import {batch.id} ({batch.kind}, {batch.filename}): removed {batch.created} "
                       f"created record(s), restored {batch.updated}.")
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    db.session.expire_all()
    return batch


# --- batches and saved mappings ----------------------------------------------------------------------------------

def list_batches(page: int = 1, per_page: int = 20):
    """Past imports, newest first."""
    return db.paginate(select(ImportBatch).options(selectinload(ImportBatch.user))
                       .order_by(ImportBatch.id.desc()), page=page, per_page=per_page, error_out=False)


def get_batch(batch_id: int) -> ImportBatch | None:
    """One import."""
    return db.session.get(ImportBatch, batch_id)


def saved_mappings(kind: str) -> list[ImportMapping]:
    """The saved mappings for a kind, by name."""
    return list(db.session.scalars(select(ImportMapping).where(ImportMapping.kind == kind)
                                   .order_by(ImportMapping.name)))


def get_mapping(kind: str, name: str) -> ImportMapping | None:
    """A saved mapping by name."""
    return db.session.scalar(select(ImportMapping).where(ImportMapping.kind == kind, ImportMapping.name == name))


def save_mapping(kind: str, name: str, header: list[str], columns: list[str],
                 user_id: int | None = None) -> ImportMapping:
    """Save (or replace) a named mapping: each header's field, so files with the same headers reuse it."""
    from crm.imports.fields import header_key

    name = single_line(name)[:100]
    if not name:
        raise ImportError_("Give the mapping a name.")
    mapping = get_mapping(kind, name) or ImportMapping(kind=kind, name=name, created_by_id=user_id)
    mapping.columns = {header_key(h): c for h, c in zip(header, columns, strict=False)}
    db.session.add(mapping)
    db.session.commit()
    return mapping


def apply_mapping(mapping: ImportMapping, header: list[str]) -> list[str]:
    """A saved mapping applied to a file's header (headers it does not know are ignored)."""
    from crm.imports.fields import header_key

    known = field_map(mapping.kind)
    result, taken = [], set()
    for cell in header:
        key = mapping.columns.get(header_key(cell), "")
        if key not in known or key in taken:
            key = ""
        taken.add(key)
        result.append(key)
    return result
