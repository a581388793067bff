"""Accounts: creating users, checking passwords, API tokens."""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from functools import cache

from email_validator import EmailNotValidError, validate_email
from flask import current_app
from sqlalchemy import delete, func, select, update
from werkzeug.security import check_password_hash, generate_password_hash

from crm.audit.services import record
from crm.auth.models import ApiToken, User, UserSession
from crm.common.access import ROLES
from crm.common.types import utcnow
from crm.common.validation import whole_number
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


def create_user(email: str, role: str, password: str | None = None, name: str = "",
                actor_id: int | None = None) -> tuple[User, str]:
    """Create a user; returns it and the password (generated when none was given)."""
    if role not in ROLES:
        raise AccountError(f"Role must be one of {', '.join(ROLES)}.")
    address = normalize_email(email)
    _refuse_existing(address)
    password = password or secrets.token_urlsafe(12)
    check_password_strength(password)
    user = User(email=address, role=role, name=name.strip(), password_hash=hash_password(password))
    db.session.add(user)
    db.session.flush()
    record("user.create", "user", user.id, user_id=actor_id, summary=f"User {address} created as {role}",
           after={"email": address, "role": role})
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


def check_current_password(user: User, password: str) -> bool:
    """Whether `password` is the user's password."""
    return check_password_hash(user.password_hash, password or "")


def change_password(user: User, current: str, new: str) -> None:
    """Change a password after checking the current one; ends the user's other sessions (the caller's session
    key, if any, stays valid under the new session version)."""
    if not check_current_password(user, current):
        raise AccountError("The current password is not right.")
    check_password_strength(new)
    user.password_hash = hash_password(new)
    user.session_version += 1
    _end_sessions(user, keep=user.session_key)
    record("user.password", "user", user.id, user_id=user.id, summary=f"{user.email} changed their password")
    db.session.commit()


def _end_sessions(user: User, keep: str | None = None) -> None:
    """Mark every open server-side session of the user ended (but `keep`'s)."""
    query = update(UserSession).where(UserSession.user_id == user.id, UserSession.ended_at.is_(None))
    if keep:
        query = query.where(UserSession.key_hash != _token_hash(keep))
    db.session.execute(query.values(ended_at=utcnow()))


def _revoke_tokens(user: User) -> int:
    """Revoke every live API token of the user; returns how many."""
    return db.session.execute(update(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
                              .values(revoked_at=utcnow())).rowcount


def end_all_sessions(user: User, actor_id: int | None = None) -> None:
    """Log out everywhere: every session ends (the version changes) and every API token is revoked, since
    whoever holds a lost laptop holds its tokens too."""
    user.session_version += 1
    _end_sessions(user)
    revoked = _revoke_tokens(user)
    record("user.logout_everywhere", "user", user.id, user_id=actor_id or user.id,
           summary=f"Every session of {user.email} ended, {revoked} API token(s) revoked")
    db.session.commit()


def set_role(user: User, role: str, actor_id: int | None = None) -> None:
    """Change a user's role; someone logged in is logged out, so that the new role applies at once."""
    if role not in ROLES:
        raise AccountError(f"Role must be one of {', '.join(ROLES)}.")
    before = user.role
    user.role = role
    # Sessions end so that the new role applies at once. The session version (which an invitation link carries)
    # goes up only for someone who has logged in: bumping it would kill a pending invitation.
    _end_sessions(user)
    if user.last_login_at is not None:
        user.session_version += 1
    record("user.role", "user", user.id, user_id=actor_id, summary=f"{user.email} is now {role}",
           before={"role": before}, after={"role": role})
    db.session.commit()


SESSION_RECORDS_KEPT = timedelta(days=30)


def start_session(user: User) -> str:
    """Open a server-side session for a login; returns its secret (kept in the signed session cookie)."""
    key = secrets.token_urlsafe(32)
    # Ended sessions are only kept for a while; pruning at login keeps the table small.
    db.session.execute(delete(UserSession).where(UserSession.ended_at < utcnow() - SESSION_RECORDS_KEPT))
    db.session.add(UserSession(user_id=user.id, key_hash=_token_hash(key)))
    user.session_key = key
    db.session.commit()
    return key


def end_session(user: User) -> None:
    """End the session the user is logged in with (logout): its cookie, even copied, no longer works."""
    if user.session_key:
        db.session.execute(update(UserSession).where(UserSession.key_hash == _token_hash(user.session_key),
                                                     UserSession.ended_at.is_(None)).values(ended_at=utcnow()))
        db.session.commit()
    user.session_key = None


def load_session_user(session_id: str) -> User | None:
    """Flask-Login loader: 'id:session_version:key' must name an active user, the user's current session version
    and an open server-side session of that user."""
    user_text, _, rest = (session_id or "").partition(":")
    version_text, _, key = rest.partition(":")
    user_id, version = whole_number(user_text), whole_number(version_text)
    if user_id is None or version is None or not key or len(key) > 100:
        return None
    row = db.session.execute(
        select(User, UserSession.id).join(UserSession, UserSession.user_id == User.id)
        .where(User.id == user_id, UserSession.key_hash == _token_hash(key), UserSession.ended_at.is_(None))
    ).first()
    if row is None:
        return None
    user = row[0]
    if not user.active or user.session_version != version:
        return None
    user.session_key = key
    return user


def set_active(user: User, active: bool, actor_id: int | None = None) -> None:
    """Deactivate a user (every session and API token ends at once) or reactivate one (old tokens stay revoked)."""
    if user.active == active:
        return
    user.active = active
    summary = f"{user.email} reactivated"
    if not active:
        user.session_version += 1
        _end_sessions(user)
        revoked = _revoke_tokens(user)
        summary = f"{user.email} deactivated; sessions ended, {revoked} API token(s) revoked"
    record("user.activate" if active else "user.deactivate", "user", user.id, user_id=actor_id, summary=summary,
           before={"active": not active}, after={"active": active})
    db.session.commit()


def user_by_email(email: str) -> User:
    """The user with this email (raises AccountError)."""
    user = find_user(email)
    if user is None:
        raise AccountError(f"No user with the email {(email or '').strip()!r}.")
    return user


def _token_hash(token: str) -> str:
    """SHA-256 of a token: tokens are long random strings, so a fast hash is enough."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class NewToken:
    """A freshly created API token; `secret` is shown once and never stored."""

    record: ApiToken
    secret: str


def create_token(email: str, name: str = "", actor_id: int | None = None) -> NewToken:
    """Create an API token for a user."""
    user = user_by_email(email)
    if not user.active:
        raise AccountError(f"{user.email} is deactivated; reactivate the account first.")
    secret = "crm_" + secrets.token_urlsafe(32)
    token = ApiToken(user=user, name=name, token_hash=_token_hash(secret), prefix=secret[:10])
    db.session.add(token)
    db.session.flush()
    record("token.create", "api_token", token.id, user_id=actor_id,
           summary=f"API token #{token.id} ({token.prefix}…) created for {user.email}")
    db.session.commit()
    return NewToken(token, secret)


def user_for_token(secret: str) -> User | None:
    """The active user owning a valid, unrevoked token."""
    if not secret or len(secret) > 200:
        return None
    row = db.session.execute(select(ApiToken, User).join(User, ApiToken.user_id == User.id)
                             .where(ApiToken.token_hash == _token_hash(secret))).first()
    if row is None:
        return None
    token, user = row
    if token.revoked_at is not None or not user.active:
        return None
    # "Last used" to the minute is enough, and spares a write on every request.
    now = utcnow()
    if token.last_used_at is None or now - token.last_used_at > TOKEN_USE_RESOLUTION:
        db.session.execute(update(ApiToken).where(ApiToken.id == token.id).values(last_used_at=now))
        db.session.commit()
    return user


TOKEN_USE_RESOLUTION = timedelta(minutes=1)


def list_tokens(email: str | None = None) -> list[ApiToken]:
    """API tokens, newest first; only one user's when `email` is given (raises AccountError for no such user)."""
    query = select(ApiToken).join(User, ApiToken.user_id == User.id).order_by(ApiToken.id.desc())
    if email is not None:
        query = query.where(ApiToken.user_id == user_by_email(email).id)
    return list(db.session.scalars(query))


def get_token(token_id: int) -> ApiToken | None:
    """One API token by id."""
    return db.session.get(ApiToken, token_id)


def revoke_token(token: ApiToken, actor_id: int | None = None) -> bool:
    """Revoke a token (it stops working on its next request); False when it was already revoked."""
    if token.revoked_at is not None:
        return False
    token.revoked_at = utcnow()
    record("token.revoke", "api_token", token.id, user_id=actor_id,
           summary=f"API token #{token.id} ({token.prefix}…) of {token.user.email} revoked")
    db.session.commit()
    return True


def count_users() -> int:
    """How many accounts exist."""
    return db.session.scalar(select(func.count(User.id))) or 0


def list_users() -> list[User]:
    """All users, by email."""
    return list(db.session.scalars(select(User).order_by(User.email)))


def _invited_ids():
    """A query of the ids of invited users who have not logged in yet (the users page's "invited")."""
    from crm.audit.models import AuditEvent

    return (select(User.id).join(AuditEvent, (AuditEvent.entity_id == User.id) & (AuditEvent.entity_type == "user")
                                 & (AuditEvent.action == "user.invite"))
            .where(User.last_login_at.is_(None)).distinct())


def pending_invitations() -> set[int]:
    """Ids of invited users who have not logged in yet."""
    return set(db.session.scalars(_invited_ids()))


def invitation_pending(user: User) -> bool:
    """Whether the user was invited and has not logged in yet."""
    return db.session.scalar(_invited_ids().where(User.id == user.id)) is not None


def _refuse_existing(address: str) -> None:
    """Refuse to add a second account for an address, saying what to do instead (raises AccountError)."""
    user = find_user(address)
    if user is None:
        return
    if not user.active:
        raise AccountError(f"A user with the email {address} already exists and is deactivated: reactivate them "
                           "instead.")
    if invitation_pending(user):
        raise AccountError(f"{address} is already invited and has not logged in yet. To mail them a new link, use "
                           "“Resend invitation” in their row of the users list.")
    raise AccountError(f"A user with the email {address} already exists.")


RESET_MAX_AGE = 30 * 60  # a reset link works for 30 minutes, and only once
INVITE_MAX_AGE = 7 * 24 * 3600  # an invitation works for a week, and only once


def invite_user(email: str, role: str, name: str, base_url: str, actor: User) -> User:
    """Create a user without a usable password and mail them a link to choose one (raises AccountError)."""
    if role not in ROLES:
        raise AccountError(f"Role must be one of {', '.join(ROLES)}.")
    address = normalize_email(email)
    _refuse_existing(address)
    # Nobody knows this password: the account is usable only once the invitee chooses one through the link.
    user = User(email=address, role=role, name=(name or "").strip(),
                password_hash=hash_password(secrets.token_urlsafe(32)))
    db.session.add(user)
    db.session.flush()
    _mail_invitation(user, base_url, actor)
    record("user.invite", "user", user.id, user_id=actor.id, summary=f"{address} invited as {role}",
           after={"email": address, "role": role})
    db.session.commit()
    return user


def resend_invitation(user: User, base_url: str, actor: User) -> None:
    """Mail an invited user who has not logged in yet a new link; the earlier link stops working (raises
    AccountError)."""
    if not user.active:
        raise AccountError(f"{user.email} is deactivated: reactivate them before inviting them again.")
    if not invitation_pending(user):
        raise AccountError(f"{user.email} has already logged in, so there is no invitation to resend. If they "
                           "lost their password, they can ask for a reset link on the login page.")
    # The new link supersedes the old one: only the newest mail works, so an earlier one that went astray (or that
    # the admin resent because of doubts about it) cannot be used. An invitee has no session for this to end.
    user.session_version += 1
    _mail_invitation(user, base_url, actor, again=True)
    record("user.reinvite", "user", user.id, user_id=actor.id,
           summary=f"Invitation to {user.email} sent again (as {user.role}); the earlier link no longer works",
           after={"email": user.email, "role": user.role})
    db.session.commit()


def _mail_invitation(user: User, base_url: str, actor: User, again: bool = False) -> None:
    """Queue the invitation mail with a link valid for the user's current session version (single use: choosing
    the password bumps it)."""
    from crm.common.tokens import make_token
    from crm.mailmerge.outbox import enqueue_system_mail

    token = make_token("invite", {"u": user.id, "v": user.session_version})
    link = f"{base_url.rstrip('/')}/invite/{token}"
    inviter = actor.name or actor.email
    article = "an" if user.role[0] in "aeiou" else "a"
    replaces = "This link replaces the one in any earlier invitation, which no longer works.\n\n" if again else ""
    enqueue_system_mail(
        user.email, "You are invited to Undersigned",
        f"{inviter} invited you to Undersigned as {article} {user.role}.\n\n"
        f"To choose your password and log in, open this link within 7 days:\n{link}\n\n"
        f"{replaces}If you did not expect this, ignore this message.\n",
        kind="invite")


def user_for_invite_token(token: str) -> User:
    """The user a valid, unused invitation belongs to (raises AccountError)."""
    return _user_for_link("invite", token, INVITE_MAX_AGE)


def accept_invite(token: str, new_password: str) -> User:
    """Choose the first password through an invitation (single use)."""
    user = user_for_invite_token(token)
    check_password_strength(new_password)
    user.password_hash = hash_password(new_password)
    user.session_version += 1
    _end_sessions(user)
    record("user.invite_accepted", "user", user.id, user_id=user.id, summary=f"{user.email} set their password")
    db.session.commit()
    return user


def _user_for_link(purpose: str, token: str, max_age: int) -> User:
    """The active user a signed, unused account link belongs to (raises AccountError)."""
    from crm.common.tokens import TokenError, read_token

    try:
        payload = read_token(purpose, token, max_age=max_age)
    except TokenError as exc:
        raise AccountError(str(exc)) from exc
    user = db.session.get(User, payload.get("u")) if isinstance(payload, dict) and isinstance(payload.get("u"), int) \
        else None
    if user is None or not user.active or payload.get("v") != user.session_version:
        raise AccountError("This link has already been used or is no longer valid.")
    return user


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
    return _user_for_link("password-reset", token, RESET_MAX_AGE)


def reset_password(token: str, new_password: str) -> User:
    """Set a new password through a reset link; ends every session and revokes every API token of the user
    (a forgotten password may be a stolen one)."""
    user = user_for_reset_token(token)
    check_password_strength(new_password)
    user.password_hash = hash_password(new_password)
    user.session_version += 1
    _end_sessions(user)
    revoked = _revoke_tokens(user)
    record("user.password_reset", "user", user.id, user_id=user.id,
           summary=f"{user.email} reset their password; every session ended, {revoked} API token(s) revoked")
    db.session.commit()
    return user
