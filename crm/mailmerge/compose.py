"""Composing a draft merge: its fields cleaned and checked, created, edited, copied; the template fields it may use.

Plain values in, models or plain values out; no request objects. Every change is audited.
"""

import re
from email.errors import HeaderParseError
from email.headerregistry import Address
from email.utils import getaddresses, parseaddr

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import select

from crm.audit.services import commit_audited, record
from crm.audit.versioning import check_version, commit_versioned
from crm.common.text import single_line
from crm.common.validation import whole_number
from crm.extensions import db
from crm.letters.models import Letter
from crm.mailmerge import audience as audiences
from crm.mailmerge.errors import MergeError
from crm.mailmerge.models import MailMerge
from crm.mailmerge.template_fields import FIELDS
from crm.mailmerge.templating import compile_templates

EDITABLE_STATUSES = ("draft",)
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
    letter = db.session.get(Letter, merge.letter_id) if merge.letter_id else None
    return {
        "name": merge.name,
        # The letter's slug, as organizers know it (its id read "Letter: — → 2" in the audit log).
        "letter": letter.slug if letter else None,
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


def field_list() -> dict[str, str]:
    """Every template field with what it holds (the field picker)."""
    return dict(FIELDS)
