"""Signed tokens for public links (personal sign-on, unsubscribe, confirmations).

Each purpose has its own salt, so a token made for one purpose is rejected for another.
"""

from functools import lru_cache
from typing import Any

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

# "test-link": the links of a merge's test message, which only say what the real link would do.
PURPOSES = ("signon", "unsubscribe", "signon-confirm", "password-reset", "invite", "test-link")


class TokenError(ValueError):
    """A token that is forged, for another purpose, or expired; the message is for the user."""


def _serializer(purpose: str) -> URLSafeTimedSerializer:
    """A serializer keyed by SECRET_KEY and salted by purpose."""
    if purpose not in PURPOSES:
        raise ValueError(f"unknown token purpose {purpose!r}")
    return _keyed_serializer(current_app.config["SECRET_KEY"], purpose)


@lru_cache(maxsize=32)
def _keyed_serializer(secret_key: str, purpose: str) -> URLSafeTimedSerializer:
    """Built once per key and purpose: a mail merge signs two links per message."""
    return URLSafeTimedSerializer(secret_key, salt=f"undersigned-{purpose}")


def make_token(purpose: str, payload: Any) -> str:
    """Sign a JSON-able payload for one purpose."""
    return _serializer(purpose).dumps(payload)


def read_token(purpose: str, token: str, max_age: int | None = None) -> Any:
    """The payload of a valid token for this purpose (raises TokenError)."""
    if not token or len(token) > 2000:
        raise TokenError("This link is not valid.")
    try:
        return _serializer(purpose).loads(token, max_age=max_age)
    except SignatureExpired as exc:
        raise TokenError("This link has expired.") from exc
    except BadSignature as exc:
        raise TokenError("This link is not valid.") from exc
