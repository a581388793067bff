"""What an import reports: each row's outcome (held until the run is committed or rolled back) and the counts."""

import pickle
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

from crm.common.text import plural

SPOOL_BYTES = 4 * 1024 * 1024
ACTIONS = ("create", "update", "duplicate", "error", "review")
REPORT_COLUMNS = ("row", "action", "record", "errors")


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
