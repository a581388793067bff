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


# --- links in test messages --------------------------------------------------------------------------------
# A test message is rendered for a real recipient but sent to the organizer: its personal links must not act on
# that recipient (unsubscribing them, signing for their organization). They are a token of their own purpose,
# which the real handlers reject, leading to a page that says what the real link would have done.

def test_link_url(kind: str, merge_id: int | None, about: str) -> str:
    """A link that only says "this was a test link": `kind` is signon or unsubscribe, `about` what the real
    link would have acted on (an organization, an address)."""
    return public_url(f"/t/{test_link_token(kind, merge_id, about)}")


def test_link_token(kind: str, merge_id: int | None, about: str) -> str:
    """The signed token of a test link."""
    return make_token("test-link", {"k": kind, "m": merge_id, "a": about[:200]})


def read_test_link(token: str) -> dict:
    """What a test link stands for: {kind, merge_id, about} (TokenError when it is not one)."""
    from crm.common.tokens import TokenError, read_token

    payload = read_token("test-link", token)
    if not isinstance(payload, dict) or payload.get("k") not in ("signon", "unsubscribe"):
        raise TokenError("This link is not valid.")
    return {"kind": payload["k"], "merge_id": payload.get("m"), "about": str(payload.get("a") or "")}
