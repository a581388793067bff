"""Letter pages for signatures: find and add an organization, edit a signature, revoke links, ask to confirm again."""

from flask import abort, flash, redirect, render_template, request, url_for
from wtforms import SelectChoice

from crm.common.access import access
from crm.common.forms import error_summary
from crm.common.text import single_line
from crm.common.validation import whole_number
from crm.contacts.services import contacts_of
from crm.letters import participation, personal_links, signatures, writing
from crm.letters.blueprint import bp, current_user_id, letter_or_404
from crm.letters.forms import AddSignatureForm, ReconfirmForm, RevokeLinksForm, SignatureForm
from crm.organizations.queries import get_organization


@bp.post("/<slug>/revoke-links")
@access("organizer")
def revoke_links(slug: str):
    """Refuse every personal sign-on link of one organization for this letter made until now (new ones work)."""
    letter = letter_or_404(slug)
    form = RevokeLinksForm()
    org = get_organization(form.organization_id.data) if form.validate_on_submit() else None
    if org is None:
        flash(f"No link was revoked. {error_summary(form) or 'Choose an organization.'}", "danger")
    else:
        personal_links.revoke_personal_links(letter, org, user_id=current_user_id())
        flash(f"The personal links of {org.name} for this letter no longer work; links made from now on do.",
              "success")
    back = request.form.get("next", "")
    return redirect(back if back.startswith("/letters/") and "//" not in back
                    else url_for("letters.show", slug=slug), 303)


@bp.get("/<slug>/organizations")
@access("organizer")
def organization_search(slug: str):
    """Search-as-you-type for the add-an-organization form (an htmx fragment; a page without JavaScript)."""
    letter = letter_or_404(slug)
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
    letter = letter_or_404(slug)
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
        sig, created = signatures.add_signature(
            letter,
            org,
            role=form.role.data,
            status=form.status.data,
            listed_name=form.listed_name.data or org.name,
            source=form.source.data,
            user_id=current_user_id(),
        )
    except writing.LetterError as exc:
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
    letter = letter_or_404(slug)
    sig = signatures.get_signature(letter, signature_id) or abort(404)
    form = SignatureForm(obj=sig)
    form.contact_id.choices = [SelectChoice("", "—")] + [
        SelectChoice(str(c.id), f"{c.full_name} <{c.email}>") for c in contacts_of(sig.organization_id)
    ]
    if request.method == "GET":
        form.contact_id.data = str(sig.contact_id or "")
    if request.method == "POST" and form.validate_on_submit():
        try:
            signatures.update_signature(
                sig,
                {
                    "role": form.role.data,
                    "position": form.position.data,
                    "status": form.status.data,
                    "listed_name": form.listed_name.data,
                    "source": form.source.data,
                    "contact_id": whole_number(form.contact_id.data, 1),
                },
                user_id=current_user_id(),
            )
        except writing.LetterError as exc:
            getattr(form, exc.field, form.status).errors.append(str(exc))
        else:
            flash("Saved.", "success")
            return redirect(url_for("letters.show", slug=slug), 303)
    return render_template(
        "letters/signature.html", letter=letter, sig=sig, form=form, current=signatures.text_fingerprint(letter),
        revoke_form=RevokeLinksForm(organization_id=sig.organization_id),
        revoked_at=personal_links.links_revoked_at(letter, sig.organization_id),
    ), 400 if form.errors else 200


@bp.post("/<slug>/reconfirm")
@access("viewer", write="organizer")
def reconfirm(slug: str):
    """Ask every signer of an earlier text to confirm the current one."""
    letter = letter_or_404(slug)
    if ReconfirmForm().validate_on_submit():
        asked = signatures.request_reconfirmation(letter, user_id=current_user_id())
        flash(f"Asked {asked} signers to confirm the changed text.", "success")
    return redirect(url_for("letters.show", slug=slug), 303)
