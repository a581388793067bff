"""Every ugly file of the corpus gives a clear report, never a 500, and never a partial import."""

import csv
import io
import re

import pytest
from sqlalchemy import func, select

from crm.contacts.models import Contact
from crm.imports.models import ImportBatch, ImportChange
from crm.organizations.models import IssueArea, Organization
from tests.factories import OrganizationFactory
from tests.imports.corpus import FILES_DIR, RECIPES


@pytest.fixture
def partners(db):
    """The organizations the corpus files name, as the seed spells them, in the issue area they name."""
    for name in ("Mijente", "Just Futures Law", "Access Now", "The Center on Privacy & Technology at Georgetown Law"):
        OrganizationFactory(name=name, issue_areas=["privacy"])


def totals(db) -> tuple[int, ...]:
    """How many records of each kind an import could touch."""
    return tuple(db.session.scalar(select(func.count()).select_from(m))
                 for m in (Contact, Organization, IssueArea, ImportBatch, ImportChange))


def test_the_corpus_is_on_disk_and_large_enough():
    assert len(RECIPES) >= 40
    for name, (_, content, _) in RECIPES.items():
        assert (FILES_DIR / name).read_bytes() == content, f"{name} differs: run python -m tests.imports.corpus"


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_cli_import_of_corpus_file(name, runner, partners, db, tmp_path):
    kind, _, expected = RECIPES[name]
    before = totals(db)
    report = tmp_path / "report.csv"
    result = runner.invoke(args=["import", kind, str(FILES_DIR / name), "--report", str(report)])
    output = result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), output
    if expected[0] == "ok":
        assert result.exit_code == 0, output
        summary = re.search(
            r"(\d+) rows? .*?: (\d+) created, (\d+) updated, (\d+) duplicates? skipped, (\d+) rows? with", output
        )
        rows, created, updated, skipped, errors = map(int, summary.groups())
        counts = {"created": created, "updated": updated, "skipped": skipped, "errors": errors}
        assert {k: counts[k] for k in expected[1]} == expected[1], output
        assert created + updated + skipped + errors == rows
        assert totals(db) != before or not created
        return
    assert result.exit_code == 1, output
    assert expected[1] in output, output
    assert totals(db) == before, "a failed import left records behind"
    if expected[0] == "errors":
        lines = list(csv.reader(io.StringIO(report.read_text(encoding="utf-8"))))
        assert lines[0] == ["row", "action", "record", "errors", "organization", "organization_match"]
        actions = [line[1] for line in lines[1:]]
        assert actions.count("error") == expected[2]["errors"]
        assert any(expected[1] in line[3] for line in lines[1:])


def test_skip_invalid_imports_only_the_valid_rows(runner, db):
    result = runner.invoke(args=["import", "contacts", str(FILES_DIR / "contacts_invalid_emails.csv"),
                                 "--skip-invalid"])
    assert result.exit_code == 0, result.output
    assert db.session.scalar(select(func.count(Contact.id))) == 1


def test_unknown_issue_areas_can_be_created_on_request(runner, partners, db):
    result = runner.invoke(args=["import", "orgs", str(FILES_DIR / "orgs_unknown_issue_area.csv"),
                                 "--create-issue-areas"])
    assert result.exit_code == 0, result.output
    org = db.session.scalar(select(Organization).where(Organization.name == "New Group"))
    assert sorted(a.slug for a in org.issue_areas) == ["privacy", "space-law"]


def suggested(page: str) -> dict[str, str]:
    """The mapping the page suggests: each column select's selected option."""
    form = {}
    for name, body in re.findall(r'<select[^>]*name="(col_\d+)"[^>]*>(.*?)</select>', page, re.S):
        chosen = re.search(r'<option selected value="([^"]*)"', body)
        form[name] = chosen.group(1) if chosen else ""
    return form


# Werkzeug's test client spools a multipart body over 500 KB to a temporary file it never closes (the 1 MB and
# 3 MB files); that is the test client's file, not the app's.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_wizard_upload_of_every_corpus_file_never_fails_badly(as_role, partners, db):
    client = as_role("organizer")
    for name in sorted(RECIPES):
        kind, content, expected = RECIPES[name]
        before = totals(db)
        response = client.post("/imports", data={"kind": kind, "file": (io.BytesIO(content), name)},
                               content_type="multipart/form-data")
        if response.status_code == 400:  # an empty upload, or a file that is no table, is refused at step 1
            text = response.get_data(as_text=True).replace("&#39;", "'").replace("&#34;", '"')
            assert expected[0] == "problem" and expected[1].lower() in text.lower(), name
            continue
        assert response.status_code == 303, name
        mapping_url = response.headers["Location"]
        page = client.get(mapping_url)
        assert page.status_code in (200, 400), name
        if expected[0] == "problem" and page.status_code == 400:
            assert expected[1].lower() in page.get_data(as_text=True).lower(), name
            continue
        response = client.post(mapping_url, data=suggested(page.get_data(as_text=True)))
        assert response.status_code in (303, 400), name
        if response.status_code == 400:
            assert expected[0] == "problem" and expected[1].lower() in response.get_data(as_text=True).lower(), name
            continue
        preview = client.get(mapping_url.replace("/mapping", "/preview"))
        assert preview.status_code in (200, 400), name
        if expected[0] != "ok":
            text = preview.get_data(as_text=True).replace("&#39;", "'").replace("&#34;", '"')
            assert expected[1].lower() in text.lower(), name
        commit = client.post(mapping_url.replace("/mapping", "/preview"), data={"on_duplicate": "skip",
                                                                                  "commit": "Import"})
        assert commit.status_code in (200, 303, 400), name
        if expected[0] != "ok":
            assert totals(db) == before, name
