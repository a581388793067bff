"""Letter pages: list, letter, editing, participation, imports, exports, matrix, review queue."""

import csv
import io
import re
from datetime import date

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from wtforms import SelectChoice

from crm.common.access import access
from crm.common.editing import edit_record, form_differences
from crm.common.forms import error_summary
from crm.common.text import plural, single_line
from crm.common.validation import InvalidData, whole_number
from crm.contacts.services import contacts_of
from crm.exports import MATRIX_CELLS
from crm.letters import participation, services
from crm.letters.forms import (
    EDITED_FIELDS,
    AddSignatureForm,
    DeadlineForm,
    DeleteLetterForm,
    ImportForm,
    LetterForm,
    ReconfirmForm,
    ReviewForm,
    RevokeLinksForm,
    SegmentForm,
    SignatureForm,
    StatusForm,
)
from crm.letters.signatory_import import BlockTooLarge, analyse, apply_import, report_csv
from crm.organizations.filters import FilterError, OrgFilter, describe, parse_filter
from crm.organizations.issue_areas import issue_areas
from crm.organizations.queries import get_organization
from crm.organizations.queries import letter_options as services_letter_options
from crm.organizations.views import page_args
from crm.signon import services as signon

bp = Blueprint("letters", __name__, url_prefix="/letters")


def _letter_or_404(slug: str):
    """The letter with this slug, or a 404."""
    return services.get_letter(slug) or abort(404)


def _user_id() -> int | None:
    """The logged-in user's id, for the audit log."""
    return current_user.id if current_user.is_authenticated else None


@bp.get("")
@access("viewer")
def index():
    """The letters, newest first, with their status and signature counts, 50 to a page."""
    page, per_page = page_args()
    return render_template("letters/index.html", result=services.letters_page(page, per_page),
                           today=services.local_today())


@bp.route("/new", methods=["GET", "POST"])
@access("organizer")
def new():
    """Write a new letter (a draft)."""
    form = LetterForm()
    form.issue_areas.choices = [SelectChoice(a.slug, a.name) for a in issue_areas()]
    if form.validate_on_submit():
        try:
            letter = services.create_letter(form.service_data(), user_id=_user_id())
        except services.LetterError as exc:
            getattr(form, exc.field, form.title).errors.append(str(exc))
        else:
            flash(f"Draft {letter.title!r} created.", "success")
            return redirect(url_for("letters.show", slug=letter.slug), 303)
    return render_template("letters/form.html", form=form, letter=None,
                           timezone=services.instance_zone().key), 400 if form.errors else 200


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
        return services.update_letter(letter, data, user_id=_user_id(), version=version)
    except services.LetterError as exc:
        raise InvalidData({exc.field: [str(exc)]}) from exc


@bp.route("/<slug>/edit", methods=["GET", "POST"])
@access("organizer")
def edit(slug: str):
    """Edit a letter's text and settings; a save over someone else's newer change shows a conflict and keeps the
    input."""
    letter = _letter_or_404(slug)
    form = LetterForm()
    form.issue_areas.choices = [SelectChoice(a.slug, a.name) for a in issue_areas()]
    stale_before = len(services.stale_signatures(letter)) if request.method == "POST" else 0

    def rows(current) -> list[tuple[str, object, object]]:
        """(field, saved, yours) rows for the fields where the input differs from what is saved now."""
        saved = LetterForm(formdata=None, meta={"csrf": False})
        _fill(saved, current)
        return form_differences(form, saved, EDITED_FIELDS)

    outcome = edit_record(form, letter, fill=_fill, save=lambda data, version: _save(letter, data, version),
                          attach_errors=_attach_errors, conflict_rows=rows)
    if outcome.saved:
        stale = len(services.stale_signatures(outcome.record))
        flash(
            "Letter saved."
            + (f" {stale} signatures were given on an earlier text." if stale > stale_before else ""),
            "success",
        )
        return redirect(url_for("letters.show", slug=outcome.record.slug), 303)
    return render_template("letters/form.html", form=form, letter=outcome.record, conflict=outcome.conflict,
                           timezone=services.instance_zone().key), outcome.status


@bp.get("/<slug>")
@access("viewer")
def show(slug: str):
    """A letter: text, counts, signatories (leads first), review queue, signatures on an earlier text."""
    letter = _letter_or_404(slug)
    signatures = services.signatory_list(letter, ("confirmed", "pending", "declined", "withdrawn"))
    counts = services.status_counts([letter.id]).get(letter.id, {})
    status_form = StatusForm(status=letter.status, delivered_on=date.today())
    return render_template(
        "letters/show.html",
        letter=letter,
        signatures=signatures,
        counts=counts,
        queue=signon.review_entries(letter),
        unconfirmed=signon.unconfirmed_count(letter),
        stale=services.stale_signatures(letter),
        status_form=status_form,
        add_form=AddSignatureForm(),
        reconfirm_form=ReconfirmForm(),
        transitions=services.TRANSITIONS[letter.status],
        deadline_passed=letter.status == "collecting" and services.deadline_passed(letter),
        deadline_form=DeadlineForm(),
        today=services.local_today(),
        timezone=services.instance_zone().key,
    )


@bp.post("/<slug>/deadline")
@access("organizer")
def extend_deadline(slug: str):
    """Give the letter a later sign-on deadline (or none): its public page and personal links take sign-ons again."""
    letter = _letter_or_404(slug)
    form = DeadlineForm()
    if not form.validate_on_submit():
        flash(f"The deadline was not changed. {error_summary(form)}", "danger")
        return redirect(url_for("letters.show", slug=slug), 303)
    try:
        services.extend_deadline(letter, form.deadline.data, user_id=_user_id())
    except services.LetterError as exc:
        flash(f"The deadline was not changed. {exc}", "danger")
    else:
        flash(f"Sign-ons are open until the end of {services.long_date(letter.deadline)}." if letter.deadline
              else "The letter has no deadline now.", "success")
    return redirect(url_for("letters.show", slug=slug), 303)


@bp.post("/<slug>/revoke-links")
@access("organizer")
def revoke_links(slug: str):
    """Refuse every personal sign-on link of one organization for this letter made until now (new ones work)."""
    letter = _letter_or_404(slug)
    form = RevokeLinksForm()
    org = get_organization(form.organization_id.data) if form.validate_on_submit() else None
    if org is None:
        flash(f"No link was revoked. {error_summary(form) or 'Choose an organization.'}", "danger")
    else:
        services.revoke_personal_links(letter, org, user_id=_user_id())
        flash(f"The personal links of {org.name} for this letter no longer work; links made from now on do.",
              "success")
    back = request.form.get("next", "")
    return redirect(back if back.startswith("/letters/") and "//" not in back
                    else url_for("letters.show", slug=slug), 303)


@bp.post("/<slug>/status")
@access("viewer", write="organizer")
def change_status(slug: str):
    """Move the letter along draft → collecting → closed → delivered; delivery can thank the signers."""
    letter = _letter_or_404(slug)
    form = StatusForm()
    if not form.validate_on_submit():
        flash(f"The status was not changed. {error_summary(form)}", "danger")
        return redirect(url_for("letters.show", slug=slug), 303)
    try:
        if form.status.data == "delivered":
            thanked = services.record_delivery(
                letter, form.delivered_on.data or date.today(), thank=form.thank.data, user_id=_user_id()
            )
            flash(
                f"Delivered on {letter.delivered_on:%B %-d, %Y}."
                + (f" {plural(thanked, 'thank-you message')} queued." if form.thank.data else " No thank-you sent."),
                "success",
            )
        else:
            services.set_status(letter, form.status.data, user_id=_user_id())
            flash(f"The letter is now {letter.status}.", "success")
    except services.LetterError as exc:
        flash(str(exc), "danger")
    return redirect(url_for("letters.show", slug=slug), 303)


@bp.route("/<slug>/delete", methods=["GET", "POST"])
@access("organizer")
def delete(slug: str):
    """Confirm, then delete a draft letter nothing depends on; otherwise say what depends on it."""
    letter = _letter_or_404(slug)
    form = DeleteLetterForm()
    if form.validate_on_submit():
        try:
            services.delete_letter(letter, user_id=_user_id())
        except services.LetterInUse:
            pass  # the page lists what depends on the letter
        else:
            flash(f"Letter {slug!r} deleted.", "success")
            return redirect(url_for("letters.index"), 303)
    blockers = services.deletion_blockers(letter)
    status = 409 if request.method == "POST" and blockers else 400 if form.errors else 200
    return render_template("letters/delete.html", letter=letter, form=form, blockers=blockers), status


@bp.get("/<slug>/organizations")
@access("organizer")
def organization_search(slug: str):
    """Search-as-you-type for the add-an-organization form (an htmx fragment; a page without JavaScript)."""
    letter = _letter_or_404(slug)
    q = single_line(request.args.get("q", ""))[:200]
    results = participation.search_organizations(q) if q else []
    template = "letters/_org_options.html" if request.headers.get("HX-Request") else "letters/add_org.html"
    row = request.args.get("row", "")  # the review queue's sign-on whose options these are (unique radio ids)
    prefix = f"org-{row}" if whole_number(row) is not None else "org"
    return render_template(
        template, letter=letter, q=q, results=results, add_form=AddSignatureForm(q=q), prefix=prefix
    )


@bp.post("/<slug>/signatures")
@access("viewer", write="organizer")
def add_signature(slug: str):
    """Add an organization by hand (by id from the search, or by exact name)."""
    letter = _letter_or_404(slug)
    form = AddSignatureForm()
    if not form.validate_on_submit():
        flash(f"Nothing was added. {error_summary(form)}", "danger")
        return redirect(url_for("letters.show", slug=slug), 303)
    org = (
        get_organization(form.organization_id.data)
        if form.organization_id.data
        else participation.organization_by_name(form.q.data or "")
    )
    if org is None:
        flash("Pick an organization from the search results (or create it first).", "danger")
        return redirect(url_for("letters.organization_search", slug=slug, q=form.q.data or ""), 303)
    try:
        sig, created = services.add_signature(
            letter,
            org,
            role=form.role.data,
            status=form.status.data,
            listed_name=form.listed_name.data or org.name,
            source=form.source.data,
            user_id=_user_id(),
        )
    except services.LetterError as exc:
        flash(str(exc), "danger")
    else:
        flash(
            f"{org.name} added." if created else f"{org.name} is already on this letter.",
            "success" if created else "info",
        )
    return redirect(url_for("letters.show", slug=slug), 303)


@bp.route("/<slug>/signatures/<int:signature_id>", methods=["GET", "POST"])
@access("viewer", write="organizer")
def signature(slug: str, signature_id: int):
    """One organization's participation: role, status, listed name, who authorized it, source, proof."""
    letter = _letter_or_404(slug)
    sig = services.get_signature(letter, signature_id) or abort(404)
    form = SignatureForm(obj=sig)
    form.contact_id.choices = [SelectChoice("", "—")] + [
        SelectChoice(str(c.id), f"{c.full_name} <{c.email}>") for c in contacts_of(sig.organization_id)
    ]
    if request.method == "GET":
        form.contact_id.data = str(sig.contact_id or "")
    if request.method == "POST" and form.validate_on_submit():
        try:
            services.update_signature(
                sig,
                {
                    "role": form.role.data,
                    "position": form.position.data,
                    "status": form.status.data,
                    "listed_name": form.listed_name.data,
                    "source": form.source.data,
                    "contact_id": whole_number(form.contact_id.data, 1),
                },
                user_id=_user_id(),
            )
        except services.LetterError as exc:
            getattr(form, exc.field, form.status).errors.append(str(exc))
        else:
            flash("Saved.", "success")
            return redirect(url_for("letters.show", slug=slug), 303)
    return render_template(
        "letters/signature.html", letter=letter, sig=sig, form=form, current=services.text_fingerprint(letter),
        revoke_form=RevokeLinksForm(organization_id=sig.organization_id),
        revoked_at=services.links_revoked_at(letter, sig.organization_id),
    ), 400 if form.errors else 200


@bp.post("/<slug>/reconfirm")
@access("viewer", write="organizer")
def reconfirm(slug: str):
    """Ask every signer of an earlier text to confirm the current one."""
    letter = _letter_or_404(slug)
    if ReconfirmForm().validate_on_submit():
        asked = services.request_reconfirmation(letter, user_id=_user_id())
        flash(f"Asked {asked} signers to confirm the changed text.", "success")
    return redirect(url_for("letters.show", slug=slug), 303)


@bp.route("/<slug>/import", methods=["GET", "POST"])
@access("organizer")
def import_block(slug: str):
    """Paste a signatory block: preview every line's match, then create the signatures in one transaction.

    Review lines show their three best candidates and a search for any organization; choosing an organization
    for a line remembers the line's spelling as an alias of it (the next import matches it without review)."""
    letter = _letter_or_404(slug)
    form = ImportForm()
    candidates = None
    searches: dict[str, tuple[str, list]] = {}
    if form.validate_on_submit():
        try:
            candidates = analyse(form.text.data)
        except BlockTooLarge as exc:
            form.text.errors.append(str(exc))
        else:
            if request.form.get("apply") == "1":
                decisions = _import_decisions(candidates)
                try:
                    result = apply_import(letter, decisions, user_id=_user_id())
                except ValueError as exc:
                    flash(str(exc), "danger")
                else:
                    flash(
                        f"Added {result.signatures} signatures ({result.already} already on the letter, "
                        f"{result.organizations} new organizations, {result.aliases} spellings remembered as "
                        "aliases).",
                        "success",
                    )
                    return redirect(url_for("letters.show", slug=slug), 303)
            elif request.form.get("report") == "1":
                return Response(
                    report_csv(candidates),
                    mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{letter.slug}-import-report.csv"'},
                )
            elif _LINE_KEY.fullmatch(request.form.get("search", "")):
                # The search of one review line without JavaScript: the same preview, with that line's results.
                key = request.form["search"]
                q = single_line(request.form.get(f"q-{key}", ""))[:200]
                searches[key] = (q, participation.search_organizations(q) if q else [])
    chosen = {k.removeprefix("line-"): v for k, v in request.form.items() if k.startswith("line-")}
    return render_template(
        "letters/import.html",
        letter=letter,
        form=form,
        candidates=candidates,
        searches=searches,
        chosen=chosen,
    ), 400 if form.errors else 200


# A line of the import preview: "12", or "12.3" for the third name of an inline paragraph on line 12.
_LINE_KEY = re.compile(r"\d{1,6}(?:\.\d{1,4})?")


def _import_decisions(candidates) -> list[tuple[str, int | None, str]]:
    """(listed name, organization id or None for a new one, line text) for every line the form decided."""
    decisions = []
    for c in candidates:
        choice = request.form.get(f"line-{c.key}", "")
        if c.action == "skipped" or choice in ("", "skip"):
            continue
        if choice == "new":
            decisions.append((c.name, None, c.text))
        elif (chosen := whole_number(choice, 1)) is not None:
            decisions.append((c.name, chosen, c.text))
    return decisions


@bp.get("/<slug>/import/options")
@access("organizer")
def import_options(slug: str):
    """Organizations matching a search, as choices for one line of the import preview (an htmx fragment)."""
    _letter_or_404(slug)
    key = request.args.get("line", "")
    if not _LINE_KEY.fullmatch(key):
        abort(400)
    # htmx sends the search box under its own name (q-<line>); a link may say q.
    q = single_line(request.args.get(f"q-{key}") or request.args.get("q", ""))[:200]
    results = participation.search_organizations(q) if q else []
    return render_template("letters/_import_options.html", key=key, q=q, results=results, chosen={})


def _download(body: str, mimetype: str, filename: str) -> Response:
    """A file download."""
    return Response(
        body, mimetype=mimetype, headers={"Content-Disposition": f'attachment; filename="{filename}"'}
    )


@bp.get("/<slug>/signatories.txt")
@access("viewer")
def signatory_block(slug: str):
    """The confirmed signatories as plain text, one per line, in the letter's own order."""
    letter = _letter_or_404(slug)
    return _download(services.signatory_block(letter), "text/plain", f"{letter.slug}-signatories.txt")


@bp.get("/<slug>/signatories.md")
@access("viewer")
def signatory_markdown(slug: str):
    """The confirmed signatories as a Markdown list."""
    letter = _letter_or_404(slug)
    return _download(services.signatory_markdown(letter), "text/markdown", f"{letter.slug}-signatories.md")


@bp.get("/<slug>/signatories.html")
@access("viewer")
def signatory_html(slug: str):
    """The confirmed signatories as an HTML fragment to paste into a web page."""
    letter = _letter_or_404(slug)
    body = render_template("letters/signatories_fragment.html", signatures=services.signatories(letter))
    return _download(body, "text/html", f"{letter.slug}-signatories.html")


@bp.get("/<slug>/signatories.csv")
@access("viewer")
def signatory_csv(slug: str):
    """The confirmed signatories as CSV with city, state and type (formula-safe)."""
    letter = _letter_or_404(slug)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for row in services.signatory_rows(letter):
        writer.writerow(["'" + c if c[:1] in ("=", "+", "-", "@") else c for c in row])
    return _download(out.getvalue(), "text/csv", f"{letter.slug}-signatories.csv")


@bp.get("/<slug>/print")
@access("viewer")
def printable(slug: str):
    """The full letter with its signatories, laid out for printing."""
    letter = _letter_or_404(slug)
    return render_template("letters/print.html", letter=letter, signatures=services.signatories(letter))


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
                    user_id=_user_id(),
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


def _review_page(form: ReviewForm, failed: int | None = None):
    """The review queue; `?request=ID&q=…` searches organizations for one sign-on (the page without JavaScript)."""
    searched = request.args.get("request", "")
    q = single_line(request.args.get("q", ""))[:200]
    return render_template(
        "letters/review.html",
        entries=signon.review_entries(),
        form=form,
        failed=failed,
        searched=whole_number(searched),
        q=q,
        results=participation.search_organizations(q) if q and whole_number(searched) is not None else [],
    )


@bp.get("/review")
@access("organizer")
def review():
    """Confirmed public sign-ons waiting for a person, with the candidate organizations and their confidence."""
    return _review_page(ReviewForm())


@bp.post("/review/<int:request_id>")
@access("organizer")
def decide(request_id: int):
    """Accept a candidate (or an organization found by search), create a new organization, or decline."""
    row = signon.get_request(request_id) or abort(404)
    form = ReviewForm()
    back = request.form.get("next") == "letter"
    target = url_for("letters.show", slug=row.letter.slug) if back else url_for("letters.review")
    if form.validate_on_submit():
        try:
            if form.decision.data == "reject":
                signon.reject_signon(row, user_id=_user_id())
                flash(f"Declined {row.organization_name}; the signer was told.", "info")
                return redirect(target, 303)
            org_id = None
            if form.decision.data == "accept":
                org_id = form.organization_id.data or row.proposed_organization_id
                if org_id is None:
                    raise signon.SignOnError(
                        "Choose an organization (or search for one), or create a new one.", field="organization_id"
                    )
            signon.accept_signon(row, org_id, user_id=_user_id())
            flash(f"{row.organization_name} accepted; the signer was told.", "success")
            return redirect(target, 303)
        except signon.SignOnError as exc:
            if exc.field is None:  # e.g. decided meanwhile in another tab: nothing to correct on this form
                flash(str(exc), "danger")
                return redirect(target, 303)
            form[exc.field].errors.append(str(exc))
    shown = form.organization_id.errors or form.decision.errors  # written next to the sign-on's choices
    reason = "See the message next to its choices." if shown else error_summary(form)
    flash(f"Nothing was decided for {row.organization_name}. {reason}", "danger")
    return _review_page(form, failed=row.id), 400
