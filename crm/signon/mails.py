"""The mails a signer receives (confirm, listed, declined, re-confirm, thank-you) as templates organizers edit.

One wording per kind for the whole instance, not per letter: these are the coalition's transactional voice,
written once and reused by every letter, whose specifics come in through the fields (`letter.title`,
`sign_on_url`, …). A per-letter copy would have to be redone, and would drift, for each of many letters.

They are rendered in the same sandbox as merges (crm.mailmerge.templating: compile_templates, render_part)
and leave with the same footer (postal address, unsubscribe link) and the same List-Unsubscribe headers. A
signer always gets the mail: when an organizer's wording fails for one signer, the built-in one is used.
"""

import logging
from dataclasses import dataclass
from email.header import Header
from email.utils import formataddr, formatdate, make_msgid, parseaddr

from flask import current_app
from sqlalchemy import select

from crm.audit.services import commit_audited
from crm.common.markdown import render_markdown_blocks
from crm.common.text import single_line
from crm.extensions import db
from crm.mailmerge import links
from crm.mailmerge.models import Message
from crm.mailmerge.outbox import message_domain
from crm.mailmerge.rendering import _footer_html, _footer_text, build_alternative, letter_record
from crm.mailmerge.templating import Record, RenderError, compile_templates, render_part
from crm.signon.models import SignOnMailTemplate

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MailKind:
    """One kind of sign-on mail: what it is for, when it goes, its built-in wording and what `sign_on_url` is."""

    label: str
    when: str
    subject: str
    body: str
    link: str = ""


KINDS: dict[str, MailKind] = {
    "signon-confirm": MailKind(
        "Confirm a public sign-on",
        "to whoever signs on the public page, at once",
        "Confirm your sign-on: {{ letter.title }}",
        "Hello {{ contact.first_name | default('there') }},\n\n"
        "You asked to add {{ org.name }} as a signatory of “{{ letter.title }}”. Confirm it by opening this "
        "link within a week and pressing the button:\n\n{{ sign_on_url }}\n\n"
        "If you did not ask for this, ignore this message and nothing will happen.\n",
        link="the link that confirms the sign-on",
    ),
    "signon-accepted": MailKind(
        "Signature listed",
        "when a public sign-on is accepted (at once, or after review)",
        "Your signature is confirmed: {{ letter.title }}",
        "Hello {{ contact.first_name | default('there') }},\n\n"
        "{{ org.name }} is now listed as a signatory of “{{ letter.title }}”. Thank you.\n"
        "{% if letter.url %}\nAsk your partners to sign too: {{ letter.url }}\n{% endif %}",
    ),
    "signon-declined": MailKind(
        "Sign-on declined",
        "when an organizer declines a public sign-on",
        "About your sign-on: {{ letter.title }}",
        "Thank you for your interest in “{{ letter.title }}”. The organizers could not add {{ org.name }} as a "
        "signatory. Reply to this message if you think this is a mistake.\n",
    ),
    "signon-reconfirm": MailKind(
        "Confirm the changed text",
        "when an organizer asks the signers of an earlier text to confirm the current one",
        "The letter you signed changed: {{ letter.title }}",
        "Hello {{ contact.first_name | default('there') }},\n\n"
        "{{ org.name }} signed “{{ letter.title }}” on an earlier version of its text. The text has changed "
        "since. Please read it again and confirm your organization’s signature:\n\n{{ sign_on_url }}\n",
        link="the organization's personal sign-on link",
    ),
    "thank-you": MailKind(
        "Thank you (delivery)",
        "when an organizer records the delivery and chooses to thank the signers",
        "Thank you for signing: {{ letter.title }}",
        "Hello {{ contact.first_name | default('there') }},\n\n"
        "Thank you: {{ org.name }} signed “{{ letter.title }}”, which has now been delivered.\n",
    ),
}

SAMPLE_CONTACT = {"first_name": "Ana", "last_name": "Ruiz", "full_name": "Ana Ruiz", "title": "Director",
                  "email": "ana@example.org"}
SAMPLE_ORG = "Mijente"
SAMPLE_LINK = "https://undersigned.example/sign/sample-letter/p/sample-token"
SAMPLE_UNSUBSCRIBE = "https://undersigned.example/u/sample-token"  # a preview's links act on nobody


@dataclass
class RenderedMail:
    """A rendered sign-on mail: subject, plain text and HTML (footers included), and the MIME text."""

    subject: str
    text: str
    html: str
    raw: str
    message_id: str


class MailTemplateError(ValueError):
    """An organizer's wording that cannot be used: the problems, each with its part and line."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


def wording(kind: str) -> tuple[str, str, bool]:
    """The subject and body in use for a kind, and whether an organizer changed them."""
    row = db.session.get(SignOnMailTemplate, kind)
    if row is not None:
        return row.subject, row.body, True
    return KINDS[kind].subject, KINDS[kind].body, False


def all_wordings() -> list[tuple[str, MailKind, str, bool]]:
    """Every kind with its subject in use and whether it was changed (one query)."""
    rows = {row.kind: row for row in db.session.scalars(select(SignOnMailTemplate))}
    return [(kind, spec, rows[kind].subject if kind in rows else spec.subject, kind in rows)
            for kind, spec in KINDS.items()]


def _context(to: str, letter: dict | None, org_name: str, contact: dict, link: str, unsubscribe: str) -> dict:
    """The template variables of one sign-on mail (empty values left out, so using them is caught)."""
    context = {
        "contact": Record("contact", contact),
        "org": Record("org", {"name": org_name}),
        "unsubscribe_url": unsubscribe or links.unsubscribe_url(to, None),
    }
    if letter is not None:
        context["letter"] = Record("letter", {k: v for k, v in letter.items() if k not in ("id", "slug")})
    if link:
        context["sign_on_url"] = link
    return context


def render_mail(subject: str, body: str, *, to: str, letter: dict | None, org_name: str, contact: dict,
                link: str = "", unsubscribe: str = "") -> RenderedMail:
    """Render a wording for one signer and build the message merges would send (MailTemplateError)."""
    compiled = compile_templates(subject, body)
    if compiled.problems:
        raise MailTemplateError([str(p) for p in compiled.problems])
    context = _context(to, letter, org_name, contact, link, unsubscribe)
    try:
        subject_text = single_line(render_part("Subject", compiled.subject, context))[:998]
        body_text = render_part("Body", compiled.body, context)
    except RenderError as exc:
        where = f"{exc.part}, line {exc.line}" if exc.line else exc.part
        raise MailTemplateError([f"{where}: {exc}"]) from None
    unsubscribe = context["unsubscribe_url"]
    text = body_text.rstrip() + _footer_text(unsubscribe)
    # Written like mail, as merges are: a single line break ("Thank you,⏎The coalition") stays one in HTML too.
    html = ('<!doctype html><html><head><meta charset="utf-8"></head><body>'
            f"{render_markdown_blocks(body_text, breaks=True)}{_footer_html(unsubscribe)}</body></html>")
    message_id = make_msgid(domain=message_domain())
    headers = [
        ("From", formataddr(parseaddr(single_line(current_app.config["MAIL_DEFAULT_SENDER"])))),
        ("To", formataddr((single_line(contact.get("full_name", ""))[:200], single_line(to)))),
        ("Subject", subject_text if subject_text.isascii() else Header(subject_text, "utf-8").encode()),
        ("Date", formatdate(usegmt=True)),
        ("Message-ID", message_id),
        ("List-Unsubscribe", f"<{unsubscribe}>, <mailto:unsubscribe@{message_domain()}?subject=unsubscribe%20"
                             f"{unsubscribe.rsplit('/', 1)[-1]}>"),
        ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
    ]
    return RenderedMail(subject_text, text, html, build_alternative(headers, text, html), message_id)


def sample_letter(letter=None) -> dict:
    """The letter a preview shows: the one given, or a made-up one."""
    if letter is not None:
        return letter_record(letter)
    return {"title": "Stop the use of face recognition by DHS", "summary": "A sample letter.",
            "deadline": "December 18, 2026", "date": "December 3, 2026",
            "url": "https://undersigned.example/sign/sample-letter"}


def preview(kind: str, subject: str, body: str, letter=None) -> RenderedMail:
    """The wording rendered for a made-up signer (Ana Ruiz of Mijente) (MailTemplateError)."""
    return render_mail(subject, body, to=SAMPLE_CONTACT["email"], letter=sample_letter(letter),
                       org_name=SAMPLE_ORG, contact=SAMPLE_CONTACT, link=SAMPLE_LINK if KINDS[kind].link else "",
                       unsubscribe=SAMPLE_UNSUBSCRIBE)


def save_wording(kind: str, subject: str, body: str, user_id: int | None = None) -> None:
    """Keep an organizer's wording after checking it renders for a sample signer (MailTemplateError)."""
    preview(kind, subject, body)
    row = db.session.get(SignOnMailTemplate, kind)
    before = {"subject": row.subject, "body": row.body} if row is not None else None
    if row is None:
        row = SignOnMailTemplate(kind=kind, subject=subject, body=body, updated_by_id=user_id)
        db.session.add(row)
    else:
        row.subject, row.body, row.updated_by_id = subject, body, user_id
    commit_audited("update", "signon-mail", None, user_id=user_id, summary=f"Changed the {KINDS[kind].label!r} mail",
                   before=before, after={"subject": subject, "body": body})


def reset_wording(kind: str, user_id: int | None = None) -> None:
    """Go back to the built-in wording."""
    row = db.session.get(SignOnMailTemplate, kind)
    if row is None:
        return
    db.session.delete(row)
    commit_audited("update", "signon-mail", None, user_id=user_id,
                   summary=f"The {KINDS[kind].label!r} mail uses the built-in wording again")


def _contact_values(contact=None, name: str = "", title: str = "", email: str = "") -> dict:
    """A signer's name and address as template values (from a contact, or from what they typed)."""
    if contact is not None:
        return {"first_name": contact.first_name, "last_name": contact.last_name, "full_name": contact.full_name,
                "title": contact.title, "email": contact.email}
    first, _, last = (name or "").partition(" ")
    return {"first_name": first, "last_name": last, "full_name": name, "title": title, "email": email}


def enqueue_signon_mail(kind: str, to: str, *, letter, org_name: str, contact=None, contact_name: str = "",
                        contact_title: str = "", link: str = "", organization_id: int | None = None) -> Message:
    """Put one sign-on mail in the outbox in the organizers' wording (committed with the caller's change)."""
    values = _contact_values(contact, contact_name, contact_title, to)
    record = letter_record(letter)
    if not (letter.public_signon and letter.status == "collecting"):
        record.pop("url")  # no public page to point at
    subject, body, changed = wording(kind)
    try:
        mail = render_mail(subject, body, to=to, letter=record, org_name=org_name, contact=values, link=link)
    except MailTemplateError as exc:
        if not changed:
            raise
        log.warning("the %s mail wording failed for %s (%s); the built-in wording was sent", kind, to, exc)
        mail = render_mail(KINDS[kind].subject, KINDS[kind].body, to=to, letter=record, org_name=org_name,
                           contact=values, link=link)
    row = Message(kind=kind, email=single_line(to).lower(), subject=mail.subject[:1000], raw=mail.raw,
                  message_id=mail.message_id, status="queued", organization_id=organization_id,
                  contact_id=contact.id if contact is not None else None)
    db.session.add(row)
    return row
