"""The outbox: every message leaves through a Message row, whatever sends it.

Merge messages are created by queueing a merge; system mail (sign-on confirmations, notifications, password
resets) is created here. The worker sends queued rows (MAIL_BACKEND=smtp) or the dev outbox keeps them
(MAIL_BACKEND=outbox).
"""

from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from flask import current_app

from crm.common.text import single_line
from crm.extensions import db
from crm.mailmerge.models import Message


def message_domain() -> str:
    """The domain of Message-IDs: the sender's domain (never socket.getfqdn() per message)."""
    sender = current_app.config.get("MAIL_DEFAULT_SENDER") or "undersigned@localhost"
    address = sender[1] if isinstance(sender, tuple | list) else sender
    return address.rsplit("@", 1)[-1].strip("> ") or "localhost"


def build_message(to: str, subject: str, text: str, html: str | None = None, *, sender: str | None = None,
                  reply_to: str | None = None, headers: dict[str, str] | None = None) -> EmailMessage:
    """A MIME message (plain text, plus HTML as multipart/alternative); CR/LF never reach a header."""
    message = EmailMessage()
    message["From"] = single_line(sender or current_app.config["MAIL_DEFAULT_SENDER"])
    message["To"] = single_line(to)
    message["Subject"] = single_line(subject)
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = make_msgid(domain=message_domain())
    if reply_to:
        message["Reply-To"] = single_line(reply_to)
    for name, value in (headers or {}).items():
        message[name] = single_line(value)
    message.set_content(text)
    if html:
        message.add_alternative(html, subtype="html")
    return message


def enqueue_system_mail(to: str, subject: str, text: str, html: str | None = None, *, kind: str = "system",
                        organization_id: int | None = None, contact_id: int | None = None) -> Message:
    """Put one system message in the outbox (added to the session; committed with the caller's change)."""
    message = build_message(to, subject, text, html)
    row = Message(kind=kind, email=single_line(to).lower(), subject=single_line(subject)[:1000],
                  raw=message.as_string(), message_id=message["Message-ID"], status="queued",
                  organization_id=organization_id, contact_id=contact_id)
    db.session.add(row)
    return row
