"""The issue-area vocabulary: reading it, and (admins) adding, renaming, retiring and merging areas.

A merge moves organizations and letters to the kept area and rewrites every stored filter that names the old one
(segments and mail-merge audiences)."""

from sqlalchemy import func, select

from crm.audit.services import commit_audited, record
from crm.common import validation as check
from crm.common.errors import NotFound
from crm.common.types import utcnow
from crm.common.validation import FieldError, InvalidData
from crm.extensions import db
from crm.letters.models import letter_issue_areas as lia
from crm.mailmerge.models import MailMerge
from crm.organizations.models import IssueArea, Organization
from crm.organizations.models import organization_issue_areas as oia
from crm.segments.models import Segment


def issue_areas(include_retired: bool = False) -> list[IssueArea]:
    """The issue-area vocabulary, by name."""
    query = select(IssueArea).order_by(IssueArea.name)
    if not include_retired:
        query = query.where(IssueArea.retired.is_(False))
    return list(db.session.scalars(query))


def issue_area_options(include_retired: bool = False) -> list:
    """The issue-area vocabulary by name as plain rows (slug, name, retired), for filter forms."""
    query = select(IssueArea.slug, IssueArea.name, IssueArea.retired).order_by(IssueArea.name)
    if not include_retired:
        query = query.where(IssueArea.retired.is_(False))
    return db.session.execute(query).all()


def issue_area_counts(include_retired: bool = False) -> list[tuple[IssueArea, int]]:
    """Each issue area with the number of active organizations in it, most first."""
    query = (
        select(IssueArea, func.count(Organization.id))
        .outerjoin(oia, oia.c.issue_area_id == IssueArea.id)
        .outerjoin(
            Organization, (Organization.id == oia.c.organization_id) & Organization.archived.is_(False)
        )
        .group_by(IssueArea.id)
        .order_by(func.count(Organization.id).desc(), IssueArea.name)
    )
    if not include_retired:
        query = query.where(IssueArea.retired.is_(False))
    return [(area, count) for area, count in db.session.execute(query)]


def _issue_area(slug: str) -> IssueArea:
    """The issue area with this slug; raises NotFound."""
    area = db.session.scalar(select(IssueArea).where(IssueArea.slug == slug))
    if area is None:
        raise NotFound(slug)
    return area


def _clean_issue_area_name(name: str) -> str:
    """An issue area's name as typed for a new area or a rename; raises InvalidData on `name`."""
    try:
        return check.text_line(name, 120, required=True, label="Name")
    except FieldError as exc:
        raise InvalidData({"name": [str(exc)]}) from exc


def rename_issue_area(slug: str, name: str, user_id: int | None = None) -> IssueArea:
    """Give an issue area a new display name (its slug, used in links and filters, stays)."""
    area = _issue_area(slug)
    name = _clean_issue_area_name(name)
    if name != area.name:
        before, area.name = area.name, name
        commit_audited("rename", "issue_area", area.id, user_id=user_id, summary=f"Renamed issue area {area.slug}",
                       before={"name": before}, after={"name": name})
    return area


def create_issue_area(name: str, user_id: int | None = None) -> IssueArea:
    """Add an issue area; its slug is made from the name."""
    from crm.common.text import slugify

    name = _clean_issue_area_name(name)
    slug = slugify(name)[:60]
    if not slug:
        raise InvalidData({"name": ["The name needs at least one letter or digit."]})
    if db.session.scalar(select(IssueArea.id).where(IssueArea.slug == slug)) is not None:
        raise InvalidData({"name": [f"There is already an issue area {slug!r}."]})
    area = IssueArea(slug=slug, name=name, retired=False)
    db.session.add(area)
    db.session.flush()
    commit_audited("create", "issue_area", area.id, user_id=user_id, summary=f"Added issue area {name}",
                   after={"slug": slug, "name": name})
    return area


def set_issue_area_retired(slug: str, retired: bool, user_id: int | None = None) -> IssueArea:
    """Retire an issue area (kept on records and in filters, no longer offered) or bring it back."""
    area = _issue_area(slug)
    if area.retired != retired:
        area.retired = retired
        commit_audited("retire" if retired else "unretire", "issue_area", area.id, user_id=user_id,
                       summary=f"{'Retired' if retired else 'Brought back'} issue area {area.name}",
                       before={"retired": not retired}, after={"retired": retired})
    return area


def _filter_with_area_replaced(params: dict, source_slug: str, target_slug: str) -> dict:
    """Stored filter parameters with one issue area slug replaced by another (in both lists, without doubles)."""
    changed = dict(params)
    for key in ("issue_area", "not_issue_area"):
        areas_in_filter = list(params.get(key) or [])
        if source_slug in areas_in_filter:
            changed[key] = list(dict.fromkeys(target_slug if s == source_slug else s for s in areas_in_filter))
    return changed


def merge_issue_areas(source_slug: str, target_slug: str, user_id: int | None = None) -> IssueArea:
    """Fold one issue area into another: its organizations, letters, segments and merge audiences move, then it
    is removed."""
    if source_slug == target_slug:
        raise InvalidData({"target": ["Choose two different issue areas."]})
    areas = {
        a.slug: a
        for a in db.session.scalars(select(IssueArea).where(IssueArea.slug.in_([source_slug, target_slug])))
    }
    if source_slug not in areas or target_slug not in areas:
        raise InvalidData({"source" if source_slug not in areas else "target": ["No such issue area."]})
    source, target = areas[source_slug], areas[target_slug]
    moved = 0
    for table, key in ((oia, "organization_id"), (lia, "letter_id")):
        ids = set(db.session.scalars(select(table.c[key]).where(table.c.issue_area_id == source.id)))
        have = (
            set(
                db.session.scalars(
                    select(table.c[key]).where(table.c.issue_area_id == target.id, table.c[key].in_(ids))
                )
            )
            if ids
            else set()
        )
        if ids - have:
            db.session.execute(
                table.insert(), [{key: i, "issue_area_id": target.id} for i in sorted(ids - have)]
            )
        db.session.execute(table.delete().where(table.c.issue_area_id == source.id))
        if table is oia:
            moved = len(ids)
            # Versions go up so that a form opened before the merge does not silently put the old area back.
            for org in (
                db.session.scalars(select(Organization).where(Organization.id.in_(ids))) if ids else []
            ):
                org.updated_at = utcnow()
    # Every stored filter naming the source area: segments, and merges' own audience filters.
    for segment in db.session.scalars(select(Segment)):
        changed = _filter_with_area_replaced(segment.filter, source_slug, target_slug)
        if changed != segment.filter:
            segment.filter = changed
    for merge in db.session.scalars(select(MailMerge)):
        stored = (merge.audience or {}).get("filter") or {}
        changed = _filter_with_area_replaced(stored, source_slug, target_slug)
        if changed != stored:
            merge.audience = {**merge.audience, "filter": changed}  # a new dict: the JSON column sees the change
    record(
        "merge",
        "issue_area",
        target.id,
        user_id=user_id,
        summary=f"Merged issue area {source.name} into {target.name} ({moved} organizations)",
        before={"merged": source.slug},
        after={"into": target.slug},
    )
    db.session.delete(source)
    db.session.commit()
    return target
