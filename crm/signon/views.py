"""Public sign-on: the public page and form, the mailed confirmation link, personal links."""

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from wtforms import SelectChoice

from crm.common.access import access
from crm.common.tokens import TokenError
from crm.common.urls import public_url, this_page_with
from crm.extensions import limiter
from crm.letters.deadlines import closed_message, closed_title, signed_on, takes_signatures
from crm.letters.forms import ConfirmSignOnForm, PersonalSignForm, PublicSignOnForm
from crm.letters.personal_links import (
    LinkRevoked,
    StateChanged,
    read_personal_link,
    sign_with_personal_link,
    withdraw_with_personal_link,
)
from crm.letters.queries import awaiting_review_total, get_letter, signed_count
from crm.letters.signatures import signature_of
from crm.letters.slugs import renamed_letter
from crm.letters.writing import LetterError
from crm.organizations.issue_areas import issue_areas
from crm.organizations.models import ORG_TYPES
from crm.signon import mails as signon_mails
from crm.signon import services
from crm.signon.forms import MailWordingForm

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


@bp.app_context_processor
def review_badge() -> dict:
    """`awaiting_review_total()` for the navigation's badge: a callable, so only pages that show it query."""
    return {"awaiting_review_total": awaiting_review_total}


def _thanks(letter, title: str, message: str, status: int = 200, waiting: bool = False):
    """The thank-you page: what happened, how many organizations signed so far, and the link to share.

    `waiting`: the signer's own sign-on is not counted yet (it waits for review), so the count must not read as if
    it were the final word on them.
    """
    # The address people open (CRM_BASE_URL), as in mail, not the host this request happened to reach.
    share = public_url(f"/sign/{letter.slug}") if services.open_for_signon(letter) else ""
    return render_template(
        "signon/thanks.html", letter=letter, title=title, message=message,
        signed=signed_count(letter), share=share, waiting=waiting,
    ), status


def _moved(letter, slug: str):
    """For a page opened (GET) through a slug the letter had before a rename: a redirect to the same page under its
    current slug (302: the old slug may go to another letter later). None otherwise.

    A form sent to the old address (a page opened before the rename) is taken where it lands: a redirect would count
    it twice against the rate limit, and a signature must not be lost on the way.
    """
    if letter.slug == slug or request.method not in ("GET", "HEAD"):
        return None
    return redirect(this_page_with(slug=letter.slug), 302)


@bp.route("/sign/<slug>", methods=["GET", "POST"])
@access("public")
@limiter.limit(_signon_rate_limit, methods=["POST"])
def public(slug: str):
    """A letter's public page and form; after its deadline (or once closed) it says so and records nothing."""
    letter = get_letter(slug) or renamed_letter(slug)
    if not services.has_public_page(letter):
        abort(404)  # a private letter's new slug is not told either
    if (moved := _moved(letter, slug)) is not None:
        return moved
    if not services.open_for_signon(letter):
        return render_template("signon/public.html", letter=letter, form=None,
                               closed=closed_message(letter)), 200 if request.method == "GET" else 409
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
    return render_template("signon/public.html", letter=letter, form=form, closed=None), status


def _US_STATES():
    """The accepted state codes."""
    from crm.organizations.filters import US_STATES

    return US_STATES


@bp.route("/sign/<slug>/confirm/<token>", methods=["GET", "POST"])
@access("public")
def confirm(slug: str, token: str):
    """The mailed confirmation link: opening it shows a button (mail scanners open links); the POST confirms."""
    try:
        row = services.read_confirmation(slug, token)
    except TokenError as exc:
        return render_template("signon/message.html", title="This link does not work", message=str(exc)), 400
    if (moved := _moved(row.letter, slug)) is not None:
        return moved
    form = ConfirmSignOnForm()
    if request.method == "GET" or not form.validate_on_submit():
        if row.status != "unconfirmed":
            return _confirmed_page(row)
        if not takes_signatures(row.letter):
            return render_template("signon/message.html", title=closed_title(row.letter),
                                   message=closed_message(row.letter)), 200
        return render_template("signon/confirm.html", row=row, letter=row.letter, form=form), \
            400 if request.method == "POST" else 200
    try:
        row = services.confirm_public_signon(slug, token)
    except services.SignOnError as exc:
        return render_template("signon/message.html", title=closed_title(row.letter), message=str(exc)), 409
    return _confirmed_page(row)


def _confirmed_page(row):
    """Where a confirmed sign-on stands: listed, waiting for review, or declined."""
    name = row.listed_name or row.organization_name
    if row.status == "accepted":
        return _thanks(row.letter, "Thank you: your sign-on is confirmed", f"{name} is now listed as a signatory.")
    if row.status == "rejected":
        return render_template("signon/message.html", title="This sign-on was declined",
                               message="The organizers could not add this sign-on; they wrote to you about it.")
    return _thanks(row.letter, "Thank you: your sign-on is confirmed",
                   f"The organizers will review it shortly and write to you when {row.organization_name} is listed.",
                   waiting=True)


@bp.route("/sign/<slug>/p/<token>", methods=["GET", "POST"])
@access("public")
@limiter.limit(_signon_rate_limit, methods=["POST"])
def personal(slug: str, token: str):
    """A personal sign-on link: where the organization stands on the letter, and one click to sign or withdraw.

    Nothing changes unless the answer the page showed is still the answer (a withdrawn or declined signature
    is shown and asked about, never overturned by an old link).
    """
    try:
        link = read_personal_link(slug, token)
    except LinkRevoked as exc:
        return render_template("signon/message.html", title="This link was withdrawn", message=str(exc)), 410
    except TokenError as exc:
        return render_template("signon/message.html", title="This link does not work", message=str(exc)), 400
    if (moved := _moved(link.letter, slug)) is not None:
        return moved
    if link.organization.archived:
        return render_template(
            "signon/message.html", title="This organization cannot sign",
            message=f"{link.organization.name} is no longer active in our records, so it cannot sign through this "
                    "link. Nothing was recorded; write to the organizers if this is a mistake.",
        ), 410
    form = PersonalSignForm(listed_name=link.organization.name)
    status = 200
    if request.method == "POST":
        if form.validate_on_submit():
            try:
                if form.action.data == "withdraw":
                    sig = withdraw_with_personal_link(link, form.seen.data or "")
                    return render_template(
                        "signon/message.html", title="Your signature is withdrawn",
                        message=f"{sig.listed_name} is no longer listed as a signatory of “{link.letter.title}”. "
                                "You can sign again from this link while the letter is open.")
                sig, created = sign_with_personal_link(
                    link, form.listed_name.data or link.organization.name, form.seen.data or "")
            except StateChanged as exc:
                flash(str(exc), "warning")
                status = 409
            except LetterError as exc:
                flash(str(exc), "danger")
                status = 409
            else:
                return _thanks(
                    link.letter, "Thank you",
                    f"{sig.listed_name} is listed as a signatory of “{link.letter.title}”."
                    + ("" if created else " (It already was: nothing changed.)"))
        else:
            status = 400
    sig = signature_of(link.letter, link.organization.id)
    form.seen.data = sig.status if sig is not None else "none"
    return render_template(
        "signon/personal.html",
        letter=link.letter,
        org=link.organization,
        sig=sig,
        signed_on=signed_on(sig) if sig is not None else "",
        form=form,
        open=takes_signatures(link.letter),
        closed=closed_message(link.letter),
    ), status


@bp.get("/sign-on-mails")
@access("organizer")
def mails():
    """The mails signers receive, each with its subject and whether the organizers changed its wording."""
    return render_template("signon/mails.html", kinds=signon_mails.all_wordings())


@bp.route("/sign-on-mails/<kind>", methods=["GET", "POST"])
@access("organizer")
def mail(kind: str):
    """Read, edit and preview one sign-on mail; save keeps it only when it renders; reset goes back."""
    spec = signon_mails.KINDS.get(kind) or abort(404)
    subject, body, changed = signon_mails.wording(kind)
    form = MailWordingForm(subject=subject, body=body)
    action = request.form.get("action", "preview")
    problems: list[str] = []
    status = 200
    if request.method == "POST":
        valid = form.validate_on_submit()
        if action == "reset" and "csrf_token" not in form.errors:
            signon_mails.reset_wording(kind, user_id=current_user.id)
            flash(f"The {spec.label!r} mail uses the built-in wording again.", "success")
            return redirect(url_for("signon.mail", kind=kind), 303)
        if not valid:
            status = 400
        elif action == "save":
            try:
                signon_mails.save_wording(kind, form.subject.data, form.body.data, user_id=current_user.id)
            except signon_mails.MailTemplateError as exc:
                problems, status = exc.problems, 400
            else:
                flash(f"The {spec.label!r} mail is saved: signers get this wording from now on.", "success")
                return redirect(url_for("signon.mail", kind=kind), 303)
    rendered = None
    if not problems and not form.errors:
        try:
            rendered = signon_mails.preview(kind, form.subject.data or "", form.body.data or "")
        except signon_mails.MailTemplateError as exc:
            problems = exc.problems
            status = 400 if request.method == "POST" else 200
    return render_template("signon/mail.html", kind=kind, spec=spec, form=form, changed=changed,
                           rendered=rendered, problems=problems, fields=MAIL_FIELDS), status


# The fields a sign-on mail can use, with what they hold (a subset of the merge fields: no history).
MAIL_FIELDS = {
    "contact.first_name": "Signer's first name",
    "contact.last_name": "Signer's last name",
    "contact.full_name": "Signer's name",
    "contact.title": "Signer's title",
    "org.name": "The organization (as it is listed)",
    "letter.title": "The letter's title",
    "letter.summary": "The letter's summary",
    "letter.deadline": "The sign-on deadline",
    "letter.date": "The letter's date",
    "letter.url": "The letter's public page (only while it takes public sign-ons)",
    "sign_on_url": "The mail's link, where it has one (see above)",
    "unsubscribe_url": "The signer's unsubscribe link (the footer has it already)",
}


@bp.get("/sign/<slug>/thanks")
@access("public")
def thanks(slug: str):
    """Where a sign-on lands when it is done."""
    return redirect(url_for("signon.public", slug=slug))
