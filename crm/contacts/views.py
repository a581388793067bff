"""Contact pages: the filtered list and its CSV export, one contact, creating and editing."""

import csv
import io

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from crm.audit.services import events_for
from crm.common.access import access
from crm.common.editing import edit_record, form_version
from crm.common.errors import ConflictError, NotFound
from crm.common.text import single_line
from crm.common.validation import InvalidData, whole_number
from crm.contacts import services
from crm.contacts.filters import CONTACT_SORTS, ContactFilter, FilterError, parse_contact_filter
from crm.contacts.forms import ContactForm, QuickContactForm
from crm.exports.rows import CONTACT_COLUMNS, contact_row
from crm.letters.participation import search_organizations
from crm.organizations.issue_areas import issue_area_options
from crm.organizations.queries import get_organization, letter_options

bp = Blueprint("contacts", __name__, url_prefix="/contacts")


def _page_args() -> tuple[int, int]:
    """page and per_page from the query string, bounded."""
    page = request.args.get("page", "1")
    per_page = request.args.get("per_page", "50")
    return (
        whole_number(page, 1, 1_000_000) or 1,
        whole_number(per_page, 1, services.MAX_PER_PAGE) or 50,
    )


@bp.get("")
@access("viewer")
def index():
    """Contacts filtered by their organization and their own fields, with the mailable count."""
    error = None
    try:
        f = parse_contact_filter(request.args)
        page, per_page = _page_args()
        sort = request.args.get("sort", "name")
        sort = sort if sort in CONTACT_SORTS else "name"
        result = services.list_contacts(f, sort=sort, page=page, per_page=per_page)
    except FilterError as exc:
        error, f, sort = str(exc), ContactFilter(), "name"
        result = services.list_contacts(f)
    return render_template(
        "contacts/index.html",
        result=result,
        f=f,
        sort=sort,
        sorts=CONTACT_SORTS,
        error=error,
        area_pairs=[(a.slug, a.name) for a in issue_area_options(include_retired=True)],
        letters=letter_options(f.org.signed + f.org.not_signed),
    ), 400 if error else 200


@bp.get("/export.csv")
@access("viewer")
def export():
    """The filtered contacts as CSV (formula-safe), the same rows as `crm export contacts`."""
    try:
        f = parse_contact_filter(request.args)
        rows = (contact_row(c) for c in services.iter_contacts(f))
        first = next(rows, None)  # resolves slugs before the response starts
    except FilterError as exc:
        return Response(f"Error: {exc}\n", status=400, mimetype="text/plain")

    # Built whole (a few MB at the design size): the rows need the database session, which a streamed
    # response would outlive.
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CONTACT_COLUMNS)
    if first is not None:
        writer.writerow(first)
    writer.writerows(rows)
    return Response(
        buffer.getvalue(),
        mimetype="text/csv",
        headers={"Content-Disposition": 'attachment; filename="contacts.csv"'},
    )


@bp.get("/<int:contact_id>")
@access("viewer")
def show(contact_id: int):
    """A contact, their organization and the history of changes."""
    contact = services.get_contact(contact_id) or abort(404)
    return render_template(
        "contacts/show.html",
        contact=contact,
        audit=events_for("contact", contact.id),
        quick_form=QuickContactForm(formdata=None, version=contact.version),
    )


def _attach_errors(form: ContactForm, errors: dict[str, list[str]]) -> None:
    """Service errors next to the fields (organization_id is the `organization` field)."""
    for name, messages in errors.items():
        field = getattr(form, "organization" if name == "organization_id" else name, None) or form.first_name
        field.errors = list(field.errors) + messages


def _org_choices(form: ContactForm) -> list:
    """The organizations offered under the organization box: the one picked, else those matching the text."""
    picked = whole_number(form.organization_id.data or "", 1)
    if picked is not None and form.organization.data and not form.organization.errors:
        org = get_organization(picked)
        if org is not None:
            return [org]
    return search_organizations(form.organization.data or "", limit=8) if form.organization.data else []


@bp.get("/organization-options")
@access("organizer")
def organization_options():
    """Organizations matching the typed text, as radio choices under the contact form's box (htmx fragment)."""
    q = single_line(request.args.get("organization", ""))[:200]
    return render_template("contacts/_org_choices.html", org_choices=search_organizations(q, limit=8) if q else [],
                           q=q, picked=None)


@bp.route("/new", methods=["GET", "POST"])
@access("organizer")
def new():
    """Add a contact (optionally at an organization: ?organization_id=)."""
    form = ContactForm()
    org_id = whole_number(request.args.get("organization_id", ""), 1)
    if request.method == "GET" and org_id is not None:
        org = get_organization(org_id)
        if org is not None:
            form.organization.data, form.organization_id.data = org.name, str(org.id)
    if form.validate_on_submit():
        try:
            contact = services.create_contact(form.service_data(), user_id=current_user.id)
        except InvalidData as exc:
            _attach_errors(form, exc.errors)
        else:
            flash(f"{contact.full_name} added.", "success")
            _say_replaced(contact)
            return redirect(url_for("contacts.show", contact_id=contact.id), 303)
    return render_template(
        "contacts/form.html", form=form, contact=None, org_choices=_org_choices(form)
    ), 400 if form.errors else 200


def _fill(form: ContactForm, contact) -> None:
    """A contact's saved values into an empty form."""
    for name in ("first_name", "last_name", "title", "email", "phone", "status", "notes", "is_primary"):
        getattr(form, name).data = getattr(contact, name)
    form.organization.data = contact.organization.name if contact.organization else ""
    form.organization_id.data = str(contact.organization.id) if contact.organization else ""
    form.version.data = str(contact.version)


@bp.route("/<int:contact_id>/edit", methods=["GET", "POST"])
@access("organizer")
def edit(contact_id: int):
    """Edit a contact: move to another organization, mark primary or as having left; conflicts keep the input."""
    contact = services.get_contact(contact_id) or abort(404)
    form = ContactForm()

    def rows(current) -> list[tuple[str, object, object]]:
        """(field, saved, yours) rows for the fields where the input differs from what is saved now."""
        saved, mine = services.snapshot(current), form.service_data()
        return [
            (k.replace("_id", "").replace("_", " "), saved[k], mine[k])
            for k in services.AUDITED_FIELDS
            if k != "organization_id" and (saved[k] or None) != (mine[k] or None)
        ]

    outcome = edit_record(
        form,
        contact,
        fill=_fill,
        save=lambda data, version: services.update_contact(contact_id, data, version=version, user_id=current_user.id),
        attach_errors=_attach_errors,
        conflict_rows=rows,
    )
    if outcome.saved:
        flash(f"{outcome.record.full_name} saved.", "success")
        _say_replaced(outcome.record)
        return redirect(url_for("contacts.show", contact_id=outcome.record.id), 303)
    return render_template(
        "contacts/form.html", form=form, contact=outcome.record, conflict=outcome.conflict,
        org_choices=_org_choices(form),
    ), outcome.status


@bp.post("/<int:contact_id>/<any(primary, left, active):change>")
@access("organizer")
def quick_change(contact_id: int, change: str):
    """Make a contact primary, or mark them as having left (or back), from their page."""
    form = QuickContactForm()
    if not form.validate_on_submit():
        abort(400)
    data = {"primary": {"is_primary": True}, "left": {"status": "left"}, "active": {"status": "active"}}[
        change
    ]
    try:
        contact = services.update_contact(contact_id, data, version=form_version(form), user_id=current_user.id)
    except NotFound:
        abort(404)
    except services.PrimaryTaken as exc:
        flash(str(exc), "warning")
        return redirect(url_for("contacts.show", contact_id=contact_id), 303)
    except ConflictError:
        flash(
            "This contact changed since you opened the page; nothing was changed. Look again and retry.",
            "warning",
        )
        return redirect(url_for("contacts.show", contact_id=contact_id), 303)
    except InvalidData as exc:
        flash(" ".join(m for ms in exc.errors.values() for m in ms), "danger")
        return redirect(url_for("contacts.show", contact_id=contact_id), 303)
    flash(f"{contact.full_name} saved.", "success")
    _say_replaced(contact)
    return redirect(url_for("contacts.show", contact_id=contact_id), 303)


def _say_replaced(contact) -> None:
    """Say whom a save replaced as the organization's primary contact."""
    replaced = getattr(contact, "replaced_primary", None)
    if replaced and contact.organization is not None:
        flash(f"{contact.full_name} is now the primary contact of {contact.organization.name}, in place of "
              f"{replaced['name']} (who stays a contact).", "info")
