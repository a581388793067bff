"""The import wizard through the pages: upload, map, preview, import, report, undo; and the export downloads."""

import csv
import io
import re

import pytest
from sqlalchemy import func, select

from crm.audit.models import AuditEvent
from crm.contacts.models import Contact
from crm.imports.models import ImportBatch, ImportMapping
from crm.organizations.models import Organization
from tests.factories import LetterFactory, OrganizationFactory, SignatureFactory
from tests.imports.test_corpus import suggested

# Import and undo (bulk inserts and deletes): on PostgreSQL too (tests/conftest.py).
pytestmark = pytest.mark.bothdb


def upload(client, content: bytes, kind="contacts", name="people.csv", letter=""):
    """Post a file to step 1; returns the response (303 to the mapping page when accepted)."""
    return client.post("/imports", data={"kind": kind, "letter": letter, "file": (io.BytesIO(content), name)},
                       content_type="multipart/form-data")


def fetch(client, url: str):
    """GET a download, read it and close the response (send_file keeps the file open until then)."""
    response = client.get(url)
    response.data_bytes = response.get_data()
    response.close()
    return response


@pytest.fixture
def letter(db):
    """A delivered letter signed by six organizations, its lead Mijente first; three work on immigration."""
    letter = LetterFactory(slug="clearview", status="delivered")
    for position, (name, areas) in enumerate([
        ("Mijente", ["immigration"]), ("Just Futures Law", ["immigration"]), ("Access Now", ["privacy"]),
        ("Upturn", ["civil-rights"]), ("Detention Watch Network", ["immigration"]), ("Free Press", ["media"]),
    ]):
        SignatureFactory(letter=letter, organization=OrganizationFactory(name=name, issue_areas=areas),
                         role="lead" if position == 0 else "signatory", position=0 if position == 0 else None)
    return letter


def token_of(response) -> str:
    """The upload token from the redirect to the mapping page."""
    return re.search(r"/imports/u/([0-9a-f]{32})/mapping", response.headers["Location"]).group(1)


def test_whole_wizard_with_a_corrected_mapping_then_undo(as_role, db):
    OrganizationFactory(name="Mijente")
    OrganizationFactory(name="Just Futures Law")
    client = as_role("organizer")
    content = ("Courriel;Prénom;Nom;Org\n"
               "ana@example.org;Ana;Sample;Mijente\n"
               "luis@example.org;Luis;Sample;Just Futures Law\n").encode("cp1252")
    response = upload(client, content)
    assert response.status_code == 303
    token = token_of(response)
    page = client.get(f"/imports/u/{token}/mapping").get_data(as_text=True)
    assert "Windows-1252" in page and "semicolon" in page and "Prénom" in page
    # 'Courriel' is not a known header: previewing without an email column is refused with a clear message.
    response = client.post(f"/imports/u/{token}/mapping", data={"col_0": "", "col_1": "first_name",
                                                                "col_2": "last_name", "col_3": "organization"})
    assert response.status_code == 400 and "No column is mapped to Email" in response.get_data(as_text=True)
    response = client.post(f"/imports/u/{token}/mapping", data={
        "col_0": "email", "col_1": "first_name", "col_2": "last_name", "col_3": "organization",
        "save_as": "French list"})
    assert response.status_code == 303
    assert db.session.scalar(select(ImportMapping.name)) == "French list"
    preview = client.get(f"/imports/u/{token}/preview").get_data(as_text=True)
    assert "2 to create" in preview and "0 with errors" in preview
    assert db.session.scalar(select(func.count(Contact.id))) == 0
    response = client.post(f"/imports/u/{token}/preview", data={"on_duplicate": "skip", "commit": "Import"})
    assert response.status_code == 303
    batch_page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "2 created" in batch_page
    batch = db.session.scalar(select(ImportBatch))
    report = fetch(client, f"/imports/batches/{batch.id}/report.csv")
    rows = list(csv.reader(io.StringIO(report.data_bytes.decode())))
    assert rows[0] == ["row", "action", "record", "errors", "organization", "organization_match"]
    assert [r[1] for r in rows[1:]] == ["create", "create"]
    assert [r[4:] for r in rows[1:]] == [["Mijente", "same name"], ["Just Futures Law", "same name"]]
    assert db.session.scalar(select(func.count(Contact.id))) == 2
    response = client.post(f"/imports/batches/{batch.id}/undo")
    assert response.status_code == 303
    db.session.expire_all()
    assert db.session.scalar(select(func.count(Contact.id))) == 0
    assert db.session.get(ImportBatch, batch.id).status == "undone"


def test_an_import_that_fails_reports_new_records_not_rolled_back_ids(as_role, db):
    client = as_role("organizer")
    token = token_of(upload(client, b"email,first_name\nok@example.org,Ok\nnot-an-email,No\n"))
    client.post(f"/imports/u/{token}/mapping", data={"col_0": "email", "col_1": "first_name"})
    response = client.post(f"/imports/u/{token}/preview", data={"on_duplicate": "skip", "commit": "Import"})
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "Nothing was imported" in page
    assert "new contact (ok@example.org)" in page and not re.search(r"contact \d+ \(", page)
    report = fetch(client, f"/imports/u/{token}/report.csv")
    rows = list(csv.reader(io.StringIO(report.data_bytes.decode())))
    assert rows[1][:3] == ["2", "create", "new contact (ok@example.org)"]
    assert db.session.scalar(select(func.count(Contact.id))) == 0


def test_undo_restores_changed_fields(as_role, letter, db):
    client = as_role("organizer")
    organizations = db.session.scalar(select(func.count(Organization.id)))
    mijente = db.session.scalar(select(Organization).where(Organization.name == "Mijente"))
    assert mijente.city is None
    token = token_of(upload(client, b"name,city,state\nMijente,Phoenix,AZ\n", kind="orgs"))
    client.post(f"/imports/u/{token}/mapping", data={"col_0": "name", "col_1": "city", "col_2": "state"})
    response = client.post(f"/imports/u/{token}/preview", data={"on_duplicate": "fill", "commit": "Import"})
    assert response.status_code == 303
    db.session.expire_all()
    assert (mijente.city, mijente.state) == ("Phoenix", "AZ")
    batch = db.session.scalar(select(ImportBatch))
    client.post(f"/imports/batches/{batch.id}/undo")
    db.session.expire_all()
    assert (mijente.city, mijente.state) == (None, None)
    assert db.session.scalar(select(func.count(Organization.id))) == organizations


def test_another_users_upload_token_is_not_found(as_role, users):
    client = as_role("organizer")
    token = token_of(upload(client, b"email\na@example.org\n"))
    admin = as_role("admin")
    assert admin.get(f"/imports/u/{token}/mapping").status_code == 404
    assert admin.get("/imports/u/..%2F..%2Fetc%2Fpasswd/mapping").status_code == 404


def test_viewers_cannot_import(as_role):
    assert as_role("viewer").get("/imports").status_code == 403


def test_exports_download_with_filters_and_are_audited(as_role, letter, db):
    client = as_role("viewer")
    response = fetch(client, "/exports/orgs.csv?issue_area=immigration")
    assert response.status_code == 200
    names = [row["name"] for row in csv.DictReader(io.StringIO(response.data_bytes.decode()))]
    assert names == ["Detention Watch Network", "Just Futures Law", "Mijente"]
    excel = fetch(client, "/exports/orgs.csv?excel=1").data_bytes
    assert excel.startswith("\ufeff".encode()) and b"\r\n" in excel
    xlsx = fetch(client, "/exports/matrix.xlsx")
    assert xlsx.status_code == 200 and xlsx.data_bytes[:2] == b"PK"
    matrix = list(csv.reader(io.StringIO(fetch(client, "/exports/matrix.csv").data_bytes.decode())))
    assert matrix[0] == ["organization", letter.slug] and len(matrix) == 7
    assert {row[1] for row in matrix[1:]} == {"signed"}
    sigs = fetch(client, f"/exports/signatures.csv?letter={letter.slug}").data_bytes.decode()
    assert sigs.splitlines()[1].startswith(f"{letter.slug},Mijente")  # the lead first
    assert client.get("/exports/orgs.csv?issue_area=no-such-area").status_code == 400
    assert client.get("/exports/suppressions.csv").status_code == 403
    assert client.get("/exports/nothing.csv").status_code == 404
    assert db.session.scalar(select(func.count(AuditEvent.id)).where(AuditEvent.action == "export")) == 5


def test_list_pages_link_to_exports_with_their_filters(as_role, letter):
    client = as_role("organizer")
    page = client.get("/organizations?issue_area=privacy&state=NY").get_data(as_text=True)
    assert "/exports/orgs.csv?issue_area=privacy&amp;state=NY" in page
    assert "/exports/contacts.csv" in client.get("/contacts").get_data(as_text=True)
    assert "/exports/suppressions.csv" in client.get("/suppressions").get_data(as_text=True)
    page = client.get(f"/letters/{letter.slug}").get_data(as_text=True)
    assert f"/exports/signatures.csv?letter={letter.slug}" in page


def test_signatures_of_a_letter_through_the_wizard_round_trip_and_undo(as_role, letter, db):
    from crm.letters.models import Signature

    client = as_role("organizer")
    exported = fetch(client, f"/exports/signatures.csv?letter={letter.slug}").data_bytes
    content = exported + f"{letter.slug},A New Sample Group,A New Sample Group,signatory,confirmed,,import\n".encode()
    response = upload(client, content, kind="signatures", name="signers.csv", letter=letter.slug)
    token = token_of(response)
    page = client.get(f"/imports/u/{token}/mapping").get_data(as_text=True)
    response = client.post(f"/imports/u/{token}/mapping", data=suggested(page))
    assert response.status_code == 303, response.get_data(as_text=True)
    preview = client.get(f"/imports/u/{token}/preview").get_data(as_text=True)
    assert "1 to create" in preview and "6 duplicates to skip" in preview and "0 with errors" in preview
    before = db.session.scalar(select(func.count(Signature.id)))
    response = client.post(f"/imports/u/{token}/preview", data={"on_duplicate": "overwrite", "commit": "Import"})
    assert response.status_code == 303
    batch = db.session.scalar(select(ImportBatch))
    assert (batch.kind, batch.created, batch.updated, batch.skipped) == ("signatures", 1, 0, 6)
    assert db.session.scalar(select(func.count(Signature.id))) == before + 1
    assert db.session.scalar(select(Organization.id).where(Organization.name == "A New Sample Group"))
    client.post(f"/imports/batches/{batch.id}/undo")
    db.session.expire_all()
    assert db.session.scalar(select(func.count(Signature.id))) == before
    assert db.session.scalar(select(Organization.id).where(Organization.name == "A New Sample Group")) is None


COALITION = ("First Name,Email Address,Organization\n"
             "María,maria@example.org,ACLU\n"
             "Dana,dana@example.org,Electronic Frontier Foundation\n"
             "Ana,ana@example.org,Mijente Support Committee\n"
             "Chris,chris@example.org,Surveillance Resistance Lab\n"
             "Sam,sam@example.org,\n").encode()


@pytest.fixture
def aclu(db):
    """The American Civil Liberties Union, known as ACLU too; and EFF."""
    from crm.organizations.editing import add_alias

    org = OrganizationFactory(name="American Civil Liberties Union")
    add_alias(org, "ACLU")
    OrganizationFactory(name="Electronic Frontier Foundation")
    db.session.commit()
    return org


def test_the_preview_says_where_each_contact_goes_and_which_organizations_it_creates(as_role, aclu, db):
    """Before, the preview, its report and the import's page said only "new contact (…)", and the two new
    organizations appeared unannounced."""
    client = as_role("organizer")
    token = token_of(upload(client, COALITION))
    client.post(f"/imports/u/{token}/mapping", data=suggested(client.get(f"/imports/u/{token}/mapping")
                                                              .get_data(as_text=True)))
    for _ in ("computed", "kept"):  # the second GET shows the kept preview
        page = client.get(f"/imports/u/{token}/preview").get_data(as_text=True)
        # Under the file's organization cell: where the contact goes, and how the name found it.
        assert re.search(r'ACLU<div class="org-outcome">→ <span class="visually-hidden">goes to </span><strong>'
                         r'American Civil Liberties Union</strong>\s*<span class="text-body-secondary">· matched by '
                         r'alias</span>', page)
        assert re.search(r'id="new-organizations-count">2 new organizations<', page)
        assert re.search(r"will create 2 new organizations, named as in the file:\s*<strong>Mijente Support "
                         r"Committee</strong>, <strong>Surveillance Resistance Lab</strong>", page)
        table = page[page.index('id="preview-table"'):]
        assert table.count('badge text-bg-info">new organization<') == 2 and table.count("org-outcome") == 4
    rows = list(csv.reader(io.StringIO(fetch(client, f"/imports/u/{token}/report.csv").data_bytes.decode())))
    assert [r[4:] for r in rows[1:]] == [["American Civil Liberties Union", "matched by alias"],
                                         ["Electronic Frontier Foundation", "same name"],
                                         ["Mijente Support Committee", "new organization"],
                                         ["Surveillance Resistance Lab", "new organization"], ["", ""]]
    response = client.post(f"/imports/u/{token}/preview", data={"on_duplicate": "skip", "commit": "Import"})
    assert response.status_code == 303
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "2 new organizations: Mijente Support Committee, Surveillance Resistance Lab." in page  # the flash
    assert re.search(r'id="new-organizations-count">2 new organizations<', page)
    created = dict(db.session.execute(select(Organization.name, Organization.id).where(Organization.name.in_(
        ["Mijente Support Committee", "Surveillance Resistance Lab"]))).all())
    for name, org_id in created.items():
        assert f'<a href="/organizations/{org_id}">{name}</a>' in page
    assert "matched by alias" in page  # the report's rows below
    batch = db.session.scalar(select(ImportBatch))
    rows = list(csv.reader(io.StringIO(fetch(client, f"/imports/batches/{batch.id}/report.csv").data_bytes
                                       .decode())))
    assert rows[3][4:] == ["Mijente Support Committee", "new organization"]
    client.post(f"/imports/batches/{batch.id}/undo")
    page = client.get(f"/imports/batches/{batch.id}").get_data(as_text=True)
    assert "It had created 2 new organizations." in page


def test_an_organizations_import_counts_no_new_organizations_beside_its_rows(as_role, db):
    client = as_role("organizer")
    token = token_of(upload(client, b"name\nFresh Coalition\n", kind="orgs"))
    client.post(f"/imports/u/{token}/mapping", data={"col_0": "name"})
    page = client.get(f"/imports/u/{token}/preview").get_data(as_text=True)
    assert "1 to create" in page and "new organizations" not in page and "org-outcome" not in page


def test_the_api_report_names_each_rows_organization(client, aclu, users, db):
    from crm.auth.services import create_token

    headers = {"Authorization": f"Bearer {create_token(users['organizer'].email).secret}"}
    body = client.post("/api/v1/imports", headers=headers, content_type="multipart/form-data", data={
        "kind": "contacts", "dry_run": "true", "file": (io.BytesIO(COALITION), "c.csv")}).get_json()
    assert body["new_organizations"] == 2 and body["created"] == 5
    assert body["report"][0]["record"] == "new contact (maria@example.org)"  # as before
    assert body["report"][0]["organization"] == {"id": aclu.id, "name": "American Civil Liberties Union",
                                                 "match": "alias", "confidence": 1.0, "new": False}
    assert body["report"][2]["organization"] == {"id": None, "name": "Mijente Support Committee", "match": "new",
                                                 "confidence": 1.0, "new": True}
    assert body["report"][4]["organization"] is None
    body = client.post("/api/v1/imports", headers=headers, content_type="multipart/form-data", data={
        "kind": "contacts", "file": (io.BytesIO(COALITION), "c.csv")}).get_json()
    assert body["committed"] and body["new_organizations"] == 2
    assert body["report"][2]["organization"]["id"] == db.session.scalar(
        select(Organization.id).where(Organization.name == "Mijente Support Committee"))
