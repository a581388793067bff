"""The suppression pages: the addresses never mailed, adding one, removing one with a reason, CSV import and
export."""

from flask import Response, flash, redirect, render_template, request, url_for

from crm.common.access import access

# Imported under another name: `suppressions` here is the list page's view (endpoint mailmerge.suppressions).
from crm.mailmerge import suppressions as suppression_service
from crm.mailmerge.blueprint import bp, current_user_id, page_number
from crm.mailmerge.errors import MergeError
from crm.mailmerge.forms import ImportSuppressionsForm, RemoveSuppressionForm, SuppressionForm


@bp.route("/suppressions", methods=["GET", "POST"])
@access("organizer")
def suppressions():
    """Addresses that are never mailed; add one."""
    form = SuppressionForm()
    if form.validate_on_submit():
        try:
            added = suppression_service.add_suppression(
                form.email.data, form.reason.data, form.note.data or "", current_user_id()
            )
            flash("Suppressed." if added else "That address was already suppressed.", "success")
            return redirect(url_for("mailmerge.suppressions"), 303)
        except MergeError as exc:
            form.email.errors = [str(exc)]
    q = request.args.get("q", "")[:254]
    return render_template(
        "mailmerge/suppressions.html",
        result=suppression_service.suppressions_page(page_number(), q=q),
        form=form,
        remove_form=RemoveSuppressionForm(),
        import_form=ImportSuppressionsForm(),
        q=q,
    ), 400 if form.errors else 200


@bp.post("/suppressions/remove")
@access("organizer")
def remove_suppression():
    """Un-suppress one address with a reason (audited)."""
    form = RemoveSuppressionForm()
    if form.validate_on_submit():
        try:
            suppression_service.remove_suppression(form.email.data, form.reason.data, current_user_id())
            flash(f"{form.email.data} may be mailed again.", "success")
        except MergeError as exc:
            flash(str(exc), "danger")
    else:
        flash("Say why this address may be mailed again.", "danger")
    return redirect(url_for("mailmerge.suppressions"), 303)


@bp.post("/suppressions/import")
@access("organizer")
def import_suppressions():
    """Add the addresses of a CSV (never removes any)."""
    form = ImportSuppressionsForm()
    if form.validate_on_submit():
        try:
            result = suppression_service.import_suppressions(
                form.file.data.read(5_000_001)[:5_000_000], current_user_id()
            )
            flash(f"{result['added']} addresses suppressed; {result['already']} were already.", "success")
        except MergeError as exc:
            flash(str(exc), "danger")
    else:
        flash("Choose a CSV file.", "danger")
    return redirect(url_for("mailmerge.suppressions"), 303)


@bp.get("/suppressions.csv")
@access("organizer")
def export_suppressions():
    """Every suppression as CSV."""
    return Response(
        "".join(suppression_service.export_suppressions()),
        mimetype="text/csv",
        headers={"Content-Disposition": "attachment; filename=suppressions.csv"},
    )
