"""History in words: an audit event's changed fields under their form labels, values as people read them
("Primary contact: no → yes"), for the audit page and the history on organization and contact pages."""

from typing import Any

FIELD_LABELS = {
    "is_primary": "Primary contact",
    "first_name": "First name",
    "last_name": "Last name",
    "email": "Email",
    "phone": "Phone",
    "title": "Title",
    "status": "Status",
    "organization_id": "Organization",
    "notes": "Notes",
    "name": "Name",
    "acronym": "Acronym",
    "org_type": "Type",
    "scope": "Scope",
    "city": "City",
    "state": "State",
    "country": "Country",
    "website": "Website",
    "parent_id": "Parent organization",
    "issue_areas": "Issue areas",
    "aliases": "Aliases",
    "archived": "Archived",
    "retired": "Retired",
    "role": "Role",
    "active": "Active",
    "slug": "Address (slug)",
    "recipients": "Recipients",
    "cc": "Cc",
    "summary": "Summary",
    "body": "Text",
    "deadline": "Sign-on deadline",
    "delivered_on": "Delivered on",
    "letter_date": "Letter date",
    "public_signon": "Public sign-on",
    "review_required": "Review required",
    "listed_name": "Name as listed",
    "position": "Position",
    "signed_at": "Signed at",
    "source": "Source",
    "filter": "Filter",
    "merged": "Merged",
    "into": "Into",
}


def field_label(field: str) -> str:
    """A field's label; unknown fields read as words ("letters_signed" → "Letters signed")."""
    return FIELD_LABELS.get(field) or field.removesuffix("_id").replace("_", " ").capitalize()


def _value(field: str, value: Any) -> str:
    """A stored value as text: yes/no, lists joined, empty as a dash, sources in words."""
    if value is None or value == "" or value == []:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(_value(field, v) for v in value)
    if field == "source":
        from crm.letters.models import SOURCE_LABELS

        return SOURCE_LABELS.get(str(value), str(value))
    return str(value)


def readable_changes(changes: dict | None) -> list[tuple[str, str, str]]:
    """(label, before, after) for each changed field of an audit event."""
    rows = []
    for field, pair in (changes or {}).items():
        before, after = (pair + [None, None])[:2] if isinstance(pair, list) else (None, pair)
        rows.append((field_label(field), _value(field, before), _value(field, after)))
    return rows
