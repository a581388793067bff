"""The `crm` command: a FlaskGroup over the app factory with Undersigned's own sub-commands."""

import csv
import os
import sys
from pathlib import Path

import click
from flask import Flask
from flask.cli import FlaskGroup, with_appcontext

from crm import make_app
from crm.imports.cli import import_group
from crm.letters.cli import register as register_letter_commands
from crm.mailmerge.cli import merge_group, worker_command
from crm.signon.cli import signon_group


@click.group(cls=FlaskGroup, create_app=make_app, load_dotenv=True)
def main():
    """Undersigned, the coalition CRM. `crm run` serves it; `crm --help` lists everything."""


def register_cli(app: Flask) -> None:
    """Attach the sub-commands to the app's CLI group."""
    app.cli.add_command(seed_command)
    app.cli.add_command(user_group)
    app.cli.add_command(token_group)
    app.cli.add_command(export_group)
    app.cli.add_command(setup_command)
    app.cli.add_command(backup_command)
    app.cli.add_command(restore_command)
    app.cli.add_command(merge_group)
    app.cli.add_command(worker_command)
    app.cli.add_command(import_group)
    app.cli.add_command(signon_group)
    register_letter_commands(app)  # keep last: it adds `signatories` to an existing `import` group


def _fail(message: str) -> None:
    """Print an error and exit with status 1."""
    click.echo(f"Error: {message}", err=True)
    sys.exit(1)


@click.command("seed")
@click.option("--file", "path", type=click.Path(dir_okay=False, path_type=Path),
              help="Seed CSV (default: seed_signatories.csv).")
@with_appcontext
def seed_command(path):
    """Load the issue areas, the seed organizations and the Clearview AI letter (idempotent)."""
    from crm.seed import SeedError, load_seed

    try:
        result = load_seed(path)
    except SeedError as exc:
        _fail(str(exc))
    click.echo(f"Seed: {result.organizations} organizations, {result.signatures} signatures, "
               f"{result.issue_areas} issue areas added; letter {'created' if result.letter_created else 'present'}.")


@click.command("setup")
@with_appcontext
def setup_command():
    """What `make run` does before serving: migrate, seed an empty database, make sure an admin exists."""

    from flask_migrate import upgrade

    from crm.auth import services as accounts
    from crm.seed import database_is_empty, load_seed

    upgrade()
    if database_is_empty():
        result = load_seed()
        click.echo(f"Seeded {result.organizations} organizations and the Clearview AI letter.")
    if accounts.count_users() == 0:
        email = os.environ.get("CRM_ADMIN_EMAIL") or "admin@example.org"
        password = os.environ.get("CRM_ADMIN_PASSWORD") or None
        try:
            user, password = accounts.create_user(email, "admin", password, name="Administrator")
        except accounts.AccountError as exc:
            _fail(f"cannot create the first admin: {exc}")
        click.echo("")
        click.echo("=" * 64)
        click.echo("  First admin created (shown once; change it on the Account page):")
        click.echo(f"    email:    {user.email}")
        if os.environ.get("CRM_ADMIN_PASSWORD"):
            click.echo("    password: the one in CRM_ADMIN_PASSWORD")
        else:
            click.echo(f"    password: {password}")
        click.echo("=" * 64)
        click.echo("")


@click.group("user")
def user_group():
    """Manage users."""


@user_group.command("create")
@click.argument("email")
@click.option("--role", type=click.Choice(["admin", "organizer", "viewer"]), required=True)
@click.option("--password", help="Leave out to generate one (printed once).")
@click.option("--name", default="")
@with_appcontext
def user_create(email, role, password, name):
    """Create a user."""
    from crm.auth.services import AccountError, create_user

    try:
        user, password_used = create_user(email, role, password, name)
    except AccountError as exc:
        _fail(str(exc))
    click.echo(f"Created {user.role} {user.email}.")
    if not password:
        click.echo(f"Password: {password_used}")


@user_group.command("deactivate")
@click.argument("email")
@with_appcontext
def user_deactivate(email):
    """Deactivate a user: their sessions end and their API tokens are revoked at once."""
    _set_user_active(email, False)


@user_group.command("activate")
@click.argument("email")
@with_appcontext
def user_activate(email):
    """Reactivate a user (API tokens revoked at deactivation stay revoked)."""
    _set_user_active(email, True)


def _set_user_active(email: str, active: bool) -> None:
    """Deactivate or reactivate one user, saying what happened (nothing when they already are so)."""
    from crm.auth.services import AccountError, set_active, user_by_email

    try:
        user = user_by_email(email)
    except AccountError as exc:
        _fail(str(exc))
    if user.active == active:
        click.echo(f"{user.email} was already {'active' if active else 'deactivated'}.")
        return
    set_active(user, active)
    click.echo(f"Reactivated {user.email}." if active
               else f"Deactivated {user.email}: sessions ended, API tokens revoked.")


@click.group("token")
def token_group():
    """Manage API tokens."""


@token_group.command("list")
@click.argument("email", required=False)
@with_appcontext
def token_list(email):
    """List API tokens (id, owner, created, last used, revoked), all or one user's."""
    from crm.auth.services import AccountError, list_tokens

    try:
        tokens = list_tokens(email)
    except AccountError as exc:
        _fail(str(exc))

    def when(value) -> str:
        return value.strftime("%Y-%m-%d %H:%M") if value else "-"

    rows = [("id", "owner", "name", "prefix", "created", "last used", "revoked")]
    rows += [(str(t.id), t.user.email, t.name or "-", t.prefix, when(t.created_at), when(t.last_used_at),
              when(t.revoked_at)) for t in tokens]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    if not tokens:
        click.echo("No API tokens.")


@token_group.command("revoke")
@click.argument("token_id", type=click.IntRange(1, 2**31 - 1))
@with_appcontext
def token_revoke(token_id):
    """Revoke an API token by its id (see `crm token list`); it stops working on its next request."""
    from crm.auth.services import get_token, revoke_token

    token = get_token(token_id)
    if token is None:
        _fail(f"No API token #{token_id}.")
    if not revoke_token(token):
        click.echo(f"API token #{token_id} was already revoked.")
        return
    click.echo(f"Revoked API token #{token_id} of {token.user.email}.")


@token_group.command("create")
@click.argument("email")
@click.option("--name", default="", help="A label for the token.")
@with_appcontext
def token_create(email, name):
    """Create an API token; the token is printed alone on the last line."""
    from crm.auth.services import AccountError, create_token

    try:
        token = create_token(email, name)
    except AccountError as exc:
        _fail(str(exc))
    click.echo(f"API token for {token.record.user.email} ({token.record.user.role}); it is shown only once:")
    click.echo(token.secret)


@click.group("export")
def export_group():
    """Export data as CSV (UTF-8, header row, formula-safe)."""


def _filter_options(command):
    """The organization filter options shared by exports (the names of crm.organizations.filters)."""
    options = [
        click.option("--issue-area", "issue_area", multiple=True, help="Issue-area slug (repeatable)."),
        click.option("--match", type=click.Choice(["any", "all", "none"]), default="any"),
        click.option("--not-issue-area", "not_issue_area", multiple=True,
                     help="Issue-area slug the organization must not have (repeatable)."),
        click.option("--signed", multiple=True, help="Letter slug the organization signed (repeatable)."),
        click.option("--signed-match", "signed_match", type=click.Choice(["any", "all"]), default="all",
                     help="With several --signed: all of them (default) or any."),
        click.option("--not-signed", "not_signed", multiple=True, help="Letter slug it did not sign."),
        click.option("--min-signed", "min_signed", default="", help="Signed at least this many letters."),
        click.option("--last-signed-before", "last_signed_before", default="", help="YYYY-MM-DD"),
        click.option("--last-signed-after", "last_signed_after", default="", help="YYYY-MM-DD"),
        click.option("--never-signed", "never_signed", is_flag=True, default=False),
        click.option("--has-mailable", "has_mailable", default="", help="true or false"),
        click.option("--state", multiple=True, help="Two-letter state code (repeatable)."),
        click.option("--org-type", "org_type", multiple=True),
        click.option("--scope", multiple=True),
        click.option("--parent", default="", help="Affiliates of this organization id."),
        click.option("--archived", type=click.Choice(["exclude", "include", "only"]), default="exclude"),
        click.option("-q", "q", default="", help="Search names, acronyms and aliases."),
        click.option("-o", "--output", default="-", help="File to write; - (the default) is standard output."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _open_output(output: str):
    """A text stream for the CSV: standard output for '-', else the file (click.open_file handles both)."""
    try:
        return click.open_file(output, "w", encoding="utf-8")
    except OSError as exc:
        _fail(f"cannot write {output}: {exc.strerror}")


def audit_export(what: str) -> None:
    """Write a command-line export to the audit log, as the web downloads are, with the options given."""
    from click.core import ParameterSource

    from crm.audit.services import record
    from crm.extensions import db

    context = click.get_current_context()
    given = {name: list(value) if isinstance(value, tuple) else value for name, value in context.params.items()
             if name != "output" and context.get_parameter_source(name) != ParameterSource.DEFAULT}
    record("export", "export", None, summary=f"Exported {what} as CSV from the command line"
                                             f"{' with filters ' + str(given) if given else ''}.")
    db.session.commit()


@export_group.command("orgs")
@_filter_options
@with_appcontext
def export_orgs(output, **params):
    """Export organizations matching the filters."""
    from crm.exports import ORG_COLUMNS, org_rows
    from crm.organizations.filters import FilterError, parse_filter

    try:
        org_filter = parse_filter({k: list(v) if isinstance(v, tuple) else v for k, v in params.items()})
        rows = org_rows(org_filter)
        first = next(rows, None)  # resolves the filter's slugs before any output is written
    except FilterError as exc:
        _fail(str(exc))
    with _open_output(output) as stream:
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(ORG_COLUMNS)
        if first is not None:
            writer.writerow(first)
        writer.writerows(rows)
    audit_export("organizations")


@export_group.command("contacts")
@_filter_options
@click.option("--contact-q", "contact_q", default="", help="Search contact names and emails.")
@click.option("--primary", default="", help="true: primary contacts only; false: the others.")
@click.option("--status", type=click.Choice(["", "active", "left"]), default="")
@click.option("--mailable", default="", help="true or false")
@click.option("--suppressed", default="", help="true or false")
@click.option("--unsubscribed", default="", help="true or false")
@with_appcontext
def export_contacts(output, **params):
    """Export contacts whose organization matches the organization filters and who match their own."""
    from crm.contacts.filters import FilterError, parse_contact_filter
    from crm.exports import CONTACT_COLUMNS, contact_rows

    try:
        contact_filter = parse_contact_filter(
            {k: list(v) if isinstance(v, tuple) else v for k, v in params.items() if v not in ("", False, ())}
        )
        rows = contact_rows(contact_filter)
        first = next(rows, None)  # resolves the filter's slugs before any output is written
    except FilterError as exc:
        _fail(str(exc))
    with _open_output(output) as stream:
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(CONTACT_COLUMNS)
        if first is not None:
            writer.writerow(first)
        writer.writerows(rows)
    audit_export("contacts")


@export_group.command("signatures")
@click.option("--letter", multiple=True, help="Letter slug (repeatable); all letters when left out.")
@_filter_options
@with_appcontext
def export_signatures(letter, output, **params):
    """Export signatures, letter by letter, leads first; the organization filters choose whose."""
    from crm.exports import SIGNATURE_COLUMNS, signature_rows
    from crm.letters.queries import get_letter

    for slug in letter:
        if get_letter(slug) is None:
            _fail(f"Unknown letter: {slug}.")
    org_filter = _filter_or_fail(params)
    with _open_output(output) as stream:
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(SIGNATURE_COLUMNS)
        writer.writerows(signature_rows(list(letter), org_filter))
    audit_export("signatures")


@click.command("backup")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Backup file (default: undersigned-TIMESTAMP.sqlite3 next to the database).")
@with_appcontext
def backup_command(output):
    """Take a consistent snapshot of the SQLite database (safe while the app is running)."""
    from flask import current_app

    from crm.backup import BackupError, backup

    try:
        path = backup(current_app.config["SQLALCHEMY_DATABASE_URI"], output)
    except BackupError as exc:
        _fail(str(exc))
    click.echo(f"Backup written to {path}")


@click.command("restore")
@click.argument("backup_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@with_appcontext
def restore_command(backup_file, yes):
    """Replace the SQLite database with a backup; refuses while the app, a worker or another command uses it."""
    from flask import current_app

    from crm.backup import BackupError, restore
    from crm.extensions import db

    if not yes:
        click.confirm("This replaces the current database with the backup. Continue?", abort=True)
    db.session.remove()
    db.engine.dispose()
    try:
        path = restore(current_app.config["SQLALCHEMY_DATABASE_URI"], backup_file)
    except BackupError as exc:
        _fail(str(exc))
    click.echo(f"Restored {backup_file} into {path}")


def _filter_or_fail(params: dict):
    """The organization filter from export options, or exit 1 naming the bad option."""
    from crm.organizations.filters import FilterError, conditions, parse_filter

    try:
        org_filter = parse_filter({k: list(v) if isinstance(v, tuple) else v for k, v in params.items()})
        conditions(org_filter)  # resolves the slugs: an unknown one fails before any output
    except FilterError as exc:
        _fail(str(exc))
    return org_filter


@export_group.command("matrix")
@_filter_options
@with_appcontext
def export_matrix(output, **params):
    """Export the participation matrix: organizations × letters (signed, declined, pending or blank)."""
    from crm.exports import matrix_header, matrix_letters, matrix_rows

    org_filter = _filter_or_fail(params)
    letters = matrix_letters()
    with _open_output(output) as stream:
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(matrix_header(letters))
        writer.writerows(matrix_rows(org_filter, letters))
    audit_export("participation matrix")


@export_group.command("suppressions")
@click.option("-o", "--output", default="-")
@with_appcontext
def export_suppressions(output):
    """Export suppressed addresses."""
    from crm.exports import SUPPRESSION_COLUMNS, suppression_rows

    with _open_output(output) as stream:
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(SUPPRESSION_COLUMNS)
        writer.writerows(suppression_rows())
    audit_export("suppressions")
