"""`crm export contacts`: the contacts list's filters on the command line."""

import csv

import click
from flask.cli import with_appcontext

from crm.cli import _fail, _filter_options, _open_output, audit_export


@click.command("contacts")
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
