"""Loading the seed: the issue-area vocabulary, the 68 signatories of the Clearview AI letter, and the letter."""

import csv
import re
from dataclasses import dataclass, field
from datetime import date
from importlib import resources
from pathlib import Path

from sqlalchemy import select

from crm.common.text import single_line, slugify, sort_name
from crm.common.types import utc_midnight
from crm.extensions import db
from crm.letters.models import Letter, Signature
from crm.organizations.editing import add_alias, refresh_search_text
from crm.organizations.filters import US_STATES
from crm.organizations.models import ORG_TYPES, SCOPES, IssueArea, Organization

ISSUE_AREAS = {
    "immigration": "Immigration",
    "privacy": "Privacy",
    "surveillance": "Surveillance",
    "civil-rights": "Civil rights",
    "racial-justice": "Racial justice",
    "labor": "Labor",
    "legal-services": "Legal services",
    "criminal-legal": "Criminal legal system",
    "digital-rights": "Digital rights",
    "government-accountability": "Government accountability",
    "media": "Media",
    "faith": "Faith",
    "gender-justice": "Gender justice",
    "anti-war": "Anti-war",
}

SEED_LETTER_SLUG = "dhs-clearview-ai-2021"
SEED_LETTER = {
    "slug": SEED_LETTER_SLUG,
    "title": "Urge DHS to stop using Clearview AI facial recognition",
    "recipients": "Secretary Alejandro Mayorkas\nDepartment of Homeland Security\n"
                  "2707 Martin Luther King Jr. Ave. SE\nWashington, D.C., 20528",
    "cc": "Susan Rice\nDirector, Domestic Policy Council\n1600 Pennsylvania Ave. NW\nWashington, D.C., 20500",
    "summary": "68 organizations ask the Department of Homeland Security to stop using Clearview AI's facial "
               "recognition at its agencies, on a contractual, trial, or any other basis.",
    "status": "delivered",
    "letter_date": date(2021, 4, 19),
    "delivered_on": date(2021, 4, 19),
    "public_signon": False,
    "review_required": True,
}
SEED_LETTER_AREAS = ("immigration", "privacy", "surveillance", "civil-rights")
REQUIRED_COLUMNS = ("name", "issue_areas", "role")


class SeedError(ValueError):
    """The seed file cannot be loaded; nothing was changed."""


@dataclass
class SeedResult:
    """What a seed run added (all zero on a second run)."""

    issue_areas: int = 0
    organizations: int = 0
    signatures: int = 0
    letter_created: bool = False
    warnings: list[str] = field(default_factory=list)


def default_seed_file() -> Path:
    """seed_signatories.csv: inside the package in a wheel, at the repository root in a checkout."""
    inside = Path(str(resources.files("crm") / "seed_signatories.csv"))
    return inside if inside.exists() else Path(__file__).resolve().parent.parent / "seed_signatories.csv"


def _letter_body() -> str:
    """The Clearview letter's text as Markdown with footnotes."""
    return (resources.files("crm") / "seeddata" / f"{SEED_LETTER_SLUG}.md").read_text(encoding="utf-8")


def read_seed_rows(path: Path) -> list[dict[str, str]]:
    """Read and check the seed CSV; raises SeedError naming the row and column at fault."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError as exc:
        raise SeedError(f"{path}: no such file") from exc
    except UnicodeDecodeError as exc:
        raise SeedError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    reader = csv.DictReader(text.splitlines())
    missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise SeedError(f"{path}: missing column(s) {', '.join(missing)}")
    rows, names = [], set()
    for number, row in enumerate(reader, start=2):
        row = {k: (v or "").strip() for k, v in row.items() if k}
        where = f"{path.name} line {number}"
        if not row["name"]:
            raise SeedError(f"{where}: empty name")
        if row["name"] in names:
            raise SeedError(f"{where}: {row['name']!r} appears twice")
        names.add(row["name"])
        if row.get("role", "signatory") not in ("lead", "signatory"):
            raise SeedError(f"{where}: role must be lead or signatory")
        if row.get("org_type") and row["org_type"] not in ORG_TYPES:
            raise SeedError(f"{where}: unknown org_type {row['org_type']!r}")
        if row.get("scope") and row["scope"] not in SCOPES:
            raise SeedError(f"{where}: unknown scope {row['scope']!r}")
        if row.get("state") and row["state"].upper() not in US_STATES:
            raise SeedError(f"{where}: unknown state {row['state']!r}")
        if not [s for s in row["issue_areas"].split(";") if s.strip()]:
            raise SeedError(f"{where}: every organization needs at least one issue area")
        for entry in former_names(row):
            if not _FORMER_NAME.match(entry):
                raise SeedError(f"{where}: a former name is written 'Name <https://source>', not {entry!r}")
        rows.append(row)
    for row in rows:
        if row.get("parent") and row["parent"] not in names:
            raise SeedError(f"{path.name}: parent {row['parent']!r} of {row['name']!r} is not in the file")
    return rows


# A name an organization went by, with where that is documented: "Center for Media Justice <https://…>".
_FORMER_NAME = re.compile(r"^([^<>;]{1,300}?)\s*<(https?://[^<>\s]{1,500})>$")


def former_names(row: dict[str, str]) -> list[str]:
    """The row's former-name entries ("Name <source>"), as written."""
    return [entry.strip() for entry in (row.get("former_names") or "").split(";") if entry.strip()]


def _issue_area(slug: str, result: SeedResult) -> IssueArea:
    """The issue area with this slug, created when missing."""
    slug = slugify(slug)
    area = db.session.scalar(select(IssueArea).where(IssueArea.slug == slug))
    if area is None:
        area = IssueArea(slug=slug, name=ISSUE_AREAS.get(slug, slug.replace("-", " ").capitalize()))
        db.session.add(area)
        db.session.flush()
        result.issue_areas += 1
    return area


def load_seed(path: Path | None = None) -> SeedResult:
    """Load the seed in one transaction; running it again adds nothing and changes nothing."""
    rows = read_seed_rows(path or default_seed_file())
    result = SeedResult()
    try:
        for slug in ISSUE_AREAS:
            _issue_area(slug, result)
        created: list[dict[str, str]] = []
        existing = {o.name: o for o in db.session.scalars(
            select(Organization).where(Organization.name.in_([r["name"] for r in rows])))}
        for row in rows:
            if row["name"] in existing:
                continue
            org = Organization(
                name=single_line(row["name"]), sort_name=sort_name(row["name"])[:300],
                acronym=row.get("acronym") or None,
                org_type=row.get("org_type") or None, scope=row.get("scope") or None,
                city=row.get("city") or None, state=(row.get("state") or "").upper() or None,
                country=(row.get("country") or "").upper() or None, website=row.get("website") or None,
                issue_areas=[_issue_area(s.strip(), result) for s in row["issue_areas"].split(";") if s.strip()],
            )
            db.session.add(org)
            existing[row["name"]] = org
            created.append(row)
            result.organizations += 1
        db.session.flush()
        for row in created:
            org = existing[row["name"]]
            if row.get("parent"):
                org.parent = existing[row["parent"]]
            for entry in former_names(row):
                # Every name an organization has gone by is matched like its name (issue 15, point 5).
                add_alias(org, _FORMER_NAME.match(entry).group(1), source="former name")
            refresh_search_text(org)
        letter = db.session.scalar(select(Letter).where(Letter.slug == SEED_LETTER_SLUG))
        if letter is None:
            letter = Letter(body=_letter_body(), **SEED_LETTER)
            letter.issue_areas = [_issue_area(s, result) for s in SEED_LETTER_AREAS]
            db.session.add(letter)
            db.session.flush()
            result.letter_created = True
        signed = set(db.session.scalars(select(Signature.organization_id).where(Signature.letter_id == letter.id)))
        for position, row in enumerate(rows):
            org = existing[row["name"]]
            if org.id in signed:
                continue
            role = row.get("role") or "signatory"
            db.session.add(Signature(
                letter_id=letter.id, organization_id=org.id, role=role,
                position=position if role == "lead" else None,
                listed_name=row["name"], status="confirmed", source="import",
                signed_at=utc_midnight(SEED_LETTER["letter_date"]),
            ))
            result.signatures += 1
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    return result


def database_is_empty() -> bool:
    """No organization and no letter yet (what `make run` checks before seeding)."""
    return db.session.scalar(select(Organization.id).limit(1)) is None and \
        db.session.scalar(select(Letter.id).limit(1)) is None
