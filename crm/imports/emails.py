"""Email normalization at import speed, identical to email-validator's.

email-validator spends two thirds of its time on the domain (IDNA and Unicode checks), and an import sees the
same few domains thousands of times. We let it validate each domain once (cached) and check the local part with
the dot-atom grammar; anything outside that plain ASCII case goes through validate_email whole. A property test
(tests/imports/test_emails.py) checks the two paths agree.
"""

import re
from functools import lru_cache

from email_validator import EmailNotValidError, validate_email

_DOT_ATOM = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")


@lru_cache(maxsize=4096)
def _domain(domain: str) -> str:
    """The normalized domain (raises EmailNotValidError), validated once per distinct domain."""
    return validate_email(f"a@{domain}", check_deliverability=False).domain


def normalize_email(address: str) -> str:
    """The address as Undersigned stores it: email-validator's normalized form, lower-cased; raises
    EmailNotValidError."""
    text = address.strip()
    local, at, domain = text.rpartition("@")
    if at and domain and len(local) <= 64 and len(text) <= 254 and _DOT_ATOM.match(local) and domain.isascii():
        normalized = f"{local}@{_domain(domain)}"
        if len(normalized) <= 254:
            return normalized.lower()
    return validate_email(text, check_deliverability=False).normalized.lower()


__all__ = ["normalize_email", "EmailNotValidError"]
