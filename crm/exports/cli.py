"""`crm export`: organizations, contacts, signatures, the participation matrix and suppressions as CSV, audited."""

import csv

import click
from click.core import ParameterSource
from flask.cli import with_appcontext

from crm.audit.services import record
from crm.common.cli import fail
from crm.contacts.filters import parse_contact_filter
from crm.exports.rows import (
    CONTACT_COLUMNS,
    ORG_COLUMNS,
    SIGNATURE_COLUMNS,
    SUPPRESSION_COLUMNS,
    contact_rows,
    matrix_header,
    matrix_letters,
    matrix_rows,
    org_rows,
    signature_rows,
    suppression_rows,
)
from crm.extensions import db
from crm.letters.queries import get_letter
from crm.organizations.filters import FilterError, conditions, parse_filter


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
        fail(f"cannot write {output}: {exc.strerror}")


def audit_export(what: str) -> None:
    """Write a command-line export to the audit log, as the web downloads are, with the options given."""
    context = click.get_current_context()
    given = {name: list(value) if isinstance(value, tuple) else value for name, value in context.params.items()
             if name != "output" and context.get_parameter_source(name) != ParameterSource.DEFAULT}
    record("export", "export", None, summary=f"Exported {what} as CSV from the command line"
                                             f"{' with filters ' + str(given) if given else ''}.")
    db.session.commit()


def _filter_or_fail(params: dict):
    """The organization filter from export options, or exit 1 naming the bad option."""
    try:
        org_filter = parse_filter({k: list(v) if isinstance(v, tuple) else v for k, v in params.items()})
        conditions(org_filter)  # resolves the slugs: an unknown one fails before any output
    except FilterError as exc:
        fail(str(exc))
    return org_filter


@export_group.command("orgs")
@_filter_options
@with_appcontext
def export_orgs(output, **params):
    """Export organizations matching the filters."""
    try:
        org_filter = parse_filter({k: list(v) if isinstance(v, tuple) else v for k, v in params.items()})
        rows = org_rows(org_filter)
        first = next(rows, None)  # resolves the filter's slugs before any output is written
    except FilterError as exc:
        fail(str(exc))
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
    try:
        contact_filter = parse_contact_filter(
            {k: list(v) if isinstance(v, tuple) else v for k, v in params.items() if v not in ("", False, ())}
        )
        rows = contact_rows(contact_filter)
        first = next(rows, None)  # resolves the filter's slugs before any output is written
    except FilterError as exc:
        fail(str(exc))
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
    for slug in letter:
        if get_letter(slug) is None:
            fail(f"Unknown letter: {slug}.")
    org_filter = _filter_or_fail(params)
    with _open_output(output) as stream:
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(SIGNATURE_COLUMNS)
        writer.writerows(signature_rows(list(letter), org_filter))
    audit_export("signatures")


@export_group.command("matrix")
@_filter_options
@with_appcontext
def export_matrix(output, **params):
    """Export the participation matrix: organizations × letters (signed, declined, pending or blank)."""
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
    with _open_output(output) as stream:
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(SUPPRESSION_COLUMNS)
        writer.writerows(suppression_rows())
    audit_export("suppressions")
