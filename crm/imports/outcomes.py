"""What an import reports: each row's outcome (held until the run is committed or rolled back) and the counts."""

import pickle
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import NamedTuple

from crm.common.text import plural
from crm.imports.resolving import OrgRef

SPOOL_BYTES = 4 * 1024 * 1024
ACTIONS = ("create", "update", "duplicate", "error", "review")
# The organization columns came last, so that readers of the first four read on: where each row's contact or
# signature goes, and how the file's name found it ("same name", "matched by alias", "new organization"…).
REPORT_COLUMNS = ("row", "action", "record", "errors", "organization", "organization_match")


class RowProblem(NamedTuple):
    """What is wrong with a row: the column as the file names it, and why."""

    column: str
    message: str


class UncertainMatch(RowProblem):
    """An organization name matched without certainty: the organizer confirms it ('review'), it is not an error."""

    __slots__ = ()


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
    # The organization the row's contact or signature goes to (matched, or new), if the row names one it applies.
    org: OrgRef | None = None

    @property
    def error_text(self) -> str:
        """The row's problems in one cell: 'Column: why; Column: why'."""
        return "; ".join(f"{column}: {message}" for column, message in self.errors)

    def as_report_row(self) -> list[str]:
        """The row of the report CSV."""
        org = self.org
        return [str(self.row), self.action, self.record, self.error_text, org.name if org else "",
                org.how if org else ""]

    def as_dict(self) -> dict:
        """The row as JSON for the API."""
        return {"row": self.row, "action": self.action, "record": self.record,
                "errors": [{"column": c, "message": m} for c, m in self.errors],
                "organization": self.org.as_dict() if self.org else None}


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
    # Organizations created (or, in a dry run, to be created) for the contacts or signatures naming them.
    new_organizations: int = 0
    new_organization_names: list[str] = field(default_factory=list)

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
        self.rows = self.created = self.updated = self.skipped = self.errors = self.new_organizations = 0
        self.new_organization_names = []

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
    def new_organizations_text(self) -> str:
        """The organizations the import creates for its rows: "2 new organizations: Mijente, Upturn"."""
        names = self.new_organization_names
        more = ", …" if self.new_organizations > len(names) else ""
        return f"{plural(self.new_organizations, 'new organization')}: {', '.join(names)}{more}" if names \
            else plural(self.new_organizations, "new organization")

    @property
    def ok(self) -> bool:
        """The file was readable and (unless invalid rows were skipped) every row was valid."""
        return not self.problems and not self.errors


class Outcomes:
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
            pickle.dump([(o.row, o.action, o.record, o.errors, o.unsaved, o.org, cells_by_row[o.row])
                         for o in outcomes], self.spool)
        elif self.on_row is not None:
            for outcome in outcomes:
                outcome.record = outcome.unsaved or outcome.record
                self.on_row(outcome, cells_by_row[outcome.row])

    def release(self, saved: bool) -> None:
        """Send what was held, naming created records by id only when they were `saved`."""
        if self.spool is None:
            return
        self.spool.seek(0)
        unstored: dict[int, OrgRef] = {}  # a new organization rolled back: its id is gone too
        while True:
            try:
                chunk = pickle.load(self.spool)  # noqa: S301 (our own temporary file)
            except EOFError:
                break
            for row, action, text, errors, unsaved, org, cells in chunk:
                if org is not None and not saved and org.is_new:
                    org = unstored.get(org.org_id) or unstored.setdefault(org.org_id, replace(org, org_id=None))
                self.on_row(RowOutcome(row, action, text if saved else unsaved or text, errors, org=org), cells)

    def close(self) -> None:
        """Drop the temporary file."""
        if self.spool is not None:
            self.spool.close()
