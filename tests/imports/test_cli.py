"""`crm import orgs|contacts`: the engine from the command line, its exit codes and its report."""

import csv

import pytest
from sqlalchemy import func, select

from crm.contacts.models import Contact
from crm.imports.models import ImportBatch
from crm.organizations.models import Organization
from crm.seed import SEED_LETTER_SLUG
from tests.factories import LetterFactory, OrganizationFactory, SignatureFactory


def write(tmp_path, name, text, encoding="utf-8"):
    """A file in tmp_path."""
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


@pytest.fixture
def mijente(db):
    """Mijente, in immigration and a signer of the seed letter as in the seed, beside two other organizations."""
    org = OrganizationFactory(name="Mijente", issue_areas=["immigration"])
    SignatureFactory(organization=org, letter=LetterFactory(slug=SEED_LETTER_SLUG, status="delivered"))
    OrganizationFactory.create_batch(2, issue_areas=["privacy"])
    return org


def count(db, model):
    """Rows in a table."""
    return db.session.scalar(select(func.count()).select_from(model))


def test_contacts_import_creates_contacts_and_matches_organizations(runner, mijente, db, tmp_path):
    organizations = count(db, Organization)
    path = write(tmp_path, "c.csv", "E-mail,First,Last,Organization Name\r\n"
                                    "ana@example.org,Ana,Sample,Mijente\r\n"
                                    "BOB@Example.ORG,Bob,Sample,A Brand New Group\r\n"
                                    "carla@example.org,Carla,Sample,\r\n")
    report = tmp_path / "report.csv"
    result = runner.invoke(args=["import", "contacts", str(path), "--report", str(report)])
    assert result.exit_code == 0, result.output
    assert "3 created" in result.output
    assert "1 new organization: A Brand New Group." in result.output
    rows = list(csv.reader(report.read_text(encoding="utf-8").splitlines()))
    assert rows[0] == ["row", "action", "record", "errors", "organization", "organization_match"]
    assert [r[1] for r in rows[1:]] == ["create", "create", "create"]
    # Where each contact goes: the matched organization, the one the import creates, none.
    assert [r[4:] for r in rows[1:]] == [["Mijente", "same name"], ["A Brand New Group", "new organization"],
                                         ["", ""]]
    bob = db.session.scalar(select(Contact).where(Contact.email == "bob@example.org"))
    assert bob.organization.name == "A Brand New Group"
    ana = db.session.scalar(select(Contact).where(Contact.email == "ana@example.org"))
    assert ana.organization.name == "Mijente"
    assert count(db, Organization) == organizations + 1


def test_errors_abort_everything_without_skip_invalid(runner, mijente, db, tmp_path):
    path = write(tmp_path, "c.csv", "email,first_name,organization\nok@example.org,Ok,Mijente\nnot-an-email,No,X\n")
    result = runner.invoke(args=["import", "contacts", str(path)])
    assert result.exit_code == 1
    assert "not a valid email" in result.output
    assert count(db, Contact) == 0 and count(db, ImportBatch) == 0
    result = runner.invoke(args=["import", "contacts", str(path), "--skip-invalid"])
    assert result.exit_code == 0, result.output
    assert count(db, Contact) == 1


def test_a_rolled_back_import_reports_new_records_not_ids(runner, mijente, db, tmp_path, monkeypatch):
    # The bad row comes in a later chunk than the good ones, after they were inserted (and given ids).
    monkeypatch.setattr("crm.imports.running.CHUNK_ROWS", 2)
    path = write(tmp_path, "c.csv", "email,first_name,organization\nok@example.org,Ok,Mijente\n"
                                    "new@example.org,New,A Brand New Group\nnot-an-email,No,X\n")
    report = tmp_path / "report.csv"
    result = runner.invoke(args=["import", "contacts", str(path), "--report", str(report)])
    assert result.exit_code == 1 and "not a valid email" in result.output
    rows = list(csv.reader(report.read_text(encoding="utf-8").splitlines()))[1:]
    assert [r[:3] for r in rows] == [["2", "create", "new contact (ok@example.org)"],
                                     ["3", "create", "new contact (new@example.org)"], ["4", "error", ""]]
    assert count(db, Contact) == 0
    result = runner.invoke(args=["import", "contacts", str(path), "--report", str(report), "--skip-invalid"])
    assert result.exit_code == 0, result.output
    ok = db.session.scalar(select(Contact).where(Contact.email == "ok@example.org"))
    rows = list(csv.reader(report.read_text(encoding="utf-8").splitlines()))[1:]
    assert rows[0][:3] == ["2", "create", f"contact {ok.id} (ok@example.org)"]


def test_dry_run_changes_nothing(runner, mijente, db, tmp_path):
    organizations = count(db, Organization)
    path = write(tmp_path, "o.csv", "name;state;issue_areas\nNew Org;NY;privacy\n")
    result = runner.invoke(args=["import", "orgs", str(path), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "1 created" in result.output and "Dry run" in result.output
    assert count(db, Organization) == organizations
    result = runner.invoke(args=["import", "orgs", str(path)])
    assert result.exit_code == 0, result.output
    org = db.session.scalar(select(Organization).where(Organization.name == "New Org"))
    assert org.state == "NY" and [a.slug for a in org.issue_areas] == ["privacy"]


def test_saved_mapping_by_name_and_unknown_mapping(runner, db, tmp_path):
    from crm.imports.mappings import save_mapping

    save_mapping("contacts", "Partners", ["Courriel", "Prénom"], ["email", "first_name"])
    path = write(tmp_path, "c.csv", "Courriel,Prénom\na@example.org,Ana\n")
    assert runner.invoke(args=["import", "contacts", str(path)]).exit_code == 1
    result = runner.invoke(args=["import", "contacts", str(path), "--mapping", "Nope"])
    assert result.exit_code == 1 and "no saved contacts mapping called 'Nope' (Partners)" in result.output
    result = runner.invoke(args=["import", "contacts", str(path), "--mapping", "Partners"])
    assert result.exit_code == 0, result.output
    assert db.session.scalar(select(Contact.first_name)) == "Ana"


def test_missing_file_and_unwritable_report(runner, app, tmp_path):
    result = runner.invoke(args=["import", "orgs", str(tmp_path / "nope.csv")])
    assert result.exit_code == 1 and "no such file" in result.output
    path = write(tmp_path, "o.csv", "name\nX\n")
    result = runner.invoke(args=["import", "orgs", str(path), "--report", str(tmp_path / "no" / "r.csv")])
    assert result.exit_code == 1 and "cannot write" in result.output


def test_export_contacts_matrix_and_suppressions(runner, mijente, db, tmp_path):
    from crm.mailmerge.models import Suppression

    # A cell is data: "=Ana" is imported as that text (and exported neutralized); "'=Ana", as our exports write
    # it, is read back as the same text.
    path = write(tmp_path, "c.csv", "email,first_name,organization,phone\na@example.org,=Ana,Mijente,+1 202 555 0100\n"
                                    "b@example.org,'=Ana,,\n")
    assert runner.invoke(args=["import", "contacts", str(path)]).exit_code == 0
    assert set(db.session.scalars(select(Contact.first_name))) == {"=Ana"}
    db.session.execute(Contact.__table__.delete().where(Contact.email == "b@example.org"))
    db.session.add(Suppression(email="=gone@example.org", reason="manual"))
    db.session.commit()
    contacts = runner.invoke(args=["export", "contacts", "--issue-area", "immigration"]).output.splitlines()
    assert contacts[0] == ("id,first_name,last_name,title,email,phone,organization,organization_id,is_primary,"
                           "status,mailable")
    assert contacts[1].split(",")[1:8] == ["'=Ana", "", "", "a@example.org", "'+1 202 555 0100", "Mijente",
                                           contacts[1].split(",")[7]]
    assert runner.invoke(args=["export", "contacts", "--issue-area", "labor", "--match", "none",
                               "--state", "ZZ"]).exit_code == 1
    matrix = runner.invoke(args=["export", "matrix", "-q", "mijente"]).output.splitlines()
    assert matrix == ["organization,dhs-clearview-ai-2021", "Mijente,signed"]
    suppressions = runner.invoke(args=["export", "suppressions"]).output.splitlines()
    assert suppressions[1].startswith("'=gone@example.org,manual,")
    # and the contacts export imports back unchanged
    out = tmp_path / "contacts.csv"
    runner.invoke(args=["export", "contacts", "-o", str(out)])
    result = runner.invoke(args=["import", "contacts", str(out), "--on-duplicate", "overwrite"])
    assert result.exit_code == 0 and "0 created, 0 updated, 1 duplicate skipped, 0 rows with errors." in result.output


def test_command_line_exports_are_audited_with_the_options_given(runner, mijente, db):
    from crm.audit.models import AuditEvent

    for args in (["orgs", "--issue-area", "immigration"], ["contacts"], ["signatures"], ["matrix"],
                 ["suppressions"]):
        assert runner.invoke(args=["export", *args]).exit_code == 0
    summaries = list(db.session.scalars(select(AuditEvent.summary).where(AuditEvent.action == "export")
                                        .order_by(AuditEvent.id)))
    assert summaries == ["Exported organizations as CSV from the command line with filters "
                         "{'issue_area': ['immigration']}.",
                         *(f"Exported {what} as CSV from the command line." for what in
                           ("contacts", "signatures", "participation matrix", "suppressions"))]
