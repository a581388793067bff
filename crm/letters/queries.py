"""Reading letters: the list and its pages, signature counts, signatories in delivery order and their exports."""

from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import case, func, select
from sqlalchemy.orm import selectinload

from crm.common.paging import Paged
from crm.extensions import db
from crm.letters.models import SIGNATURE_STATUSES, Letter, Signature, SignOnRequest
from crm.mailmerge.models import DELIVERED_STATUSES, MailMerge, Message
from crm.organizations.filters import OrgFilter, org_ids_query
from crm.organizations.models import Organization


def get_letter(slug: str) -> Letter | None:
    """A letter by slug."""
    return db.session.scalar(
        select(Letter).where(Letter.slug == slug).options(selectinload(Letter.issue_areas))
    )


def list_letters() -> list[tuple[Letter, dict[str, int]]]:
    """Every letter, newest first, with its signature counts per status (two queries in all)."""
    letters = list(
        db.session.scalars(
            select(Letter)
            .order_by(
                func.coalesce(Letter.letter_date, Letter.deadline).desc().nulls_first(), Letter.id.desc()
            )
            .options(selectinload(Letter.issue_areas))
        )
    )
    counts = status_counts([letter.id for letter in letters])
    return [(letter, counts.get(letter.id, _empty_counts())) for letter in letters]


@dataclass
class LetterPage(Paged):
    """One page of the letters list, each letter with its signature counts per status."""

    items: list[tuple[Letter, dict[str, int]]]
    total: int
    page: int
    per_page: int


def letters_page(page: int = 1, per_page: int = 50) -> LetterPage:
    """A page of letters, newest first, with their counts (a coalition's thousand letters are not one page)."""
    total = db.session.scalar(select(func.count(Letter.id))) or 0
    letters = list(
        db.session.scalars(
            select(Letter)
            .order_by(func.coalesce(Letter.letter_date, Letter.deadline).desc().nulls_first(), Letter.id.desc())
            .limit(per_page)
            .offset((max(1, page) - 1) * per_page)
        )
    )
    counts = status_counts([letter.id for letter in letters])
    return LetterPage([(letter, counts.get(letter.id, _empty_counts())) for letter in letters], total, page, per_page)


def _empty_counts() -> dict[str, int]:
    """A zero count for every signature status, for public sign-ons awaiting review and for invitations."""
    return dict.fromkeys((*SIGNATURE_STATUSES, "awaiting_review", "invited", "invited_unsigned"), 0)


def status_counts(letter_ids: list[int]) -> dict[int, dict[str, int]]:
    """Signatures per status for each letter, and `awaiting_review`: confirmed public sign-ons no person has
    decided yet (not signatures yet, but an organizer must see them wherever the letter is counted); `invited`:
    organizations a mail merge linking the letter reached (a message sent, or kept by the development outbox as
    the follow-up audiences count it), and `invited_unsigned` those of them without a confirmed signature — who a
    reminder is for."""
    result = {letter_id: _empty_counts() for letter_id in letter_ids}
    if not letter_ids:
        return result
    rows = db.session.execute(
        select(Signature.letter_id, Signature.status, func.count())
        .where(Signature.letter_id.in_(letter_ids))
        .group_by(Signature.letter_id, Signature.status)
    )
    for letter_id, status, count in rows:
        result[letter_id][status] = count
    for letter_id, count in db.session.execute(
        select(SignOnRequest.letter_id, func.count())
        .where(SignOnRequest.letter_id.in_(letter_ids), SignOnRequest.status == "confirmed")
        .group_by(SignOnRequest.letter_id)
    ):
        result[letter_id]["awaiting_review"] = count
    signed = select(Signature.id).where(
        Signature.letter_id == MailMerge.letter_id,
        Signature.organization_id == Message.organization_id,
        Signature.status == "confirmed",
    )
    for letter_id, invited, unsigned in db.session.execute(
        select(
            MailMerge.letter_id,
            func.count(Message.organization_id.distinct()),
            func.count(case((~signed.exists(), Message.organization_id)).distinct()),
        )
        .join(Message, Message.merge_id == MailMerge.id)
        .where(MailMerge.letter_id.in_(letter_ids), Message.status.in_(DELIVERED_STATUSES),
               Message.kind == "merge")
        .group_by(MailMerge.letter_id)
    ):
        counts = result[letter_id]
        counts["invited"], counts["invited_unsigned"] = invited, unsigned
    return result


def awaiting_review(letter: Letter) -> int:
    """Confirmed public sign-ons of one letter waiting for a person."""
    return db.session.scalar(select(func.count(SignOnRequest.id)).where(
        SignOnRequest.letter_id == letter.id, SignOnRequest.status == "confirmed")) or 0


def awaiting_review_total() -> int:
    """Confirmed public sign-ons of every letter waiting for a person (the navigation's badge; one index scan)."""
    return db.session.scalar(select(func.count(SignOnRequest.id)).where(SignOnRequest.status == "confirmed")) or 0


def signed_count(letter: Letter) -> int:
    """Organizations that signed the letter so far (confirmed)."""
    return db.session.scalar(select(func.count(Signature.id)).where(
        Signature.letter_id == letter.id, Signature.status == "confirmed")) or 0


def delivery_order():
    """ORDER BY for a signatory block: leads first, then alphabetical by sort name."""
    return (
        case((Signature.role == "lead", 0), else_=1),
        Signature.position.asc().nulls_last(),
        Organization.sort_name,
        Organization.id,
    )


def signatories(letter: Letter, statuses: tuple[str, ...] = ("confirmed",), *where) -> list[Signature]:
    """A letter's signatures in the given statuses (and further conditions), leads first then by sort name."""
    return list(
        db.session.scalars(
            select(Signature)
            .join(Organization)
            .where(Signature.letter_id == letter.id, Signature.status.in_(statuses), *where)
            .order_by(*delivery_order())
            .options(
                selectinload(Signature.organization).selectinload(Organization.issue_areas),
                selectinload(Signature.contact),
            )
        )
    )


def signature_columns(letter: Letter, *columns, statuses: tuple[str, ...] = ("confirmed",)) -> list:
    """Columns of a letter's signatures (and their organizations) in the given statuses, in delivery order, as plain
    rows: what the letter page and the signatory exports need, without building ORM objects, organizations, issue
    areas and contacts per signature (for a 1,000-signature letter that was most of the page's cost)."""
    return list(db.session.execute(
        select(*columns).select_from(Signature).join(Organization)
        .where(Signature.letter_id == letter.id, Signature.status.in_(statuses))
        .order_by(*delivery_order())
    ))


def signatory_list(letter: Letter, statuses: tuple[str, ...] = ("confirmed",)) -> list:
    """What the letter page lists per signature: id, organization_id, listed_name, role, status."""
    return signature_columns(letter, Signature.id, Signature.organization_id, Signature.listed_name, Signature.role,
                             Signature.status, statuses=statuses)


def iter_signatures(letter_slugs: list[str] | None = None, org_filter: OrgFilter | None = None) -> Iterator[Signature]:
    """Signatures for export, letter by letter in delivery order; an organization filter chooses whose."""
    query = (
        select(Signature)
        .join(Letter)
        .join(Organization)
        .order_by(Letter.id, *delivery_order())
        .options(selectinload(Signature.letter), selectinload(Signature.organization))
    )
    if letter_slugs:
        query = query.where(Letter.slug.in_(letter_slugs))
    if org_filter is not None and not org_filter.is_empty():
        # Left out, every signature is exported, an archived organization's too (the filter hides archived ones).
        query = query.where(Signature.organization_id.in_(org_ids_query(org_filter)))
    yield from db.session.scalars(query.execution_options(yield_per=1000))


def signatory_block(letter: Letter) -> str:
    """The confirmed signatories as the letter prints them: one listed name per line, leads first."""
    return "\n".join(name for name, in signature_columns(letter, Signature.listed_name)) + "\n"


def signatory_markdown(letter: Letter) -> str:
    """The confirmed signatories as a Markdown list, leads in bold."""
    lines = []
    for listed_name, role in signature_columns(letter, Signature.listed_name, Signature.role):
        name = listed_name.replace("*", "\\*").replace("_", "\\_")
        lines.append(f"- **{name}**" if role == "lead" else f"- {name}")
    return "\n".join(lines) + "\n"


def signatory_rows(letter: Letter) -> Iterator[list[str]]:
    """CSV rows of the confirmed signatories (with city, state and type)."""
    yield ["listed_name", "role", "organization", "city", "state", "org_type", "signed_at"]
    for listed_name, role, name, city, state, org_type, signed_at in signature_columns(
        letter, Signature.listed_name, Signature.role, Organization.name, Organization.city, Organization.state,
        Organization.org_type, Signature.signed_at,
    ):
        yield [listed_name, role, name, city or "", state or "", org_type or "",
               signed_at.date().isoformat() if signed_at else ""]
