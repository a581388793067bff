"""Suppressions: addresses that are never mailed, added by hand, by CSV or by a recipient's unsubscribe link, and
removed only on purpose."""

import csv
import io

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import delete, select

from crm.audit.services import commit_audited, record
from crm.common.text import single_line
from crm.common.tokens import TokenError, read_token
from crm.extensions import db
from crm.mailmerge.errors import MergeError
from crm.mailmerge.models import SUPPRESSION_REASONS, Suppression


def suppressions_page(page: int, per_page: int = 50, q: str = ""):
    """Suppressed addresses, newest first."""
    query = select(Suppression).order_by(Suppression.id.desc())
    if q:
        query = query.where(Suppression.email.contains(q.strip().lower(), autoescape=True))
    return db.paginate(query, page=page, per_page=per_page, error_out=False)


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
