"""`crm merge …` and `crm worker`."""

import json
import sys
from pathlib import Path

import click
from flask.cli import with_appcontext

from crm.common.cli import fail


def _merge(merge_id: int):
    """The merge or exit 1."""
    from crm.mailmerge import reports

    merge = reports.get_merge(merge_id)
    if merge is None:
        fail(f"there is no merge {merge_id}")
    return merge


@click.group("merge")
def merge_group():
    """Create, check, queue, send and follow mail merges."""


@merge_group.command("create")
@click.option("--name", required=True)
@click.option("--subject", required=True, help="Subject template.")
@click.option(
    "--body-file",
    "body_file",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Markdown body template (- for standard input).",
)
@click.option("--letter", default=None, help="Slug of the letter the merge promotes.")
@click.option("--segment", type=int, default=None, help="Segment id.")
@click.option("--issue-area", "issue_area", multiple=True)
@click.option("--match", type=click.Choice(["any", "all", "none"]), default="any")
@click.option("--not-issue-area", "not_issue_area", multiple=True, help="Issue-area slug it lacks (repeatable).")
@click.option("--signed", multiple=True, help="Letter slug the organization signed (repeatable).")
@click.option("--not-signed", "not_signed", multiple=True, help="Letter slug it has not signed (repeatable).")
@click.option("--state", multiple=True)
@click.option("--contacts", type=click.Choice(["primary", "all"]), default="primary")
@click.option(
    "--not-signed-after-merge",
    "after_merge",
    type=int,
    default=None,
    help="Only contacts who received this merge (add --not-signed for a reminder).",
)
@click.option("--sender", default="")
@click.option("--reply-to", "reply_to", default="")
@click.option("--throttle", type=int, default=None, help="Messages per minute.")
@with_appcontext
def merge_create(
    name,
    subject,
    body_file,
    letter,
    segment,
    issue_area,
    match,
    not_issue_area,
    signed,
    not_signed,
    state,
    contacts,
    after_merge,
    sender,
    reply_to,
    throttle,
):
    """Create a draft merge; prints its id alone on the last line."""
    from crm.mailmerge import checking, compose
    from crm.mailmerge.errors import MergeError

    try:
        body = sys.stdin.read() if str(body_file) == "-" else body_file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"cannot read {body_file}: {exc}")
    params: dict = {}
    if issue_area:
        params.update(issue_area=list(issue_area), match=match)
    if not_issue_area:
        params["not_issue_area"] = list(not_issue_area)
    if signed:
        params["signed"] = list(signed)
    if not_signed:
        params["not_signed"] = list(not_signed)
    if state:
        params["state"] = list(state)
    if after_merge and not not_signed and letter:
        params["not_signed"] = [letter]  # "recipients of M who have not signed the letter"
    data = {
        "name": name,
        "subject": subject,
        "body": body,
        "letter": letter,
        "sender": sender,
        "reply_to": reply_to,
        "throttle_per_minute": throttle,
        "audience": {
            "segment_id": segment,
            "filter": params,
            "contacts": contacts,
            "after_merge": after_merge,
        },
    }
    try:
        merge = compose.create_merge(data)
    except MergeError as exc:
        for field, messages in exc.errors.items():
            for message in messages:
                click.echo(f"{field}: {message}", err=True)
        fail("the merge was not created")
    counts = checking.audience_counts(merge)
    click.echo(
        f"Created draft merge “{merge.name}”: {counts.organizations} organizations, "
        f"{counts.mailable} mailable contacts ({counts.suppressed} suppressed)."
    )
    click.echo(merge.id)


@merge_group.command("check")
@click.argument("merge_id", type=int)
@click.option("--json", "as_json", is_flag=True)
@with_appcontext
def merge_check(merge_id, as_json):
    """Render every recipient once; exit 1 when anything would block queueing."""
    from crm.mailmerge import checking
    from crm.mailmerge.errors import MergeError

    merge = _merge(merge_id)
    try:
        result = checking.check_merge(merge)
    except MergeError as exc:
        fail(str(exc))
    if as_json:
        click.echo(json.dumps(result.as_dict(), indent=2))
    else:
        click.echo(f"{result.recipients} recipients rendered.")
        for problem in result.problems:
            click.echo(f"  {problem}")
        for warning in result.warnings:
            click.echo(f"  Warning: {warning}")
        click.echo("OK: nothing blocks queueing." if result.ok else "Problems block queueing.")
    sys.exit(0 if result.ok else 1)


@merge_group.command("queue")
@click.argument("merge_id", type=int)
@with_appcontext
def merge_queue(merge_id):
    """Freeze the audience and content into the outbox."""
    from crm.mailmerge import queueing
    from crm.mailmerge.errors import MergeError

    try:
        summary = queueing.queue_merge(_merge(merge_id))
    except MergeError as exc:
        fail(str(exc))
    click.echo(
        f"Queued {summary['queued']} messages ({summary['suppressed']} suppressed, "
        f"{summary['duplicates']} duplicate addresses skipped)."
    )


@merge_group.command("send")
@click.argument("merge_id", type=int)
@with_appcontext
def merge_send(merge_id):
    """Queue the merge (if still a draft) and drain the outbox in this process."""
    from crm.mailmerge import queueing, reports
    from crm.mailmerge.errors import MergeError
    from crm.mailmerge.worker import drain

    merge = _merge(merge_id)
    if merge.status == "draft":
        try:
            queueing.queue_merge(merge)
        except MergeError as exc:
            fail(str(exc))
    stats = drain(until_empty=True)
    counts = reports.merge_counts(merge_id)
    click.echo(
        f"Sent {counts['delivered']}, failed {counts['failed']}, suppressed {counts['suppressed']}, "
        f"uncertain {counts['uncertain']}, remaining {counts['remaining']} "
        f"({stats.connections} SMTP connections)."
    )


@merge_group.command("status")
@click.argument("merge_id", type=int)
@click.option("--json", "as_json", is_flag=True)
@with_appcontext
def merge_status(merge_id, as_json):
    """Counts per status."""
    from crm.mailmerge import reports

    merge = _merge(merge_id)
    counts = reports.merge_counts(merge_id)
    if as_json:
        click.echo(json.dumps({"id": merge.id, "name": merge.name, "status": merge.status, "counts": counts}))
        return
    click.echo(f"#{merge.id} {merge.name}: {merge.status}")
    for key in (
        "sent",
        "outbox",
        "failed",
        "suppressed",
        "uncertain",
        "queued",
        "claimed",
        "sending",
        "cancelled",
        "total",
    ):
        click.echo(f"  {key:<11}{counts[key]}")


def _control(action: str):
    """A pause/resume/cancel command."""

    @click.argument("merge_id", type=int)
    @with_appcontext
    def command(merge_id):
        from crm.mailmerge import queueing
        from crm.mailmerge.errors import MergeError

        try:
            merge = queueing.set_state(_merge(merge_id), action)
        except MergeError as exc:
            fail(str(exc))
        click.echo(f"Merge {merge.id} is {merge.status}.")

    command.__doc__ = f"{action.capitalize()} a merge."
    return merge_group.command(action)(command)


for _action in ("pause", "resume", "cancel"):
    _control(_action)


@click.command("worker")
@click.option("--until-empty", is_flag=True, help="Stop once nothing is left to send.")
@click.option("--connections", type=click.IntRange(1, 64), default=None,
              help="Concurrent SMTP connections (default: MAIL_CONNECTIONS).")
@with_appcontext
def worker_command(until_empty, connections):
    """Drain the outbox (runs until stopped, or until empty); rides out database and SMTP outages."""
    import logging
    import signal
    import threading

    from flask import current_app

    from crm.mailmerge.worker import Worker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stop = threading.Event()
    # SIGTERM (systemd, docker stop) ends the messages in hand, as Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    worker = Worker(connections=connections)
    click.echo(f"Outbox worker ({current_app.config.get('MAIL_BACKEND')}, {len(worker.senders)} SMTP "
               f"connection{'s' if len(worker.senders) > 1 else ''}) started.", err=True)
    try:
        stats = worker.run(until_empty=until_empty, stop=stop)
    except KeyboardInterrupt:
        stop.set()
        return
    click.echo(json.dumps(stats.as_dict()))
