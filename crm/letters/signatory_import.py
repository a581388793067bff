"""Signatory import: a pasted signatory block (or a whole published letter) → one candidate per line, matched.

Lines are classified before matching: headings, blank lines, footnotes, paragraphs of the letter, addresses,
dates, salutations, "Sincerely,", the cc block and individual signers' lines are skipped; bullets and
numbering are stripped. When the text has a signatory heading ("Signatories:", "Sincerely,", "Signed,"),
everything before the first one is the letter itself and is skipped."""

import csv
import io
import re
from dataclasses import dataclass

from sqlalchemy import select

from crm.audit.services import record
from crm.common.text import single_line, sort_name
from crm.common.types import utcnow
from crm.extensions import db
from crm.letters.models import Letter, Signature
from crm.organizations.matching import MatchIndex
from crm.organizations.models import Organization
from crm.organizations.services import add_alias, refresh_search_text, snapshot

REPORT_COLUMNS = ("line", "text", "action", "organization", "confidence")
ACTIONS = ("matched", "new", "review", "skipped")
MAX_LINES = 20_000

_SIGN_HEADING = re.compile(
    r"^(signatories|signatures|signed|signed by|sincerely|respectfully|respectfully submitted|in solidarity|"
    r"best regards|regards|thank you|(the )?undersigned( organizations)?|organizational (signatories|signers|"
    r"endorsements)|(signing |endorsing )?organizations|co-?signers|co-?signatories|endorsed by|"
    r"national organizations|state and local organizations|state organizations|local organizations|"
    r"state,? local,? and regional organizations|lead organizations|supporting organizations)"
    r"\b[^.]{0,40}[:,]?$",
    re.IGNORECASE,
)
_INDIVIDUAL_HEADING = re.compile(
    r"^(individual|individuals|individual (signatories|signers|endorsements))\b.*[:]?$", re.IGNORECASE
)
_CC_HEADING = re.compile(r"^(cc|c\.c\.|copy to|copies to)\s*:?\s*(.*)$", re.IGNORECASE)
_CLOSING = re.compile(
    r"^(sincerely|respectfully|regards|best|thank you|thanks|yours truly|in solidarity)\b.*,?$", re.IGNORECASE
)
_BULLET = re.compile(r"^\s*(?:[-*•·▪◦●‣–—+]+|\(?\d{1,4}[.)]|\(?[a-z][.)]|#\d+)\s+", re.IGNORECASE)
_FOOTNOTE = re.compile(r"^\s*(?:[¹²³⁴⁵⁶⁷⁸⁹⁰]+|\[\d+\]|\^\d+|\d+\s*[:.]\s+\D.{60,}|\*{1,3}\s*\S.{60,}|†)")
_SUPERSCRIPT_TAIL = re.compile(r"[¹²³⁴⁵⁶⁷⁸⁹⁰*†‡]+$")
_ZIP = re.compile(r"\b\d{5}(?:-\d{4})?\s*$")
_STREET = re.compile(
    r"^\s*(?:\d+[\w-]*\s+.*\b(?:st|street|ave|avenue|blvd|boulevard|road|rd|suite|ste|floor|fl|"
    r"drive|dr|way|lane|ln|place|pl|plaza|court|ct|parkway|pkwy|nw|ne|sw|se)\b|p\.?\s?o\.?\s+box\b|"
    r"suite\s+\d+|room\s+\d+)",
    re.IGNORECASE,
)
_CITY_STATE = re.compile(r"^[A-Z][A-Za-z .'-]{1,30},\s*(?:[A-Z]{2}|D\.C\.?)(?:,?\s*\d{5}(?:-\d{4})?)?\.?$")
_DATE = re.compile(
    r"^(?:(?:mon|tues|wednes|thurs|fri|satur|sun)day,?\s+)?(?:jan|feb|mar|apr|may|jun|jul|aug|sep|"
    r"oct|nov|dec)[a-z]*\.?\s+\d{1,2},?\s+\d{4}$|^\d{1,2}/\d{1,2}/\d{2,4}$|^\d{4}-\d{2}-\d{2}$",
    re.IGNORECASE,
)
_SALUTATION = re.compile(
    r"^(dear|to|re|subject|from|attn|attention)\b.*[:,]$|^(dear|re:|subject:)", re.IGNORECASE
)
_TITLES = (
    r"(?:executive |managing |legal |policy |program |campaign |national |deputy |associate |senior |"
    r"interim |co-?)*(?:director|president|ceo|coo|cfo|founder|co-founder|chair|chairperson|chairman|"
    r"secretary|treasurer|organizer|coordinator|manager|counsel|attorney|lawyer|esq|professor|fellow|"
    r"member|pastor|rabbi|reverend|rev|minister|advocate|analyst|staff attorney|partner|principal|"
    r"representative|officer|lead|vp|vice president|phd|ph\.d|md|j\.d|jd)\b"
)
_PERSON_WITH_TITLE = re.compile(r"^[A-Z][\w.'-]+(?:\s+[A-Z][\w.'-]*){1,3},\s*" + _TITLES, re.IGNORECASE)
_TITLE_LINE = re.compile(r"^" + _TITLES + r"\s*(?:,|of\b|at\b|$)", re.IGNORECASE)
_HONORIFIC = re.compile(
    r"^(?:the\s+)?(?:hon\.?|honorable|secretary|senator|representative|rep\.|sen\.|director|"
    r"chairman|chairwoman|chair|speaker|leader|mr\.?|ms\.?|mrs\.?|dr\.?|commissioner|"
    r"administrator|attorney general|governor|mayor|president)\s+[A-Z]",
    re.IGNORECASE,
)
_URL = re.compile(r"^(https?://|www\.)\S+$|^\S+@\S+\.\S+$", re.IGNORECASE)
_LOCATION_TAIL = re.compile(
    r"\s*(?:[,–—]|\s-)\s*(?:[A-Z][A-Za-z .'-]+,\s*)?(?:[A-Z]{2}|D\.C\.|National|Nationwide|"
    r"Statewide)\.?$"
)
_PAREN_PLACE = re.compile(
    r"\s*\((?:[A-Z]{2}|D\.C\.|National|Nationwide|Statewide|International|[A-Z][a-z]+,\s*"
    r"[A-Z]{2})\)$"
)


@dataclass
class Candidate:
    """One line of the pasted text and what the import would do with it."""

    line: int
    text: str
    action: str
    name: str = ""
    organization_id: int | None = None
    organization: str = ""
    confidence: float = 0.0
    reason: str = ""

    def report_row(self) -> list[str]:
        """The line as a report CSV row."""
        return [
            str(self.line),
            self.text,
            self.action,
            self.organization,
            f"{self.confidence:.2f}" if self.action != "skipped" else "",
        ]


def _is_paragraph(text: str) -> bool:
    """A line of running prose rather than a name."""
    words = text.split()
    if len(text) > 150 or len(words) > 16:
        return True
    if re.search(r"[.!?;]\s+[A-Za-z]", text) and len(words) > 8:
        return True
    if text.endswith((".", ";", "!", "?")) and len(words) >= 7 and not text.endswith(("Inc.", "P.C.", "Co.")):
        return True
    return bool(re.search(r"[“”\"]", text) and len(words) > 8)


def candidate_name(text: str) -> str:
    """The organization name of a line: bullets, numbering, footnote marks and places removed."""
    name = _BULLET.sub("", text).strip()
    name = _SUPERSCRIPT_TAIL.sub("", name).strip()
    name = _PAREN_PLACE.sub("", name).strip()
    name = _LOCATION_TAIL.sub("", name).strip()
    return name.strip(" ,;").strip()


def classify(text: str) -> str | None:
    """Why a line inside the signatory section is skipped (None: it names an organization)."""
    line = text.strip()
    if not line:
        return "blank"
    if _FOOTNOTE.match(line):
        return "footnote"
    body = _BULLET.sub("", line).strip()
    if not body or not re.search(r"[A-Za-z]", body):
        return "no name"
    if _URL.match(body):
        return "address"
    if body.endswith(":") or (body.startswith("#") and not body.startswith("#\u200b")):
        return "heading"
    if _CLOSING.match(body) and len(body.split()) <= 4:
        return "closing"
    if _DATE.match(body):
        return "date"
    if _SALUTATION.match(body):
        return "salutation"
    if _ZIP.search(body) or _STREET.match(body) or _CITY_STATE.match(body):
        return "address"
    if _is_paragraph(body):
        return "paragraph"
    if _PERSON_WITH_TITLE.match(body) or _TITLE_LINE.match(body) or _HONORIFIC.match(body):
        return "individual signer"
    if re.fullmatch(r"page \d+( of \d+)?|-+|=+|_+|\*+", body, re.IGNORECASE):
        return "separator"
    return None


def split_lines(text: str) -> list[tuple[int, str, str | None]]:
    """Each line with its number and the reason it is skipped (None for candidate lines)."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")[:MAX_LINES]
    first_heading = next((i for i, line in enumerate(lines) if _SIGN_HEADING.match(line.strip())), None)
    result: list[tuple[int, str, str | None]] = []
    mode = "letter" if first_heading is not None else "signatories"
    for index, raw in enumerate(lines):
        line = raw.strip()
        if index == first_heading:
            mode = "signatories"
            result.append((index + 1, raw, "heading"))
            continue
        if mode == "letter":
            result.append((index + 1, raw, "letter text"))
            continue
        if _SIGN_HEADING.match(line) and not _CLOSING.match(line):
            mode = "signatories"
            result.append((index + 1, raw, "heading"))
            continue
        if _SIGN_HEADING.match(line):
            result.append((index + 1, raw, "closing"))
            continue
        if _INDIVIDUAL_HEADING.match(line) and len(line.split()) <= 5:
            mode = "individuals"
            result.append((index + 1, raw, "heading"))
            continue
        cc = _CC_HEADING.match(line)
        if cc and (
            line.lower().startswith(("cc:", "cc ", "c.c.", "copy to", "copies to")) or line.lower() == "cc"
        ):
            mode = "cc"
            result.append((index + 1, raw, "cc block"))
            continue
        if mode in ("individuals", "cc"):
            result.append((index + 1, raw, "individual signer" if mode == "individuals" else "cc block"))
            continue
        result.append((index + 1, raw, classify(line)))
    return result


def analyse(text: str, index: MatchIndex | None = None) -> list[Candidate]:
    """Classify and match every line of a pasted signatory block (reads the database, changes nothing)."""
    index = index or MatchIndex.from_database()
    candidates: list[Candidate] = []
    for number, raw, reason in split_lines(text):
        shown = single_line(raw)[:300]
        if reason is not None:
            candidates.append(Candidate(number, shown, "skipped", reason=reason))
            continue
        name = candidate_name(raw)[:300]
        found = index.match(name)
        action = found.action
        if action == "skipped":
            candidates.append(Candidate(number, shown, "skipped", reason="no name"))
            continue
        candidates.append(
            Candidate(
                number,
                shown,
                action,
                name=name,
                organization_id=found.organization_id,
                organization=index.name_of(found.organization_id),
                confidence=round(found.confidence, 2),
                reason=found.method,
            )
        )
    return candidates


def report_csv(candidates: list[Candidate]) -> str:
    """The report as CSV text: line,text,action,organization,confidence."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(REPORT_COLUMNS)
    for candidate in candidates:
        row = candidate.report_row()
        writer.writerow(["'" + cell if cell[:1] in ("=", "+", "-", "@") else cell for cell in row])
    return out.getvalue()


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
                org = _create_org_no_commit(listed_name, user_id)
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


def _create_org_no_commit(name: str, user_id: int | None) -> Organization:
    """A new organization for an imported name, inside the import's transaction."""
    org = Organization(name=name, sort_name=sort_name(name)[:300], search_text="")
    db.session.add(org)
    db.session.flush()
    refresh_search_text(org)
    record(
        "create",
        "organization",
        org.id,
        user_id=user_id,
        summary=f"Created {org.name} (signatory import)",
        after=snapshot(org),
    )
    return org


__all__ = ["Candidate", "analyse", "apply_import", "report_csv", "REPORT_COLUMNS"]
