"""Queueing a merge (after the organizer confirms it) and controlling it once queued: pause, resume, cancel, and
sending one message again.

Queueing freezes the audience into one outbox row per recipient; the worker (crm.mailmerge.worker) sends them.
"""

from dataclasses import dataclass

from flask import current_app
from sqlalchemy import insert, select, update

from crm.audit.services import commit_audited
from crm.common.types import utcnow
from crm.extensions import db
from crm.mailmerge import audience as audiences
from crm.mailmerge.checking import CHUNK_ROWS, audience_counts, dry_run, letter_problem, link_warning
from crm.mailmerge.embedded import wake_workers
from crm.mailmerge.errors import MergeError
from crm.mailmerge.models import MailMerge, Message, Suppression
from crm.mailmerge.previews import preview, preview_contacts
from crm.mailmerge.template_checks import Problem


@dataclass
class SendSummary:
    """What the organizer confirms before a merge is queued: who, from whom, and what the first one reads."""

    contacts: int
    organizations: int
    suppressed: int
    sender: str
    first_recipient: str
    first_subject: str
    problem: str | None
    warning: str | None
    letter_problem: Problem | None = None

    @property
    def question(self) -> str:
        """'Send to 37 contacts at 36 organizations now?'"""
        contacts = f"{self.contacts:,} contact{'' if self.contacts == 1 else 's'}"
        organizations = f"{self.organizations:,} organization{'' if self.organizations == 1 else 's'}"
        return f"Send to {contacts} at {organizations} now?"


def send_summary(merge: MailMerge) -> SendSummary:
    """The confirmation step of "Queue and send" (raises MergeError when the audience no longer resolves)."""
    counts = audience_counts(merge)
    first = db.session.execute(audiences.contacts_query(merge.audience or {}).limit(1)).first()
    problem, subject, label = None, "", ""
    if first is not None:
        label = dict(preview_contacts(merge, 1)).get(first.id, first.email)
        try:
            subject = preview(merge, first.id).subject
        except MergeError as exc:
            problem = str(exc)
    return SendSummary(
        contacts=counts.mailable,
        organizations=counts.mailable_organizations,
        suppressed=counts.suppressed,
        sender=merge.sender or current_app.config["MAIL_DEFAULT_SENDER"],
        first_recipient=label,
        first_subject=subject,
        problem=problem,
        warning=link_warning(),
        letter_problem=letter_problem(merge),
    )


def queue_merge(merge: MailMerge, user_id: int | None = None) -> dict:
    """Freeze the audience into one outbox row per contact and the content; refused while anything is
    wrong.
    """
    if merge.status != "draft":
        raise MergeError(f"This merge is already {merge.status}; it can be queued only once.")
    if not (current_app.config.get("CRM_POSTAL_ADDRESS") or "").strip():
        raise MergeError(
            "Set CRM_POSTAL_ADDRESS (the postal address every merge's footer must show) before "
            "queueing a merge.",
            {"postal_address": ["CRM_POSTAL_ADDRESS is not configured."]},
        )
    # Before the dry run: it would render every recipient only to be refused for a reason none of them changes.
    if (problem := letter_problem(merge)) is not None:
        raise MergeError(f"Not queued: {problem.message}", {"letter": [problem.message]})
    pending: list[dict] = []
    summary = {"contacts": 0, "queued": 0, "suppressed": 0, "duplicates": 0}
    now = utcnow()

    def flush():
        if pending:
            db.session.execute(insert(Message), pending)
            pending.clear()

    def on_row(row, email, suppressed, skipped):
        summary["contacts"] += 1
        if skipped and not suppressed:
            summary["duplicates"] += 1
            return
        status = "suppressed" if suppressed else "queued"
        summary[status] += 1
        pending.append(
            {
                "merge_id": merge.id,
                "contact_id": row.id,
                "organization_id": row.organization_id,
                "email": email,
                "kind": "merge",
                "status": status,
                "queued_at": now,
                "updated_at": now,
                "attempts": 0,
                "last_response": "suppressed when queued" if suppressed else "",
                "message_id": "",
                "subject": "",
                "raw": "",
                "claimed_by": "",
            }
        )
        if len(pending) >= CHUNK_ROWS:
            flush()

    result = dry_run(merge, on_row)
    if not result.ok:
        db.session.rollback()
        raise MergeError(
            "Fix these before queueing: " + " ".join(str(p) for p in result.problems[:5]),
            {"template": [str(p) for p in result.problems]},
        )
    if summary["queued"] == 0:
        db.session.rollback()
        raise MergeError("Nobody to send to: the audience has no mailable contact.")
    flush()
    summary["seen_suppressed"] = summary["suppressed"]
    changed = db.session.execute(
        update(MailMerge)
        .where(MailMerge.id == merge.id, MailMerge.status == "draft")
        .values(status="queued", queued_at=now, queue_summary=summary, version=MailMerge.version + 1)
    )
    if changed.rowcount != 1:
        db.session.rollback()
        raise MergeError("This merge was queued by someone else meanwhile.")
    commit_audited(
        "queue", "merge", merge.id, user_id=user_id,
        summary=f"Queued mail merge “{merge.name}” to {summary['queued']} recipients "
        f"({summary['suppressed']} suppressed, {summary['duplicates']} duplicate addresses)",
    )
    db.session.refresh(merge)
    wake_workers()
    return summary


def set_state(merge: MailMerge, action: str, user_id: int | None = None) -> MailMerge:
    """pause, resume or cancel; takes effect within a few messages and never re-sends anything."""
    transitions = {
        "pause": (("queued", "sending"), "paused"),
        "resume": (("paused",), "queued"),
        "cancel": (("draft", "queued", "sending", "paused"), "cancelled"),
    }
    if action not in transitions:
        raise MergeError(f"Unknown action {action!r}.")
    allowed, target = transitions[action]
    changed = db.session.execute(
        update(MailMerge)
        .where(MailMerge.id == merge.id, MailMerge.status.in_(allowed))
        .values(
            status=target,
            version=MailMerge.version + 1,
            finished_at=utcnow() if target == "cancelled" else None,
        )
    )
    if changed.rowcount != 1:
        db.session.rollback()
        db.session.refresh(merge)
        raise MergeError(f"A {merge.status} merge cannot be {action}d.")
    if target == "cancelled":
        db.session.execute(
            update(Message)
            .where(Message.merge_id == merge.id, Message.status == "queued")
            .values(status="cancelled", last_response="merge cancelled", updated_at=utcnow())
        )
    commit_audited(
        action, "merge", merge.id, user_id=user_id, summary=f"{action.capitalize()}d mail merge “{merge.name}”",
    )
    db.session.refresh(merge)
    if target == "queued":
        wake_workers()
    return merge


def resend_message(message: Message, user_id: int | None = None) -> Message:
    """The organizer's explicit choice to send an uncertain or failed message again."""
    if message.status not in ("uncertain", "failed"):
        raise MergeError("Only an uncertain or failed message can be resent.")
    if db.session.scalar(select(Suppression.id).where(Suppression.email == message.email.lower())):
        raise MergeError(f"{message.email} is suppressed; remove the suppression first if that is right.")
    message.status, message.next_attempt_at, message.claimed_by = "queued", None, ""
    if message.merge is not None and message.merge.status == "done":
        db.session.execute(
            update(MailMerge)
            .where(MailMerge.id == message.merge_id, MailMerge.status == "done")
            .values(status="sending", version=MailMerge.version + 1)
        )
    commit_audited(
        "resend", "merge", message.merge_id, user_id=user_id,
        summary=f"Resend of message {message.id} to {message.email} requested",
    )
    wake_workers()
    return message
