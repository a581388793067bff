"""`crm letter …` and `crm import signatories`: letters and signatures from the command line, through the same
services as the pages and the API (audited with no user: the command line)."""

import json
import re
import sys
from datetime import date
from pathlib import Path

import click
from flask import Flask
from flask.cli import with_appcontext

from crm.common.cli import fail
from crm.common.errors import ConflictError

# Only YYYY-MM-DD: date.fromisoformat also takes 20210419 and 2021-W16-1, which nobody means to type here.
_ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
SAVED_MEANWHILE = "Someone saved this letter at the same moment; nothing was changed. Run the command again."


@click.command("signatories")
@click.argument("letter_slug")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Report what would happen; change nothing.")
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the line-by-line report (line,text,action,organization,confidence,candidates,reason) to this "
    "CSV file.",
)
@with_appcontext
def import_signatories(letter_slug, file, dry_run, report_path):
    """Import a signatory block: one candidate organization per line; headings, addresses, prose are skipped.

    Without --dry-run, `matched` lines become confirmed signatures and `new` lines new organizations, all in
    one transaction; `review` lines are left for the letter page's import form, where a person decides."""
    from crm.letters.queries import get_letter
    from crm.letters.signatory_import import analyse, apply_import
    from crm.letters.signatory_lines import BlockTooLarge
    from crm.letters.signatory_report import report_csv

    letter = get_letter(letter_slug)
    if letter is None:
        fail(f"unknown letter {letter_slug!r}")
    from crm.letters.signatory_lines import MAX_TEXT_CHARS

    try:
        # Refuse a huge file before reading it (4 bytes is the most a character takes in UTF-8).
        if file.stat().st_size > 4 * MAX_TEXT_CHARS:
            fail(f"{file}: {file.stat().st_size:,} bytes; a block can have at most {MAX_TEXT_CHARS:,} characters")
        text = file.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        fail(f"{file}: no such file")
    except UnicodeDecodeError as exc:
        fail(f"{file}: not UTF-8 text ({exc.reason} at byte {exc.start})")
    except OSError as exc:
        fail(f"{file}: {exc.strerror}")
    try:
        candidates = analyse(text)
    except BlockTooLarge as exc:
        fail(f"{file}: {exc}")
    counts = {
        action: sum(1 for c in candidates if c.action == action)
        for action in ("matched", "new", "review", "skipped")
    }
    if report_path is not None:
        try:
            report_path.write_text(report_csv(candidates), encoding="utf-8")
        except OSError as exc:
            fail(f"cannot write {report_path}: {exc.strerror}")
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
    """Add `crm letter`, and `signatories` to the `crm import` group (creating it when needed)."""
    app.cli.add_command(letter_group)
    group = app.cli.commands.get("import")
    if group is None:
        group = click.Group("import", help="Import data (signatory blocks, CSV files).")
        app.cli.add_command(group)
    group.add_command(import_signatories)


# --- crm letter ---------------------------------------------------------------------------------------------


def letter_or_exit(slug: str):
    """The letter with this slug, or exit 1."""
    from crm.letters.queries import get_letter

    return get_letter(slug) or fail(f"unknown letter {slug!r}")


def _date(value: str | None, option: str) -> date | None:
    """An optional YYYY-MM-DD option value (empty: no date), or exit 1."""
    if not value:
        return None
    if not _ISO_DAY.fullmatch(value):
        fail(f"{option} must be a date written YYYY-MM-DD, not {value!r}")
    try:
        return date.fromisoformat(value)
    except ValueError:
        fail(f"{option} must be a date written YYYY-MM-DD, not {value!r} (there is no such day)")


def print_json(data) -> None:
    """Pretty JSON on standard output."""
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def _letter_options(command):
    """The options of `letter create` and `letter edit` (left out: unchanged)."""
    options = [
        click.option("--title"),
        click.option("--slug", help="Lower-case letters, digits and hyphens (create: from the title)."),
        click.option("--body-file", "body_file", type=click.Path(dir_okay=False, path_type=Path),
                     help="Markdown body (- for standard input)."),
        click.option("--recipients"),
        click.option("--date", "letter_date",
                     help="The date printed on the letter, YYYY-MM-DD (edit: an empty value clears it; an undated "
                          "letter shows its delivery date)."),
        click.option("--cc"),
        click.option("--summary"),
        click.option("--deadline", help="Sign-on deadline, YYYY-MM-DD (edit: an empty value clears it)."),
        click.option("--issue-area", "issue_areas", multiple=True, help="Issue-area slug (repeatable)."),
        click.option("--public/--no-public", "public_signon", default=None, help="Public sign-on page on/off."),
        click.option("--review/--no-review", "review_required", default=None,
                     help="Public sign-ons wait for review (on) or are accepted when matched (off)."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _letter_data(body_file, letter_date, deadline, issue_areas, **fields) -> dict:
    """The given options as service input (options left out are not in it)."""
    data = {name: value for name, value in fields.items() if value is not None}
    if body_file is not None:
        try:
            data["body"] = sys.stdin.read() if str(body_file) == "-" else body_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            fail(f"cannot read {body_file}: {exc}")
    if letter_date is not None:
        data["letter_date"] = _date(letter_date, "--date")
    if deadline is not None:
        data["deadline"] = _date(deadline, "--deadline")
    if issue_areas:
        data["issue_areas"] = list(issue_areas)
    return data


@click.group("letter")
def letter_group():
    """Sign-on letters and their signatures."""


@letter_group.command("list")
@click.option("--status", help="Only letters in this status (draft, collecting, closed, delivered).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@with_appcontext
def letter_list(status, as_json):
    """List letters, newest first, with their confirmed and pending signatures."""
    from crm.api.schemas import LetterSchema
    from crm.letters.models import LETTER_STATUSES
    from crm.letters.queries import list_letters

    if status is not None and status not in LETTER_STATUSES:
        fail(f"status must be one of: {', '.join(LETTER_STATUSES)}")
    rows = [(letter, counts) for letter, counts in list_letters() if status in (None, letter.status)]
    if as_json:
        print_json([{**LetterSchema().dump(letter), "counts": counts} for letter, counts in rows])
        return
    for letter, counts in rows:
        click.echo(f"{letter.slug}\t{letter.status}\t{counts['confirmed']} confirmed, {counts['pending']} pending"
                   f"\t{letter.title}")


@letter_group.command("show")
@click.argument("slug")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@with_appcontext
def letter_show(slug, as_json):
    """Show a letter: title, status, dates, recipients and its signatures counted by status."""
    from crm.api.schemas import LetterSchema
    from crm.letters.models import SIGNATURE_STATUSES
    from crm.letters.queries import status_counts

    letter = letter_or_exit(slug)
    counts = status_counts([letter.id])[letter.id]
    if as_json:
        print_json({**LetterSchema().dump(letter), "counts": counts})
        return
    click.echo(f"{letter.title}\n  slug: {letter.slug}\n  status: {letter.status}")
    for label, value in (("dated", letter.letter_date), ("deadline", letter.deadline),
                         ("delivered on", letter.delivered_on)):
        if value:
            click.echo(f"  {label}: {value.isoformat()}")
    click.echo(f"  public sign-on: {'on' if letter.public_signon else 'off'}; "
               f"review: {'required' if letter.review_required else 'not required'}")
    if letter.issue_areas:
        click.echo(f"  issue areas: {', '.join(a.slug for a in letter.issue_areas)}")
    for label, text in (("recipients", letter.recipients), ("cc", letter.cc)):
        if text.strip():
            click.echo(f"  {label}: {' / '.join(line.strip() for line in text.splitlines() if line.strip())}")
    click.echo("  signatures: " + ", ".join(f"{counts[status]} {status}" for status in SIGNATURE_STATUSES)
               + f"; {counts['awaiting_review']} awaiting review")
    if counts["invited"]:
        click.echo(f"  invited by mail merge: {counts['invited']} organizations, {counts['invited_unsigned']} not "
                   "signed yet")


@letter_group.command("create")
@_letter_options
@with_appcontext
def letter_create(**options):
    """Create a draft letter; prints its slug alone on the last line."""
    from crm.letters.writing import LetterError, create_letter

    data = _letter_data(**options)
    if not data.get("title"):
        fail("a letter needs a title: give --title")
    try:
        letter = create_letter(data)
    except LetterError as exc:
        fail(str(exc))
    click.echo(f"Created draft letter “{letter.title}”.")
    click.echo(letter.slug)


@letter_group.command("edit")
@click.argument("current_slug", metavar="SLUG")
@_letter_options
@with_appcontext
def letter_edit(current_slug, **options):
    """Change a letter's text and settings (only the options given)."""
    from crm.letters.writing import LetterError, update_letter

    letter = letter_or_exit(current_slug)
    data = _letter_data(**options)
    if not data:
        fail("nothing to change: give at least one option (see --help)")
    try:
        update_letter(letter, data)
    except LetterError as exc:
        fail(str(exc))
    except ConflictError:  # another save landed between this command's read and its commit
        fail(SAVED_MEANWHILE)
    click.echo(f"Letter {letter.slug} saved.")


@letter_group.command("status")
@click.argument("slug")
@click.argument("status", metavar="draft|collecting|closed|delivered")
@click.option("--delivered-on", "delivered_on", help="With delivered: the date, YYYY-MM-DD (default today).")
@click.option("--thank", is_flag=True, help="With delivered: queue a thank-you to every confirmed signer.")
@with_appcontext
def letter_status(slug, status, delivered_on, thank):
    """Move a letter along draft → collecting → closed → delivered."""
    from crm.letters.delivery import record_delivery
    from crm.letters.writing import LetterError, set_status

    letter = letter_or_exit(slug)
    day = _date(delivered_on, "--delivered-on")
    if (day or thank) and status != "delivered":
        fail("--delivered-on and --thank go with the status delivered")
    try:
        if status == "delivered":
            thanked = record_delivery(letter, day or date.today(), thank=thank)
            click.echo(f"Letter {slug} delivered on {letter.delivered_on.isoformat()}."
                       + (f" {thanked} thank-you messages queued." if thank else ""))
            return
        set_status(letter, status)
    except LetterError as exc:
        fail(str(exc))
    except ConflictError:
        fail(SAVED_MEANWHILE)
    click.echo(f"Letter {slug} is now {letter.status}.")



@letter_group.command("delete")
@click.argument("slug")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@with_appcontext
def letter_delete(slug, yes):
    """Delete a draft letter nothing depends on (no signatures, sign-ons or mail merges)."""
    from crm.letters.writing import LetterInUse, delete_letter, deletion_blockers

    letter = letter_or_exit(slug)
    reasons = deletion_blockers(letter)
    if reasons:
        fail(f"the letter {slug!r} cannot be deleted. " + " ".join(reasons))
    if not yes:
        click.confirm(f"Delete the draft letter “{letter.title}” for good?", abort=True)
    try:
        delete_letter(letter)
    except LetterInUse as exc:
        fail(str(exc))
    click.echo(f"Deleted letter {slug}.")


@letter_group.command("signatures")
@click.argument("slug")
@click.option("--status", "statuses", multiple=True,
              help="Only this status (repeatable: pending, confirmed, declined, withdrawn); default all.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@with_appcontext
def letter_signatures(slug, statuses, as_json):
    """List a letter's signatures in delivery order (leads first, then alphabetical)."""
    from crm.api.schemas import SignatureSchema
    from crm.letters.models import SIGNATURE_STATUSES
    from crm.letters.queries import signatories

    letter = letter_or_exit(slug)
    unknown = sorted(set(statuses) - set(SIGNATURE_STATUSES))
    if unknown:
        fail(f"unknown status {', '.join(unknown)}; use {', '.join(SIGNATURE_STATUSES)}")
    signatures = signatories(letter, tuple(statuses) or SIGNATURE_STATUSES)
    if as_json:
        print_json(SignatureSchema(many=True).dump(signatures))
        return
    for sig in signatures:
        click.echo(f"{sig.organization_id}\t{sig.status}\t{sig.role}\t{sig.listed_name}")


def _organization(id_or_name: str):
    """An organization by id, or by a name the matcher is sure of; exit 1 listing the candidates otherwise."""
    from crm.common.validation import whole_number
    from crm.organizations.matching import match_organization
    from crm.organizations.queries import get_organization

    if id_or_name.isascii() and id_or_name.isdigit():
        org_id = whole_number(id_or_name, 1)
        return (get_organization(org_id) if org_id else None) or fail(f"there is no organization {id_or_name[:20]}")
    found = match_organization(id_or_name)
    if found.applied:
        return get_organization(found.organization_id)
    candidates = found.candidates or (((found.organization_id, found.confidence),) if found.organization_id else ())
    listed = "; ".join(f"{org_id} {org.name} ({score:.0%})" for org_id, score in candidates
                       if (org := get_organization(org_id)) is not None)
    fail(f"no sure match for {id_or_name!r}"
          + (f"; candidates: {listed}. Give the organization's id." if listed else "; create the organization first."))


@letter_group.command("sign")
@click.argument("slug")
@click.argument("organization", metavar="ORG_ID_OR_NAME")
@click.option("--role", default="signatory", help="lead or signatory (default).")
@click.option("--status", default="confirmed", help="pending, confirmed (default), declined or withdrawn.")
@click.option("--listed-as", "listed_as", default="", help="The name as the letter prints it (default: its name).")
@click.option("--source", default="manual", help="import, public-form, personal-link, manual (default), api, seed.")
@with_appcontext
def letter_sign(slug, organization, role, status, listed_as, source):
    """Add an organization to a letter (by id, or by a name the organization matcher is sure of)."""
    from crm.letters.signatures import add_signature
    from crm.letters.writing import LetterError

    letter = letter_or_exit(slug)
    org = _organization(organization)
    try:
        sig, created = add_signature(letter, org, role=role, status=status, listed_name=listed_as or org.name,
                                     source=source)
    except LetterError as exc:
        fail(str(exc))
    click.echo(f"{org.name} ({org.id}) added to {slug} as {sig.role}, {sig.status}." if created
               else f"{org.name} ({org.id}) is already on {slug} ({sig.status}); nothing changed.")


@letter_group.command("revoke-links")
@click.argument("slug")
@click.argument("organization", metavar="ORG_ID_OR_NAME")
@with_appcontext
def letter_revoke_links(slug, organization):
    """Refuse every personal sign-on link of an organization for a letter made until now (new links work)."""
    from crm.letters.personal_links import revoke_personal_links

    letter = letter_or_exit(slug)
    org = _organization(organization)
    revoke_personal_links(letter, org)
    click.echo(f"Personal links of {org.name} ({org.id}) for {slug} made until now no longer work.")


@letter_group.command("extend")
@click.argument("slug")
@click.option("--deadline", required=True, help="The new sign-on deadline, YYYY-MM-DD ('' for none).")
@with_appcontext
def letter_extend(slug, deadline):
    """Give a letter a later sign-on deadline (it ends at midnight after that day in CRM_TIMEZONE)."""
    from crm.letters.deadlines import extend_deadline, long_date
    from crm.letters.writing import LetterError

    letter = letter_or_exit(slug)
    try:
        extend_deadline(letter, _date(deadline, "--deadline"))
    except LetterError as exc:
        fail(str(exc))
    except ConflictError:
        fail(SAVED_MEANWHILE)
    click.echo(f"Sign-ons for {slug} are open until the end of {long_date(letter.deadline)}." if letter.deadline
               else f"{slug} has no deadline now.")


@letter_group.command("signature-status")
@click.argument("slug")
@click.argument("organization_id", type=int, metavar="ORG_ID")
@click.argument("status", metavar="pending|confirmed|declined|withdrawn")
@with_appcontext
def letter_signature_status(slug, organization_id, status):
    """Change the status of an organization's signature on a letter."""
    from crm.letters.signatures import signature_of, update_signature
    from crm.letters.writing import LetterError

    letter = letter_or_exit(slug)
    sig = signature_of(letter, organization_id) or fail(f"organization {organization_id} is not on {slug}")
    try:
        update_signature(sig, {"status": status})
    except LetterError as exc:
        fail(str(exc))
    click.echo(f"{sig.listed_name} on {slug} is now {sig.status}.")
