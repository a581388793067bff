"""The personal sign-on link, made from plain ids (mail merges render from plain data, not models).

crm.letters.services reads it back (`read_personal_link`); this module needs nothing but tokens and URLs, so the
mail merge's rendering can import it without importing the letters' services (which queue sign-on mail).
"""

import time
from urllib.parse import quote

from crm.common.tokens import make_token
from crm.common.urls import public_url


def issued_now() -> int:
    """Milliseconds since the epoch: when a link was made, compared with its revocation."""
    return int(time.time() * 1000)


def signon_url_for(slug: str, letter_id: int, organization_id: int, contact_id: int | None) -> str:
    """The personal sign-on link of a contact (or none) at an organization for a letter."""
    token = make_token("signon", {"l": letter_id, "o": organization_id, "c": contact_id, "i": issued_now()})
    return public_url(f"/sign/{quote(slug)}/p/{token}")
