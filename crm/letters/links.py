"""Making personal sign-on links, from plain ids (mail merges render from plain data, not models) or from models.

crm.letters.personal_links reads them back (`read_personal_link`); this module needs nothing but tokens, URLs and
the models' attributes, so the mail merge's rendering can import it without importing the modules that queue
sign-on mail (signatures, delivery).
"""

import time
from urllib.parse import quote

from crm.common.tokens import make_token
from crm.common.urls import public_url
from crm.contacts.models import Contact
from crm.letters.models import Letter
from crm.organizations.models import Organization


def issued_now() -> int:
    """Milliseconds since the epoch: when a link was made, compared with its revocation."""
    return int(time.time() * 1000)


def signon_url_for(slug: str, letter_id: int, organization_id: int, contact_id: int | None) -> str:
    """The personal sign-on link of a contact (or none) at an organization for a letter."""
    token = make_token("signon", {"l": letter_id, "o": organization_id, "c": contact_id, "i": issued_now()})
    return public_url(f"/sign/{quote(slug)}/p/{token}")


def personal_signon_url(letter: Letter, organization: Organization, contact: Contact | None = None) -> str:
    """The absolute one-click sign-on link for an organization (what mail merges put in `sign_on_url`)."""
    return signon_url_for(letter.slug, letter.id, organization.id, contact.id if contact else None)
