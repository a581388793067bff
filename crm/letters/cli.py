"""`crm import signatories`: match a pasted signatory block (or a whole letter) against the organizations."""

import sys
from pathlib import Path

import click
from flask import Flask
from flask.cli import with_appcontext


def _fail(message: str) -> None:
    """Print an error and exit with status 1."""
    click.echo(f"Error: {message}", err=True)
    sys.exit(1)


@click.command("signatories")
@click.argument("letter_slug")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Report what would happen; change nothing.")
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the line-by-line report (line,text,action,organization,confidence) to this CSV file.",
)
@with_appcontext
def import_signatories(letter_slug, file, dry_run, report_path):
    """Import a signatory block: one candidate organization per line; headings, addresses, prose are skipped.

    Without --dry-run, `matched` lines become confirmed signatures and `new` lines new organizations, all in
    one transaction; `review` lines are left for the letter page's import form, where a person decides."""
    from crm.letters.services import get_letter
    from crm.letters.signatory_import import analyse, apply_import, report_csv

    letter = get_letter(letter_slug)
    if letter is None:
        _fail(f"unknown letter {letter_slug!r}")
    try:
        text = file.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        _fail(f"{file}: no such file")
    except UnicodeDecodeError as exc:
        _fail(f"{file}: not UTF-8 text ({exc.reason} at byte {exc.start})")
    except OSError as exc:
        _fail(f"{file}: {exc.strerror}")
    candidates = analyse(text)
    counts = {
        action: sum(1 for c in candidates if c.action == action)
        for action in ("matched", "new", "review", "skipped")
    }
    if report_path is not None:
        try:
            report_path.write_text(report_csv(candidates), encoding="utf-8")
        except OSError as exc:
            _fail(f"cannot write {report_path}: {exc.strerror}")
    click.echo(
        f"{counts['matched']} matched, {counts['new']} new, {counts['review']} to review, "
        f"{counts['skipped']} skipped."
    )
    if dry_run:
        click.echo("Dry run: nothing was changed.")
        return
    decisions = [
        (c.name, c.organization_id if c.action == "matched" else None, c.text)
        for c in candidates
        if c.action in ("matched", "new")
    ]
    result = apply_import(letter, decisions)
    click.echo(
        f"Added {result.signatures} signatures ({result.already} already on the letter), "
        f"{result.organizations} new organizations, {result.aliases} aliases."
    )
    if counts["review"]:
        click.echo(
            f"{counts['review']} lines need a person: paste them into the import form on the letter page."
        )


def register(app: Flask) -> None:
    """Add `signatories` to the `crm import` group (creating the group when no other feature has yet)."""
    group = app.cli.commands.get("import")
    if group is None:
        group = click.Group("import", help="Import data (signatory blocks, CSV files).")
        app.cli.add_command(group)
    group.add_command(import_signatories)
