"""The mail-merge pages: compose and edit a draft, its audience count, check, preview and test it, queue it,
control it and read its report."""

from urllib.parse import urlencode

from flask import abort, flash, make_response, redirect, render_template, request, url_for
from flask_login import current_user
from wtforms import SelectChoice

from crm.common.access import access
from crm.common.editing import edit_record, form_differences
from crm.common.validation import InvalidData, whole_number
from crm.letters.queries import list_letters
from crm.mailmerge import checking, compose, previews, queueing, reports
from crm.mailmerge.blueprint import bp, current_user_id, page_number
from crm.mailmerge.errors import MergeError
from crm.mailmerge.forms import ActionForm, ConfirmForm, MergeForm, TestForm
from crm.organizations.issue_areas import issue_areas
from crm.segments.services import list_segments


def _merge_or_404(merge_id: int):
    """The merge or a 404."""
    return reports.get_merge(merge_id) or abort(404)


def _button(form, act, back: str):
    """A merge page button: run `act` when the form (CSRF) is valid, flash the outcome, go `back` (303).

    `act` returns the success message; a MergeError it raises is flashed as a danger instead.
    """
    if form.validate_on_submit():
        try:
            flash(act(), "success")
        except MergeError as exc:
            flash(str(exc), "danger")
    return redirect(back, 303)


def _fill_choices(form: MergeForm) -> None:
    """Choices for the compose form's selects."""
    letters = [letter for letter, _ in list_letters()]
    letter_choices = [SelectChoice(letter.slug, letter.title) for letter in letters]
    # The letter a merge promotes, with its state: personal sign-on links work only while it is collecting.
    form.letter.choices = [SelectChoice("", "— none —"),
                           *(SelectChoice(letter.slug, f"{letter.title} ({letter.status})") for letter in letters)]
    form.signed.choices = letter_choices
    form.not_signed.choices = letter_choices
    form.segment.choices = [SelectChoice("", "— no segment —")] + [
        SelectChoice(str(s.id), s.name) for s in list_segments()
    ]
    form.issue_area.choices = [SelectChoice(a.slug, a.name) for a in issue_areas()]
    form.not_issue_area.choices = form.issue_area.choices
    form.after_merge.choices = [SelectChoice("", "— anyone —")] + [
        SelectChoice(str(m.id), f"#{m.id} {m.name}") for m, _ in reports.list_merges() if m.status != "draft"
    ]


def _apply_errors(form: MergeForm, errors: dict[str, list[str]]) -> None:
    """Show service errors next to the fields they concern (those of no field above the form)."""
    mapping = {
        "name": form.name,
        "letter": form.letter,
        "sender": form.sender,
        "reply_to": form.reply_to,
        "subject": form.subject,
        "body": form.body,
        "throttle_per_minute": form.throttle_per_minute,
        "audience.segment_id": form.segment,
        "audience.after_merge": form.after_merge,
        "audience.contacts": form.contacts,
    }
    for key, messages in errors.items():
        if not key:
            form.form_errors.extend(messages)
            continue
        target = mapping.get(key)
        if target is None and key.startswith("audience.filter."):
            target = getattr(form, key.rsplit(".", 1)[1], None) or form.extra_filter
        target = target or form.extra_filter
        target.errors = list(target.errors or []) + list(messages)


@bp.get("/merges")
@access("viewer")
def merges():
    """Every mail merge with its progress."""
    return render_template("mailmerge/merges.html", merges=reports.list_merges())


@bp.route("/merges/new", methods=["GET", "POST"])
@access("organizer")
def new():
    """Compose a merge."""
    form = MergeForm()
    _fill_choices(form)
    if request.method == "GET":
        form.letter.data = request.args.get("letter", "")
        source = whole_number(request.args.get("from_merge", ""), 1)
        source_merge = reports.get_merge(source) if source is not None else None
        if source_merge is not None:
            # "Follow up with those who did not sign" starts from the original's content.
            content = compose.content_of(source_merge)
            form.name.data = f"Follow-up: {source_merge.name}"[:200]
            form.sender.data, form.reply_to.data = content["sender"], content["reply_to"]
            form.subject.data, form.body.data = content["subject"], content["body"]
            form.throttle_per_minute.data = content["throttle_per_minute"]
            form.letter.data = request.args.get("letter") or content["letter"] or ""
        if whole_number(request.args.get("after_merge", ""), 1) is not None:
            form.after_merge.data = request.args["after_merge"]
        for key in ("signed", "not_signed"):
            if request.args.get(key):
                getattr(form, key).data = request.args.getlist(key)
    if form.validate_on_submit():
        try:
            merge = compose.create_merge(form.service_data(), current_user_id())
        except MergeError as exc:
            _apply_errors(form, exc.errors)
        else:
            flash("Draft saved. Check the audience and the messages before queueing.", "success")
            return redirect(url_for("mailmerge.show", merge_id=merge.id))
    return render_template(
        "mailmerge/form.html", form=form, merge=None, fields=compose.field_list()
    ), 400 if form.errors else 200


def _fill(form: MergeForm, merge) -> None:
    """The compose form as the merge is saved (the edit page, and the "saved now" side of a conflict)."""
    audience = merge.audience or {}
    params = dict(audience.get("filter") or {})
    form.name.data, form.sender.data, form.reply_to.data = merge.name, merge.sender, merge.reply_to
    form.subject.data, form.body.data = merge.subject_template, merge.body_template
    form.throttle_per_minute.data = merge.throttle_per_minute
    form.letter.data = merge.letter.slug if merge.letter else ""
    form.segment.data = str(audience.get("segment_id") or "")
    form.after_merge.data = str(audience.get("after_merge") or "")
    form.contacts.data = audience.get("contacts", "primary")
    form.issue_area.data = params.pop("issue_area", [])
    form.match.data = params.pop("match", "any")
    form.not_issue_area.data = params.pop("not_issue_area", [])
    form.signed.data = params.pop("signed", [])
    form.not_signed.data = params.pop("not_signed", [])
    form.state.data = ", ".join(params.pop("state", []))
    form.extra_filter.data = urlencode(params, doseq=True)
    form.version.data = str(merge.version)


# The compose form's fields a conflict compares, in the form's order.
_EDITED = ("name", "letter", "sender", "reply_to", "subject", "body", "throttle_per_minute", "segment", "signed",
           "not_signed", "issue_area", "match", "not_issue_area", "state", "extra_filter", "after_merge", "contacts")


def _save(merge, data: dict, version: int | None):
    """update_merge at the version the form was opened with; its MergeError as the field errors to show."""
    try:
        return compose.update_merge(merge, data, current_user_id(), version=version)
    except MergeError as exc:
        raise InvalidData(exc.errors or {"": [str(exc)]}) from exc


@bp.route("/merges/<int:merge_id>/edit", methods=["GET", "POST"])
@access("organizer")
def edit(merge_id: int):
    """Edit a draft merge (a queued merge is frozen); a save over someone else's newer change shows a conflict."""
    merge = _merge_or_404(merge_id)
    if merge.status != "draft":
        flash(f"This merge is {merge.status}: its content and audience are frozen.", "warning")
        return redirect(url_for("mailmerge.show", merge_id=merge.id)), 303
    form = MergeForm()
    _fill_choices(form)

    def rows(current) -> list[tuple[str, object, object]]:
        """(field, saved, yours) rows for the fields where the input differs from what is saved now."""
        saved = MergeForm(formdata=None, meta={"csrf": False})
        _fill(saved, current)
        return form_differences(form, saved, _EDITED)

    outcome = edit_record(form, merge, fill=_fill, save=lambda data, version: _save(merge, data, version),
                          attach_errors=_apply_errors, conflict_rows=rows)
    if outcome.saved:
        flash("Saved.", "success")
        return redirect(url_for("mailmerge.show", merge_id=merge.id))
    return render_template(
        "mailmerge/form.html", form=form, merge=outcome.record, conflict=outcome.conflict,
        fields=compose.field_list(),
    ), outcome.status


@bp.get("/merges/audience-count")
@access("organizer")
def audience_count():
    """The audience of the compose form as it stands, counted before saving: htmx swaps this fragment in as the
    organizer changes the audience (without JavaScript the merge page counts it once saved)."""
    form = MergeForm(formdata=request.args, meta={"csrf": False})
    _fill_choices(form)
    counts, error = None, None
    try:
        counts = checking.count_audience(form.audience())
    except MergeError as exc:
        error = str(exc)
    return render_template("mailmerge/_audience_count.html", counts=counts, error=error)


@bp.post("/merges/<int:merge_id>/duplicate")
@access("organizer")
def duplicate(merge_id: int):
    """A new draft with this merge's name, letter, sender, subject, body and audience."""
    merge = _merge_or_404(merge_id)
    form = ActionForm()
    if not form.validate_on_submit():
        return redirect(url_for("mailmerge.show", merge_id=merge.id), 303)
    try:
        copy = compose.duplicate_merge(merge, current_user_id())
    except MergeError as exc:
        flash(str(exc), "danger")
        return redirect(url_for("mailmerge.show", merge_id=merge.id), 303)
    flash(f"“{copy.name}” is a new draft: change what you need, then check and send it.", "success")
    return redirect(url_for("mailmerge.edit", merge_id=copy.id), 303)


def _audience_counts(merge):
    """Counts, or an error message when the audience no longer resolves."""
    try:
        return checking.audience_counts(merge), None
    except MergeError as exc:
        return None, str(exc)


@bp.get("/merges/<int:merge_id>")
@access("viewer")
def show(merge_id: int):
    """A merge: content, audience counts, progress and actions."""
    merge = _merge_or_404(merge_id)
    counts, audience_error = _audience_counts(merge) if merge.status == "draft" else (None, None)
    test_form = TestForm()
    test_form.contact_id.choices = [
        SelectChoice(str(cid), label)
        for cid, label in (previews.preview_contacts(merge, 50) if merge.status == "draft" else [])
    ]
    return render_template(
        "mailmerge/show.html",
        merge=merge,
        counts=counts,
        audience_error=audience_error,
        audience=checking.describe_audience(merge),
        progress=reports.merge_counts(merge.id),
        action_form=ActionForm(),
        test_form=test_form,
        link_warning=checking.link_warning(),
        letter_problem=checking.letter_problem(merge) if merge.status == "draft" else None,
    )


@bp.get("/merges/<int:merge_id>/progress")
@access("viewer")
def progress(merge_id: int):
    """The progress fragment (htmx polls it while the merge is active)."""
    merge = _merge_or_404(merge_id)
    response = make_response(
        render_template("mailmerge/_progress.html", merge=merge, progress=reports.merge_counts(merge.id))
    )
    if request.headers.get("HX-Request") and merge.status not in ("queued", "sending"):
        # The merge just finished (or was paused elsewhere): reload the page so the status badge and the
        # actions (Pause → Follow up) match it, instead of only the bar.
        response.headers["HX-Refresh"] = "true"
    return response


@bp.get("/merges/<int:merge_id>/check")
@access("organizer")
def check(merge_id: int):
    """The dry run: every recipient rendered once; what would block queueing."""
    merge = _merge_or_404(merge_id)
    try:
        result = checking.check_merge(merge)
    except MergeError as exc:
        flash(str(exc), "danger")
        return redirect(url_for("mailmerge.show", merge_id=merge.id))
    return render_template("mailmerge/check.html", merge=merge, result=result, action_form=ActionForm(),
                           audience=checking.describe_audience(merge))


@bp.get("/merges/<int:merge_id>/preview")
@access("organizer")
def preview(merge_id: int):
    """One recipient's message as it will arrive: HTML in a sandboxed frame, and the plain text."""
    merge = _merge_or_404(merge_id)
    contact_id = request.args.get("contact_id", "")
    error, rendered = None, None
    try:
        rendered = previews.preview(merge, whole_number(contact_id, 1))
    except MergeError as exc:
        error = str(exc)
    return render_template(
        "mailmerge/preview.html",
        merge=merge,
        rendered=rendered,
        error=error,
        contacts=previews.preview_contacts(merge),
        contact_id=contact_id,
    ), 200 if rendered else 400


@bp.post("/merges/<int:merge_id>/test")
@access("organizer")
def send_test(merge_id: int):
    """Queue a test message to the organizer's own address."""
    merge = _merge_or_404(merge_id)
    form = TestForm()
    form.contact_id.choices = []

    def send():
        value = form.contact_id.data or ""
        previews.send_test(merge, current_user.email, whole_number(value, 1), current_user_id())
        return f"A test was queued to {current_user.email}."

    return _button(form, send, url_for("mailmerge.show", merge_id=merge.id))


@bp.route("/merges/<int:merge_id>/queue", methods=["GET", "POST"])
@access("organizer")
def queue(merge_id: int):
    """"Queue and send" asks first: the confirmation page (GET, or a POST without `confirmed`), then a second
    click (a POST with `confirmed=yes`) freezes and queues the merge after the dry run passes."""
    merge = _merge_or_404(merge_id)
    form = ConfirmForm()
    back = url_for("mailmerge.show", merge_id=merge.id)
    if request.method == "POST" and request.form.get("confirmed") == "yes":

        def queue_it():
            summary = queueing.queue_merge(merge, current_user_id())
            return (
                f"Queued to {summary['queued']} recipients ({summary['suppressed']} suppressed, "
                f"{summary['duplicates']} duplicate addresses skipped)."
            )

        return _button(form, queue_it, back)
    if merge.status != "draft":
        flash(f"This merge is already {merge.status}.", "warning")
        return redirect(back, 303)
    try:
        summary = queueing.send_summary(merge)
    except MergeError as exc:
        flash(str(exc), "danger")
        return redirect(back, 303)
    return render_template("mailmerge/confirm.html", merge=merge, summary=summary, form=form)


@bp.post("/merges/<int:merge_id>/<any(pause, resume, cancel):action>")
@access("organizer")
def control(merge_id: int, action: str):
    """Pause, resume or cancel."""
    merge = _merge_or_404(merge_id)

    def change_state():
        queueing.set_state(merge, action, current_user_id())
        return f"Merge {merge.status}."

    return _button(ActionForm(), change_state, url_for("mailmerge.show", merge_id=merge.id))


@bp.get("/merges/<int:merge_id>/report")
@access("organizer")
def report(merge_id: int):
    """Every recipient's status and SMTP response."""
    merge = _merge_or_404(merge_id)
    status = request.args.get("status") or None
    return render_template(
        "mailmerge/report.html",
        merge=merge,
        result=reports.report_page(merge.id, page_number(), status=status),
        progress=reports.merge_counts(merge.id),
        status=status,
        action_form=ActionForm(),
        audience=checking.describe_audience(merge),
    )


@bp.post("/merges/<int:merge_id>/messages/<int:message_id>/resend")
@access("organizer")
def resend(merge_id: int, message_id: int):
    """The organizer chooses to resend an uncertain or failed message."""
    message = reports.get_message(message_id)
    if message is None or message.merge_id != merge_id:
        abort(404)

    def resend_it():
        queueing.resend_message(message, current_user_id())
        return f"The message to {message.email} was queued again."

    return _button(ActionForm(), resend_it, url_for("mailmerge.report", merge_id=merge_id))
