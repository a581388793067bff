"""Organization pages: the filtered list, the profile, creating one."""

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from wtforms import SelectChoice

from crm.audit.services import events_for
from crm.common.access import access
from crm.contacts.services import contacts_of
from crm.letters.forms import MergeForm
from crm.letters.services import list_letters, personal_links_for
from crm.organizations import merging, services
from crm.organizations.filters import SORTS, FilterError, OrgFilter, parse_filter
from crm.organizations.forms import OrganizationForm

bp = Blueprint("organizations", __name__, url_prefix="/organizations")


def _page_args() -> tuple[int, int]:
    """page and per_page from the query string, bounded."""
    page = request.args.get("page", "1")
    per_page = request.args.get("per_page", "50")
    page_n = int(page) if page.isdigit() and 0 < int(page) < 1_000_000 else 1
    per_page_n = int(per_page) if per_page.isdigit() and 0 < int(per_page) <= services.MAX_PER_PAGE else 50
    return page_n, per_page_n


@bp.get("")
@access("viewer")
def index():
    """The organization list with the filter form."""
    error = None
    try:
        org_filter = parse_filter(request.args)
        page, per_page = _page_args()
        sort = request.args.get("sort", "name")
        result = services.list_organizations(org_filter, sort=sort if sort in SORTS else "name", page=page,
                                             per_page=per_page)
    except FilterError as exc:
        error = str(exc)
        org_filter, sort = OrgFilter(), "name"
        result = services.list_organizations(org_filter)
    if request.headers.get("HX-Request"):
        # htmx swaps in the results only: the filter form's choices (areas, letters with counts) are not needed.
        return render_template("organizations/_results.html", result=result, f=org_filter, sort=sort, sorts=SORTS,
                               error=error), 400 if error else 200
    return render_template("organizations/index.html", result=result, f=org_filter, sort=sort, sorts=SORTS,
                           error=error, areas=services.issue_areas(),
                           letters=[letter for letter, _ in list_letters()]), 400 if error else 200


@bp.get("/<int:org_id>")
@access("viewer")
def show(org_id: int):
    """An organization's profile and its participation across letters."""
    org = services.get_organization(org_id) or abort(404)
    history = services.participation(org.id)
    return render_template("organizations/show.html", org=org, history=history, contacts=contacts_of(org.id),
                           audit=events_for("organization", org.id), personal_links=personal_links_for(org))


@bp.route("/new", methods=["GET", "POST"])
@access("organizer")
def new():
    """Create an organization."""
    form = OrganizationForm()
    form.issue_areas.choices = [SelectChoice(a.slug, a.name) for a in services.issue_areas()]
    if form.validate_on_submit():
        org = services.create_organization(form.data, user_id=current_user.id)
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
