"""Running an import: one entry point for the wizard, `crm import` and POST /api/v1/imports.

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

from collections.abc import Callable, Iterator
from contextlib import nullcontext
from itertools import islice
from pathlib import Path

from sqlalchemy import select

from crm.audit.services import record
from crm.common.text import plural, single_line
from crm.extensions import db
from crm.imports.contact_engine import ContactEngine
from crm.imports.fields import check_mapping
from crm.imports.models import ImportBatch
from crm.imports.options import DUPLICATE_MODES, PRIMARY_MODES, ImportOptions
from crm.imports.org_engine import OrgEngine
from crm.imports.outcomes import ImportResult, Outcomes, RowOutcome
from crm.imports.reader import FileProblem, SourceInfo, iter_rows, sniff
from crm.imports.signature_engine import SignatureEngine
from crm.letters.models import Letter

CHUNK_ROWS = 2000


def _chunks(rows: Iterator, size: int) -> Iterator[list]:
    """Consecutive lists of `size` items."""
    while True:
        chunk = list(islice(rows, size))
        if not chunk:
            return
        yield chunk


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
    outcomes = Outcomes(on_row, hold=not options.dry_run)
    try:
        return _run(path, options, info, letter, result, outcomes, filename, user_id)
    finally:
        outcomes.close()


def _run(path: Path, options: ImportOptions, info: SourceInfo, letter: Letter | None, result: ImportResult,
         outcomes: Outcomes, filename: str, user_id: int | None) -> ImportResult:
    """run_import once the file and the options are known to be usable."""
    try:
        batch = ImportBatch(kind=options.kind, filename=single_line(filename)[:255], user_id=user_id,
                            options=options.as_dict(), letter_id=letter.id if letter else None)
        if not options.dry_run:
            db.session.add(batch)
            db.session.flush()
        engine_class = {"orgs": OrgEngine, "contacts": ContactEngine, "signatures": SignatureEngine}[options.kind]
        engine = engine_class(batch, options, info, **({"letter": letter} if letter else {}))
        # A dry run changes existing records only in the session: nothing may flush them to the database.
        with db.session.no_autoflush if options.dry_run else nullcontext():
            engine.orgs.prepare(engine.org_names(iter_rows(path, info)))
            for chunk in _chunks(iter_rows(path, info), CHUNK_ROWS):
                processed = engine.process(chunk)
                for outcome in processed:
                    result.count(outcome)
                outcomes.add(processed, dict(chunk))
        result.new_organizations, result.new_organization_names = engine.new_orgs, engine.new_org_names
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
           summary=f"Imported {options.kind} from {batch.filename or 'a file'}: {result.summary} skipped"
                   + (f"; {plural(result.new_organizations, 'new organization')}." if result.new_organizations
                      else "."))
    db.session.commit()
    result.committed, result.batch_id = True, batch.id
    outcomes.release(saved=True)
    return result
