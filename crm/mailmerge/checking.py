"""Checking a merge before it is queued: its audience counted and described, every recipient rendered once (the
dry run), and a warning when recipients could not open its links."""

import time
from dataclasses import dataclass, field

from flask import current_app

from crm.common.urls import public_url, unreachable_host
from crm.extensions import db
from crm.letters.deadlines import closed_reason, long_date
from crm.mailmerge import audience as audiences
from crm.mailmerge.errors import MergeError
from crm.mailmerge.models import MailMerge
from crm.mailmerge.rendering import letter_record, load_recipients, render_message, sample_recipient
from crm.mailmerge.template_checks import Problem
from crm.mailmerge.templating import RenderError, compile_templates, uses_field

# Audience rows streamed, rendered and written at a time.
CHUNK_ROWS = 500
# The whole check's time budget: whichever is larger. A normal template renders a message in well under 1 ms.
CHECK_SECONDS = 30.0
CHECK_SECONDS_PER_RECIPIENT = 0.01


def count_audience(audience) -> audiences.AudienceCounts:
    """Counts for an audience being composed, before it is saved (raises MergeError, naming the field)."""
    try:
        return audiences.audience_counts(audiences.normalise_audience(audience))
    except audiences.AudienceError as exc:
        raise MergeError(str(exc), {exc.field: [str(exc)]}) from exc


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


def letter_problem(merge: MailMerge) -> Problem | None:
    """The problem of a merge whose messages carry personal sign-on links for a letter that takes no signatures
    now (a draft, closed or delivered letter, or one past its deadline): every link would tell its recipient that
    nothing can be recorded. None when the letter takes signatures, or the merge does not use `sign_on_url` (a
    thank-you to the signers of a delivered letter is fine)."""
    letter = merge.letter
    reason = closed_reason(letter) if letter is not None else None
    if reason is None or not uses_field("sign_on_url", merge.subject_template, merge.body_template):
        return None
    title, links = f"“{letter.title}”", "every personal sign-on link ({{ sign_on_url }}) in this merge"
    if reason == "draft":
        message = (f"{title} is a draft, not open for signatures yet: {links} would tell its recipient so and "
                   "record nothing. Set the letter to collecting first, then queue this merge.")
    elif reason == "delivered":
        when = f" on {long_date(letter.delivered_on)}" if letter.delivered_on else ""
        message = (f"{title} was delivered{when} and takes no more signatures: {links} would record nothing. "
                   "Take {{ sign_on_url }} out of the message (a thank-you can link to {{ letter.url }}), or "
                   "promote a letter that is collecting.")
    elif reason == "deadline":
        message = (f"The sign-on deadline of {title} passed ({long_date(letter.deadline)}): {links} would record "
                   "nothing. Extend the deadline on the letter's page first, or take {{ sign_on_url }} out of "
                   "the message.")
    else:
        message = (f"{title} is {letter.status} and takes no signatures: {links} would record nothing. Set the "
                   "letter to collecting first, or take {{ sign_on_url }} out of the message.")
    return Problem("Letter", message, letter_slug=letter.slug)


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
                    "letter": p.letter_slug,
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
    return db.session.execute(query.execution_options(yield_per=CHUNK_ROWS))


def _chunks(result, size: int = CHUNK_ROWS):
    """A result streamed in lists of `size` rows."""
    chunk = []
    for row in result:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def dry_run(merge: MailMerge, on_row=None) -> CheckResult:
    """Render every recipient once; collect problems with the recipients they affect."""
    result = CheckResult()
    # The letter's problem comes first: it blocks every message, whatever the recipient.
    first = [problem] if (problem := letter_problem(merge)) else []
    compiled = compile_templates(merge.subject_template, merge.body_template)
    if compiled.problems:
        result.problems = first + compiled.problems
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
    result.problems = first + sorted(found.values(), key=lambda p: (p.part != "Subject", p.line or 0, p.message))
    return result


def check_merge(merge: MailMerge) -> CheckResult:
    """The dry run shown before queueing, with warnings about links recipients could not open."""
    result = dry_run(merge)
    warning = link_warning()
    if warning:
        result.warnings.append(warning)
    return result
