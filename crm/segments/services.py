"""Segment logic."""

from sqlalchemy import select

from crm.extensions import db
from crm.segments.models import Segment


def list_segments() -> list[Segment]:
    """Every segment, by name."""
    return list(db.session.scalars(select(Segment).order_by(Segment.name)))
