"""`crm import orgs|contacts FILE`: the import engine from the command line.

`import_group` is the `crm import` group; other features add their sub-commands to it (crm.cli registers it once).
"""

import csv
import sys
from pathlib import Path

import click
from flask.cli import with_appcontext

from crm.common.text import plural


@click.group("import")
def import_group():
    """Import spreadsheets (CSV) with a row-by-row report; nothing is half-imported."""


def _options(command):
    """The options shared by `crm import orgs` and `crm import contacts`."""
    options = [
        click.argument("file", type=click.Path(dir_okay=False, path_type=Path)),
        click.option("--dry-run", is_flag=True, help="Check every row and report; change nothing."),
        click.option("--skip-invalid", is_flag=True, help="Import the valid rows even when others have errors."),
        click.option("--on-duplicate", type=click.Choice(["skip", "fill", "overwrite"]), default="skip",
                     show_default=True, help="What to do with a row that matches an existing record."),
        click.option("--mapping", "mapping_name", help="A column mapping saved in the import wizard."),
        click.option("--accept-uncertain", is_flag=True,
                     help="Use uncertain organization matches instead of reporting them for review."),
        click.option("--create-issue-areas", is_flag=True, help="Create issue areas the file names but that "
                                                                "do not exist yet."),
        click.option("--primary", type=click.Choice(["keep", "replace"]), default="keep", show_default=True,
                     help="Contacts: a row marked primary at an organization that has another active primary "
                          "contact keeps that one (the row's contact is imported as a plain contact) or replaces "
                          "it."),
        click.option("--report", "report_path", type=click.Path(dir_okay=False, path_type=Path),
                     help="Write the row-by-row report (row,action,record,errors,organization,"
                          "organization_match) to this CSV file."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def run_cli_import(kind: str, file: Path, *, dry_run: bool, skip_invalid: bool, on_duplicate: str,
                   mapping_name: str | None, accept_uncertain: bool = False, create_issue_areas: bool = False,
                   report_path: Path | None = None, letter_slug: str | None = None, primary: str = "keep") -> None:
    """Run an import, print a summary, write the report, and exit 1 when anything was wrong."""
    from crm.imports.fields import suggest_mapping
    from crm.imports.mappings import apply_mapping, get_mapping, saved_mappings
    from crm.imports.options import ImportOptions
    from crm.imports.outcomes import REPORT_COLUMNS
    from crm.imports.reader import FileProblem, sniff
    from crm.imports.running import run_import

    if not file.is_file():
        click.echo(f"Error: {file}: no such file.", err=True)
        sys.exit(1)
    try:
        info = sniff(file)
    except FileProblem as exc:
        click.echo(f"Error: {file}: {exc}", err=True)
        sys.exit(1)
    if mapping_name:
        saved = get_mapping(kind, mapping_name)
        if saved is None:
            known = ", ".join(m.name for m in saved_mappings(kind)) or "none saved yet"
            click.echo(f"Error: no saved {kind} mapping called {mapping_name!r} ({known}).", err=True)
            sys.exit(1)
        columns = apply_mapping(saved, info.header)
    else:
        columns = suggest_mapping(kind, info.header)
    options = ImportOptions(kind=kind, columns=columns, on_duplicate=on_duplicate,
                            skip_invalid=skip_invalid, dry_run=dry_run, accept_uncertain=accept_uncertain,
                            create_issue_areas=create_issue_areas, letter_slug=letter_slug,
                            primary=primary)
    report_file = writer = None
    if report_path is not None:
        try:
            report_file = open(report_path, "w", encoding="utf-8", newline="")  # noqa: SIM115
        except OSError as exc:
            click.echo(f"Error: cannot write {report_path}: {exc.strerror}", err=True)
            sys.exit(1)
        writer = csv.writer(report_file, lineterminator="\n")
        writer.writerow(REPORT_COLUMNS)
    shown = 0

    def on_row(outcome, cells):
        nonlocal shown
        if writer is not None:
            from crm.exports.rows import safe_cell

            writer.writerow([safe_cell(v) for v in outcome.as_report_row()])
        if outcome.errors and shown < 20:
            click.echo(f"row {outcome.row}: {outcome.action}: {outcome.error_text}", err=True)
            shown += 1

    try:
        result = run_import(file, options, filename=file.name, on_row=on_row, info=info)
    finally:
        if report_file is not None:
            report_file.close()
    for problem in result.problems:
        click.echo(f"Error: {problem}", err=True)
    for note in result.notes:
        click.echo(note)
    click.echo(f"{plural(result.rows, 'row')} ({result.encoding}, {result.delimiter}-separated): {result.summary}.")
    if result.new_organizations:
        click.echo(f"{result.new_organizations_text}.")
    if result.committed:
        click.echo(f"Imported (import {result.batch_id}; undo it on the Imports page).")
    elif dry_run and not result.problems:
        click.echo("Dry run: nothing was changed.")
    else:
        click.echo("Nothing was imported." + ("" if result.problems else
                                               " Fix the rows above, or use --skip-invalid to import the valid ones."))
    if result.problems or (result.errors and not skip_invalid):
        sys.exit(1)


@import_group.command("orgs")
@_options
@with_appcontext
def import_orgs(file, **kwargs):
    """Import organizations from a CSV file (matched by name with the organization matcher)."""
    run_cli_import("orgs", file, **kwargs)


@import_group.command("contacts")
@_options
@with_appcontext
def import_contacts(file, **kwargs):
    """Import contacts from a CSV file (matched by email; their organization matched or created)."""
    run_cli_import("contacts", file, **kwargs)


@import_group.command("sweep")
@with_appcontext
def sweep_uploads():
    """Delete unfinished uploads older than a day and import reports past CRM_IMPORT_REPORT_DAYS."""
    from flask import current_app

    from crm.imports.uploads import sweep

    folder = Path(current_app.instance_path) / "imports"
    files, freed = sweep(folder, report_days=int(current_app.config.get("CRM_IMPORT_REPORT_DAYS", 90)))
    click.echo(f"Deleted {plural(files, 'file')} ({freed / (1024 * 1024):.1f} MB) from {folder}.")
