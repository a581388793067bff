"""Contacts."""

from sqlalchemy import ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm.common.types import TimestampMixin
from crm.extensions import db
from crm.organizations.models import Organization

CONTACT_STATUSES = ("active", "left")
ACTIVE_PRIMARY = "is_primary AND status = 'active'"


class Contact(TimestampMixin, db.Model):
    """A person, usually at an organization; `status` 'left' keeps their history after they move on."""

    __tablename__ = "contacts"
    __table_args__ = (
        Index("ix_contacts_org_primary", "organization_id", "is_primary"),
        # At most one active primary contact per organization, whatever writes (pages, API, imports, two requests
        # at once): a "primary contacts" merge mails each organization once.
        Index("uq_contacts_one_active_primary", "organization_id", unique=True,
              sqlite_where=text(ACTIVE_PRIMARY), postgresql_where=text(ACTIVE_PRIMARY)),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id", ondelete="SET NULL"))
    first_name: Mapped[str] = mapped_column(String(120), default="")
    last_name: Mapped[str] = mapped_column(String(120), default="")
    title: Mapped[str] = mapped_column(String(200), default="")
    # Normalised (lower-case domain, NFC) by the service layer; unique so a person is one record.
    email: Mapped[str | None] = mapped_column(String(254), unique=True)
    phone: Mapped[str] = mapped_column(String(40), default="")
    is_primary: Mapped[bool] = mapped_column(default=False)
    status: Mapped[str] = mapped_column(String(20), default="active")
    notes: Mapped[str] = mapped_column(Text, default="")
    version: Mapped[int] = mapped_column(default=1)

    organization: Mapped[Organization | None] = relationship()

    __mapper_args__ = {"version_id_col": version}

    @property
    def full_name(self) -> str:
        """First and last name, or the email when both are empty."""
        return f"{self.first_name} {self.last_name}".strip() or (self.email or "")

    def __repr__(self) -> str:
        return f"<Contact {self.id} {self.email}>"
