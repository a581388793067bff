"""The seed: 68 organizations exactly as the Clearview AI letter lists them, the letter, idempotence."""

import csv
import io
from pathlib import Path

import pytest
from sqlalchemy import func, select

from crm.letters.models import Letter, Signature
from crm.organizations.models import Organization
from crm.seed import ISSUE_AREAS, SEED_LETTER_SLUG, load_seed, read_seed_rows

ROOT = Path(__file__).resolve().parent.parent
# The letter in ../shared beside the main checkout or the worktrees' folder; elsewhere (a clean clone) the copy of
# its signatory block that the signatory-import tests use, so the exact-names check always runs.
LETTER_FILE = next(
    (p for p in (ROOT.parent / "shared" / "seed" / "clearview-letter-2021-04-19.txt",
                 ROOT.parent.parent / "shared" / "seed" / "clearview-letter-2021-04-19.txt") if p.exists()),
    ROOT / "tests" / "letters" / "fixtures" / "clearview-signatories.txt",
)
LEADS = ["Mijente", "Just Futures Law", "The Center on Privacy & Technology at Georgetown Law"]


def letter_signatory_lines() -> list[str]:
    """The organization lines of the seed letter, read from the letter itself."""
    text = LETTER_FILE.read_text(encoding="utf-8")
    block = text.split("Signatories:", 1)[1]
    return [line.strip() for line in block.splitlines() if line.strip() and not line.startswith("³")]


def test_seed_csv_has_the_68_names_of_the_letter_in_order():
    rows = read_seed_rows(ROOT / "seed_signatories.csv")
    assert len(rows) == 68
    assert [r["name"] for r in rows] == letter_signatory_lines()
    assert [r["name"] for r in rows[:3]] == LEADS
    assert [r["role"] for r in rows] == ["lead"] * 3 + ["signatory"] * 65
    assert "S.T.O.P. – Surveillance Technology Oversight Project" in [r["name"] for r in rows]
    for row in rows:
        areas = [a for a in row["issue_areas"].split(";") if a]
        assert areas and set(areas) <= set(ISSUE_AREAS), row["name"]


def test_seed_loads_organizations_letter_and_signatures(seeded, db):
    assert db.session.scalar(select(func.count(Organization.id))) == 68
    letter = db.session.scalar(select(Letter).where(Letter.slug == SEED_LETTER_SLUG))
    assert letter.status == "delivered"
    assert str(letter.letter_date) == "2021-04-19"
    assert "Alejandro Mayorkas" in letter.recipients and "Department of Homeland Security" in letter.recipients
    assert "Susan Rice" in letter.cc and "Domestic Policy Council" in letter.cc
    assert "Clearview" in letter.title and "DHS" in letter.title
    assert "[^1]:" in letter.body and "[^3]" in letter.body
    signatures = list(db.session.scalars(select(Signature).where(Signature.letter_id == letter.id)))
    assert len(signatures) == 68
    assert {s.status for s in signatures} == {"confirmed"}
    leads = sorted(s.listed_name for s in signatures if s.role == "lead")
    assert leads == sorted(LEADS)
    aclu = db.session.scalar(select(Organization).where(Organization.acronym == "ACLU"))
    affiliate = db.session.scalar(select(Organization).where(Organization.name == "ACLU of Minnesota"))
    assert affiliate.parent_id == aclu.id


def test_second_seed_changes_nothing(seeded, db):
    before = [(o.id, o.name, o.version, o.updated_at) for o in db.session.scalars(select(Organization))]
    result = load_seed()
    assert (result.organizations, result.signatures, result.issue_areas, result.letter_created) == (0, 0, 0, False)
    db.session.expire_all()
    after = [(o.id, o.name, o.version, o.updated_at) for o in db.session.scalars(select(Organization))]
    assert before == after
    assert db.session.scalar(select(func.count(Signature.id))) == 68


def test_crm_seed_command_twice(runner, db):
    first = runner.invoke(args=["seed"])
    assert first.exit_code == 0, first.output
    assert "68 organizations" in first.output
    second = runner.invoke(args=["seed"])
    assert second.exit_code == 0
    assert "0 organizations, 0 signatures" in second.output


@pytest.mark.parametrize("content, message", [
    ("name,issue_areas\nA,privacy\n", "missing column"),
    ("name,issue_areas,role\nA,,signatory\n", "at least one issue area"),
    ("name,issue_areas,role\nA,privacy,boss\n", "role must be"),
    ("name,issue_areas,role,state\nA,privacy,lead,ZZ\n", "unknown state"),
    ("name,issue_areas,role,parent\nA,privacy,lead,Nobody\n", "not in the file"),
    ("name,issue_areas,role\nA,privacy,lead\nA,privacy,lead\n", "appears twice"),
])
def test_bad_seed_file_is_refused_and_changes_nothing(runner, db, tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_text(content, encoding="utf-8")
    result = runner.invoke(args=["seed", "--file", str(path)])
    assert result.exit_code == 1
    assert message in result.output
    assert db.session.scalar(select(func.count(Organization.id))) == 0


def test_seed_file_not_utf8(runner, db, tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("name,issue_areas,role\nCaf\xe9,privacy,lead\n".encode("latin-1"))
    result = runner.invoke(args=["seed", "--file", str(path)])
    assert result.exit_code == 1 and "not UTF-8" in result.output


def export(runner, *args) -> list[dict[str, str]]:
    """Run `crm export orgs` and parse its CSV."""
    result = runner.invoke(args=["export", "orgs", *args])
    assert result.exit_code == 0, result.output
    return list(csv.DictReader(io.StringIO(result.output)))


def test_export_orgs_prints_the_letter_names(seeded, runner):
    rows = export(runner)
    assert len(rows) == 68
    assert sorted(r["name"] for r in rows) == sorted(r["name"] for r in read_seed_rows(ROOT / "seed_signatories.csv"))
    assert list(rows[0]) == ["name", "acronym", "org_type", "scope", "city", "state", "issue_areas", "parent",
                             "letters_signed"]
    assert {r["letters_signed"] for r in rows} == {"1"}


def test_export_by_issue_area_gives_different_plausible_subsets(seeded, runner):
    immigration = {r["name"] for r in export(runner, "--issue-area", "immigration")}
    privacy = {r["name"] for r in export(runner, "--issue-area", "privacy")}
    assert "Mijente" in immigration and "National Immigration Law Center" in immigration
    assert "Electronic Privacy Information Center" in privacy
    assert "Win Without War" not in immigration | privacy
    assert 5 < len(immigration) < 68 and 5 < len(privacy) < 68 and immigration != privacy
    both = {r["name"] for r in export(runner, "--issue-area", "immigration", "--issue-area", "privacy",
                                      "--match", "all")}
    assert both == immigration & privacy


def test_export_to_file_and_unknown_filters(seeded, runner, tmp_path):
    out = tmp_path / "orgs.csv"
    assert runner.invoke(args=["export", "orgs", "--signed", SEED_LETTER_SLUG, "-o", str(out)]).exit_code == 0
    assert len(out.read_text(encoding="utf-8").splitlines()) == 69
    bad = runner.invoke(args=["export", "orgs", "--issue-area", "basket-weaving"])
    assert bad.exit_code == 1 and "Unknown issue area" in bad.output
    none = export(runner, "--not-signed", SEED_LETTER_SLUG)
    assert none == []


def test_export_signatures(seeded, runner):
    result = runner.invoke(args=["export", "signatures", "--letter", SEED_LETTER_SLUG])
    rows = list(csv.DictReader(io.StringIO(result.output)))
    assert len(rows) == 68
    assert [r["organization"] for r in rows[:3]] == LEADS
    assert list(rows[0]) == ["letter", "organization", "listed_as", "role", "status", "signed_at", "source"]
    assert runner.invoke(args=["export", "signatures", "--letter", "nope"]).exit_code == 1


def test_export_signatures_takes_the_organization_filters(seeded, runner):
    def names(*args):
        result = runner.invoke(args=["export", "signatures", "--letter", SEED_LETTER_SLUG, *args])
        assert result.exit_code == 0, result.output
        return [r["organization"] for r in csv.DictReader(io.StringIO(result.output))]

    immigration = {r["name"] for r in export(runner, "--issue-area", "immigration")}
    signers = names("--issue-area", "immigration")
    assert set(signers) == immigration and signers[:2] == LEADS[:2]  # leads still first
    assert names("--issue-area", "immigration", "--issue-area", "privacy", "--match", "all") == [
        n for n in signers if n in {r["name"] for r in export(runner, "--issue-area", "privacy")}]
    assert names("--not-signed", SEED_LETTER_SLUG) == []
    bad = runner.invoke(args=["export", "signatures", "--issue-area", "basket-weaving"])
    assert bad.exit_code == 1 and "Unknown issue area" in bad.output and "Traceback" not in bad.output
