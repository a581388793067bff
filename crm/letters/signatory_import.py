"""Signatory import: each name of a pasted block matched against the organizations, then the chosen signatures written
in one transaction (new organizations and remembered spellings with them)."""

import re
from dataclasses import dataclass

from sqlalchemy import select

from crm.audit.services import record
from crm.common.text import single_line
from crm.common.types import utcnow
from crm.extensions import db
from crm.letters.models import Letter, Signature
from crm.letters.signatory_lines import check_block, split_lines
from crm.letters.signatory_names import BULLET, LONG_LINE, candidate_name, split_inline
from crm.letters.signatory_report import Candidate
from crm.organizations.creation import add_named_organization
from crm.organizations.editing import add_alias
from crm.organizations.matching import MatchIndex
from crm.organizations.models import Organization
from crm.organizations.names import normalize_org_name


def analyse(text: str, index: MatchIndex | None = None) -> list[Candidate]:
    """Classify and match every line of a pasted signatory block (reads the database, changes nothing).

    Raises BlockTooLarge when the block is over the limits."""
    check_block(text)
    index = index or MatchIndex.from_database()
    lines = split_lines(text, index)
    candidates: list[Candidate] = []
    for number, raw, reason in lines:
        shown = single_line(raw)[:300]
        if reason == "inline list":
            body = BULLET.sub("", raw.strip()).strip()
            for part, piece in enumerate(split_inline(body, index), start=1):
                candidates.append(_matched(index, number, f"{number}.{part}", piece, piece[:LONG_LINE]))
            continue
        if reason is not None:
            candidates.append(Candidate(number, shown, "skipped", reason=reason, key=str(number)))
            continue
        candidates.append(_matched(index, number, str(number), shown, candidate_name(raw)[:300]))
    return candidates


def _matched(index: MatchIndex, number: int, key: str, shown: str, name: str) -> Candidate:
    """One name matched: matched, review (with up to three proposals and why), new, or skipped."""
    if len(name) > LONG_LINE or not re.search(r"[A-Za-z]", name):
        return Candidate(number, shown, "skipped", reason="no name", key=key)
    found = index.match(name)
    if found.action == "skipped":
        return Candidate(number, shown, "skipped", reason="no name", key=key)
    proposals: list[tuple[int, str, float, str]] = []
    if found.action == "review":
        pairs = list(found.candidates) or [(found.organization_id, found.confidence)]
        for org_id, score in pairs[:3]:
            why = found.reason_for(org_id) or _METHOD_REASONS.get(found.method.split("-")[0], found.method)
            proposals.append((org_id, index.name_of(org_id), round(score, 2), why))
    reason = proposals[0][3] if proposals else _METHOD_REASONS.get(found.method, found.method)
    known = index.orgs.get(found.organization_id)
    if found.method == "name" and known is not None and known.normalized != normalize_org_name(name):
        reason = "alias"  # a former name, or a spelling learned from an earlier review
    return Candidate(
        number,
        shown,
        found.action,
        name=name,
        organization_id=found.organization_id,
        organization=index.name_of(found.organization_id),
        confidence=round(found.confidence, 2),
        reason=reason if found.action != "new" else "no organization shares a word with this name",
        key=key,
        proposals=proposals,
    )


# How each kind of match reads in the report and on the review page.
_METHOD_REASONS = {
    "name": "same name",
    "name-ambiguous": "several organizations have this name",
    "compact": "same name written together or apart",
    "acronym": "acronym",
    "acronym+name": "acronym",
    "same words": "same words",
    "website": "website",
    "name+acronym": "name and acronym",
    "fuzzy": "similar spelling",
    "none": "",
}


def method_reason(method: str) -> str:
    """A match method in words ("similar spelling", "acronym"), as the import and the review queue show it."""
    return _METHOD_REASONS.get(method, _METHOD_REASONS.get(method.split("-")[0], method))


@dataclass
class ImportResult:
    """What applying an import changed."""

    signatures: int = 0
    already: int = 0
    organizations: int = 0
    aliases: int = 0


class ImportError_(ValueError):
    """The import cannot be applied; nothing was changed."""


def apply_import(
    letter: Letter,
    decisions: list[tuple[str, int | None, str]],
    *,
    user_id: int | None = None,
    status: str = "confirmed",
) -> ImportResult:
    """Create the signatures in one transaction.

    `decisions` are (listed name, organization id or None to create a new organization, original line text).
    Spellings that differ from the organization's name become aliases. An organization already on the letter
    is left as it is (counted in `already`)."""
    result = ImportResult()
    try:
        existing = set(
            db.session.scalars(select(Signature.organization_id).where(Signature.letter_id == letter.id))
        )
        for listed_name, org_id, _line in decisions:
            listed_name = single_line(listed_name)[:300]
            if not listed_name:
                continue
            if org_id is None:
                org = add_named_organization(listed_name, user_id=user_id,
                                             summary=f"Created {listed_name} (signatory import)")
                result.organizations += 1
            else:
                org = db.session.get(Organization, org_id)
                if org is None:
                    raise ImportError_(f"Organization {org_id} does not exist.")
                if add_alias(org, listed_name, source="import") is not None:
                    result.aliases += 1
            if org.id in existing:
                result.already += 1
                continue
            existing.add(org.id)
            signature = Signature(
                letter_id=letter.id,
                organization_id=org.id,
                role="signatory",
                listed_name=listed_name,
                status=status,
                source="import",
                signed_at=utcnow(),
            )
            db.session.add(signature)
            result.signatures += 1
        db.session.flush()
        record(
            "import",
            "letter",
            letter.id,
            user_id=user_id,
            summary=f"Imported {result.signatures} signatures into {letter.slug} "
            f"({result.organizations} new organizations, {result.aliases} aliases)",
        )
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    return result
