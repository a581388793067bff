"""Who a merge goes to: organizations chosen with the one filter language, then their contacts.

An audience is stored as plain JSON on the merge:
  {"segment_id": 3 | null, "filter": {…parse_filter parameters…}, "contacts": "primary" | "all",
   "after_merge": 7 | null}
"signers of L" is {"filter": {"signed": ["L"]}}; "signed L1 but not L2" is {"signed": ["L1"], "not_signed":
["L2"]};
"recipients of merge M who have not signed L" is {"after_merge": M, "filter": {"not_signed": ["L"]}}.
"""

from dataclasses import dataclass

from sqlalchemy import and_, exists, func, select

from crm.common.validation import whole_number
from crm.contacts.models import Contact
from crm.contacts.queries import mailable_condition
from crm.extensions import db
from crm.mailmerge.models import DELIVERED_STATUSES, MailMerge, Message, Suppression
from crm.organizations.filters import FilterError, OrgFilter, conditions, parse_filter
from crm.organizations.models import Organization
from crm.segments.models import Segment

CONTACT_MODES = ("primary", "all")


class AudienceError(ValueError):
    """An audience that cannot be used; `field` names the part."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


def normalise_audience(data) -> dict:
    """Validate an audience dict (from a form, the CLI or the API) into its stored shape; raises
    AudienceError.
    """
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise AudienceError("audience", "The audience must be an object.")
    unknown = set(data) - {"segment_id", "filter", "contacts", "after_merge"}
    if unknown:
        raise AudienceError("audience", f"Unknown audience keys: {', '.join(sorted(map(str, unknown)))}.")
    segment_id = _optional_id(data.get("segment_id"), "segment_id")
    if segment_id is not None and db.session.get(Segment, segment_id) is None:
        raise AudienceError("segment_id", f"There is no segment {segment_id}.")
    raw_filter = data.get("filter") or {}
    if not isinstance(raw_filter, dict):
        raise AudienceError("filter", "The filter must be an object of filter parameters.")
    try:
        org_filter = parse_filter(raw_filter)
        conditions(org_filter)  # resolves slugs now, so an unknown letter or issue area is refused here
    except FilterError as exc:
        raise AudienceError(f"filter.{exc.param}", str(exc)) from exc
    mode = data.get("contacts") or "primary"
    if mode not in CONTACT_MODES:
        raise AudienceError("contacts", "contacts must be 'primary' or 'all'.")
    after = _optional_id(data.get("after_merge"), "after_merge")
    if after is not None and db.session.get(MailMerge, after) is None:
        raise AudienceError("after_merge", f"There is no merge {after}.")
    return {
        "segment_id": segment_id,
        "filter": org_filter.to_params(),
        "contacts": mode,
        "after_merge": after,
    }


def _optional_id(value, field: str) -> int | None:
    """A positive id or None."""
    if value in (None, "", 0, "0"):
        return None
    number = whole_number(value, 1)
    if number is None:
        raise AudienceError(field, f"{field} must be a positive whole number.")
    return number


def _org_conditions(audience: dict) -> list:
    """WHERE conditions on Organization for the segment and the inline filter (both apply)."""
    where = conditions(parse_filter(audience.get("filter") or {}))
    if audience.get("segment_id"):
        segment = db.session.get(Segment, audience["segment_id"])
        if segment is None:
            raise AudienceError("segment_id", "The segment of this merge no longer exists.")
        try:
            where += conditions(parse_filter(segment.filter or {}))
        except FilterError as exc:
            raise AudienceError("segment_id", f"The segment's filter is not valid: {exc}") from exc
    return where


def _contact_conditions(audience: dict) -> list:
    """Which contacts of the chosen organizations: active, with an address, primary only or all,
    follow-ups.
    """
    where = [Contact.status == "active", Contact.email.is_not(None), Contact.email != ""]
    if audience.get("contacts", "primary") == "primary":
        where.append(Contact.is_primary.is_(True))
    if audience.get("after_merge"):
        where.append(
            Contact.id.in_(
                select(Message.contact_id).where(
                    Message.merge_id == audience["after_merge"], Message.status.in_(DELIVERED_STATUSES)
                )
            )
        )
    return where


def org_ids_query(audience: dict):
    """SELECT the ids of the audience's organizations."""
    return select(Organization.id).where(*_org_conditions(audience))


def contacts_query(audience: dict):
    """SELECT (contact id, email, organization id, suppressed?) of every audience contact, by contact id."""
    suppressed = exists().where(Suppression.email == func.lower(Contact.email))
    return (
        select(Contact.id, Contact.email, Contact.organization_id, suppressed.label("suppressed"))
        .where(Contact.organization_id.in_(org_ids_query(audience)), *_contact_conditions(audience))
        .order_by(Contact.id)
    )


@dataclass
class AudienceCounts:
    """What the audience page shows before anything is queued."""

    organizations: int
    contacts: int
    mailable: int
    suppressed: int
    without_contact: int
    mailable_organizations: int = 0  # organizations with at least one mailable contact: who a send reaches

    def as_dict(self) -> dict:
        """The counts as a dict (API, CLI)."""
        return dict(self.__dict__)


def audience_counts(audience: dict) -> AudienceCounts:
    """Organizations, contacts, mailable contacts, suppressed contacts, organizations without a contact."""
    org_ids = org_ids_query(audience).subquery()
    organizations = db.session.scalar(select(func.count()).select_from(org_ids)) or 0
    base = select(Contact.id).where(
        Contact.organization_id.in_(select(org_ids.c.id)), *_contact_conditions(audience)
    )
    contacts = db.session.scalar(select(func.count()).select_from(base.subquery())) or 0
    mailable = (
        db.session.scalar(select(func.count()).select_from(base.where(mailable_condition()).subquery())) or 0
    )
    mailable_organizations = (
        db.session.scalar(
            select(func.count(func.distinct(Contact.organization_id))).where(
                Contact.organization_id.in_(select(org_ids.c.id)), *_contact_conditions(audience),
                mailable_condition(),
            )
        )
        or 0
    )
    with_contact = (
        db.session.scalar(
            select(func.count(func.distinct(Contact.organization_id))).where(
                Contact.organization_id.in_(select(org_ids.c.id)), *_contact_conditions(audience)
            )
        )
        or 0
    )
    return AudienceCounts(
        organizations=organizations,
        contacts=contacts,
        mailable=mailable,
        suppressed=contacts - mailable,
        without_contact=organizations - with_contact,
        mailable_organizations=mailable_organizations,
    )


def describe(audience: dict) -> str:
    """The audience in words, for the merge page."""
    parts = []
    if audience.get("segment_id"):
        segment = db.session.get(Segment, audience["segment_id"])
        parts.append(f"segment “{segment.name}”" if segment else "a deleted segment")
    params = audience.get("filter") or {}
    if params:
        parts.append(
            "organizations where "
            + "; ".join(
                f"{k.replace('_', ' ')} = {', '.join(map(str, v)) if isinstance(v, list) else v}"
                for k, v in params.items()
            )
        )
    if not parts:
        parts.append("every active organization")
    if audience.get("after_merge"):
        parts.append(f"only contacts who received merge #{audience['after_merge']}")
    parts.append(
        "primary contacts only" if audience.get("contacts", "primary") == "primary" else "all active contacts"
    )
    return ", ".join(parts)


def empty_filter() -> OrgFilter:
    """An empty filter (for forms)."""
    return OrgFilter()


__all__ = [
    "AudienceError",
    "normalise_audience",
    "contacts_query",
    "audience_counts",
    "describe",
    "CONTACT_MODES",
    "and_",
]
