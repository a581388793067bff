"""Filtering contacts: by their organization (the organization filter language, reused as is) and their own fields.

A contact filter is an OrgFilter (contacts whose organization matches it) plus the contact's own parameters:
`contact_q` (name or email), `primary`, `status` (active / left), `mailable`, `suppressed`, `unsubscribed`.
With no organization parameter at all, contacts are not restricted by organization (those without one included).
"""

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, func, not_, or_, select

from crm.contacts.models import CONTACT_STATUSES, Contact
from crm.contacts.queries import mailable_condition
from crm.mailmerge.models import Suppression
from crm.organizations.filters import (
    FilterError,
    OrgFilter,
    _bool,
    _like_escape,
    _one,
    org_ids_query,
)
from crm.organizations.filters import parse_filter as parse_org_filter

CONTACT_PARAMS = ("contact_q", "primary", "status", "mailable", "suppressed", "unsubscribed")
CONTACT_SORTS = {
    "name": "Last name A–Z",
    "-name": "Last name Z–A",
    "organization": "Organization",
    "email": "Email",
    "-created": "Newest first",
}


@dataclass
class ContactFilter:
    """A parsed contact filter: the organization part and the contact's own conditions."""

    org: OrgFilter = field(default_factory=OrgFilter)
    contact_q: str = ""
    primary: bool | None = None
    status: str = ""
    mailable: bool | None = None
    suppressed: bool | None = None
    unsubscribed: bool | None = None

    def to_params(self) -> dict[str, Any]:
        """The filter as query parameters, defaults left out."""
        params = self.org.to_params()
        for name in CONTACT_PARAMS:
            value = getattr(self, name)
            if value not in (None, ""):
                params[name] = value
        return params

    def is_empty(self) -> bool:
        """True when the filter selects every contact."""
        return not self.to_params()


def parse_contact_filter(source) -> ContactFilter:
    """Read a ContactFilter from query parameters or a dict; raises FilterError naming the parameter."""
    q = _one(source, "contact_q") if not hasattr(source, "getlist") else (source.get("contact_q") or "")
    if not isinstance(q, str) or len(q) > 200 or any(ord(c) < 32 for c in q):
        raise FilterError("contact_q",
                          "The contact search is limited to 200 characters of text, without control characters.")
    status = _one(source, "status")
    if status and status not in CONTACT_STATUSES:
        raise FilterError("status", f"'status' must be one of: {', '.join(CONTACT_STATUSES)}.")
    return ContactFilter(
        org=parse_org_filter(source),
        contact_q=q.strip(),
        primary=_bool(source, "primary"),
        status=status,
        mailable=_bool(source, "mailable"),
        suppressed=_bool(source, "suppressed"),
        unsubscribed=_bool(source, "unsubscribed"),
    )


def contact_conditions(f: ContactFilter) -> list:
    """SQL conditions on Contact for a filter."""
    where: list = []
    if not f.org.is_empty():
        where.append(Contact.organization_id.in_(org_ids_query(f.org)))
    if f.contact_q:
        haystack = func.lower(
            Contact.first_name + " " + Contact.last_name + " " + func.coalesce(Contact.email, "")
        )
        for word in f.contact_q.lower().split():
            where.append(haystack.like(f"%{_like_escape(word)}%", escape="\\"))
    if f.primary is not None:
        where.append(Contact.is_primary.is_(f.primary))
    if f.status:
        where.append(Contact.status == f.status)
    if f.mailable is not None:
        where.append(mailable_condition() if f.mailable else not_(mailable_condition()))
    for flag, reasons in ((f.suppressed, None), (f.unsubscribed, ("unsubscribed",))):
        if flag is None:
            continue
        listed = select(Suppression.email)
        if reasons:
            listed = listed.where(Suppression.reason.in_(reasons))
        where.append(
            Contact.email.in_(listed)
            if flag
            else or_(Contact.email.is_(None), and_(Contact.email.is_not(None), Contact.email.not_in(listed)))
        )
    return where


__all__ = [
    "ContactFilter",
    "parse_contact_filter",
    "contact_conditions",
    "CONTACT_PARAMS",
    "CONTACT_SORTS",
    "FilterError",
]
