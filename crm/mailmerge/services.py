"""Mail merges: compose, check, queue, control and report; the outbox and suppressions.

Plain values in, models or plain values out; no request objects. Every change is audited.
"""

import csv
import io
import re
import time
from dataclasses import dataclass, field
from datetime import timedelta
from email.errors import HeaderParseError
from email.headerregistry import Address
from email.utils import getaddresses, parseaddr

from email_validator import EmailNotValidError, validate_email
from flask import current_app
from sqlalchemy import and_, delete, func, insert, or_, select, update

from crm.audit.services import commit_audited, record
from crm.audit.versioning import check_version, commit_versioned
from crm.common.text import single_line
from crm.common.tokens import TokenError, read_token
from crm.common.types import utcnow
from crm.common.urls import public_url, unreachable_host
from crm.common.validation import whole_number
from crm.contacts.models import Contact
from crm.extensions import db
from crm.letters.models import Letter
from crm.mailmerge import audience as audiences
from crm.mailmerge.models import DELIVERED_STATUSES, SUPPRESSION_REASONS, MailMerge, Message, Suppression
from crm.mailmerge.rendering import Rendered, letter_record, load_recipients, render_message, sample_recipient
from crm.mailmerge.templating import FIELDS, Problem, RenderError, compile_templates

EDITABLE_STATUSES = ("draft",)
COUNT_STATUSES = (
    "queued",
    "claimed",
    "sending",
    "sent",
    "outbox",
    "failed",
    "suppressed",
    "uncertain",
    "cancelled",
)
_CHUNK = 500
# The whole check's time budget: whichever is larger. A normal template renders a message in well under 1 ms.
CHECK_SECONDS = 30.0
CHECK_SECONDS_PER_RECIPIENT = 0.01


class MergeError(ValueError):
    """A merge request that cannot be done; `errors` maps fields to messages."""

    def __init__(self, message: str, errors: dict[str, list[str]] | None = None):
        super().__init__(message)
        self.errors = errors or {}


# --- lists and lookups
# ------------------------------------------------------------------------------------------


def list_merges() -> list[tuple[MailMerge, dict[str, int]]]:
    """Every merge, newest first, with message counts per status."""
    merges = list(db.session.scalars(select(MailMerge).order_by(MailMerge.id.desc())))
    counts: dict[int, dict[str, int]] = {}
    if merges:
        rows = db.session.execute(
            select(Message.merge_id, Message.status, func.count())
            .where(Message.merge_id.in_([m.id for m in merges]))
            .group_by(Message.merge_id, Message.status)
        )
        for merge_id, status, count in rows:
            counts.setdefault(merge_id, {})[status] = count
    return [(m, counts.get(m.id, {})) for m in merges]


def get_merge(merge_id: int) -> MailMerge | None:
    """One merge."""
    return db.session.get(MailMerge, merge_id)


def outbox_page(page: int, per_page: int = 50):
    """Messages, newest first."""
    return db.paginate(
        select(Message).order_by(Message.id.desc()), page=page, per_page=per_page, error_out=False
    )


def get_message(message_id: int) -> Message | None:
    """One outbox row."""
    return db.session.get(Message, message_id)


def suppressions_page(page: int, per_page: int = 50, q: str = ""):
    """Suppressed addresses, newest first."""
    query = select(Suppression).order_by(Suppression.id.desc())
    if q:
        query = query.where(Suppression.email.contains(q.strip().lower(), autoescape=True))
    return db.paginate(query, page=page, per_page=per_page, error_out=False)


def merges_for_organization(org_id: int, limit: int = 50) -> list[tuple[MailMerge, Message]]:
    """The merges this organization's contacts were sent (or queued), newest first."""
    return list(
        db.session.execute(
            select(MailMerge, Message)
            .join(Message, Message.merge_id == MailMerge.id)
            .where(Message.organization_id == org_id)
            .order_by(Message.id.desc())
            .limit(limit)
        ).all()
    )


# --- compose
# ----------------------------------------------------------------------------------------------------


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def clean_address(value) -> str:
    """A From/Reply-To value as it will appear in the header: one address ('Ana Ruiz <ana@example.org>' or
    'ana@example.org'), its address normalised, its name quoted when needed. Raises ValueError with the reason.

    What is stored is exactly what the header will say: text that reads as two addresses (`a@b.org
    <evil@example.org>`), several lines or anything parseaddr would read differently is refused, not guessed at.
    """
    text = (value if isinstance(value, str) else "").strip()
    if not text:
        return ""
    if _CONTROL.search(text):
        raise ValueError("An address must be on one line, without control characters.")
    if len(text) > 320:
        raise ValueError("An address is limited to 320 characters.")
    found = [(name, address) for name, address in getaddresses([text]) if name or address]
    if len(found) != 1 or not found[0][1]:
        shown = ", ".join(address or name for name, address in found) or text[:80]
        raise ValueError(
            f"'{text[:80]}' is not one address (it reads as: {shown}); write it like Ana Ruiz <ana@example.org>."
        )
    name, address = found[0]
    try:
        address = validate_email(address, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise ValueError(f"'{address[:80]}' is not a valid email address.") from exc
    try:
        cleaned = str(Address(display_name=name.strip(), addr_spec=address))
    except (ValueError, IndexError, HeaderParseError) as exc:
        raise ValueError(f"'{text[:80]}' cannot be used as a sender.") from exc
    if parseaddr(cleaned) != (name.strip(), address):
        raise ValueError(f"'{text[:80]}' cannot be used as a sender; write it like Ana Ruiz <ana@example.org>.")
    return cleaned


def _clean_address(value, field_name: str, errors: dict, required: bool = False) -> str:
    """A From/Reply-To field through clean_address, its problem recorded under `field_name`."""
    try:
        cleaned = clean_address(value)
    except ValueError as exc:
        errors.setdefault(field_name, []).append(str(exc))
        return ""
    if not cleaned and required:
        errors.setdefault(field_name, []).append("An address is required.")
    return cleaned


def _clean(data: dict) -> dict:
    """Validate compose fields (name, letter, sender, reply_to, subject, body, throttle, audience)."""
    errors: dict[str, list[str]] = {}
    values: dict = {}
    name = single_line(data.get("name") if isinstance(data.get("name"), str) else "")
    if not name:
        errors["name"] = ["A name is required."]
    elif len(name) > 200:
        errors["name"] = ["The name is limited to 200 characters."]
    values["name"] = name[:200]
    letter_value = data.get("letter")
    values["letter_id"] = None
    if letter_value not in (None, "", 0):
        letter = None
        if (letter_id := whole_number(letter_value, 1)) is not None:
            letter = db.session.get(Letter, letter_id)
        if letter is None and isinstance(letter_value, str):
            letter = db.session.scalar(select(Letter).where(Letter.slug == letter_value.strip().lower()))
        if letter is None:
            errors["letter"] = [f"There is no letter {str(letter_value)[:60]!r}."]
        else:
            values["letter_id"] = letter.id
    values["sender"] = _clean_address(data.get("sender"), "sender", errors)
    values["reply_to"] = _clean_address(data.get("reply_to"), "reply_to", errors)
    for key, column in (("subject", "subject_template"), ("body", "body_template")):
        value = data.get(key)
        if not isinstance(value, str) or not value.strip():
            errors[key] = [f"The {key} is required."]
            value = ""
        values[column] = value.replace("\r\n", "\n")
    throttle = data.get("throttle_per_minute")
    if throttle in (None, "", 0, "0"):
        values["throttle_per_minute"] = None
    elif whole_number(throttle if isinstance(throttle, int) else str(throttle), 1, 100_000) is None:
        errors["throttle_per_minute"] = [
            "The throttle is a whole number of messages per minute, 1 to 100,000."
        ]
    else:
        values["throttle_per_minute"] = int(throttle)
    try:
        values["audience"] = audiences.normalise_audience(data.get("audience"))
    except audiences.AudienceError as exc:
        errors[exc.field if exc.field.startswith("audience") else f"audience.{exc.field}"] = [str(exc)]
    if values.get("subject_template") and values.get("body_template"):
        compiled = compile_templates(values["subject_template"], values["body_template"])
        for problem in compiled.problems:
            errors.setdefault(problem.part.lower(), []).append(str(problem))
    if errors:
        raise MergeError("The merge has errors: " + " ".join(m for ms in errors.values() for m in ms), errors)
    return values


def _snapshot(merge: MailMerge) -> dict:
    """The audited fields of a merge."""
    return {
        "name": merge.name,
        "letter_id": merge.letter_id,
        "sender": merge.sender,
        "reply_to": merge.reply_to,
        "subject_template": merge.subject_template,
        "body_template": merge.body_template,
        # The sentence the merge page shows, not the stored dict: the audit log is read by organizers.
        "audience": audiences.describe(merge.audience or {}),
        "throttle_per_minute": merge.throttle_per_minute,
        "status": merge.status,
    }


def create_merge(data: dict, user_id: int | None = None) -> MailMerge:
    """Create a draft merge (raises MergeError and changes nothing when a field is wrong)."""
    values = _clean(data)
    merge = MailMerge(status="draft", created_by_id=user_id, **values)
    db.session.add(merge)
    db.session.flush()
    commit_audited(
        "create", "merge", merge.id, user_id=user_id, summary=f"Created mail merge “{merge.name}”",
        after=_snapshot(merge),
    )
    return merge


def update_merge(
    merge: MailMerge, data: dict, user_id: int | None = None, *, version: int | None = None
) -> MailMerge:
    """Edit a draft if `version` (checked when given) is still current; raises MergeError or ConflictError.

    A queued merge's content is frozen; nothing is written when nothing changed.
    """
    if merge.status not in EDITABLE_STATUSES:
        raise MergeError(
            f"This merge is {merge.status}: its content and audience are frozen and cannot be edited."
        )
    if version is not None:
        check_version(merge, version, "merge")
    values = _clean(data)
    if all(getattr(merge, key) == value for key, value in values.items()):
        db.session.rollback()
        return merge
    with db.session.no_autoflush:  # one UPDATE: the version goes up by exactly one per save
        before = _snapshot(merge)
        for key, value in values.items():
            setattr(merge, key, value)
        after = _snapshot(merge)
    record("update", "merge", merge.id, user_id=user_id, summary=f"Edited mail merge “{merge.name}”",
           before=before, after=after)
    commit_versioned(merge, "merge")
    return merge


def content_of(merge: MailMerge) -> dict:
    """The content a copy or a follow-up starts from: letter, sender, reply-to, subject and body."""
    return {
        "letter": merge.letter.slug if merge.letter else None,
        "sender": merge.sender,
        "reply_to": merge.reply_to,
        "subject": merge.subject_template,
        "body": merge.body_template,
        "throttle_per_minute": merge.throttle_per_minute,
    }


def duplicate_merge(merge: MailMerge, user_id: int | None = None) -> MailMerge:
    """A new draft with the merge's name ("Copy of …"), content and audience, whatever the merge's state."""
    data = {**content_of(merge), "name": f"Copy of {merge.name}"[:200], "audience": dict(merge.audience or {})}
    try:
        copy = create_merge(data, user_id)
    except MergeError as exc:
        if not any(key.startswith("audience") for key in exc.errors):
            raise
        # The audience no longer resolves (a deleted segment or letter): copy the content, start the audience anew.
        copy = create_merge({**data, "audience": {"contacts": (merge.audience or {}).get("contacts", "primary")}},
                            user_id)
    return copy


def count_audience(audience) -> audiences.AudienceCounts:
    """Counts for an audience being composed, before it is saved (raises MergeError, naming the field)."""
    try:
        return audiences.audience_counts(audiences.normalise_audience(audience))
    except audiences.AudienceError as exc:
        raise MergeError(str(exc), {exc.field: [str(exc)]}) from exc


def field_list() -> dict[str, str]:
    """Every template field with what it holds (the field picker)."""
    return dict(FIELDS)


# --- audience and check
# -----------------------------------------------------------------------------------------


def audience_counts(merge: MailMerge) -> audiences.AudienceCounts:
    """Counts for the audience page (raises MergeError when the audience no longer resolves)."""
    try:
        return audiences.audience_counts(merge.audience or {})
    except audiences.AudienceError as exc:
        raise MergeError(str(exc), {exc.field: [str(exc)]}) from exc


def describe_audience(merge: MailMerge) -> str:
    """The audience in words."""
    return audiences.describe(merge.audience or {})


def link_warning() -> str | None:
    """Words for the organizer when mail would leave by SMTP with links nobody else can open (CRM_BASE_URL on
    loopback, localhost or an unspecified address); None when links can work or mail stays in the outbox."""
    if current_app.config.get("MAIL_BACKEND") != "smtp":
        return None
    base = public_url()
    host = unreachable_host(base)
    if host is None:
        return None
    return (
        f"Links in these messages point to {base}, an address only this computer can open ({host}): recipients "
        "could not open their sign-on or unsubscribe links. Set CRM_BASE_URL to the address people open "
        "(for example https://crm.example.org) and restart before sending."
    )


@dataclass
class CheckResult:
    """The dry run: every recipient rendered once; problems block queueing, warnings do not."""

    recipients: int = 0
    problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No problem found."""
        return not self.problems

    def as_dict(self) -> dict:
        """For the API and `crm merge check`."""
        return {
            "ok": self.ok,
            "recipients": self.recipients,
            "warnings": list(self.warnings),
            "problems": [
                {
                    "part": p.part,
                    "line": p.line,
                    "message": p.message,
                    "count": p.count,
                    "recipients": p.recipients[:20],
                    "text": str(p),
                }
                for p in self.problems
            ],
        }


def _audience_rows(merge: MailMerge):
    """(contact id, email, organization id, suppressed) of every audience contact, streamed."""
    try:
        query = audiences.contacts_query(merge.audience or {})
    except audiences.AudienceError as exc:
        raise MergeError(str(exc), {exc.field: [str(exc)]}) from exc
    return db.session.execute(query.execution_options(yield_per=_CHUNK))


def _chunks(result, size: int = _CHUNK):
    """A result streamed in lists of `size` rows."""
    chunk = []
    for row in result:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _dry_run(merge: MailMerge, on_row=None) -> CheckResult:
    """Render every recipient once; collect problems with the recipients they affect."""
    result = CheckResult()
    compiled = compile_templates(merge.subject_template, merge.body_template)
    if compiled.problems:
        result.problems = compiled.problems
        return result
    letter = letter_record(merge.letter)
    found: dict[tuple, Problem] = {}
    started = time.monotonic()

    class Stop(Exception):
        """A render budget was hit: every recipient would hit it too, so the check ends here."""

    def attempt(recipient, label):
        try:
            render_message(
                compiled,
                recipient,
                letter=letter,
                merge_id=merge.id,
                sender=merge.sender or "",
                reply_to=merge.reply_to,
            )
            return True
        except RenderError as exc:
            problem = found.setdefault((exc.part, exc.line, str(exc)), Problem(exc.part, str(exc), exc.line))
            problem.count += 1
            if len(problem.recipients) < 20:
                problem.recipients.append(label)
            if exc.limit:
                problem.message += " (the check stopped here: every message would hit the same limit)"
                raise Stop from None
            return False

    try:
        # A sample with every field filled catches refusals (injections, huge values) even with no audience yet.
        attempt(sample_recipient(), "a sample recipient")
        for key in list(found):
            found[key].count = 0
            found[key].recipients = []
        seen: set[str] = set()
        for chunk in _chunks(_audience_rows(merge)):
            loaded = load_recipients([row.id for row in chunk])
            for row in chunk:
                email = (row.email or "").strip().lower()
                if row.suppressed or email in seen:
                    if on_row:
                        on_row(row, email, row.suppressed, True)
                    continue
                seen.add(email)
                result.recipients += 1
                attempt(loaded[row.id], row.email)
                if on_row:
                    on_row(row, email, False, False)
                allowed = max(CHECK_SECONDS, CHECK_SECONDS_PER_RECIPIENT * result.recipients)
                if time.monotonic() - started > allowed:
                    found[("Body", None, "slow")] = Problem(
                        "Body", f"the check stopped after {allowed:g} s: rendering is too slow "
                        f"({result.recipients} messages); simplify the template",
                    )
                    raise Stop
    except Stop:
        pass  # the problems found so far say why; queueing refuses a check with problems
    result.problems = sorted(found.values(), key=lambda p: (p.part != "Subject", p.line or 0, p.message))
    return result


def check_merge(merge: MailMerge) -> CheckResult:
    """The dry run shown before queueing, with warnings about links recipients could not open."""
    result = _dry_run(merge)
    warning = link_warning()
    if warning:
        result.warnings.append(warning)
    return result


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
        if len(pending) >= _CHUNK:
            flush()

    result = _dry_run(merge, on_row)
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
    _wake_workers()
    return summary


def _wake_workers() -> None:
    """Tell the embedded worker (or Celery) there is work."""
    from crm.mailmerge import embedded

    embedded.notify(current_app._get_current_object())


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
        _wake_workers()
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
    _wake_workers()
    return message


# --- progress and report
# ----------------------------------------------------------------------------------------


def merge_counts(merge_id: int) -> dict:
    """Counts per status, plus total, remaining, done percentage and the rate over the last minute."""
    counts = dict.fromkeys(COUNT_STATUSES, 0)
    for status, count in db.session.execute(
        select(Message.status, func.count()).where(Message.merge_id == merge_id).group_by(Message.status)
    ):
        counts[status] = count
    total = sum(counts.values())
    remaining = counts["queued"] + counts["claimed"] + counts["sending"]
    delivered = counts["sent"] + counts["outbox"]
    since = utcnow() - timedelta(seconds=60)
    per_minute = db.session.scalar(
        select(func.count()).where(Message.merge_id == merge_id, Message.sent_at >= since)
    )
    finished = total - remaining
    return {
        **counts,
        "total": total,
        "remaining": remaining,
        "delivered": delivered,
        "percent": round(100 * finished / total) if total else 0,
        "per_minute": per_minute or 0,
    }


def report_page(merge_id: int, page: int, per_page: int = 100, status: str | None = None):
    """Every recipient's row of a merge, with status and SMTP response."""
    query = select(Message).where(Message.merge_id == merge_id).order_by(Message.id)
    if status == "sending":  # one word for both: a worker took it, or is handing it to SMTP
        query = query.where(Message.status.in_(("claimed", "sending")))
    elif status in COUNT_STATUSES:
        query = query.where(Message.status == status)
    return db.paginate(query, page=page, per_page=per_page, error_out=False)


# --- preview and test
# -------------------------------------------------------------------------------------------


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
    _wake_workers()
    return row


# --- suppressions and unsubscribe
# -------------------------------------------------------------------------------


def normalise_email(value: str) -> str | None:
    """A valid, normalised (lower-case) address, or None."""
    text = single_line(value if isinstance(value, str) else "")
    if not text or len(text) > 254:
        return None
    try:
        return validate_email(text, check_deliverability=False).normalized.lower()
    except EmailNotValidError:
        return None


def add_suppression(email: str, reason: str = "manual", note: str = "", user_id: int | None = None) -> bool:
    """Suppress an address; True when newly added (an existing suppression is never weakened)."""
    address = normalise_email(email)
    if address is None:
        raise MergeError(
            f"'{single_line(str(email))[:80]}' is not a valid email address.", {"email": ["Invalid."]}
        )
    if reason not in SUPPRESSION_REASONS:
        raise MergeError(
            f"The reason must be one of {', '.join(SUPPRESSION_REASONS)}.", {"reason": ["Invalid."]}
        )
    if db.session.scalar(select(Suppression.id).where(Suppression.email == address)):
        return False
    db.session.add(
        Suppression(email=address, reason=reason, note=single_line(note)[:500], created_by_id=user_id)
    )
    commit_audited("suppress", "suppression", None, user_id=user_id, summary=f"Suppressed {address} ({reason})")
    return True


def remove_suppression(email: str, reason: str, user_id: int | None = None) -> None:
    """Un-suppress an address: only on purpose, with a reason, audited."""
    reason = single_line(reason)
    if len(reason) < 3:
        raise MergeError("Say why this address may be mailed again.", {"reason": ["A reason is required."]})
    address = (email or "").strip().lower()
    row = db.session.scalar(select(Suppression).where(Suppression.email == address))
    if row is None:
        raise MergeError(f"{address[:80]} is not suppressed.")
    record(
        "unsuppress",
        "suppression",
        row.id,
        user_id=user_id,
        summary=f"Removed the suppression of {address} (was {row.reason}): {reason[:500]}",
        before={"email": address, "reason": row.reason},
    )
    db.session.execute(delete(Suppression).where(Suppression.id == row.id))
    db.session.commit()


def import_suppressions(data: bytes, user_id: int | None = None) -> dict:
    """Add every address of a CSV (column `email`, optional `reason`, `note`); never removes or weakens
    one.
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise MergeError("The file is not UTF-8 text.") from exc
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or "email" not in [f.strip().lower() for f in reader.fieldnames]:
        raise MergeError("The CSV needs an 'email' column.")
    rows, errors = [], []
    for line, raw in enumerate(reader, start=2):
        row = {(k or "").strip().lower(): (v or "") for k, v in raw.items() if isinstance(v, str)}
        address = normalise_email(row.get("email", ""))
        reason = row.get("reason", "").strip() or "manual"
        if address is None:
            errors.append(f"line {line}: '{single_line(row.get('email', ''))[:60]}' is not a valid address")
        elif reason not in SUPPRESSION_REASONS:
            errors.append(f"line {line}: reason must be one of {', '.join(SUPPRESSION_REASONS)}")
        else:
            rows.append((address, reason, single_line(row.get("note", ""))[:500]))
    if errors:
        raise MergeError(
            "Nothing was imported: "
            + "; ".join(errors[:10])
            + (f" (and {len(errors) - 10} more)" if len(errors) > 10 else "")
        )
    existing = set()
    addresses = list({r[0] for r in rows})
    for start in range(0, len(addresses), 500):
        existing |= set(
            db.session.scalars(
                select(Suppression.email).where(Suppression.email.in_(addresses[start : start + 500]))
            )
        )
    added = 0
    for address, reason, note in rows:
        if address in existing:
            continue
        existing.add(address)
        db.session.add(Suppression(email=address, reason=reason, note=note, created_by_id=user_id))
        added += 1
    commit_audited(
        "import", "suppression", None, user_id=user_id,
        summary=f"Imported suppressions: {added} added, {len(rows) - added} already suppressed",
    )
    return {"added": added, "already": len(rows) - added}


def export_suppressions():
    """CSV lines of every suppression (email, reason, note, created_at)."""
    yield "email,reason,note,created_at\n"
    query = select(Suppression).order_by(Suppression.email).execution_options(yield_per=1000)
    for row in db.session.scalars(query):
        buffer = io.StringIO()
        note = row.note
        if note[:1] in ("=", "+", "-", "@"):
            note = "'" + note
        csv.writer(buffer, lineterminator="\n").writerow(
            [row.email, row.reason, note, row.created_at.isoformat()]
        )
        yield buffer.getvalue()


def read_unsubscribe(token: str) -> dict:
    """The address and merge an unsubscribe link names (raises MergeError for a bad link)."""
    try:
        payload = read_token("unsubscribe", token)
    except TokenError as exc:
        raise MergeError(str(exc)) from exc
    if not isinstance(payload, dict) or not isinstance(payload.get("e"), str):
        raise MergeError("This link is not valid.")
    return {"email": payload["e"].lower(), "merge_id": payload.get("m")}


def unsubscribe(token: str) -> str:
    """Suppress the address of an unsubscribe link (idempotent); returns the address."""
    data = read_unsubscribe(token)
    address = data["email"]
    if db.session.scalar(select(Suppression.id).where(Suppression.email == address)) is None:
        db.session.add(
            Suppression(
                email=address, reason="unsubscribed", note=f"one-click unsubscribe (merge {data['merge_id']})"
            )
        )
        commit_audited("unsubscribe", "suppression", None, summary=f"{address} unsubscribed (merge {data['merge_id']})")
    return address


__all__ = [
    "MergeError",
    "create_merge",
    "update_merge",
    "check_merge",
    "queue_merge",
    "set_state",
    "preview",
    "send_test",
    "merge_counts",
    "report_page",
    "add_suppression",
    "remove_suppression",
    "import_suppressions",
    "export_suppressions",
    "unsubscribe",
    "DELIVERED_STATUSES",
    "and_",
    "or_",
]
