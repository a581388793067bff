"""Mail merges, outbox messages and suppressions."""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm.common.types import TimestampMixin, UTCDateTime, utcnow
from crm.extensions import db
from crm.letters.models import Letter

MERGE_STATUSES = ("draft", "queued", "sending", "paused", "done", "cancelled")
# "claimed" = taken by a worker but not yet handed to SMTP (safe to give back); "sending" = being handed to
# SMTP
# (a crash here makes it "uncertain"); "outbox" = caught by the dev outbox (MAIL_BACKEND=outbox), never sent.
MESSAGE_STATUSES = ("queued", "claimed", "sending", "sent", "outbox", "failed", "suppressed", "uncertain",
                    "cancelled")
DELIVERED_STATUSES = ("sent", "outbox")
SUPPRESSION_REASONS = ("unsubscribed", "hard-bounce", "complaint", "manual")


class MailMerge(TimestampMixin, db.Model):
    """A personalised mailing to an audience; its content freezes when it is queued."""

    __tablename__ = "mail_merges"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    letter_id: Mapped[int | None] = mapped_column(ForeignKey("letters.id", ondelete="SET NULL"))
    subject_template: Mapped[str] = mapped_column(Text, default="")
    body_template: Mapped[str] = mapped_column(Text, default="")
    sender: Mapped[str] = mapped_column(String(320), default="")
    reply_to: Mapped[str] = mapped_column(String(320), default="")
    # {"segment_id": …} or {"filter": {…}}, plus {"contacts": "primary"|"all"} and follow-up clauses.
    audience: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    throttle_per_minute: Mapped[int | None]
    status: Mapped[str] = mapped_column(String(20), default="draft", index=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    queued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # What queueing found: {"contacts": n, "queued": n, "suppressed": n, "duplicates": n, "organizations": n}.
    queue_summary: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    version: Mapped[int] = mapped_column(default=1)

    letter: Mapped[Letter | None] = relationship()

    __mapper_args__ = {"version_id_col": version}


class Message(db.Model):
    """One outbox row per (merge, contact): the unique constraint is what makes 'never twice' hold."""

    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("merge_id", "contact_id"),
        UniqueConstraint("merge_id", "email"),
        Index("ix_messages_status_next", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    merge_id: Mapped[int | None] = mapped_column(ForeignKey("mail_merges.id", ondelete="CASCADE"), index=True)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    organization_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id", ondelete="SET NULL"),
                                                        index=True)
    email: Mapped[str] = mapped_column(String(254))
    # System mail (sign-on confirmations, notifications) has no merge; `kind` says what it is.
    kind: Mapped[str] = mapped_column(String(30), default="merge")
    status: Mapped[str] = mapped_column(String(20), default="queued")
    attempts: Mapped[int] = mapped_column(default=0)
    last_response: Mapped[str] = mapped_column(Text, default="")
    message_id: Mapped[str] = mapped_column(String(255), default="")
    subject: Mapped[str] = mapped_column(Text, default="")
    # The exact bytes handed to SMTP (or caught by the dev outbox), so the organizer can see what arrived.
    raw: Mapped[str] = mapped_column(Text, default="")
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claimed_by: Mapped[str] = mapped_column(String(100), default="")
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    queued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    merge: Mapped[MailMerge | None] = relationship()


class Suppression(db.Model):
    """An address that must never be mailed again."""

    __tablename__ = "suppressions"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    reason: Mapped[str] = mapped_column(String(20), default="manual")
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
