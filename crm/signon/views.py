"""Public sign-on: the public page and form, the mailed confirmation link, personal links."""

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from wtforms import SelectChoice

from crm.common.access import access
from crm.common.tokens import TokenError
from crm.extensions import limiter
from crm.letters.forms import PersonalSignForm, PublicSignOnForm
from crm.letters.services import LetterError, get_letter, read_personal_link, sign_with_personal_link
from crm.organizations.models import ORG_TYPES
from crm.organizations.services import issue_areas
from crm.signon import services

bp = Blueprint("signon", __name__)


def _signon_rate_limit() -> str:
    """Sign-ons per IP address (SIGNON_RATE_LIMIT, e.g. '5 per hour'; tests lower it)."""
    return current_app.config.get("SIGNON_RATE_LIMIT", "10 per hour")


def _public_form() -> PublicSignOnForm:
    """The public form with its choices filled in."""
    form = PublicSignOnForm()
    form.org_type.choices = [SelectChoice("", "—")] + [
        SelectChoice(t, t.replace("-", " ").capitalize()) for t in ORG_TYPES
    ]
    form.issue_areas.choices = [SelectChoice(a.slug, a.name) for a in issue_areas()]
    return form


@bp.route("/sign/<slug>", methods=["GET", "POST"])
@access("public")
@limiter.limit(_signon_rate_limit, methods=["POST"])
def public(slug: str):
    """A collecting letter with public sign-on on, and its form; anything else is a 404."""
    letter = get_letter(slug)
    if not services.open_for_signon(letter):
        abort(404)
    form = _public_form()
    status = 200
    if request.method == "POST":
        if form.website.data:  # the honeypot: people never see this field
            return render_template("signon/check_mail.html", letter=letter), 200
        if form.validate_on_submit():
            try:
                services.check_fill_time(form.started.data or "")
                if form.state.data and form.state.data.upper() not in _US_STATES():
                    raise services.SignOnError("Use a two-letter US state code for the state, such as NY.")
                services.submit_public_signon(letter, form.data, request.remote_addr or "")
            except services.SignOnError as exc:
                flash(str(exc), "danger")
                status = 400
            else:
                return render_template("signon/check_mail.html", letter=letter)
        else:
            status = 400
    form.started.data = services.form_timestamp_token()
    return render_template("signon/public.html", letter=letter, form=form), status


def _US_STATES():
    """The accepted state codes."""
    from crm.organizations.filters import US_STATES

    return US_STATES


@bp.get("/sign/<slug>/confirm/<token>")
@access("public")
def confirm(slug: str, token: str):
    """The mailed confirmation link: the sign-on now counts (after review when the letter requires it)."""
    try:
        row = services.confirm_public_signon(slug, token)
    except TokenError as exc:
        return render_template("signon/message.html", title="This link does not work", message=str(exc)), 400
    review = row.status == "confirmed"
    return render_template(
        "signon/message.html",
        title="Thank you: your sign-on is confirmed",
        message=(
            f"The organizers will review it shortly and write to you when {row.organization_name} is listed."
        )
        if review
        else f"{row.listed_name or row.organization_name} is now listed as a signatory.",
    )


@bp.route("/sign/<slug>/p/<token>", methods=["GET", "POST"])
@access("public")
@limiter.limit(_signon_rate_limit, methods=["POST"])
def personal(slug: str, token: str):
    """A personal sign-on link: the letter and one click to sign (twice is harmless)."""
    try:
        link = read_personal_link(slug, token)
    except TokenError as exc:
        return render_template("signon/message.html", title="This link does not work", message=str(exc)), 400
    form = PersonalSignForm(listed_name=link.organization.name)
    if form.validate_on_submit():
        try:
            sig, created = sign_with_personal_link(link, form.listed_name.data)
        except LetterError as exc:
            flash(str(exc), "danger")
        else:
            return render_template(
                "signon/message.html",
                title="Thank you",
                message=f"{sig.listed_name} is listed as a signatory of “{link.letter.title}”."
                + ("" if created else " (It already was: nothing changed.)"),
            )
    return render_template(
        "signon/personal.html",
        letter=link.letter,
        org=link.organization,
        form=form,
        open=link.letter.status == "collecting",
    ), 400 if form.errors else 200


@bp.get("/sign/<slug>/thanks")
@access("public")
def thanks(slug: str):
    """Where a sign-on lands when it is done."""
    return redirect(url_for("signon.public", slug=slug))
