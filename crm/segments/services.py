"""Segments: named organization filters, re-evaluated whenever they are used (mail merges call segment_filter)."""

from dataclasses import dataclass

from sqlalchemy import func, select

from crm.audit.services import record
from crm.common import validation as check
from crm.common.validation import FieldError, InvalidData
from crm.contacts.services import count_mailable
from crm.extensions import db
from crm.organizations.filters import (
    KNOWN_PARAMS,
    FilterError,
    OrgFilter,
    describe,
    describe_text,
    org_ids_query,
    parse_filter,
)
from crm.organizations.services import NotFound
from crm.segments.models import Segment


@dataclass
class SegmentCounts:
    """How many organizations a segment holds now, and how many of their contacts can be mailed."""

    organizations: int
    mailable_contacts: int


def list_segments() -> list[Segment]:
    """Every segment, by name."""
    return list(db.session.scalars(select(Segment).order_by(Segment.name, Segment.id)))


def get_segment(segment_id: int) -> Segment | None:
    """One segment."""
    return db.session.get(Segment, segment_id)


def segment_filter(segment_id: int) -> OrgFilter:
    """The segment's filter, parsed and validated (raises NotFound, or FilterError if it no longer applies)."""
    segment = get_segment(segment_id)
    if segment is None:
        raise NotFound(segment_id)
    return parse_filter(segment.filter or {})


def describe_segment(segment: Segment) -> list:
    """The segment's filter as a sentence (see filters.describe); says so when the filter no longer applies."""
    try:
        return describe(parse_filter(segment.filter or {}))
    except FilterError as exc:
        return [[f"This filter no longer works: {exc}"]]


def _filter_words(stored: dict | None) -> str:
    """A stored filter as the audit log shows it: the sentence, not the parameters."""
    try:
        return describe_text(parse_filter(stored or {}))
    except FilterError:
        return str(stored)


def segment_counts(segment_id: int) -> SegmentCounts:
    """The segment's current number of organizations and of mailable contacts at them."""
    f = segment_filter(segment_id)
    organizations = db.session.scalar(select(func.count()).select_from(org_ids_query(f).subquery())) or 0
    return SegmentCounts(organizations, count_mailable(f))


def _clean_name(name, segment_id: int | None) -> str:
    """A one-line name no other segment has."""
    name = check.text_line(name, 200, required=True, label="Name")
    other = db.session.scalar(select(Segment.id).where(Segment.name == name, Segment.id != (segment_id or 0)))
    if other is not None:
        raise FieldError("Another segment already has this name.")
    return name


def _clean_filter(source) -> dict:
    """A filter (query parameters or a dict) checked by the filter language, stored without its defaults."""
    if not hasattr(source, "getlist") and not isinstance(source, dict):
        raise FieldError("The filter must be an object of filter parameters.")
    if isinstance(source, dict):
        unknown = sorted(str(k)[:40] for k in source if k not in KNOWN_PARAMS)
        if unknown:
            raise FieldError(f"Unknown filter parameter: {', '.join(unknown)}.")
    try:
        parsed = parse_filter(source)
        org_ids_query(parsed)  # resolves slugs: an unknown issue area or letter is refused now, not when used
    except FilterError as exc:
        raise FieldError(str(exc)) from exc
    return parsed.to_params()


def create_segment(name, filter_source, user_id: int | None = None) -> Segment:
    """Save a filter under a name; raises InvalidData."""
    errors: dict[str, list[str]] = {}
    clean: dict = {}
    for key, checker in (
        ("name", lambda: _clean_name(name, None)),
        ("filter", lambda: _clean_filter(filter_source)),
    ):
        try:
            clean[key] = checker()
        except FieldError as exc:
            errors[key] = [str(exc)]
    if errors:
        raise InvalidData(errors)
    segment = Segment(name=clean["name"], filter=clean["filter"], created_by_id=user_id)
    db.session.add(segment)
    db.session.flush()
    record(
        "create",
        "segment",
        segment.id,
        user_id=user_id,
        summary=f"Saved segment {segment.name}",
        after={"name": segment.name, "filter": _filter_words(segment.filter)},
    )
    db.session.commit()
    return segment


def update_segment(segment_id: int, *, name=None, filter_source=None, user_id: int | None = None) -> Segment:
    """Rename a segment and/or replace its filter; raises NotFound or InvalidData."""
    segment = get_segment(segment_id)
    if segment is None:
        raise NotFound(segment_id)
    errors: dict[str, list[str]] = {}
    before = {"name": segment.name, "filter": _filter_words(segment.filter)}
    before_values = (segment.name, segment.filter)
    try:
        new_name = _clean_name(name, segment.id) if name is not None else segment.name
    except FieldError as exc:
        errors["name"] = [str(exc)]
    try:
        new_filter = _clean_filter(filter_source) if filter_source is not None else segment.filter
    except FieldError as exc:
        errors["filter"] = [str(exc)]
    if errors:
        raise InvalidData(errors)
    segment.name, segment.filter = new_name, new_filter
    after = {"name": segment.name, "filter": _filter_words(segment.filter)}
    if (segment.name, segment.filter) != before_values:
        record(
            "update",
            "segment",
            segment.id,
            user_id=user_id,
            summary=f"Changed segment {segment.name}",
            before=before,
            after=after,
        )
        db.session.commit()
    return segment


def delete_segment(segment_id: int, user_id: int | None = None) -> None:
    """Delete a segment (the organizations are untouched)."""
    segment = get_segment(segment_id)
    if segment is None:
        raise NotFound(segment_id)
    record(
        "delete",
        "segment",
        segment.id,
        user_id=user_id,
        summary=f"Deleted segment {segment.name}",
        before={"name": segment.name, "filter": _filter_words(segment.filter)},
    )
    db.session.delete(segment)
    db.session.commit()


__all__ = [
    "list_segments",
    "get_segment",
    "segment_filter",
    "segment_counts",
    "describe_segment",
    "create_segment",
    "update_segment",
    "delete_segment",
    "SegmentCounts",
    "InvalidData",
    "NotFound",
    "FilterError",
]
