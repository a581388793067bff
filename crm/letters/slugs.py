"""A letter's slugs over time: the one it has now and the ones it had, so links made before a rename still work.

Pages resolve a slug to the letter that has it now; only when no letter has it do they fall back to the letter that
left it most recently (`renamed_letter`). Personal and confirmation links carry their letter's id, so they accept
that letter's current slug or any of its own former ones (`letter_had_slug`), whoever holds the slug now.
"""

from sqlalchemy import select

from crm.extensions import db
from crm.letters.models import Letter, LetterFormerSlug


def record_rename(letter: Letter, old_slug: str, new_slug: str) -> None:
    """Remember the slug a saved letter leaves, in the session's transaction (the caller commits or rolls back).

    Taking back one of its own former slugs forgets that row: a letter's current slug is never also one of its
    former ones. Another letter's former rows for `new_slug` are kept on purpose: their links carry that letter's
    id and must keep leading to it, while pages already prefer the letter that has the slug now.
    """
    if letter.id is None or not old_slug or old_slug == new_slug:
        return
    rows = {row.slug: row for row in db.session.scalars(select(LetterFormerSlug).where(
        LetterFormerSlug.letter_id == letter.id, LetterFormerSlug.slug.in_((old_slug, new_slug))))}
    if new_slug in rows:
        db.session.delete(rows[new_slug])
    if old_slug not in rows:
        db.session.add(LetterFormerSlug(letter_id=letter.id, slug=old_slug))


def renamed_letter(slug: str) -> Letter | None:
    """The letter that had this slug most recently before a rename, when no letter has it now (else None)."""
    if db.session.scalar(select(Letter.id).where(Letter.slug == slug)) is not None:
        return None  # a current slug always wins over a former one
    return db.session.scalar(
        select(Letter).join(LetterFormerSlug, LetterFormerSlug.letter_id == Letter.id)
        .where(LetterFormerSlug.slug == slug)
        .order_by(LetterFormerSlug.created_at.desc(), LetterFormerSlug.id.desc())
        .limit(1)
    )


def letter_had_slug(letter: Letter, slug: str) -> bool:
    """Whether `slug` is the letter's current slug or one it had before (another letter may hold it now)."""
    if letter.slug == slug:
        return True
    return db.session.scalar(select(LetterFormerSlug.id).where(
        LetterFormerSlug.letter_id == letter.id, LetterFormerSlug.slug == slug)) is not None


def former_slugs(letter: Letter) -> list[str]:
    """The slugs a letter had before, latest first."""
    return list(db.session.scalars(
        select(LetterFormerSlug.slug).where(LetterFormerSlug.letter_id == letter.id)
        .order_by(LetterFormerSlug.created_at.desc(), LetterFormerSlug.id.desc())))


def letter_ids_by_slug(slugs: list[str]) -> dict[str, int]:
    """Letter ids by slug, for filters saved before a rename: a current slug wins; a slug no letter has now leads
    to the letter that left it most recently. Slugs no letter ever had are left out."""
    found = dict(db.session.execute(select(Letter.slug, Letter.id).where(Letter.slug.in_(slugs))).all())
    left = [slug for slug in slugs if slug not in found]
    if left:
        former = db.session.execute(
            select(LetterFormerSlug.slug, LetterFormerSlug.letter_id).where(LetterFormerSlug.slug.in_(left))
            .order_by(LetterFormerSlug.created_at, LetterFormerSlug.id))
        found.update(former.all())  # in time order, so the latest holder of a slug is the one kept
    return found
