"""Field checks shared by the web forms and the API, so both accept and refuse exactly the same values.

Each check takes the raw value and returns the cleaned one or raises FieldError with a message for the user.
"""

import re
import unicodedata
from urllib.parse import urlsplit

from email_validator import EmailNotValidError, validate_email

US_STATES = frozenset(  # noqa: SIM905
    [
        "AL",
        "AK",
        "AZ",
        "AR",
        "CA",
        "CO",
        "CT",
        "DE",
        "DC",
        "FL",
        "GA",
        "HI",
        "ID",
        "IL",
        "IN",
        "IA",
        "KS",
        "KY",
        "LA",
        "ME",
        "MD",
        "MA",
        "MI",
        "MN",
        "MS",
        "MO",
        "MT",
        "NE",
        "NV",
        "NH",
        "NJ",
        "NM",
        "NY",
        "NC",
        "ND",
        "OH",
        "OK",
        "OR",
        "PA",
        "RI",
        "SC",
        "SD",
        "TN",
        "TX",
        "UT",
        "VT",
        "VA",
        "WA",
        "WV",
        "WI",
        "WY",
        "AS",
        "GU",
        "MP",
        "PR",
        "VI",
    ]
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_COUNTRY = re.compile(r"^[A-Z]{2}$")
_PHONE = re.compile(r"^[0-9+().\-/ xext]*$", re.IGNORECASE)


def whole_number(value, minimum: int = 0, maximum: int = 2**31 - 1) -> int | None:
    """An ASCII whole number within bounds, or None.

    Not str.isdigit() then int(): isdigit() accepts '²' (which int() rejects) and int() refuses strings of more
    than 4,300 digits; spaces, signs and other scripts' digits are not ids either.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if minimum <= value <= maximum else None
    if not isinstance(value, str) or not 0 < len(value) <= 12 or not (value.isascii() and value.isdigit()):
        return None
    number = int(value)
    return number if minimum <= number <= maximum else None


class FieldError(ValueError):
    """A value a field cannot take; the message says why, for the person who typed it."""


class InvalidData(ValueError):
    """Several fields failed; `errors` maps each field name to its messages (what problem+json lists)."""

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()))
        self.errors = errors


def text_line(value, max_length: int, *, required: bool = False, label: str = "This field") -> str:
    """One line of text: no line breaks, NUL or control characters, at most max_length characters."""
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise FieldError(f"{label} must be text.")
    value = value.strip()
    if required and not value:
        raise FieldError(f"{label} is required.")
    if "\x00" in value:
        raise FieldError("NUL characters cannot be stored; remove them and try again.")
    if _CONTROL.search(value):
        raise FieldError("Line breaks and control characters are not allowed here.")
    if len(value) > max_length:
        raise FieldError(f"{label} is limited to {max_length} characters (this has {len(value)}).")
    return value


def text_block(value, max_length: int, *, label: str = "This field") -> str:
    """Free text over several lines (notes): anything but NUL, within a length."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise FieldError(f"{label} must be text.")
    if "\x00" in value:
        raise FieldError("NUL characters cannot be stored; remove them and try again.")
    if len(value) > max_length:
        raise FieldError(f"{label} is limited to {max_length} characters (this has {len(value)}).")
    return value


def us_state(value) -> str | None:
    """A two-letter US state or territory code, upper-cased; empty means none."""
    value = text_line(value, 20, label="State").upper()
    if not value:
        return None
    if value not in US_STATES:
        raise FieldError("Use a two-letter US state code, such as NY or DC.")
    return value


def country(value) -> str | None:
    """An ISO 3166 two-letter country code, upper-cased; empty means none."""
    value = text_line(value, 20, label="Country").upper()
    if not value:
        return None
    if not _COUNTRY.match(value):
        raise FieldError("Use a two-letter country code, such as US or MX.")
    return value


def web_url(value) -> str | None:
    """An http(s) address; a bare domain gets https:// in front; empty means none."""
    value = text_line(value, 500, label="Website")
    if not value:
        return None
    if "://" not in value:
        value = "https://" + value
    try:
        parts = urlsplit(value)
        parts.hostname  # noqa: B018 - raises ValueError on a malformed [IPv6] host
    except ValueError:
        raise FieldError("Enter a web address such as https://example.org.") from None
    # Invisible formatting characters (RTL overrides, zero-width joiners) make a link look like another one.
    if (
        parts.scheme not in ("http", "https")
        or "." not in (parts.hostname or "")
        or any(c in value for c in " <>\"'`\\")
        or any(unicodedata.category(c) == "Cf" for c in value)
    ):
        raise FieldError("Enter a web address such as https://example.org.")
    return value


def email_address(value) -> str | None:
    """A syntactically valid address, normalised (Unicode NFC, lower case); empty means none."""
    value = text_line(value, 254, label="Email")
    if not value:
        return None
    try:
        return validate_email(value, check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise FieldError(str(exc)) from exc


def phone(value) -> str:
    """A phone number as people write it: digits, spaces, + ( ) - . / and extensions."""
    value = text_line(value, 40, label="Phone")
    if value and not _PHONE.match(value):
        raise FieldError("A phone number may hold digits, spaces and + ( ) - . / only.")
    return value


def choice(value, choices: tuple[str, ...], label: str) -> str | None:
    """One of a fixed set of words; empty means none."""
    if value in (None, ""):
        return None
    if value not in choices:
        raise FieldError(f"{label} must be one of: {', '.join(choices)}.")
    return value
