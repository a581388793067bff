"""Accounts: creating users, checking passwords, API tokens."""

import hashlib
import secrets
from dataclasses import dataclass
from functools import cache

from email_validator import EmailNotValidError, validate_email
from flask import current_app
from sqlalchemy import func, select
from werkzeug.security import check_password_hash, generate_password_hash

from crm.auth.models import ApiToken, User
from crm.common.access import ROLES
from crm.common.types import utcnow
from crm.extensions import db

MIN_PASSWORD_LENGTH = 10


def hash_password(password: str) -> str:
    """A salted hash of the password with the configured method (PASSWORD_HASH_METHOD; Werkzeug's scrypt)."""
    return generate_password_hash(password, method=current_app.config["PASSWORD_HASH_METHOD"])


@cache
def _dummy_hash(method: str) -> str:
    """Checked against when the email is unknown, so a login takes as long whether or not the account exists
    (made with the same method as real hashes)."""
    return generate_password_hash("not-a-real-password", method=method)


class AccountError(ValueError):
    """A request about accounts that cannot be carried out; the message is for the user."""


def normalize_email(email: str) -> str:
    """Syntax-check an address and return its normalised form (raises AccountError)."""
    try:
        return validate_email((email or "").strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise AccountError(str(exc)) from exc


def check_password_strength(password: str) -> None:
    """Refuse passwords that are too short."""
    if len(password or "") < MIN_PASSWORD_LENGTH:
        raise AccountError(f"Passwords need at least {MIN_PASSWORD_LENGTH} characters.")


def find_user(email: str) -> User | None:
    """The user with this email (case-insensitive), if any."""
    return db.session.scalar(select(User).where(func.lower(User.email) == (email or "").strip().lower()))


def create_user(email: str, role: str, password: str | None = None, name: str = "") -> tuple[User, str]:
    """Create a user; returns it and the password (generated when none was given)."""
    if role not in ROLES:
        raise AccountError(f"Role must be one of {', '.join(ROLES)}.")
    address = normalize_email(email)
    if find_user(address):
        raise AccountError(f"A user with the email {address} already exists.")
    password = password or secrets.token_urlsafe(12)
    check_password_strength(password)
    user = User(email=address, role=role, name=name.strip(), password_hash=hash_password(password))
    db.session.add(user)
    db.session.commit()
    return user, password


def authenticate(email: str, password: str) -> User | None:
    """The active user with these credentials, or None (same work done either way)."""
    user = find_user(email)
    if user is None or not user.active:
        check_password_hash(_dummy_hash(current_app.config["PASSWORD_HASH_METHOD"]), password or "")
        return None
    if not check_password_hash(user.password_hash, password or ""):
        return None
    user.last_login_at = utcnow()
    db.session.commit()
    return user


def change_password(user: User, current: str, new: str) -> None:
    """Change a password after checking the current one; ends the user's other sessions."""
    if not check_password_hash(user.password_hash, current or ""):
        raise AccountError("The current password is not right.")
    check_password_strength(new)
    user.password_hash = hash_password(new)
    user.session_version += 1
    db.session.commit()


def end_all_sessions(user: User) -> None:
    """Invalidate every session of the user (they carry the old session version)."""
    user.session_version += 1
    db.session.commit()


def set_role(user: User, role: str) -> None:
    """Change a user's role."""
    if role not in ROLES:
        raise AccountError(f"Role must be one of {', '.join(ROLES)}.")
    user.role = role
    user.session_version += 1
    db.session.commit()


def load_session_user(session_id: str) -> User | None:
    """Flask-Login loader: 'id:session_version' must match the stored user."""
    user_id, _, version = (session_id or "").partition(":")
    if not user_id.isdigit() or not version.isdigit():
        return None
    user = db.session.get(User, int(user_id))
    if user is None or not user.active or user.session_version != int(version):
        return None
    return user


def _token_hash(token: str) -> str:
    """SHA-256 of a token: tokens are long random strings, so a fast hash is enough."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class NewToken:
    """A freshly created API token; `secret` is shown once and never stored."""

    record: ApiToken
    secret: str


def create_token(email: str, name: str = "") -> NewToken:
    """Create an API token for a user."""
    user = find_user(email)
    if user is None:
        raise AccountError(f"No user with the email {email!r}.")
    secret = "crm_" + secrets.token_urlsafe(32)
    token = ApiToken(user=user, name=name, token_hash=_token_hash(secret), prefix=secret[:10])
    db.session.add(token)
    db.session.commit()
    return NewToken(token, secret)


def user_for_token(secret: str) -> User | None:
    """The active user owning a valid, unrevoked token."""
    if not secret or len(secret) > 200:
        return None
    token = db.session.scalar(select(ApiToken).where(ApiToken.token_hash == _token_hash(secret)))
    if token is None or token.revoked_at is not None or not token.user.active:
        return None
    return token.user


def count_users() -> int:
    """How many accounts exist."""
    return db.session.scalar(select(func.count(User.id))) or 0


def list_users() -> list[User]:
    """All users, by email."""
    return list(db.session.scalars(select(User).order_by(User.email)))


RESET_MAX_AGE = 30 * 60  # a reset link works for 30 minutes, and only once


def request_password_reset(email: str, base_url: str) -> bool:
    """Mail a signed, short-lived reset link to an active user; the caller says the same thing either way."""
    from crm.common.tokens import make_token
    from crm.mailmerge.outbox import enqueue_system_mail

    user = find_user(email)
    if user is None or not user.active:
        return False
    # The session version makes the link single-use: setting the password bumps it.
    token = make_token("password-reset", {"u": user.id, "v": user.session_version})
    link = f"{base_url.rstrip('/')}/password/reset/{token}"
    enqueue_system_mail(
        user.email, "Reset your Undersigned password",
        f"Someone asked to reset the password of {user.email} on Undersigned.\n\n"
        f"To choose a new password, open this link within 30 minutes:\n{link}\n\n"
        "If it was not you, ignore this message: your password stays as it is.\n",
        kind="password-reset")
    db.session.commit()
    return True


def user_for_reset_token(token: str) -> User:
    """The user a valid, unused reset link belongs to (raises AccountError)."""
    from crm.common.tokens import TokenError, read_token

    try:
        payload = read_token("password-reset", token, max_age=RESET_MAX_AGE)
    except TokenError as exc:
        raise AccountError(str(exc)) from exc
    user = db.session.get(User, payload.get("u")) if isinstance(payload, dict) and isinstance(payload.get("u"), int) \
        else None
    if user is None or not user.active or payload.get("v") != user.session_version:
        raise AccountError("This link has already been used or is no longer valid.")
    return user


def reset_password(token: str, new_password: str) -> User:
    """Set a new password through a reset link; ends every session of the user."""
    user = user_for_reset_token(token)
    check_password_strength(new_password)
    user.password_hash = hash_password(new_password)
    user.session_version += 1
    db.session.commit()
    return user
