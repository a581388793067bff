"""`crm signon …`: the review queue of public sign-ons from the command line, through the same services as the
review page."""

import click
from flask.cli import with_appcontext

from crm.common.cli import fail
from crm.letters.cli import letter_or_exit, print_json


@click.group("signon")
def signon_group():
    """The review queue of public sign-ons (confirmed by mail, waiting for a person)."""


def _request(request_id: int):
    """The sign-on request, or exit 1."""
    from crm.signon.services import get_request

    return get_request(request_id) or fail(f"there is no sign-on request {request_id}")


@signon_group.command("list")
@click.option("--letter", "slug", help="Only sign-ons for this letter.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@with_appcontext
def signon_list(slug, as_json):
    """List the sign-ons waiting for review, oldest first, with the proposed organization."""
    from crm.api.signon_requests import SignOnRequestSchema
    from crm.signon.services import review_queue

    queue = review_queue(letter_or_exit(slug) if slug else None)
    if as_json:
        print_json(SignOnRequestSchema(many=True).dump(queue))
        return
    for row in queue:
        proposed = (f"{row.proposed_organization.name} ({row.proposed_organization_id}, {row.confidence:.0%})"
                    if row.proposed_organization else "a new organization")
        click.echo(f"{row.id}\t{row.letter.slug}\t{row.organization_name} <{row.email}>\tproposed: {proposed}")


@signon_group.command("accept")
@click.argument("request_id", type=int)
@click.option("--organization", "organization_id", type=int, help="Accept as this organization (id).")
@click.option("--new", "new", is_flag=True, help="Create a new organization from the sign-on.")
@with_appcontext
def signon_accept(request_id, organization_id, new):
    """Accept a sign-on as the proposed organization (or --organization ID, or --new); the signer is told."""
    from crm.signon.services import SignOnError, accept_signon

    if new and organization_id is not None:
        raise click.UsageError("give --organization or --new, not both")
    row = _request(request_id)
    if not new and organization_id is None:
        organization_id = row.proposed_organization_id
        if organization_id is None:
            fail("there is no proposed match: give --organization ID or --new")
    try:
        accept_signon(row, None if new else organization_id)
    except SignOnError as exc:
        fail(str(exc))
    click.echo(f"Accepted {row.organization_name} on {row.letter.slug}; the signer was told.")


@signon_group.command("decline")
@click.argument("request_id", type=int)
@with_appcontext
def signon_decline(request_id):
    """Decline a sign-on; the signer is told."""
    from crm.signon.services import SignOnError, reject_signon

    row = _request(request_id)
    try:
        reject_signon(row)
    except SignOnError as exc:
        fail(str(exc))
    click.echo(f"Declined {row.organization_name} on {row.letter.slug}; the signer was told.")
