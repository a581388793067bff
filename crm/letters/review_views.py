"""The review queue: confirmed public sign-ons waiting for an organizer to accept or decline them."""

from flask import abort, flash, redirect, render_template, request, url_for

from crm.common.access import access
from crm.common.forms import error_summary
from crm.common.text import single_line
from crm.common.validation import whole_number
from crm.letters import participation
from crm.letters.blueprint import bp, current_user_id
from crm.letters.forms import ReviewForm
from crm.signon import services as signon


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
                signon.reject_signon(row, user_id=current_user_id())
                flash(f"Declined {row.organization_name}; the signer was told.", "info")
                return redirect(target, 303)
            org_id = None
            if form.decision.data == "accept":
                org_id = form.organization_id.data or row.proposed_organization_id
                if org_id is None:
                    raise signon.SignOnError(
                        "Choose an organization (or search for one), or create a new one.", field="organization_id"
                    )
            signon.accept_signon(row, org_id, user_id=current_user_id())
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
