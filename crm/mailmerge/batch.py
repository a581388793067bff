"""What a sender holds while it works through one claimed batch: the rows, their recipients, each merge's compiled
templates, and each row rendered into the exact message it will hand to SMTP. Reads only; every write is in
marks.py and claims.py.
"""

import logging
from dataclasses import dataclass
from email.utils import parseaddr

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from crm.extensions import db
from crm.mailmerge.models import MailMerge, Message
from crm.mailmerge.rendering import letter_record, load_recipients, render_message
from crm.mailmerge.templating import RenderError, compile_templates

log = logging.getLogger(__name__)


@dataclass
class MergeRuntime:
    """A merge as its messages are rendered: compiled templates, letter, sender (frozen once queued)."""

    compiled: object
    letter: dict | None
    sender: str
    envelope_from: str
    reply_to: str
    problems: list


@dataclass
class Ready:
    """One row ready to send, or the reason it cannot be (`problem`)."""

    envelope_from: str
    raw: str
    message_id: str | None = None
    subject: str | None = None
    problem: str | None = None


def envelope_address(sender: str) -> str:
    """The bare address of a From header value."""
    return parseaddr(sender)[1] or sender


class Batch:
    """The rows of one claim (in id order) and what rendering them needs; `runtimes` outlive the batch."""

    def __init__(self, ids: list[int], runtimes: dict[int, MergeRuntime]):
        self.rows = db.session.execute(
            select(Message.id, Message.merge_id, Message.contact_id, Message.email, Message.raw, Message.attempts)
            .where(Message.id.in_(ids))
            .order_by(Message.id)
        ).all()
        self.recipients = load_recipients([r.contact_id for r in self.rows if r.merge_id is not None and r.contact_id])
        self.runtimes = runtimes
        for merge_id in {r.merge_id for r in self.rows} - {None} - set(runtimes):
            runtimes[merge_id] = self._runtime(merge_id)
        db.session.rollback()  # end the read transaction: nothing else is read through the session
        self.stopped: set[int] = set()  # merges paused or cancelled while this batch was sending

    @staticmethod
    def _runtime(merge_id: int) -> MergeRuntime:
        """Compile a merge's templates once."""
        merge = db.session.get(MailMerge, merge_id)
        compiled = compile_templates(merge.subject_template, merge.body_template)
        sender = merge.sender or current_app.config.get("MAIL_DEFAULT_SENDER") or "undersigned@localhost"
        return MergeRuntime(
            compiled=compiled,
            letter=letter_record(merge.letter),
            sender=sender,
            envelope_from=envelope_address(sender),
            reply_to=merge.reply_to,
            problems=compiled.problems,
        )

    def prepare(self, row, default_envelope: str) -> Ready:
        """The row's message: system mail as stored, a merge's rendered for its recipient now."""
        if row.merge_id is None:
            return Ready(default_envelope, row.raw)
        runtime = self.runtimes[row.merge_id]
        ready = Ready(runtime.envelope_from, "")
        recipient = self.recipients.get(row.contact_id)
        if runtime.problems:
            ready.problem = "; ".join(str(p) for p in runtime.problems)
        elif recipient is None:
            ready.problem = "the contact no longer exists"
        else:
            try:
                rendered = render_message(
                    runtime.compiled,
                    recipient,
                    letter=runtime.letter,
                    merge_id=row.merge_id,
                    sender=runtime.sender,
                    reply_to=runtime.reply_to,
                    to_email=row.email,
                )
            except RenderError as exc:
                ready.problem = f"{exc.part}: {exc}"
            except SQLAlchemyError:
                raise
            except Exception:  # a bug must fail one message visibly, not stop the worker on every batch
                log.exception("rendering message %s failed", row.id)
                ready.problem = "it could not be rendered (internal error; see the worker's log)"
            else:
                ready.raw, ready.message_id, ready.subject = rendered.raw, rendered.message_id, rendered.subject
        return ready
