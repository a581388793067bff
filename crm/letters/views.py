"""Letter pages: list, new, edit, show, deadline, status, delete, signatory downloads, print, participation matrix."""

import csv
import io
from datetime import date

from flask import Response, flash, redirect, render_template, request, url_for
from wtforms import SelectChoice

from crm.common.access import access
from crm.common.editing import edit_record, form_differences
from crm.common.errors import ConflictError
from crm.common.forms import error_summary
from crm.common.markdown import render_markdown_and_notes
from crm.common.text import plural
from crm.common.validation import InvalidData, whole_number
from crm.exports.rows import MATRIX_CELLS
from crm.letters import deadlines, delivery, participation, queries, signatures, slugs, writing
from crm.letters.blueprint import bp, current_user_id, letter_or_404
from crm.letters.forms import (
    EDITED_FIELDS,
    AddSignatureForm,
    DeadlineForm,
    DeleteLetterForm,
    LetterForm,
    ReconfirmForm,
    SegmentForm,
    StatusForm,
)
from crm.organizations.filters import FilterError, OrgFilter, describe, parse_filter
from crm.organizations.issue_areas import issue_areas
from crm.organizations.queries import letter_options as services_letter_options
from crm.organizations.views import page_args
from crm.signon import services as signon

SAVED_MEANWHILE = "Someone saved this letter at the same moment: look at it as it is now and try again."


@bp.get("")
@access("viewer")
def index():
    """The letters, newest first, with their status and signature counts, 50 to a page."""
    page, per_page = page_args()
    return render_template("letters/index.html", result=queries.letters_page(page, per_page),
                           today=deadlines.local_today())


@bp.route("/new", methods=["GET", "POST"])
@access("organizer")
def new():
    """Write a new letter (a draft)."""
    form = LetterForm()
    form.issue_areas.choices = [SelectChoice(a.slug, a.name) for a in issue_areas()]
    if form.validate_on_submit():
        try:
            letter = writing.create_letter(form.service_data(), user_id=current_user_id())
        except writing.LetterError as exc:
            getattr(form, exc.field, form.title).errors.append(str(exc))
        else:
            flash(f"Draft {letter.title!r} created.", "success")
            return redirect(url_for("letters.show", slug=letter.slug), 303)
    return render_template("letters/form.html", form=form, letter=None,
                           timezone=deadlines.instance_zone().key), 400 if form.errors else 200


def _fill(form: LetterForm, letter) -> None:
    """The form as the letter is saved (the edit page, and the "saved now" side of a conflict)."""
    for name in EDITED_FIELDS:
        form[name].data = [a.slug for a in letter.issue_areas] if name == "issue_areas" else getattr(letter, name)
    form.version.data = str(letter.version)


def _attach_errors(form: LetterForm, errors: dict[str, list[str]]) -> None:
    """Show service errors next to their fields (the title when the field is not on the form)."""
    for name, messages in errors.items():
        getattr(form, name, form.title).errors.extend(messages)


def _save(letter, data: dict, version: int | None):
    """update_letter at the version the form was opened with; its LetterError as the field error to show."""
    try:
        return writing.update_letter(letter, data, user_id=current_user_id(), version=version)
    except writing.LetterError as exc:
        raise InvalidData({exc.field: [str(exc)]}) from exc


@bp.route("/<slug>/edit", methods=["GET", "POST"])
@access("organizer")
def edit(slug: str):
    """Edit a letter's text and settings; a save over someone else's newer change shows a conflict and keeps the
    input."""
    letter = letter_or_404(slug)
    form = LetterForm()
    form.issue_areas.choices = [SelectChoice(a.slug, a.name) for a in issue_areas()]
    stale_before = len(signatures.stale_signatures(letter)) if request.method == "POST" else 0

    def rows(current) -> list[tuple[str, object, object]]:
        """(field, saved, yours) rows for the fields where the input differs from what is saved now."""
        saved = LetterForm(formdata=None, meta={"csrf": False})
        _fill(saved, current)
        return form_differences(form, saved, EDITED_FIELDS)

    outcome = edit_record(form, letter, fill=_fill, save=lambda data, version: _save(letter, data, version),
                          attach_errors=_attach_errors, conflict_rows=rows)
    if outcome.saved:
        stale = len(signatures.stale_signatures(outcome.record))
        flash(
            "Letter saved."
            + (f" {stale} signatures were given on an earlier text." if stale > stale_before else ""),
            "success",
        )
        return redirect(url_for("letters.show", slug=outcome.record.slug), 303)
    return render_template("letters/form.html", form=form, letter=outcome.record, conflict=outcome.conflict,
                           former_slugs=slugs.former_slugs(outcome.record),
                           timezone=deadlines.instance_zone().key), outcome.status


@bp.get("/<slug>")
@access("viewer")
def show(slug: str):
    """A letter: text (its cc before its notes), counts, signatories (leads first), review queue, signatures on an
    earlier text."""
    letter = letter_or_404(slug)
    counts = queries.status_counts([letter.id]).get(letter.id, {})
    status_form = StatusForm(status=letter.status, delivered_on=date.today())
    text, notes = render_markdown_and_notes(letter.body)
    return render_template(
        "letters/show.html",
        letter=letter,
        text=text,
        notes=notes,
        signatures=queries.signatory_list(letter, ("confirmed", "pending", "declined", "withdrawn")),
        counts=counts,
        queue=signon.review_entries(letter),
        unconfirmed=signon.unconfirmed_count(letter),
        stale=signatures.stale_signatures(letter),
        status_form=status_form,
        add_form=AddSignatureForm(),
        reconfirm_form=ReconfirmForm(),
        transitions=writing.TRANSITIONS[letter.status],
        deadline_passed=letter.status == "collecting" and deadlines.deadline_passed(letter),
        deadline_form=DeadlineForm(),
        today=deadlines.local_today(),
        timezone=deadlines.instance_zone().key,
    )


@bp.post("/<slug>/deadline")
@access("organizer")
def extend_deadline(slug: str):
    """Give the letter a later sign-on deadline (or none): its public page and personal links take sign-ons again."""
    letter = letter_or_404(slug)
    form = DeadlineForm()
    if not form.validate_on_submit():
        flash(f"The deadline was not changed. {error_summary(form)}", "danger")
        return redirect(url_for("letters.show", slug=slug), 303)
    try:
        deadlines.extend_deadline(letter, form.deadline.data, user_id=current_user_id())
    except writing.LetterError as exc:
        flash(f"The deadline was not changed. {exc}", "danger")
    except ConflictError:
        flash(f"The deadline was not changed. {SAVED_MEANWHILE}", "warning")
    else:
        flash(f"Sign-ons are open until the end of {deadlines.long_date(letter.deadline)}." if letter.deadline
              else "The letter has no deadline now.", "success")
    return redirect(url_for("letters.show", slug=slug), 303)


@bp.post("/<slug>/status")
@access("viewer", write="organizer")
def change_status(slug: str):
    """Move the letter along draft → collecting → closed → delivered; delivery can thank the signers."""
    letter = letter_or_404(slug)
    form = StatusForm()
    if not form.validate_on_submit():
        flash(f"The status was not changed. {error_summary(form)}", "danger")
        return redirect(url_for("letters.show", slug=slug), 303)
    try:
        if form.status.data == "delivered":
            thanked = delivery.record_delivery(
                letter, form.delivered_on.data or date.today(), thank=form.thank.data, user_id=current_user_id()
            )
            flash(
                f"Delivered on {letter.delivered_on:%B %-d, %Y}."
                + (f" {plural(thanked, 'thank-you message')} queued." if form.thank.data else " No thank-you sent."),
                "success",
            )
        else:
            writing.set_status(letter, form.status.data, user_id=current_user_id())
            flash(f"The letter is now {letter.status}.", "success")
    except writing.LetterError as exc:
        flash(str(exc), "danger")
    except ConflictError:
        flash(f"The status was not changed. {SAVED_MEANWHILE}", "warning")
    return redirect(url_for("letters.show", slug=slug), 303)


@bp.route("/<slug>/delete", methods=["GET", "POST"])
@access("organizer")
def delete(slug: str):
    """Confirm, then delete a draft letter nothing depends on; otherwise say what depends on it."""
    letter = letter_or_404(slug)
    form = DeleteLetterForm()
    if form.validate_on_submit():
        try:
            writing.delete_letter(letter, user_id=current_user_id())
        except writing.LetterInUse:
            pass  # the page lists what depends on the letter
        else:
            flash(f"Letter {slug!r} deleted.", "success")
            return redirect(url_for("letters.index"), 303)
    blockers = writing.deletion_blockers(letter)
    status = 409 if request.method == "POST" and blockers else 400 if form.errors else 200
    return render_template("letters/delete.html", letter=letter, form=form, blockers=blockers), status


def _download(body: str, mimetype: str, filename: str) -> Response:
    """A file download."""
    return Response(
        body, mimetype=mimetype, headers={"Content-Disposition": f'attachment; filename="{filename}"'}
    )


@bp.get("/<slug>/signatories.txt")
@access("viewer")
def signatory_block(slug: str):
    """The confirmed signatories as plain text, one per line, in the letter's own order."""
    letter = letter_or_404(slug)
    return _download(queries.signatory_block(letter), "text/plain", f"{letter.slug}-signatories.txt")


@bp.get("/<slug>/signatories.md")
@access("viewer")
def signatory_markdown(slug: str):
    """The confirmed signatories as a Markdown list."""
    letter = letter_or_404(slug)
    return _download(queries.signatory_markdown(letter), "text/markdown", f"{letter.slug}-signatories.md")


@bp.get("/<slug>/signatories.html")
@access("viewer")
def signatory_html(slug: str):
    """The confirmed signatories as an HTML fragment to paste into a web page."""
    letter = letter_or_404(slug)
    body = render_template("letters/signatories_fragment.html", signatures=queries.signatories(letter))
    return _download(body, "text/html", f"{letter.slug}-signatories.html")


@bp.get("/<slug>/signatories.csv")
@access("viewer")
def signatory_csv(slug: str):
    """The confirmed signatories as CSV with city, state and type (formula-safe)."""
    letter = letter_or_404(slug)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for row in queries.signatory_rows(letter):
        writer.writerow(["'" + c if c[:1] in ("=", "+", "-", "@") else c for c in row])
    return _download(out.getvalue(), "text/csv", f"{letter.slug}-signatories.csv")


@bp.get("/<slug>/print")
@access("viewer")
def printable(slug: str):
    """The full letter with its signatories, laid out for printing: the notes come last, after the signatories."""
    letter = letter_or_404(slug)
    text, notes = render_markdown_and_notes(letter.body)
    return render_template("letters/print.html", letter=letter, signatures=queries.signatories(letter), text=text,
                           notes=notes)


@bp.route("/participation", methods=["GET", "POST"])
@access("viewer", write="organizer")
def matrix():
    """Organizations × letters (filtered with the organization filter language); CSV; save as a segment."""
    error = None
    try:
        org_filter = parse_filter(request.args)
    except FilterError as exc:
        error, org_filter = str(exc), OrgFilter()
    segment_form = SegmentForm()
    if request.method == "POST":
        if segment_form.validate_on_submit():
            try:
                segment = participation.save_segment(
                    segment_form.name.data,
                    segment_form.signed.data,
                    segment_form.not_signed.data,
                    user_id=current_user_id(),
                )
            except participation.ParticipationError as exc:
                flash(str(exc), "danger")
            else:
                flash(f"Segment {segment.name!r} saved.", "success")
        else:
            flash(f"The segment was not saved. {error_summary(segment_form)}", "danger")
        return redirect(request.full_path, 303)
    page = request.args.get("page", "1")
    page_n = whole_number(page, 1, 100_000) or 1
    letters_n = whole_number(request.args.get("letters_page", "1"), 1, 100_000) or 1
    try:
        grid = participation.matrix(org_filter, page=page_n, letter_page=letters_n)
    except FilterError as exc:
        error, grid = str(exc), participation.matrix(OrgFilter(), page=page_n, letter_page=letters_n)
    segment_form.signed.data = ",".join(org_filter.signed)
    segment_form.not_signed.data = ",".join(org_filter.not_signed)
    return render_template(
        "letters/matrix.html",
        grid=grid,
        f=org_filter,
        error=error,
        segment_form=segment_form,
        areas=issue_areas(),
        labels=MATRIX_CELLS,
        letter_options=services_letter_options(org_filter.signed + org_filter.not_signed),
        filter_sentence=describe(org_filter),
    ), 400 if error else 200
