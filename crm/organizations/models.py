"""Organizations, issue areas, aliases and interactions."""

from datetime import date, datetime

from sqlalchemy import Column, Date, ForeignKey, Index, String, Table, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm.common.types import TimestampMixin, UTCDateTime, utcnow
from crm.extensions import db

ORG_TYPES = ("nonprofit", "advocacy", "legal-services", "labor", "faith", "coalition", "community", "law-firm",
             "grassroots", "think-tank", "media", "other")
SCOPES = ("national", "state", "local", "international")

organization_issue_areas = Table(
    "organization_issue_areas",
    db.metadata,
    Column("organization_id", ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True),
    Column("issue_area_id", ForeignKey("issue_areas.id", ondelete="CASCADE"), primary_key=True),
    # Covering, area first: "members of this area" is an index range with the organization ids in it.
    Index("ix_organization_issue_areas_area_org", "issue_area_id", "organization_id"),
)


class IssueArea(db.Model):
    """A topic an organization works on and a letter is about (immigration, privacy, …)."""

    __tablename__ = "issue_areas"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(60), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    retired: Mapped[bool] = mapped_column(default=False)

    def __repr__(self) -> str:
        return f"<IssueArea {self.slug}>"


class Organization(TimestampMixin, db.Model):
    """A group that signs letters; one record however many ways its name is written."""

    __tablename__ = "organizations"
    __table_args__ = (
        Index("ix_organizations_archived_sort", "archived", "sort_name"),
        # Covering for the counts of "signed at least N" / "last signed before, after" (archived is in every
        # list's WHERE; a letters_signed-only index made SQLite fetch 20,000 rows to check it). The range column
        # comes first so that SQLite, which has no statistics on ranges, still pages through
        # ix_organizations_archived_sort in name order instead of sorting every match.
        Index("ix_organizations_letters_signed_archived", "letters_signed", "archived"),
        Index("ix_organizations_last_signed_at_archived", "last_signed_at", "archived"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(300))
    sort_name: Mapped[str] = mapped_column(String(300), index=True)
    # Accent- and case-folded name, acronym and aliases: what free-text search looks in.
    search_text: Mapped[str] = mapped_column(Text, default="")
    acronym: Mapped[str | None] = mapped_column(String(40))
    org_type: Mapped[str | None] = mapped_column(String(40), index=True)
    scope: Mapped[str | None] = mapped_column(String(20), index=True)
    city: Mapped[str | None] = mapped_column(String(120))
    state: Mapped[str | None] = mapped_column(String(2), index=True)
    country: Mapped[str | None] = mapped_column(String(2))
    website: Mapped[str | None] = mapped_column(String(500))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id", ondelete="SET NULL"), index=True)
    notes: Mapped[str] = mapped_column(Text, default="")
    archived: Mapped[bool] = mapped_column(default=False)
    version: Mapped[int] = mapped_column(default=1)
    # Kept by triggers on signatures (crm/letters/counts.py), never written by the application: confirmed
    # signatures and the latest one's time, so "signed at least N", "last signed before/after" and their sorts
    # read an indexed column.
    letters_signed: Mapped[int] = mapped_column(default=0, server_default="0")
    last_signed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    parent: Mapped["Organization | None"] = relationship(remote_side="Organization.id", back_populates="affiliates")
    affiliates: Mapped[list["Organization"]] = relationship(back_populates="parent", order_by="Organization.sort_name")
    issue_areas: Mapped[list[IssueArea]] = relationship(secondary=organization_issue_areas,
                                                        order_by="IssueArea.slug")
    aliases: Mapped[list["OrganizationAlias"]] = relationship(back_populates="organization",
                                                              cascade="all, delete-orphan",
                                                              order_by="OrganizationAlias.name")

    __mapper_args__ = {"version_id_col": version}

    def __repr__(self) -> str:
        return f"<Organization {self.id} {self.name!r}>"


class OrganizationAlias(db.Model):
    """Another spelling of an organization's name, as seen on a letter or an import."""

    __tablename__ = "organization_aliases"

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(300))
    normalized: Mapped[str] = mapped_column(String(300), index=True)
    source: Mapped[str] = mapped_column(String(40), default="manual")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    organization: Mapped[Organization] = relationship(back_populates="aliases")


class Interaction(db.Model):
    """A dated note, call, meeting or email with an organization (and optionally one of its contacts)."""

    __tablename__ = "interactions"

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(20), default="note")
    occurred_on: Mapped[date] = mapped_column(Date)
    summary: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    organization: Mapped[Organization] = relationship()
    contact = relationship("Contact")
    user = relationship("User")
