"""The outbox pages: every message this instance sent or caught, and one message exactly as it left."""

from email import message_from_string, policy

from flask import abort, render_template

from crm.common.access import access
from crm.mailmerge import reports
from crm.mailmerge.blueprint import bp, page_number


@bp.get("/outbox")
@access("organizer")
def outbox():
    """Every message sent or caught (with MAIL_BACKEND=outbox) by this instance."""
    return render_template("mailmerge/outbox.html", result=reports.outbox_page(page_number()))


@bp.get("/outbox/<int:message_id>")
@access("organizer")
def outbox_message(message_id: int):
    """One message exactly as it was handed to SMTP (or kept by the dev outbox)."""
    message = reports.get_message(message_id) or abort(404)
    text = html = None
    if message.raw:
        parsed = message_from_string(message.raw, policy=policy.default)
        part = parsed.get_body(("plain",))
        text = part.get_content() if part is not None else None
        part = parsed.get_body(("html",))
        html = part.get_content() if part is not None else None
    return render_template("mailmerge/message.html", message=message, text=text, html=html)
