"""The mails a signer receives, as templates the organizers can edit (one per kind, for the whole instance)."""

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from crm.common.types import TimestampMixin
from crm.extensions import db


class SignOnMailTemplate(TimestampMixin, db.Model):
    """An organizer's wording of one sign-on mail; without a row the built-in wording is used."""

    __tablename__ = "signon_mail_templates"

    kind: Mapped[str] = mapped_column(String(20), primary_key=True)
    subject: Mapped[str] = mapped_column(String(1000))
    body: Mapped[str] = mapped_column(Text)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
