"""Slowing down guesses at one account without letting strangers lock its owner out.

Login attempts are refused (429) per client address and per (address, account) pair. Failed attempts on one
account from *any* address only slow the next attempts on it down: the owner, arriving from a new address with the
right password, still gets in, a few seconds later, while a guesser spread over many addresses gains little.
"""

import time

from flask import current_app

from crm.extensions import limiter

# Failures on one account counted over this window; beyond FREE_FAILURES each adds STEP seconds, up to MAX.
WINDOW_SECONDS = 15 * 60
FREE_FAILURES = 5
STEP_SECONDS = 0.5
MAX_DELAY_SECONDS = 3.0


def _key(email: str) -> str:
    """The storage key of an account's failure count."""
    return "login-failures:" + (email or "").strip().lower()[:254]


def failures(email: str) -> int:
    """Recent failed logins on this account, from every address."""
    if not limiter.enabled:
        return 0
    return int(limiter.storage.get(_key(email)) or 0)


def delay_for(count: int) -> float:
    """Seconds to wait before checking a password after `count` recent failures on the account."""
    extra = count - current_app.config.get("LOGIN_FREE_FAILURES", FREE_FAILURES)
    if extra <= 0:
        return 0.0
    return min(extra * STEP_SECONDS, current_app.config.get("LOGIN_MAX_DELAY_SECONDS", MAX_DELAY_SECONDS))


def slow_down(email: str) -> float:
    """Sleep as long as the account's recent failures ask for; returns the seconds slept."""
    seconds = delay_for(failures(email))
    if seconds:
        time.sleep(seconds)
    return seconds


def note_failure(email: str) -> None:
    """Count a failed login on the account."""
    if limiter.enabled:
        limiter.storage.incr(_key(email), WINDOW_SECONDS)
