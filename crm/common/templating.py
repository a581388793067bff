"""Template filters and globals."""

import re
from datetime import date, datetime
from email.utils import parseaddr
from urllib.parse import urlencode

from flask import Flask, current_app, request
from markupsafe import Markup

from crm.common.access import can
from crm.common.forms import error_list
from crm.common.markdown import render_markdown
from crm.common.text import plural, shown_acronym


def _format_date(value: date | datetime | None, fmt: str = "%b %-d, %Y") -> str:
    """A date for people: Apr 19, 2021."""
    if value is None:
        return ""
    return value.strftime(fmt)


def _format_datetime(value: datetime | None) -> str:
    """A timestamp for people, in UTC."""
    if value is None:
        return ""
    return value.strftime("%Y-%m-%d %H:%M UTC")


def _email_breaks(value: str | None) -> Markup:
    """An email address that wraps where a reader expects in a narrow column: before the @ and each dot (<wbr>)."""
    return Markup("<wbr>").join(re.split(r"(?=[@.])", value or ""))  # join escapes each part


def url_with(**changes) -> str:
    """The current URL with some query parameters replaced (None removes one); keeps repeated parameters."""
    args = request.args.to_dict(flat=False)
    for key, value in changes.items():
        if value is None:
            args.pop(key, None)
        else:
            args[key] = [str(value)]
    query = urlencode(args, doseq=True)
    return request.path + ("?" + query if query else "")


def coalition_name() -> str:
    """Who is asking, as public pages name it: CRM_COALITION_NAME, else the display name of MAIL_DEFAULT_SENDER
    (the name signers already see on the mail that brought them), else the app's name."""
    configured = (current_app.config.get("CRM_COALITION_NAME") or "").strip()
    sender = parseaddr(current_app.config.get("MAIL_DEFAULT_SENDER") or "")[0].strip()
    return configured or sender or "Undersigned"


def install_template_helpers(app: Flask) -> None:
    """Register the filters and globals."""
    app.jinja_env.filters["markdown"] = render_markdown
    app.jinja_env.filters["date"] = _format_date
    app.jinja_env.filters["datetime"] = _format_datetime
    app.jinja_env.filters["plural"] = plural
    app.jinja_env.filters["email_breaks"] = _email_breaks
    app.jinja_env.globals["can"] = can
    app.jinja_env.globals["error_list"] = error_list
    app.jinja_env.globals["shown_acronym"] = shown_acronym
    app.jinja_env.globals["url_with"] = url_with
    app.jinja_env.globals["coalition_name"] = coalition_name
