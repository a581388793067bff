"""URL helpers."""

import ipaddress
from urllib.parse import urlsplit

from flask import current_app, request, url_for
from werkzeug.routing import IntegerConverter

DEFAULT_BASE_URL = "http://127.0.0.1:5000"


def public_url(path: str = "") -> str:
    """The absolute address people open for `path` ("/sign/x"): CRM_BASE_URL (set by `crm run --port P` when the
    environment leaves it unset) plus the path. Every link in mail is built here."""
    base = (current_app.config.get("CRM_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
    return f"{base}{path}"


def this_page_with(**changes) -> str:
    """This request's page (its endpoint, the other parts of its URL, its query string) with some URL parts
    changed, e.g. a letter's page under the letter's current slug."""
    target = url_for(request.endpoint, **{**(request.view_args or {}), **changes})
    return f"{target}?{request.query_string.decode('latin-1')}" if request.query_string else target


def base_url_for_run(host: str | None, port: int | None) -> str:
    """The CRM_BASE_URL of `crm run --host H --port P`: the address that server answers on (a wildcard host is
    opened as 127.0.0.1)."""
    host = (host or "127.0.0.1").strip("[]")
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 - a wildcard bind address, not a bind
        host = "127.0.0.1"
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port or 5000}"


def unreachable_host(url: str) -> str | None:
    """The host of `url` when people elsewhere could not open it (loopback, unspecified, link-local,
    `localhost`, no host at all); None when it may be reachable."""
    try:
        host = (urlsplit(url).hostname or "").lower()
    except ValueError:
        return url or "(empty)"
    if not host:
        return url or "(empty)"
    if host == "localhost" or host.endswith(".localhost"):
        return host
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if address.is_loopback or address.is_unspecified or address.is_link_local:
        return host
    return None


def safe_next(target: str | None, default: str = "/") -> str:
    """A same-site path to redirect to after login; anything pointing elsewhere falls back to `default`."""
    if not target:
        return default
    target = target.strip()
    if any(ch in target for ch in "\\\r\n\t\x00") or not target.startswith("/") or target.startswith("//"):
        return default
    try:
        parts = urlsplit(target)
    except ValueError:  # a malformed [IPv6] part
        return default
    if parts.scheme or parts.netloc:
        return default
    return target


class IdConverter(IntegerConverter):
    """`<int:…>` bounded to what every database column holds: a larger number is a 404, not a crash."""

    def __init__(self, map, fixed_digits=0, min=None, max=2**31 - 1, signed=False):  # noqa: A002 - werkzeug's names
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)
