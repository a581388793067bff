"""Organization name matching: one service for the review queue, signatory import, CSV import and the API.

This first version normalises names and matches exact names, aliases and acronyms; fuzzy matching with a
confidence, affiliate protection and the rest come with the letters work (issue #4).
"""

import re
from dataclasses import dataclass

from sqlalchemy import func, or_, select

from crm.common.text import fold
from crm.extensions import db
from crm.organizations.models import Organization, OrganizationAlias

_PUNCT = re.compile(r"[^a-z0-9 ]+")


def normalize_org_name(name: str) -> str:
    """Case-, accent- and punctuation-free name with '&' as 'and' and a leading 'the' dropped."""
    text = fold(name).replace("&", " and ")
    text = _PUNCT.sub(" ", text)
    text = " ".join(text.split())
    if text.startswith("the "):
        text = text[4:]
    return text


@dataclass(frozen=True)
class Match:
    """The organization a name matched (None: no match), how sure we are (0–1), and how it was found."""

    organization_id: int | None
    confidence: float
    method: str


def match_organization(name: str) -> Match:
    """Find the organization a written name refers to."""
    wanted = normalize_org_name(name)
    if not wanted:
        return Match(None, 0.0, "empty")
    for org in db.session.scalars(select(Organization).where(Organization.archived.is_(False),
                                                             func.lower(Organization.sort_name) == fold(name))):
        return Match(org.id, 1.0, "name")
    alias = db.session.scalar(select(OrganizationAlias).where(OrganizationAlias.normalized == fold(name)))
    if alias is not None:
        return Match(alias.organization_id, 1.0, "alias")
    candidates = db.session.scalars(select(Organization).where(
        Organization.archived.is_(False),
        or_(func.lower(Organization.acronym) == name.strip().lower(), Organization.sort_name.like(f"{wanted[:3]}%"))))
    for org in candidates:
        if normalize_org_name(org.name) == wanted or (org.acronym and org.acronym.lower() == name.strip().lower()):
            return Match(org.id, 1.0 if normalize_org_name(org.name) == wanted else 0.95, "normalized")
    return Match(None, 0.0, "none")
