"""What each kind of import reads: its fields, the header names that suggest them, and how a cell is checked.

A cell is checked on its own here (syntax, length, vocabulary); what it means against the database (duplicates,
matching organizations) is decided by the engines (crm.imports.engine and its kinds).
"""

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import lru_cache

from email_validator import EmailNotValidError

from crm.common.text import fold
from crm.contacts.models import CONTACT_STATUSES
from crm.imports.emails import normalize_email
from crm.letters.models import SIGNATURE_ROLES, SIGNATURE_STATUSES
from crm.organizations.filters import US_STATES
from crm.organizations.models import ORG_TYPES, SCOPES

KINDS = {"orgs": "Organizations", "contacts": "Contacts", "signatures": "Signatures of a letter"}
IGNORE = ""
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_PHONE = re.compile(r"^\+?[0-9][0-9 ().\-/]{2,38}$|^\+?\([0-9][0-9 ().\-/]{2,38}$")
_COUNTRY = re.compile(r"^[A-Za-z]{2}$")
_COUNTRY_NAMES = {"usa": "US", "us": "US", "united states": "US", "united states of america": "US"}
_TRUE = {"1", "true", "yes", "y", "x", "primary", "t"}
_FALSE = {"0", "false", "no", "n", "", "f"}
_STATE_NAMES: dict[str, str] = {}


class CellError(ValueError):
    """A cell that cannot be imported; the message says why."""


@dataclass(frozen=True)
class Field:
    """One importable field: its key, label, limit, synonyms and checker."""

    key: str
    label: str
    max_length: int = 300
    required: bool = False
    synonyms: tuple[str, ...] = ()
    clean: Callable[[str], object] | None = None
    help: str = ""
    options: tuple[str, ...] = field(default=())


def _text(value: str) -> str:
    """Plain text: collapse inner whitespace."""
    return " ".join(value.split())


def _email(value: str) -> str:
    """A normalized email address."""
    try:
        return normalize_email(value)
    except EmailNotValidError as exc:
        raise CellError(f"'{value[:80]}' is not a valid email address ({exc}).") from exc


def _choice(options: tuple[str, ...], label: str) -> Callable[[str], str]:
    """A checker for a small vocabulary (case-insensitive, spaces as hyphens)."""

    def check(value: str) -> str:
        word = value.strip().lower().replace(" ", "-").replace("_", "-")
        if word not in options:
            raise CellError(f"'{value[:40]}' is not a {label} ({', '.join(options)}).")
        return word

    return check


def _state(value: str) -> str:
    """A US state or territory code."""
    code = value.strip().upper()
    if code in US_STATES:
        return code
    raise CellError(f"'{value[:40]}' is not a US state or territory code (two letters, e.g. NY).")


def _country(value: str) -> str:
    """A two-letter country code (a few spellings of the United States accepted)."""
    named = _COUNTRY_NAMES.get(value.strip().lower())
    if named:
        return named
    if _COUNTRY.match(value.strip()):
        return value.strip().upper()
    raise CellError(f"'{value[:40]}' is not a two-letter country code (e.g. US).")


def _website(value: str) -> str:
    """A web address; 'example.org' becomes 'https://example.org'."""
    url = value.strip()
    if " " in url or "." not in url:
        raise CellError(f"'{url[:80]}' is not a web address.")
    if not url.lower().startswith(("http://", "https://")):
        url = "https://" + url
    return url


def _phone(value: str) -> str:
    """A phone number: digits, spaces and the usual punctuation, optionally a leading '+'."""
    if not _PHONE.match(value.strip()):
        raise CellError(f"'{value[:40]}' is not a phone number.")
    return value.strip()


def _bool(value: str) -> bool:
    """yes/no, true/false, 1/0, x."""
    word = value.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise CellError(f"'{value[:20]}' is not yes or no.")


def _list(value: str) -> list[str]:
    """A list in one cell, separated by semicolons, commas or line breaks."""
    return [part.strip() for part in re.split(r"[;,\n|]", value) if part.strip()]


@lru_cache(maxsize=65536)
def org_key(name: str) -> str:
    """The organization matcher's normalized name, cached: a file names the same organizations again and again."""
    from crm.organizations.names import normalize_org_name

    return normalize_org_name(name)


@lru_cache(maxsize=65536)
def _org_name(value: str) -> str:
    """An organization's name: it must have a letter or digit to be matched by (cached like org_key)."""
    text = _text(value)
    if not org_key(text):
        raise CellError(f"'{text[:40]}' is not a name (it has no letter or digit).")
    return text


def _when(value: str) -> datetime:
    """A date (YYYY-MM-DD) or an ISO date and time, as UTC."""
    text = value.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise CellError(f"'{text[:40]}' is not a date written YYYY-MM-DD.") from exc
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


ORG_FIELDS = (
    Field("name", "Name", 300, True, ("org", "organization", "organisation", "organization name", "org name",
                                      "organisation name", "group", "group name", "name of organization",
                                      "organization (as listed)", "company", "signatory"), clean=_org_name),
    Field("acronym", "Acronym", 40, synonyms=("abbreviation", "short name", "initials")),
    Field("org_type", "Type", 40, synonyms=("type", "organization type", "org type", "kind"),
          clean=_choice(ORG_TYPES, "organization type")),
    Field("scope", "Scope", 20, synonyms=("level", "reach", "geographic scope"), clean=_choice(SCOPES, "scope")),
    Field("city", "City", 120, synonyms=("town", "locality")),
    Field("state", "State", 40, synonyms=("st", "state code", "province", "region"), clean=_state),
    Field("country", "Country", 60, synonyms=("country code", "nation"), clean=_country),
    Field("website", "Website", 500, synonyms=("url", "web", "web site", "homepage", "site", "web address"),
          clean=_website),
    Field("issue_areas", "Issue areas", 2000, synonyms=("issues", "issue area", "issue", "topics", "tags",
                                                         "focus", "focus areas", "causes"), clean=_list),
    Field("parent", "Parent organization", 300, synonyms=("parent organization", "parent org", "affiliate of",
                                                           "national organization"), clean=_org_name),
    Field("notes", "Notes", 10000, synonyms=("note", "comments", "comment", "description")),
)

CONTACT_FIELDS = (
    Field("email", "Email", 254, True, ("e-mail", "email address", "e-mail address", "mail", "email 1",
                                        "primary email", "work email", "address email"), clean=_email),
    Field("first_name", "First name", 120, synonyms=("first", "given name", "firstname", "forename",
                                                      "first name(s)")),
    Field("last_name", "Last name", 120, synonyms=("last", "surname", "family name", "lastname")),
    Field("full_name", "Full name (split into first and last)", 241,
          synonyms=("name", "full name", "contact", "contact name", "person")),
    Field("title", "Title", 200, synonyms=("job title", "position", "role", "job")),
    Field("phone", "Phone", 40, synonyms=("telephone", "phone number", "tel", "mobile", "cell"), clean=_phone),
    Field("organization", "Organization", 300, synonyms=("org", "organisation", "organization name", "company",
                                                          "employer", "group", "affiliation"), clean=_org_name),
    Field("is_primary", "Primary contact", 10, synonyms=("primary", "main contact", "primary contact"),
          clean=_bool),
    Field("status", "Status", 20, synonyms=("contact status",), clean=_choice(CONTACT_STATUSES, "contact status")),
    Field("notes", "Notes", 10000, synonyms=("note", "comments", "comment")),
)

SIGNATURE_FIELDS = (
    Field("organization", "Organization", 300, True, ("org", "organisation", "organization name", "name",
                                                      "signatory", "signer", "group"), clean=_org_name),
    Field("listed_as", "Listed as", 300, synonyms=("listed name", "name as listed", "display name")),
    Field("role", "Role", 20, synonyms=("lead",), clean=_choice(SIGNATURE_ROLES, "role")),
    Field("status", "Status", 20, synonyms=("signature status",), clean=_choice(SIGNATURE_STATUSES, "status")),
    Field("signed_at", "Signed on", 40, synonyms=("signed", "date", "signed on", "date signed", "timestamp"),
          clean=_when),
    Field("letter", "Letter (slug, must be the chosen letter)", 100, synonyms=("letter slug",)),
)

FIELDS = {"orgs": ORG_FIELDS, "contacts": CONTACT_FIELDS, "signatures": SIGNATURE_FIELDS}


def field_map(kind: str) -> dict[str, Field]:
    """The fields of a kind by key."""
    return {f.key: f for f in FIELDS[kind]}


def header_key(text: str) -> str:
    """A header cell reduced for comparison: folded, punctuation as spaces."""
    return " ".join(re.sub(r"[^a-z0-9()]+", " ", fold(text).replace("_", " ")).split())


def suggest_mapping(kind: str, header: list[str]) -> list[str]:
    """For each column, the field its header names (by key, label or synonym), or '' to ignore it.

    A field is suggested once: a second column with the same meaning is left unmapped for the user to choose.
    """
    names: dict[str, str] = {}
    for f in FIELDS[kind]:
        for name in (f.key, f.label, *f.synonyms):
            names.setdefault(header_key(name), f.key)
    taken: set[str] = set()
    result = []
    for cell in header:
        key = names.get(header_key(cell), IGNORE)
        if key and key in taken:
            key = IGNORE
        taken.add(key)
        result.append(key)
    return result


def likelier_kind(kind: str, header: list[str]) -> tuple[str, list[str]] | None:
    """(kind, the headers that say so) when the file looks like organizations or contacts rather than `kind`:
    its headers name more of that kind's fields, including every field it needs. None when `kind` fits best.

    A contacts file uploaded as organizations maps only its organization column (to Name); as contacts it maps
    email, names and organization."""
    def fit(candidate: str) -> tuple[int, list[str]]:
        columns = suggest_mapping(candidate, header)
        mapped = [header[i] for i, key in enumerate(columns) if key]
        needed = {f.key for f in FIELDS[candidate] if f.required}
        return (len(mapped) if needed <= set(columns) else 0), mapped

    current, _ = fit(kind)
    best = None
    for candidate in ("orgs", "contacts"):
        if candidate == kind:
            continue
        score, mapped = fit(candidate)
        if score > current and (best is None or score > best[0]):
            best = (score, candidate, mapped)
    return (best[1], best[2]) if best else None


def check_mapping(kind: str, header: list[str], columns: list[str]) -> list[str]:
    """Problems with a mapping (a required field not mapped, a field mapped twice, an unknown field)."""
    problems = []
    known = field_map(kind)
    seen: dict[str, int] = {}
    for index, key in enumerate(columns):
        if not key:
            continue
        if key not in known:
            problems.append(f"Column '{header[index] if index < len(header) else index + 1}' is mapped to an "
                            f"unknown field '{key}'.")
            continue
        if key in seen:
            problems.append(f"Columns '{header[seen[key]]}' and '{header[index]}' are both mapped to "
                            f"{known[key].label}; map one of them to 'ignore'.")
        seen[key] = index
    for f in FIELDS[kind]:
        if f.required and f.key not in seen:
            problems.append(f"No column is mapped to {f.label}, which every row needs. Columns found: "
                            f"{', '.join(header[:12])}{' …' if len(header) > 12 else ''}.")
    if kind == "contacts" and "full_name" in seen and ({"first_name", "last_name"} & set(seen)):
        problems.append("Map either a full name column or first and last name columns, not both.")
    return problems


def unformula(raw: str) -> str:
    """A cell as our own exports write it (crm.exports.rows.safe_cell): "'=x" is read back as "=x", "''=x" as "'=x"."""
    if raw[:1] == "'" and raw[1:].lstrip("'").startswith(FORMULA_STARTS):
        return raw[1:]
    return raw


def clean_cell(f: Field, raw: str) -> object:
    """The value of one cell for a field, or CellError; '' and None mean 'no value'."""
    return cell_checker(f)(raw)


@lru_cache(maxsize=256)
def cell_checker(f: Field) -> Callable[[str], object]:
    """clean_cell for one field, its settings looked up once: it runs for every cell of a file.

    Cells are data: "- met at the 2021 convening", "@upturn on social" or "=1+1" in a notes or title cell is that
    text, stored as it is. A spreadsheet would run such a cell as a formula only when it is opened, so formula
    safety belongs to the way out: every CSV and XLSX export writes it with a leading apostrophe
    (crm.exports.rows.safe_cell), which an import reads back (unformula). Only a cell that cannot be a value of its
    field (a bad email, state or date, over the length limit) is an error.
    """
    limit = f.max_length
    finish = f.clean or (None if f.key == "notes" else _text)

    def check(raw: str) -> object:
        if "\x00" in raw:
            raise CellError("contains a NUL byte (the file is damaged or not text).")
        value = raw.strip()
        if not value:
            return None
        if value[0] == "'":
            value = unformula(value)
        if len(value) > limit:
            raise CellError(f"is {len(value):,} characters long; the limit is {limit}.")
        return finish(value) if finish is not None else value

    return check


def split_full_name(full: str) -> tuple[str, str]:
    """'Ana María López' → ('Ana María', 'López'); one word is a first name."""
    parts = full.split()
    if len(parts) <= 1:
        return (parts[0] if parts else "", "")
    return " ".join(parts[:-1]), parts[-1]
