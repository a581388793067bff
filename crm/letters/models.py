"""Letters and signatures."""

from datetime import date, datetime

from sqlalchemy import JSON, Column, Date, ForeignKey, Index, String, Table, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm.common.types import TimestampMixin, UTCDateTime, utcnow
from crm.contacts.models import Contact
from crm.extensions import db
from crm.letters import counts
from crm.organizations.models import IssueArea, Organization

LETTER_STATUSES = ("draft", "collecting", "closed", "delivered")
# A letter dated outside these years is a typo (0021 or 2201 for 2021), not a letter anyone sent.
LETTER_DATE_YEARS = (1900, 2100)
SIGNATURE_ROLES = ("lead", "signatory")
SIGNATURE_STATUSES = ("pending", "confirmed", "declined", "withdrawn")
SIGNATURE_SOURCES = ("import", "public-form", "personal-link", "manual", "api", "seed")
# How each source reads on the pages ("API", not "Api"; the seed's signatures came from the seed letter).
SOURCE_LABELS = {"import": "import", "public-form": "public form", "personal-link": "personal link",
                 "manual": "manual", "api": "API", "seed": "seed letter"}

letter_issue_areas = Table(
    "letter_issue_areas",
    db.metadata,
    Column("letter_id", ForeignKey("letters.id", ondelete="CASCADE"), primary_key=True),
    Column("issue_area_id", ForeignKey("issue_areas.id", ondelete="CASCADE"), primary_key=True, index=True),
)


class Letter(TimestampMixin, db.Model):
    """A sign-on letter: its text, recipients, and the state of collecting signatures."""

    __tablename__ = "letters"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(100), unique=True)
    title: Mapped[str] = mapped_column(String(300))
    recipients: Mapped[str] = mapped_column(Text, default="")
    cc: Mapped[str] = mapped_column(Text, default="")
    summary: Mapped[str] = mapped_column(Text, default="")
    body: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(20), default="draft", index=True)
    letter_date: Mapped[date | None] = mapped_column(Date)
    deadline: Mapped[date | None] = mapped_column(Date)
    delivered_on: Mapped[date | None] = mapped_column(Date)
    public_signon: Mapped[bool] = mapped_column(default=False)
    review_required: Mapped[bool] = mapped_column(default=True)
    version: Mapped[int] = mapped_column(default=1)

    issue_areas: Mapped[list[IssueArea]] = relationship(secondary=letter_issue_areas, order_by="IssueArea.slug")

    __mapper_args__ = {"version_id_col": version}

    @property
    def date(self) -> date | None:
        """The letter's date: as dated, else when delivered."""
        return self.letter_date or self.delivered_on

    def __repr__(self) -> str:
        return f"<Letter {self.slug}>"


class LetterFormerSlug(db.Model):
    """A slug a letter had before it was renamed, so links made with it (personal sign-on links already in
    partners' inboxes, bookmarks) still lead to the letter.

    One row per (letter, old slug). Several letters may have left the same slug over time, and a letter may
    now hold it as its current slug: a current slug always wins for pages; among former holders the latest wins.
    """

    __tablename__ = "letter_former_slugs"
    __table_args__ = (UniqueConstraint("letter_id", "slug"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(100), index=True)
    letter_id: Mapped[int] = mapped_column(ForeignKey("letters.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Signature(TimestampMixin, db.Model):
    """One organization's participation in one letter."""

    __tablename__ = "signatures"
    __table_args__ = (
        UniqueConstraint("letter_id", "organization_id"),
        Index("ix_signatures_org_status", "organization_id", "status", "letter_id"),
        Index("ix_signatures_letter_status", "letter_id", "status"),
        # Covering indexes for the organization filters: "signed / did not sign X" and "last signed before/after".
        Index("ix_signatures_letter_status_org", "letter_id", "status", "organization_id"),
        Index("ix_signatures_org_status_signed", "organization_id", "status", "signed_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    letter_id: Mapped[int] = mapped_column(ForeignKey("letters.id", ondelete="CASCADE"))
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(20), default="signatory")
    # Leads print in the order the letter gives them (the first lead is the one who wrote it); None sorts after.
    position: Mapped[int | None]
    listed_name: Mapped[str] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(20), default="pending")
    signed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    source: Mapped[str] = mapped_column(String(20), default="manual")
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    # Proof of authority: who said yes, and a fingerprint of the exact text they saw.
    authorized_name: Mapped[str] = mapped_column(String(200), default="")
    authorized_title: Mapped[str] = mapped_column(String(200), default="")
    authorized_email: Mapped[str] = mapped_column(String(254), default="")
    text_fingerprint: Mapped[str] = mapped_column(String(64), default="")

    letter: Mapped[Letter] = relationship()
    organization: Mapped[Organization] = relationship()
    contact: Mapped[Contact | None] = relationship()

    def __repr__(self) -> str:
        return f"<Signature {self.letter_id}/{self.organization_id} {self.status}>"

    @property
    def source_label(self) -> str:
        """The source in words ("public form", "API")."""
        return SOURCE_LABELS.get(self.source, self.source)


counts.install(Signature.__table__)


SIGNON_STATUSES = ("unconfirmed", "confirmed", "accepted", "rejected")


class SignOnRequest(TimestampMixin, db.Model):
    """A sign-on from the public form: held until the signer confirms by mail, then until a person reviews it.

    It becomes a Signature when accepted (matched to an organization, or a new one created from it).
    """

    __tablename__ = "signon_requests"
    __table_args__ = (
        Index("ix_signon_requests_letter_status", "letter_id", "status"),
        # The navigation's "waiting for review" badge counts confirmed rows of every letter on each page.
        Index("ix_signon_requests_status", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    letter_id: Mapped[int] = mapped_column(ForeignKey("letters.id", ondelete="CASCADE"))
    organization_name: Mapped[str] = mapped_column(String(300))
    listed_name: Mapped[str] = mapped_column(String(300), default="")
    contact_name: Mapped[str] = mapped_column(String(200), default="")
    contact_title: Mapped[str] = mapped_column(String(200), default="")
    email: Mapped[str] = mapped_column(String(254))
    city: Mapped[str] = mapped_column(String(120), default="")
    state: Mapped[str] = mapped_column(String(2), default="")
    org_type: Mapped[str] = mapped_column(String(40), default="")
    issue_areas: Mapped[list[str]] = mapped_column(JSON, default=list)
    consent_public: Mapped[bool] = mapped_column(default=False)
    status: Mapped[str] = mapped_column(String(20), default="unconfirmed")
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The matcher's proposal, shown in the review queue.
    proposed_organization_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id",
                                                                            ondelete="SET NULL"))
    confidence: Mapped[float] = mapped_column(default=0.0)
    match_method: Mapped[str] = mapped_column(String(40), default="")
    signature_id: Mapped[int | None] = mapped_column(ForeignKey("signatures.id", ondelete="SET NULL"))
    text_fingerprint: Mapped[str] = mapped_column(String(64), default="")
    remote_addr: Mapped[str] = mapped_column(String(64), default="")
    # Why it waits for a person even when the letter does not ask for review (e.g. a stranger's address).
    review_reason: Mapped[str] = mapped_column(String(300), default="")

    letter: Mapped[Letter] = relationship()
    proposed_organization: Mapped[Organization | None] = relationship()


class PersonalLinkRevocation(db.Model):
    """An organizer revoked an organization's personal sign-on links for a letter.

    Personal links carry the time they were made; links made at or before `revoked_at` are refused, links made
    afterwards (a new merge, "copy the link") work. Nothing is looked up when a link is made, so a merge of
    200,000 recipients pays nothing for this.
    """

    __tablename__ = "personal_link_revocations"

    letter_id: Mapped[int] = mapped_column(ForeignKey("letters.id", ondelete="CASCADE"), primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"),
                                                 primary_key=True, index=True)
    revoked_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
