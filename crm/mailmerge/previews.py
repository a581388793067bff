"""Previewing a merge: the first recipients to pick from, one recipient's message as it will arrive, and a test
message to the organizer's own address."""

from sqlalchemy import select

from crm.audit.services import commit_audited
from crm.common.text import single_line
from crm.contacts.models import Contact
from crm.extensions import db
from crm.mailmerge import audience as audiences
from crm.mailmerge.embedded import wake_workers
from crm.mailmerge.errors import MergeError
from crm.mailmerge.models import MailMerge, Message
from crm.mailmerge.rendering import Rendered, letter_record, load_recipients, render_message, sample_recipient
from crm.mailmerge.suppressions import normalise_email
from crm.mailmerge.templating import RenderError, compile_templates


def preview_contacts(merge: MailMerge, limit: int = 200) -> list[tuple[int, str]]:
    """(contact id, label) of the first audience contacts, to pick one to preview."""
    rows = db.session.execute(audiences.contacts_query(merge.audience or {}).limit(limit)).all()
    names = (
        dict(
            db.session.execute(
                select(Contact.id, Contact.first_name + " " + Contact.last_name).where(
                    Contact.id.in_([r.id for r in rows])
                )
            ).all()
        )
        if rows
        else {}
    )
    return [(r.id, f"{(names.get(r.id) or '').strip()} <{r.email}>".strip()) for r in rows]


def preview(merge: MailMerge, contact_id: int | None = None, *, test: bool = False) -> Rendered:
    """A recipient's message as it will arrive (the first audience contact when none is named); `test` renders
    it with test links that act on nobody."""
    compiled = compile_templates(merge.subject_template, merge.body_template)
    if compiled.problems:
        raise MergeError(" ".join(str(p) for p in compiled.problems))
    if contact_id is None:
        first = db.session.execute(audiences.contacts_query(merge.audience or {}).limit(1)).first()
        recipient = load_recipients([first.id])[first.id] if first else sample_recipient()
    else:
        recipient = load_recipients([contact_id]).get(contact_id)
        if recipient is None:
            raise MergeError(f"There is no contact {contact_id}.", {"contact_id": ["No such contact."]})
    try:
        return render_message(
            compiled,
            recipient,
            letter=letter_record(merge.letter),
            merge_id=merge.id,
            sender=merge.sender or "",
            reply_to=merge.reply_to,
            test=test,
        )
    except RenderError as exc:
        where = f", line {exc.line}" if exc.line else ""
        raise MergeError(f"{exc.part}{where}: {exc}") from exc


def send_test(
    merge: MailMerge, to_email: str, contact_id: int | None = None, user_id: int | None = None
) -> Message:
    """Queue one test message, rendered for a recipient, to the organizer's own address. Its personal links
    (sign-on, unsubscribe, List-Unsubscribe) are test links: clicking them changes nothing for that recipient."""
    address = normalise_email(to_email)
    if address is None:
        raise MergeError(
            f"'{single_line(str(to_email))[:80]}' is not a valid email address.", {"email": ["Invalid."]}
        )
    rendered = preview(merge, contact_id, test=True)
    from email import message_from_string

    parsed = message_from_string(rendered.raw)
    del parsed["To"]
    parsed["To"] = address
    subject = parsed["Subject"]
    del parsed["Subject"]
    parsed["Subject"] = f"[TEST] {subject}"
    row = Message(
        kind="test",
        email=address,
        subject=f"[TEST] {rendered.subject}"[:1000],
        raw=parsed.as_string(),
        message_id=rendered.message_id,
        status="queued",
    )
    db.session.add(row)
    commit_audited("test", "merge", merge.id, user_id=user_id, summary=f"Test of “{merge.name}” sent to {address}")
    wake_workers()
    return row
