"""Signatory import: the whole seed letter, a pasted block with noise, the report, and applying it."""

import csv
from pathlib import Path

import pytest
from sqlalchemy import func, select

from crm.letters.models import Signature
from crm.letters.signatory_import import analyse
from crm.letters.signatory_lines import classify
from crm.letters.signatory_report import REPORT_COLUMNS
from crm.organizations.models import Organization, OrganizationAlias
from crm.seed import SEED_LETTER_SLUG, default_seed_file, read_seed_rows
from tests.seed_index import seed_match_index

REPO = Path(__file__).resolve().parents[2]
# ../shared beside the repository (the main checkout), or beside the worktrees' folder.
SHARED_LETTER = next(
    (
        p
        for p in (
            REPO / "../shared/seed/clearview-letter-2021-04-19.txt",
            REPO / "../../shared/seed/clearview-letter-2021-04-19.txt",
        )
        if p.exists()
    ),
    REPO / "../shared/seed/clearview-letter-2021-04-19.txt",
)
FIXTURE = Path(__file__).resolve().parent / "fixtures" / "clearview-signatories.txt"
SEED_NAMES = [row["name"] for row in read_seed_rows(default_seed_file())]


def _check_report(report: Path) -> list[dict]:
    """Read the report and check every organization line matched the right organization."""
    with report.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames) == REPORT_COLUMNS
        rows = list(reader)
    matched = [r for r in rows if r["action"] == "matched"]
    assert [r["organization"] for r in matched] == SEED_NAMES
    assert [r["text"].strip() for r in matched] == SEED_NAMES
    assert {r["action"] for r in rows} == {"matched", "skipped"}
    return rows


@pytest.mark.parametrize("source", ["whole letter", "signatory block"])
def test_dry_run_import_of_the_seed_letter_matches_all_68(seeded, runner, tmp_path, source):
    path = SHARED_LETTER if source == "whole letter" else FIXTURE
    if not path.exists():
        pytest.skip(f"{path} is not here")
    report = tmp_path / "r.csv"
    before = Signature.query.count()
    result = runner.invoke(
        args=["import", "signatories", SEED_LETTER_SLUG, str(path), "--dry-run", "--report", str(report)]
    )
    assert result.exit_code == 0, result.output
    assert "68 matched, 0 new, 0 to review" in result.output
    rows = _check_report(report)
    skipped = [r["text"] for r in rows if r["action"] == "skipped" and r["text"].strip()]
    if source == "whole letter":
        for text in (
            "Secretary Alejandro Mayorkas",
            "Department of Homeland Security",
            "April 19, 2021",
            "Susan Rice",
            "Director, Domestic Policy Council",
            "Washington, D.C., 20500",
            "cc:",
            "Signatories:",
        ):
            assert text in skipped
        assert any(t.startswith("³ Ryan Mac") for t in skipped)
    assert Signature.query.count() == before


def test_a_messy_pasted_block(seeded, db):
    text = """Organizational signers:

1. ACLU
2) Electronic Frontier Foundation*
• Center on Privacy and Technology at Georgetown Law
- ACLU of Southern California
* Brand Nuevo Kollektiv of Ohio
Mijente (National)
Just Futures Law, Oakland, CA

Jane Doe, Executive Director, Mijente
Sincerely,
* Organizations listed for identification purposes only, this is a footnote line.

Individual signers:
John Smith
Maria Lopez, Professor
"""
    rows = analyse(text)
    by_text = {r.text.strip(): r for r in rows}
    assert by_text["1. ACLU"].action == "matched"
    assert by_text["1. ACLU"].organization == "American Civil Liberties Union (ACLU)"
    assert (
        by_text["2) Electronic Frontier Foundation*"].organization == "Electronic Frontier Foundation (EFF)"
    )
    assert by_text["• Center on Privacy and Technology at Georgetown Law"].action == "matched"
    assert by_text["- ACLU of Southern California"].action in ("new", "review")
    assert by_text["- ACLU of Southern California"].organization != "American Civil Liberties Union (ACLU)"
    assert by_text["* Brand Nuevo Kollektiv of Ohio"].action == "new"
    assert by_text["Mijente (National)"].organization == "Mijente"
    assert by_text["Just Futures Law, Oakland, CA"].organization == "Just Futures Law"
    # A person with a title and an organization signs for the organization (issue 15, point 2).
    assert by_text["Jane Doe, Executive Director, Mijente"].organization == "Mijente"
    for skipped in (
        "Organizational signers:",
        "Sincerely,",
        "John Smith",
        "Maria Lopez, Professor",
        "Individual signers:",
    ):
        assert by_text[skipped].action == "skipped", skipped


def test_line_classifier():
    assert classify("2707 Martin Luther King Jr. Ave. SE") == "address"
    assert classify("Washington, DC 20528") == "address"
    assert classify("April 19, 2021") == "date"
    assert classify("Dear Secretary Mayorkas:") in ("heading", "salutation")
    assert classify("¹ A footnote.") == "footnote"
    assert classify("Upturn") is None
    assert classify("Meyer Law Office, P.C.") is None


def test_import_applies_in_one_transaction_with_aliases(seeded, db, runner, tmp_path):
    from crm.letters.models import Letter

    letter = Letter(slug="new-letter", title="A new letter", status="collecting")
    db.session.add(letter)
    db.session.commit()
    path = tmp_path / "block.txt"
    path.write_text("Signed,\nACLU\nElectronic Frontier Foundation\nBrand Nuevo Kollektiv\nUnited We Dream\n")
    result = runner.invoke(args=["import", "signatories", "new-letter", str(path)])
    assert result.exit_code == 0, result.output
    assert "Added 3 signatures" in result.output and "1 lines need a person" in result.output
    assert db.session.scalar(select(func.count()).where(Signature.letter_id == letter.id)) == 3
    assert (
        db.session.scalar(select(Organization).where(Organization.name == "Brand Nuevo Kollektiv")) is not None
    )
    aliases = set(db.session.scalars(select(OrganizationAlias.name)))
    assert {"ACLU", "Electronic Frontier Foundation"} <= aliases
    again = runner.invoke(args=["import", "signatories", "new-letter", str(path)])
    assert "Added 0 signatures (3 already on the letter)" in again.output


def test_import_refuses_bad_input(seeded, runner, tmp_path):
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("Caf\xe9 Org\n".encode("latin-1"))
    result = runner.invoke(args=["import", "signatories", SEED_LETTER_SLUG, str(bad)])
    assert result.exit_code == 1 and "not UTF-8" in result.output
    result = runner.invoke(args=["import", "signatories", "no-such-letter", str(bad)])
    assert result.exit_code == 1 and "unknown letter" in result.output
    result = runner.invoke(args=["import", "signatories", SEED_LETTER_SLUG, str(tmp_path / "missing.txt")])
    assert result.exit_code == 1 and "no such file" in result.output


def test_inline_paragraphs_keep_the_commas_of_a_name():
    from crm.letters.signatory_names import split_inline

    index = seed_match_index()
    assert split_inline(
        "Alpha Coalition, Beta Project, Gamma Network, Inc., Church of Zeta, Office of Communication, "
        "Writers Guild of America, West, Just Futures Law, Oakland, CA, and Epsilon Alliance.",
        index,
    ) == [
        "Alpha Coalition",
        "Beta Project",
        "Gamma Network, Inc.",
        "Church of Zeta, Office of Communication",
        "Writers Guild of America, West",
        "Just Futures Law",
        "Epsilon Alliance",
    ]
    assert split_inline("Alpha Coalition; Beta Project, Inc.; Gamma, Delta and Sons; Epsilon Alliance", index) == [
        "Alpha Coalition", "Beta Project, Inc.", "Gamma, Delta and Sons", "Epsilon Alliance"]
    assert split_inline("The signers include the ACLU, Mijente, Free Press and the Alpha Fund.", index) == [
        "the ACLU", "Mijente", "Free Press", "the Alpha Fund"]
    assert split_inline("ACLU • EFF • Mijente", index) == ["ACLU", "EFF", "Mijente"]
    assert split_inline("Mijente, Inc.     Upturn\tFree Press", index) == ["Mijente, Inc.", "Upturn", "Free Press"]
    assert classify("Mijente       Upturn") == "inline list"  # two columns of a table copied as one line
    assert classify("Jane Doe      Executive Director") != "inline list"
    assert split_inline("Mijente, Upturn, Free Press, and thousands more", index) == ["Mijente", "Upturn", "Free Press"]


def test_lines_are_classified_by_what_they_look_like():
    text = """Organizations
Individuals
Mijente
Just Futures Law
Individuals
Tim Berners-Lee
Inventor of the World Wide Web
Southern Poverty Law Center
Upturn
Jane Doe
Executive Director
Mijente Support Committee
We, the undersigned organizations, urge you to stop, reconsider, and listen to the communities affected.
The Honorable Nancy Pelosi, Speaker, U.S. House of Representatives
"""
    rows = {r.text: r for r in analyse(text, seed_match_index())}
    assert rows["Mijente"].action == "matched"  # tab labels at the top switched nothing
    assert rows["Just Futures Law"].action == "matched"
    assert rows["Tim Berners-Lee"].action == "skipped"
    assert rows["Inventor of the World Wide Web"].action == "skipped"
    assert rows["Southern Poverty Law Center"].action in ("new", "review")  # an organization under Individuals
    assert rows["Upturn"].action == "matched"  # a known organization under Individuals
    assert rows["Jane Doe"].action == "skipped" and rows["Executive Director"].action == "skipped"
    assert rows["Mijente Support Committee"].action in ("new", "review")
    assert all(r.action == "skipped" for t, r in rows.items() if t.startswith(("We, the", "The Honorable")))


def test_titles_sections_and_former_names_in_a_line():
    from crm.letters.signatory_names import candidate_name

    assert candidate_name("Jane Doe, Director of Example Org") == "Example Org"
    assert candidate_name("Jane Doe, Chief Executive Officer, Example Org, Inc.") == "Example Org, Inc."
    assert classify("Jane Doe, Director") == "individual signer"
    assert classify("NATIONAL") == classify("State and Local Organizations") == "heading"
    rows = {r.text: r for r in analyse("Signed,\nNew Name (formerly Upturn)\nACLU of Texas (ACLU)\n",
                                       seed_match_index())}
    assert rows["New Name (formerly Upturn)"].organization == "Upturn"
    assert rows["ACLU of Texas (ACLU)"].action != "matched"
