"""Segment pages: the list, one segment's current members and counts, saving, renaming and deleting."""

from urllib.parse import parse_qsl, urlencode

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from werkzeug.datastructures import MultiDict

from crm.common.access import access
from crm.common.errors import NotFound
from crm.common.validation import InvalidData
from crm.organizations.filters import FilterError
from crm.organizations.queries import list_organizations
from crm.organizations.views import page_args
from crm.segments import services
from crm.segments.forms import DeleteSegmentForm, SegmentForm

bp = Blueprint("segments", __name__, url_prefix="/segments")


def filter_query(segment) -> str:
    """The organization list's query string for a segment's filter (a link that shows the same rows)."""
    return urlencode(segment.filter or {}, doseq=True)


@bp.get("")
@access("viewer")
def index():
    """Saved segments."""
    return render_template(
        "segments/index.html", segments=services.list_segments(), filter_query=filter_query,
        describe=services.describe_segment,
    )


@bp.post("")
@access("organizer")
def create():
    """Save the organization list's current filter (sent as its query string) under a name."""
    form = SegmentForm()
    query = form.query.data or ""
    # The participation matrix saves its filter here too, and goes back there on an error.
    page = "letters.matrix" if request.form.get("back") == "matrix" else "organizations.index"
    back = url_for(page) + ("?" + query if query else "")
    if not form.validate_on_submit():
        flash("Give the segment a name: " + " ".join(form.name.errors), "danger")
        return redirect(back, 303)
    params = MultiDict(parse_qsl(query)) if len(query) < 20000 else MultiDict()
    for name in ("page", "per_page", "sort", "letters_page"):
        params.poplist(name)
    try:
        segment = services.create_segment(form.name.data, params, user_id=current_user.id)
    except InvalidData as exc:
        flash(" ".join(m for ms in exc.errors.values() for m in ms), "danger")
        return redirect(back, 303)
    flash(f"Segment {segment.name} saved.", "success")
    return redirect(url_for("segments.show", segment_id=segment.id), 303)


@bp.get("/<int:segment_id>")
@access("viewer")
def show(segment_id: int):
    """A segment's current members (re-evaluated now) with its counts."""
    segment = services.get_segment(segment_id) or abort(404)
    return _show_page(segment, SegmentForm(formdata=None, name=segment.name))


def _show_page(segment, form: SegmentForm) -> str:
    """The segment page, with the rename form as given (its current name, or what was sent with its errors)."""
    error, result, counts = None, None, None
    try:
        f = services.segment_filter(segment.id)
        page, per_page = page_args()
        result = list_organizations(f, page=page, per_page=per_page)
        counts = services.segment_counts(segment.id)
    except FilterError as exc:
        error = f"This segment's filter no longer works: {exc}"
    return render_template(
        "segments/show.html",
        segment=segment,
        result=result,
        counts=counts,
        error=error,
        form=form,
        delete_form=DeleteSegmentForm(),
        query=filter_query(segment),
        sentence=services.describe_segment(segment),
    )


@bp.post("/<int:segment_id>/rename")
@access("organizer")
def rename(segment_id: int):
    """Rename a segment; a refused name comes back on the segment page, marked, with the reason."""
    form = SegmentForm()
    if form.validate_on_submit():
        try:
            services.update_segment(segment_id, name=form.name.data, user_id=current_user.id)
        except NotFound:
            abort(404)
        except InvalidData as exc:
            form.name.errors = list(form.name.errors) + [m for ms in exc.errors.values() for m in ms]
        else:
            flash("Renamed.", "success")
            return redirect(url_for("segments.show", segment_id=segment_id), 303)
    segment = services.get_segment(segment_id) or abort(404)
    return _show_page(segment, form), 400


@bp.post("/<int:segment_id>/delete")
@access("organizer")
def delete(segment_id: int):
    """Delete a segment."""
    if not DeleteSegmentForm().validate_on_submit():
        abort(400)
    try:
        services.delete_segment(segment_id, user_id=current_user.id)
    except NotFound:
        abort(404)
    flash("Segment deleted.", "success")
    return redirect(url_for("segments.index"), 303)
