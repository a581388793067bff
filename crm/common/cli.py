"""What every `crm` command shares: how it fails."""

import sys
from typing import NoReturn

import click
from flask import has_app_context

from crm.extensions import db


def fail(message: str) -> NoReturn:
    """Undo anything half-done in the session, print `Error: message` on stderr and exit with status 1."""
    if has_app_context():
        db.session.rollback()
    click.echo(f"Error: {message}", err=True)
    sys.exit(1)
