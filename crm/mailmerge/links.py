"""Personal links in merge messages.

`sign_on_url` is the single place a merge asks for a personal sign-on link; the letters feature builds it
(crm.letters.services.signon_url_for) and the sign-on pages read it.
"""

from crm.common.tokens import make_token
from crm.common.urls import public_url
from crm.letters.services import signon_url_for


def sign_on_url(letter, org, contact) -> str:
    """The personal one-click sign-on link of a contact at an organization for a letter (objects or dicts with
    id); the letters feature builds it, so the link and the page that reads it cannot drift apart.
    """
    return signon_url_for(str(_get(letter, "slug")), _get(letter, "id"), _get(org, "id"),
                          _get(contact, "id") if contact is not None else None)


def unsubscribe_token(email: str, merge_id: int | None) -> str:
    """A signed token naming the address to suppress (and the merge it came from, for the record)."""
    return make_token("unsubscribe", {"e": email, "m": merge_id})


def unsubscribe_url(email: str, merge_id: int | None) -> str:
    """The https one-click unsubscribe link of an address (RFC 8058 target too)."""
    return public_url(f"/u/{unsubscribe_token(email, merge_id)}")


def unsubscribe_mailto(email: str, merge_id: int | None) -> str:
    """The mailto: form of List-Unsubscribe, to the sender's domain's unsubscribe mailbox."""
    from crm.mailmerge.outbox import message_domain

    return f"mailto:unsubscribe@{message_domain()}?subject=unsubscribe%20{unsubscribe_token(email, merge_id)}"


def _get(value, name: str):
    """An attribute of a model or a key of a dict."""
    return value.get(name) if isinstance(value, dict) else getattr(value, name)
