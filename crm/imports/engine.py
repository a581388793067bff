"""The shared part of the import engines: parsing a row's cells, naming its organization, writing in bulk."""

from collections.abc import Iterator
from datetime import datetime
from itertools import count

from sqlalchemy import insert, literal, literal_column

from crm.common.text import single_line
from crm.common.types import utcnow
from crm.extensions import db
from crm.imports.batches import Changes
from crm.imports.fields import CellError, cell_checker, field_map
from crm.imports.models import ImportBatch
from crm.imports.options import ImportOptions
from crm.imports.outcomes import RowOutcome, UncertainMatch
from crm.imports.reader import SourceInfo
from crm.imports.resolving import OrgRef, OrgResolver
from crm.organizations.creation import named_organization_values
from crm.organizations.models import Organization

# How many of the organizations an import creates the summary names.
NEW_ORG_NAMES = 10


def _constants(table, same: dict) -> dict:
    """The values common to every row of a bulk INSERT, as literals SQLAlchemy renders for the dialect.

    As bound parameters they were converted again for every row (a third of the insert's time).
    """
    dialect = db.session.get_bind().dialect
    return {name: literal_column(str(literal(value, table.c[name].type).compile(
        dialect=dialect, compile_kwargs={"literal_binds": True})), table.c[name].type)
        for name, value in same.items()}


def insert_rows(table, rows: list[dict], same: dict) -> None:
    """INSERT `rows` (dicts with the same keys) plus the values `same` for every row, in one executemany."""
    if rows:
        db.session.execute(insert(table).values(_constants(table, same)), rows)


def insert_returning(table, rows: list[dict], key: str, same: dict) -> dict:
    """insert_rows, and the new ids by the value of `key` (unique among the rows).

    SQLAlchemy batches the rows into multi-row INSERT … RETURNING statements ("insertmanyvalues") on SQLite and
    PostgreSQL alike. The rows come back in no promised order (asking for the parameters' order makes SQLite's
    dialect send one statement per row), so each id is paired with its row by `key`.
    """
    if not rows:
        return {}
    statement = insert(table).values(_constants(table, same)).returning(table.c[key], table.c.id)
    return dict(db.session.execute(statement, rows).all())


def insert_orgs(rows: list[dict], now: datetime) -> list[int]:
    """Insert organizations (distinct names); their ids in the order of `rows`."""
    ids = insert_returning(Organization.__table__, rows, "name",
                           {"archived": False, "version": 1, "created_at": now, "updated_at": now})
    return [ids[row["name"]] for row in rows]


def field_changes(current: dict, incoming: dict, mode: str) -> dict:
    """The fields to change: with 'fill' only empty ones, with 'overwrite' every different one given."""
    changes = {}
    for key, new in incoming.items():
        old = current.get(key)
        if new is None or new == "" or new == old:
            continue
        if mode == "overwrite" or old in (None, "", False) or old == []:
            changes[key] = new
    return changes


class Engine:
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
        self.changes = Changes(batch.id, dry=self.dry)
        self.orgs = OrgResolver()
        # The organizations this import creates for the records it names them in (not the orgs kind's own rows),
        # counted for the summary; the first few named.
        self.new_orgs = 0
        self.new_org_names: list[str] = []
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

    def resolve_org(self, values: dict, key: str, errors: list, *, create: bool) -> OrgRef | None:
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
        rows = [named_organization_values(single_line(names[k][0])[:300]) for k in keys]
        ids = [self.new_id() for _ in rows] if self.dry else insert_orgs(rows, now)
        result = {}
        for key, org_id, row in zip(keys, ids, rows, strict=True):
            self.orgs.created(names[key][0], org_id, row["name"])
            self.changes.created("organization", org_id, names[key][1])
            result[key] = org_id
            if len(self.new_org_names) < NEW_ORG_NAMES:
                self.new_org_names.append(row["name"])
        self.new_orgs += len(keys)
        return result
