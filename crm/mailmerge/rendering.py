"""Turning a merge and a recipient into the exact message they receive.

Recipients are loaded in batches (three queries per batch, whatever its size) into plain dicts; the templates
never see ORM objects.
"""

import uuid
from dataclasses import dataclass
from email.header import Header
from email.quoprimime import body_encode
from email.utils import formataddr, formatdate, make_msgid, parseaddr
from functools import lru_cache

from flask import current_app
from markupsafe import escape
from sqlalchemy import select

from crm.common.text import single_line
from crm.common.urls import public_url
from crm.contacts.models import Contact
from crm.extensions import db
from crm.letters.models import Letter, Signature
from crm.mailmerge import links
from crm.mailmerge.outbox import message_domain
from crm.mailmerge.plaintext import html_and_text
from crm.mailmerge.templating import CompiledMerge, Record, render_part
from crm.organizations.models import Organization


def _human_date(value) -> str:
    """April 19, 2021."""
    return value.strftime("%B %-d, %Y") if value else ""


@dataclass
class Recipient:
    """Everything a template may know about one recipient, as plain values."""

    contact_id: int
    email: str
    contact: dict
    org: dict | None
    history: list[dict]


def letter_record(letter: Letter | None) -> dict | None:
    """The promoted letter as plain values."""
    if letter is None:
        return None
    return {
        "id": letter.id,
        "slug": letter.slug,
        "title": letter.title,
        "summary": letter.summary,
        "deadline": _human_date(letter.deadline),
        "date": _human_date(letter.date),
        "url": public_url(f"/sign/{letter.slug}"),
    }


def load_recipients(contact_ids: list[int]) -> dict[int, Recipient]:
    """Contacts, their organizations and those organizations' letters, for a batch of contact ids."""
    if not contact_ids:
        return {}
    contacts = db.session.execute(
        select(
            Contact.id, Contact.first_name, Contact.last_name, Contact.title, Contact.email, Contact.organization_id
        ).where(Contact.id.in_(contact_ids))
    ).all()
    org_ids = {c.organization_id for c in contacts if c.organization_id}
    orgs, history = _organizations(org_ids), _letters_signed(org_ids)
    return {c.id: _recipient(c, orgs.get(c.organization_id), history.get(c.organization_id, [])) for c in contacts}


def _organizations(org_ids: set[int]) -> dict[int, dict]:
    """The merge fields of each organization, by id."""
    if not org_ids:
        return {}
    rows = db.session.execute(
        select(Organization.id, Organization.name, Organization.acronym, Organization.city, Organization.state)
        .where(Organization.id.in_(org_ids))
    )
    return {
        o.id: {"id": o.id, "name": o.name, "acronym": o.acronym or "", "city": o.city or "", "state": o.state or ""}
        for o in rows
    }


def _letters_signed(org_ids: set[int]) -> dict[int, list[dict]]:
    """Each organization's confirmed letters, newest first (undated last), as merge fields."""
    if not org_ids:
        return {}
    signed: dict[int, list[tuple]] = {}
    rows = db.session.execute(
        select(
            Signature.organization_id, Letter.title, Letter.letter_date, Letter.delivered_on, Signature.role, Letter.id
        )
        .join(Letter, Letter.id == Signature.letter_id)
        .where(Signature.organization_id.in_(org_ids), Signature.status == "confirmed")
    )
    for org_id, title, letter_date, delivered_on, role, letter_id in rows:
        signed.setdefault(org_id, []).append((letter_date or delivered_on, letter_id, title, role))
    return {
        org_id: [
            {"title": title, "date": _human_date(day), "role": role}
            for day, _, title, role in sorted(letters, key=lambda h: (h[0] is not None, h[0], h[1]), reverse=True)
        ]
        for org_id, letters in signed.items()
    }


def _recipient(contact, org: dict | None, history: list[dict]) -> Recipient:
    """One recipient from its contact row, organization fields and letter history (copies of its own: recipients
    of one organization never share a dict a template could change)."""
    return Recipient(
        contact_id=contact.id,
        email=contact.email or "",
        contact={
            "id": contact.id,
            "first_name": contact.first_name,
            "last_name": contact.last_name,
            "full_name": f"{contact.first_name} {contact.last_name}".strip(),
            "title": contact.title,
            "email": contact.email,
        },
        org=dict(org) if org else None,
        history=[dict(letter) for letter in history],
    )


def context_for(recipient: Recipient, letter: dict | None, merge_id: int | None, *, test: bool = False) -> dict:
    """The template variables of one recipient (missing or empty values are left out, so they are caught).

    `test`: for a test message, personal links are test links that act on nobody (links.test_link_url)."""
    context: dict = {
        "contact": Record("contact", {k: v for k, v in recipient.contact.items() if k != "id"}),
        "history": [Record("history", item) for item in recipient.history],
        "unsubscribe_url": links.test_link_url("unsubscribe", merge_id, recipient.email)
        if test
        else links.unsubscribe_url(recipient.email, merge_id),
    }
    if recipient.org is not None:
        context["org"] = Record("org", {k: v for k, v in recipient.org.items() if k != "id"})
    if recipient.history:
        context["last_signed"] = context["history"][0]
    if letter is not None:
        context["letter"] = Record("letter", {k: v for k, v in letter.items() if k not in ("id", "slug")})
        if recipient.org is not None and test:
            context["sign_on_url"] = links.test_link_url(
                "signon", merge_id, f"{recipient.org['name']} on “{letter['title']}”"
            )
        elif recipient.org is not None:
            context["sign_on_url"] = links.sign_on_url(letter, recipient.org, recipient.contact)
    return context


def sample_recipient() -> Recipient:
    """A recipient with every field filled, to try templates on before there is an audience."""
    return Recipient(
        contact_id=0,
        email="sample@example.org",
        contact={
            "id": 0,
            "first_name": "Ana",
            "last_name": "Sample",
            "full_name": "Ana Sample",
            "title": "Director",
            "email": "sample@example.org",
        },
        org={"id": 0, "name": "Sample Organization", "acronym": "SO", "city": "Springfield", "state": "IL"},
        history=[{"title": "An earlier letter", "date": "April 19, 2021", "role": "signatory"}],
    )


@dataclass
class Rendered:
    """One recipient's message: the parts and the final MIME text."""

    subject: str
    text: str
    html: str
    raw: str
    message_id: str


def _footer_text(unsubscribe: str) -> str:
    """The plain-text footer: postal address and unsubscribe link."""
    postal = current_app.config.get("CRM_POSTAL_ADDRESS") or ""
    return f"\n\n-- \n{postal}\nUnsubscribe: {unsubscribe}\n"


def _footer_html(unsubscribe: str) -> str:
    """The HTML footer."""
    postal = current_app.config.get("CRM_POSTAL_ADDRESS") or ""
    return (
        f'<hr><p style="font-size:small;color:#555">{escape(postal)}<br>'
        f'<a href="{escape(unsubscribe)}">Unsubscribe</a></p>'
    )


@lru_cache(maxsize=256)
def _address(value: str) -> str:
    """A header-safe address (display name encoded when not ASCII); cached, as a merge has one sender."""
    name, addr = parseaddr(single_line(value))
    return formataddr((name, addr)) if addr else ""


def render_message(
    compiled: CompiledMerge,
    recipient: Recipient,
    *,
    letter: dict | None,
    merge_id: int | None,
    sender: str,
    reply_to: str = "",
    to_email: str | None = None,
    merge_name: str = "",
    test: bool = False,
) -> Rendered:
    """Render subject and body for one recipient and build the multipart/alternative message (RenderError).

    `test`: a test message, whose personal links (body, footer, List-Unsubscribe) act on nobody."""
    context = context_for(recipient, letter, merge_id, test=test)
    subject = single_line(render_part("Subject", compiled.subject, context))[:998]
    body = render_part("Body", compiled.body, context)
    unsubscribe = context["unsubscribe_url"]
    body_html, body_text = html_and_text(body)
    text = body_text.rstrip() + _footer_text(unsubscribe)
    html = (
        '<!doctype html><html><head><meta charset="utf-8"></head><body>'
        f"{body_html}{_footer_html(unsubscribe)}</body></html>"
    )
    address = to_email or recipient.email
    message_id = make_msgid(domain=message_domain())
    unsubscribe_token = unsubscribe.rsplit("/", 1)[-1]
    headers = [
        ("From", _address(sender or current_app.config["MAIL_DEFAULT_SENDER"])),
        ("To", formataddr((single_line(recipient.contact.get("full_name", ""))[:200], single_line(address)))),
        ("Subject", subject if subject.isascii() else Header(subject, "utf-8").encode()),
        ("Date", formatdate(usegmt=True)),
        ("Message-ID", message_id),
    ]
    if reply_to:
        headers.append(("Reply-To", _address(reply_to)))
    headers.append(
        (
            "List-Unsubscribe",
            f"<{unsubscribe}>, <mailto:unsubscribe@{message_domain()}?subject=unsubscribe%20"
            f"{unsubscribe_token}>",
        )
    )
    headers.append(("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"))
    if merge_id is not None:
        headers.append(("X-Undersigned-Merge", str(merge_id)))
    raw = build_alternative(headers, text, html)
    return Rendered(subject=subject, text=text, html=html, raw=raw, message_id=message_id)


def _qp(text: str) -> str:
    """Quoted-printable of UTF-8 text (body_encode works on bytes written as latin-1 characters)."""
    return body_encode(text.encode("utf-8").decode("latin-1"), eol="\n")


def build_alternative(headers: list[tuple[str, str]], text: str, html: str) -> str:
    """multipart/alternative MIME text (quoted-printable UTF-8 parts), built directly: the email package's
    generator costs milliseconds per message, which a 200,000-recipient merge cannot afford."""
    boundary = f"=_undersigned_{uuid.uuid4().hex}"
    lines = [f"{name}: {single_line(value)}" for name, value in headers]
    lines += [
        "MIME-Version: 1.0",
        f'Content-Type: multipart/alternative; boundary="{boundary}"',
        "",
        f"--{boundary}",
        'Content-Type: text/plain; charset="utf-8"',
        "Content-Transfer-Encoding: quoted-printable",
        "",
        _qp(text),
        f"--{boundary}",
        'Content-Type: text/html; charset="utf-8"',
        "Content-Transfer-Encoding: quoted-printable",
        "",
        _qp(html),
        f"--{boundary}--",
        "",
    ]
    return "\n".join(lines)
