"""CSV export rows, neutralised against spreadsheet formula injection."""

from collections.abc import Iterator

from crm.letters.services import iter_signatures
from crm.organizations.filters import OrgFilter
from crm.organizations.services import iter_organizations

ORG_COLUMNS = ("name", "acronym", "org_type", "scope", "city", "state", "issue_areas", "parent", "letters_signed")
CONTACT_COLUMNS = ("id", "first_name", "last_name", "title", "email", "phone", "organization", "organization_id",
                   "is_primary", "status", "mailable")
SIGNATURE_COLUMNS = ("letter", "organization", "listed_as", "role", "status", "signed_at", "source")
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value) -> str:
    """A cell value a spreadsheet will show as text: a leading formula character gets an apostrophe before it."""
    text = "" if value is None else str(value)
    if text.startswith(_FORMULA_STARTS):
        return "'" + text
    return text


def org_rows(org_filter: OrgFilter) -> Iterator[list[str]]:
    """Organization rows for the filter, by sort name."""
    for org, letters_signed in iter_organizations(org_filter):
        yield [safe_cell(v) for v in (
            org.name, org.acronym, org.org_type, org.scope, org.city, org.state,
            ";".join(a.slug for a in org.issue_areas), org.parent.name if org.parent else "", letters_signed)]


def signature_rows(letter_slugs: list[str]) -> Iterator[list[str]]:
    """Signature rows, letter by letter in delivery order."""
    for sig in iter_signatures(letter_slugs):
        yield [safe_cell(v) for v in (
            sig.letter.slug, sig.organization.name, sig.listed_name, sig.role, sig.status,
            sig.signed_at.isoformat() if sig.signed_at else "", sig.source)]


def contact_row(contact) -> list[str]:
    """One contact as a CSV row (annotate_mailable must have run on it)."""
    return [safe_cell(v) for v in (
        contact.id, contact.first_name, contact.last_name, contact.title, contact.email or "", contact.phone,
        contact.organization.name if contact.organization else "", contact.organization_id or "",
        "yes" if contact.is_primary else "no", contact.status, "yes" if getattr(contact, "mailable", False) else "no")]


def contact_rows(contact_filter) -> Iterator[list[str]]:
    """Contact rows for a ContactFilter, in the contacts list's order."""
    from crm.contacts.services import iter_contacts

    for contact in iter_contacts(contact_filter):
        yield contact_row(contact)
