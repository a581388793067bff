"""Organization pages: the filtered list, the profile, creating, editing and archiving, the issue-area vocabulary."""

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from wtforms import SelectChoice

from crm.audit.services import events_for
from crm.common.access import access
from crm.common.editing import edit_record, form_version
from crm.common.errors import ConflictError, NotFound
from crm.common.validation import InvalidData, whole_number
from crm.contacts.services import contacts_of
from crm.letters.forms import MergeForm
from crm.letters.personal_links import personal_links_for
from crm.mailmerge.reports import merges_for_organization
from crm.organizations import creation, editing, interactions, merging, queries
from crm.organizations import issue_areas as vocabulary
from crm.organizations.filters import SORTS, FilterError, OrgFilter, parse_filter
from crm.organizations.forms import (
    ArchiveForm,
    InteractionForm,
    IssueAreaForm,
    IssueAreaMergeForm,
    OrganizationForm,
)
from crm.organizations.models import ORG_TYPES, SCOPES

bp = Blueprint("organizations", __name__, url_prefix="/organizations")

PER_PAGE_CHOICES = (10, 25, 50, 100, 200)


def page_args() -> tuple[int, int]:
    """page and per_page from the query string, bounded."""
    page = request.args.get("page", "1")
    per_page = request.args.get("per_page", "50")
    page_n = whole_number(page, 1, 1_000_000) or 1
    per_page_n = whole_number(per_page, 1, queries.MAX_PER_PAGE) or 50
    return page_n, per_page_n


@bp.get("")
@access("viewer")
def index():
    """The organization list with the filter form; htmx asks for the results part only."""
    error = None
    try:
        org_filter = parse_filter(request.args)
        page, per_page = page_args()
        sort = request.args.get("sort", "name")
        sort = sort if sort in SORTS else "name"
        result = queries.list_organizations(org_filter, sort=sort, page=page, per_page=per_page)
    except FilterError as exc:
        error = str(exc)
        org_filter, sort = OrgFilter(), "name"
        result = queries.list_organizations(org_filter)
    status = 400 if error else 200
    if request.headers.get("HX-Request"):
        return render_template(
            "organizations/_results.html", result=result, f=org_filter, error=error
        ), status
    return render_template(
        "organizations/index.html",
        result=result,
        f=org_filter,
        sort=sort,
        sorts=SORTS,
        error=error,
        areas=vocabulary.issue_area_options(include_retired=True),
        letters=queries.letter_options(org_filter.signed + org_filter.not_signed),
        org_types=ORG_TYPES,
        scopes=SCOPES,
        parent_name=queries.organization_name(org_filter.parent),
        per_page_choices=PER_PAGE_CHOICES,
    ), status


@bp.get("/<int:org_id>")
@access("viewer")
def show(org_id: int):
    """An organization's profile, contacts, participation across letters, interactions and history."""
    org = queries.get_organization(org_id) or abort(404)
    return _render_show(org, _interaction_form(org.id))


def _render_show(org, interaction_form: InteractionForm) -> str:
    """The organization page, with the interaction form as given (blank, or with its errors)."""
    history = queries.participation(org.id)
    return render_template(
        "organizations/show.html",
        org=org,
        history=history,
        summary=queries.participation_summary(history),
        contacts=contacts_of(org.id),
        interactions=interactions.interactions_of(org.id),
        interaction_form=interaction_form,
        archive_form=ArchiveForm(formdata=None, version=org.version),
        audit=events_for("organization", org.id),
        personal_links=personal_links_for(org),
        merges=merges_for_organization(org.id),
    )


def _interaction_form(org_id: int, formdata=None) -> InteractionForm:
    """The interaction form with the organization's contacts to choose from."""
    from datetime import date

    form = (
        InteractionForm(formdata=formdata)
        if formdata is not None
        else InteractionForm(formdata=None, occurred_on=date.today())
    )
    form.contact_id.choices = [SelectChoice("", "—")] + [
        SelectChoice(str(c.id), c.full_name) for c in contacts_of(org_id) if c.status == "active"
    ]
    return form


def _area_choices(org=None) -> list[SelectChoice]:
    """Issue areas to offer: the active vocabulary plus any retired one the organization still has."""
    areas = vocabulary.issue_areas()
    have = {a.slug for a in areas}
    extra = [a for a in (org.issue_areas if org else []) if a.slug not in have]
    return [SelectChoice(a.slug, a.name + (" (retired)" if a.retired else "")) for a in areas + extra]


def _attach_errors(form, errors: dict[str, list[str]]) -> None:
    """Show service-level errors next to the form's fields (parent_id is the `parent` field)."""
    for name, messages in errors.items():
        field = getattr(form, "parent" if name == "parent_id" else name, None) or form.name
        field.errors = list(field.errors) + messages


@bp.route("/new", methods=["GET", "POST"])
@access("organizer")
def new():
    """Create an organization."""
    form = OrganizationForm()
    form.issue_areas.choices = _area_choices()
    parent_id = whole_number(request.args.get("parent", ""), 1)
    if request.method == "GET" and parent_id is not None:
        parent = queries.get_organization(parent_id)
        if parent is not None:
            form.parent.data = f"{parent.name} (#{parent.id})"
    if form.validate_on_submit():
        try:
            org = creation.create_organization(form.service_data(), user_id=current_user.id)
        except InvalidData as exc:
            _attach_errors(form, exc.errors)
        else:
            flash(f"{org.name} added.", "success")
            return redirect(url_for("organizations.show", org_id=org.id), 303)
    return render_template("organizations/form.html", form=form, org=None), 400 if form.errors else 200


@bp.get("/duplicates")
@access("organizer")
def duplicates():
    """Organizations that are probably one: same name, alias collisions, similar names, one website."""
    return render_template("organizations/duplicates.html", pairs=merging.find_duplicates())


@bp.route("/merge", methods=["GET", "POST"])
@access("organizer")
def merge():
    """Preview, then merge one organization into another."""
    form = MergeForm(request.values)
    plan, error = None, None
    if form.keep.data and form.remove.data:
        try:
            plan = merging.plan_merge(form.keep.data, form.remove.data)
        except merging.MergeError as exc:
            error = str(exc)
    if request.method == "POST" and form.validate_on_submit() and plan is not None:
        done = merging.merge_organizations(form.keep.data, form.remove.data, user_id=current_user.id)
        flash(done.summary(), "success")
        return redirect(url_for("organizations.show", org_id=form.keep.data), 303)
    return render_template("organizations/merge.html", form=form, plan=plan, error=error), 400 if error else 200


def _fill_form(form: OrganizationForm, org) -> None:
    """Put an organization's saved values into an empty form."""
    for name in ("name", "acronym", "org_type", "scope", "city", "state", "country", "website", "notes"):
        getattr(form, name).data = getattr(org, name) or ""
    form.parent.data = f"{org.parent.name} (#{org.parent.id})" if org.parent else ""
    form.issue_areas.data = [a.slug for a in org.issue_areas]
    form.aliases.data = "\n".join(a.name for a in org.aliases)
    form.version.data = str(org.version)


def conflict_rows(mine: dict, current: dict) -> list[tuple[str, object, object]]:
    """(field, saved value, your value) for each field where the stale form differs from what is saved now."""
    rows = []
    for name in (
        "name",
        "acronym",
        "org_type",
        "scope",
        "city",
        "state",
        "country",
        "website",
        "parent_id",
        "issue_areas",
        "aliases",
        "notes",
    ):
        if name not in mine:
            continue
        saved, yours = current.get(name), mine.get(name)
        if isinstance(saved, list) or isinstance(yours, list):
            saved, yours = sorted(saved or []), sorted(yours or [])
        if (saved or None) != (yours or None):
            rows.append((name.replace("_id", "").replace("_", " "), saved, yours))
    return rows


@bp.route("/<int:org_id>/edit", methods=["GET", "POST"])
@access("organizer")
def edit(org_id: int):
    """Edit an organization; a save over someone else's newer change shows a conflict and keeps the input."""
    org = queries.get_organization(org_id) or abort(404)
    form = OrganizationForm()
    form.issue_areas.choices = _area_choices(org)

    def rows(current) -> list[tuple[str, object, object]]:
        """(field, saved, yours) rows, comparing what is saved now with the input cleaned as a save would."""
        try:
            mine = editing.clean_organization(form.service_data(), org_id=org_id)
        except InvalidData:
            mine = form.service_data()
        return conflict_rows(mine, editing.snapshot(current))

    outcome = edit_record(
        form,
        org,
        fill=_fill_form,
        save=lambda data, version: editing.update_organization(
            org_id, data, version=version, user_id=current_user.id
        ),
        attach_errors=_attach_errors,
        conflict_rows=rows,
    )
    if outcome.saved:
        flash(f"{outcome.record.name} saved.", "success")
        return redirect(url_for("organizations.show", org_id=outcome.record.id), 303)
    return render_template(
        "organizations/form.html", form=form, org=outcome.record, conflict=outcome.conflict
    ), outcome.status


@bp.post("/<int:org_id>/archive")
@access("organizer")
def archive(org_id: int):
    """Archive an organization (it leaves lists and audiences; its history stays)."""
    return _set_archived(org_id, True)


@bp.post("/<int:org_id>/restore")
@access("organizer")
def restore(org_id: int):
    """Bring an archived organization back."""
    return _set_archived(org_id, False)


def _set_archived(org_id: int, archived: bool):
    """Archive or restore, refusing a stale button."""
    form = ArchiveForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        org = editing.set_archived(org_id, archived, version=form_version(form), user_id=current_user.id)
    except NotFound:
        abort(404)
    except ConflictError:
        flash(
            "Someone changed this organization since you opened the page; nothing was archived. "
            "Look at it again and retry.",
            "warning",
        )
        return redirect(url_for("organizations.show", org_id=org_id), 303)
    flash(f"{org.name} {'archived' if archived else 'restored'}.", "success")
    return redirect(url_for("organizations.show", org_id=org_id), 303)


@bp.post("/<int:org_id>/aliases/<int:alias_id>/delete")
@access("admin")
def remove_alias(org_id: int, alias_id: int):
    """Forget a spelling the organization was learned under (a wrong review choice, a mistaken import)."""
    if not ArchiveForm().validate_on_submit():  # the CSRF token
        abort(400)
    try:
        name = editing.remove_alias(org_id, alias_id, user_id=current_user.id)
    except NotFound:
        abort(404)
    except ConflictError:
        flash("Someone changed this organization at the same moment; nothing was removed. Retry.", "warning")
        return redirect(url_for("organizations.show", org_id=org_id), 303)
    flash(f"“{name}” is no longer an alias: imports will not match it to this organization.", "success")
    return redirect(url_for("organizations.show", org_id=org_id), 303)


@bp.post("/<int:org_id>/interactions")
@access("organizer")
def add_interaction(org_id: int):
    """Log a note, call, meeting or email with the organization."""
    org = queries.get_organization(org_id) or abort(404)
    form = _interaction_form(org.id, formdata=request.form)
    if form.validate_on_submit():
        try:
            interactions.add_interaction(
                org.id,
                {
                    "kind": form.kind.data,
                    "occurred_on": form.occurred_on.data,
                    "summary": form.summary.data,
                    "body": form.body.data,
                    "contact_id": form.contact_id.data,
                },
                user_id=current_user.id,
            )
        except InvalidData as exc:
            _attach_errors(form, exc.errors)
        else:
            flash("Logged.", "success")
            return redirect(url_for("organizations.show", org_id=org.id, _anchor="interactions"), 303)
    # The page as it was, with the form's errors, and its personal links and merges (they were missing here).
    return _render_show(org, form), 400


# --- issue areas --------------------------------------------------------------------------------------------


def _merge_form(formdata=None) -> IssueAreaMergeForm:
    """The merge form with every issue area as a choice."""
    form = (
        IssueAreaMergeForm(formdata=formdata) if formdata is not None else IssueAreaMergeForm(formdata=None)
    )
    choices = [SelectChoice(a.slug, a.name) for a in vocabulary.issue_areas(include_retired=True)]
    form.source.choices = choices
    form.target.choices = choices
    return form


@bp.route("/issue-areas", methods=["GET", "POST"])
@access("viewer", write="admin")
def issue_areas():
    """The issue-area vocabulary with counts; admins add, rename, retire and merge."""
    add_form = IssueAreaForm(prefix="new")
    status = 200
    if request.method == "POST":
        if add_form.validate_on_submit():
            try:
                area = vocabulary.create_issue_area(add_form.name.data, user_id=current_user.id)
            except InvalidData as exc:
                add_form.name.errors = list(add_form.name.errors) + exc.errors["name"]
            else:
                flash(f"Issue area {area.name} added.", "success")
                return redirect(url_for("organizations.issue_areas"), 303)
        status = 400
    return render_template(
        "organizations/issue_areas.html",
        areas=vocabulary.issue_area_counts(include_retired=True),
        add_form=add_form,
        merge_form=_merge_form(),
        rename_form=IssueAreaForm(),
    ), status


@bp.post("/issue-areas/<slug>/rename")
@access("admin")
def rename_issue_area(slug: str):
    """Rename an issue area."""
    form = IssueAreaForm()
    if not form.validate_on_submit():
        flash("; ".join(form.name.errors) or "Give a name.", "danger")
        return redirect(url_for("organizations.issue_areas"), 303)
    try:
        area = vocabulary.rename_issue_area(slug, form.name.data, user_id=current_user.id)
    except NotFound:
        abort(404)
    except InvalidData as exc:
        flash(" ".join(exc.errors["name"]), "danger")
    else:
        flash(f"Renamed to {area.name}.", "success")
    return redirect(url_for("organizations.issue_areas"), 303)


@bp.post("/issue-areas/<slug>/retire")
@access("admin")
def retire_issue_area(slug: str):
    """Retire an issue area, or bring it back (retire=0)."""
    if not ArchiveForm().validate_on_submit():
        abort(400)
    try:
        area = vocabulary.set_issue_area_retired(
            slug, request.form.get("retire", "1") != "0", user_id=current_user.id
        )
    except NotFound:
        abort(404)
    flash(f"{area.name} {'retired' if area.retired else 'is offered again'}.", "success")
    return redirect(url_for("organizations.issue_areas"), 303)


@bp.post("/issue-areas/merge")
@access("admin")
def merge_issue_areas():
    """Merge one issue area into another."""
    form = _merge_form(formdata=request.form)
    if not form.validate_on_submit():
        flash("Choose two issue areas.", "danger")
        return redirect(url_for("organizations.issue_areas"), 303)
    try:
        target = vocabulary.merge_issue_areas(form.source.data, form.target.data, user_id=current_user.id)
    except InvalidData as exc:
        flash(" ".join(m for ms in exc.errors.values() for m in ms), "danger")
    else:
        flash(f"Merged into {target.name}.", "success")
    return redirect(url_for("organizations.issue_areas"), 303)
