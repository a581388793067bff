"""URL helpers."""

from urllib.parse import urlsplit

from werkzeug.routing import IntegerConverter


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
