"""The `crm` command: a FlaskGroup over the app factory with Undersigned's own sub-commands."""

import os
from pathlib import Path

import click
from flask import Flask
from flask.cli import FlaskGroup, with_appcontext

from crm import make_app
from crm.common.cli import fail
from crm.exports.cli import export_group
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
        fail(str(exc))
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
            fail(f"cannot create the first admin: {exc}")
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
        fail(str(exc))
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
        fail(str(exc))
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
        fail(str(exc))

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
        fail(f"No API token #{token_id}.")
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
        fail(str(exc))
    click.echo(f"API token for {token.record.user.email} ({token.record.user.role}); it is shown only once:")
    click.echo(token.secret)


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
        fail(str(exc))
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
        fail(str(exc))
    click.echo(f"Restored {backup_file} into {path}")
