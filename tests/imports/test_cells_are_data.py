"""Cells are data: text that starts like a formula imports as that text, and every export neutralizes it."""

import csv
import io

from openpyxl import load_workbook
from sqlalchemy import select

from crm.contacts.models import Contact
from crm.imports.fields import suggest_mapping
from crm.imports.options import ImportOptions
from crm.imports.reader import sniff
from crm.imports.running import run_import
from crm.letters.models import Signature
from crm.organizations.models import Organization
from crm.seed import SEED_LETTER_SLUG
from tests.factories import LetterFactory, OrganizationFactory, SignatureFactory
from tests.imports.test_wizard import fetch

ORGS = ('name,acronym,city,notes\n'
        '@signal collective,-UP,+Springfield,- met at the 2021 convening\n')
CONTACTS = ('email,first_name,last_name,title,organization,notes\n'
            'ana@example.org,=1+1,@ana,- met at the 2021 convening,@signal collective,@upturn on social\n'
            'bo@example.org,"=HYPERLINK(""http://x"",""y"")",Bo,+cmd|\' /C calc\'!A0,@signal collective,=1+1\n')
SIGNATURES = "organization,listed_as,role\n@signal collective,=1+1 Coalition,signatory\n"
RISKY = ("=", "+", "-", "@", "\t", "\r")


def _import(runner, tmp_path, kind, text, *extra):
    path = tmp_path / f"{kind}.csv"
    path.write_text(text)
    result = runner.invoke(args=["import", kind, str(path), *extra])
    assert result.exit_code == 0, result.output


def _unsafe(cells):
    """Cells a spreadsheet would run as a formula."""
    return [c for c in cells if isinstance(c, str) and c.startswith(RISKY)]


def test_formula_like_cells_import_as_text_and_every_export_neutralizes_them(runner, db, tmp_path, as_role):
    SignatureFactory(letter=LetterFactory(slug=SEED_LETTER_SLUG, status="delivered"))  # a letter, a signer
    _import(runner, tmp_path, "orgs", ORGS)
    _import(runner, tmp_path, "contacts", CONTACTS)
    path = tmp_path / "signatures.csv"
    path.write_text(SIGNATURES)
    result = run_import(path, ImportOptions(kind="signatures", columns=suggest_mapping(
        "signatures", sniff(path).header), letter_slug=SEED_LETTER_SLUG))
    assert result.committed and result.created == 1
    org = db.session.scalar(select(Organization).where(Organization.name == "@signal collective"))
    assert (org.acronym, org.city, org.notes) == ("-UP", "+Springfield", "- met at the 2021 convening")
    ana = db.session.scalar(select(Contact).where(Contact.email == "ana@example.org"))
    assert (ana.first_name, ana.last_name, ana.title, ana.notes) == (
        "=1+1", "@ana", "- met at the 2021 convening", "@upturn on social")
    assert ana.organization_id == org.id
    assert db.session.scalar(select(Signature.listed_name).where(Signature.organization_id == org.id)) == \
        "=1+1 Coalition"
    client = as_role("organizer")
    expected = {"'@signal collective", "'-UP", "'+Springfield", "'=1+1", "'@ana", "'- met at the 2021 convening",
                "'=1+1 Coalition"}
    seen: set[str] = set()
    downloads = [f"/exports/{what}.{fmt}{extra}" for what in ("orgs", "contacts", "signatures", "matrix")
                 for fmt, extra in (("csv", ""), ("csv", "?excel=1"), ("xlsx", ""))]
    downloads += ["/contacts/export.csv", f"/letters/{SEED_LETTER_SLUG}/signatories.csv"]
    for url in downloads:
        response = fetch(client, url)
        assert response.status_code == 200, url
        if ".xlsx" in url:
            sheet = load_workbook(io.BytesIO(response.data_bytes)).active
            cells = [cell for row in sheet.iter_rows() for cell in row]
            assert not [c for c in cells if c.data_type == "f"], url
            values = [c.value for c in cells]
        else:
            values = [v for row in csv.reader(io.StringIO(response.data_bytes.decode("utf-8-sig"))) for v in row]
        assert _unsafe(values) == [], (url, _unsafe(values))
        seen.update(v for v in values if isinstance(v, str))
    for what in ("orgs", "contacts", "signatures", "matrix"):
        output = runner.invoke(args=["export", what]).output
        values = [v for row in csv.reader(io.StringIO(output)) for v in row]
        assert _unsafe(values) == [], (what, _unsafe(values))
        seen.update(values)
    assert expected <= seen, expected - seen


def test_a_contacts_file_uploaded_as_organizations_is_recognized_with_a_one_click_switch(as_role, db):
    OrganizationFactory(name="Mijente")
    from tests.imports.test_corpus import suggested
    from tests.imports.test_wizard import token_of, upload

    client = as_role("organizer")
    contacts_file = b"Email,First name,Last name,Organization\nana@example.org,Ana,Ruiz,Mijente\n"
    token = token_of(upload(client, contacts_file, kind="orgs"))
    page = client.get(f"/imports/u/{token}/mapping").get_data(as_text=True)
    assert "This looks like a contacts file" in page and "Import it as contacts" in page
    response = client.post(f"/imports/u/{token}/kind", data={"kind": "contacts"})
    assert response.status_code == 303 and response.headers["Location"].endswith(f"/imports/u/{token}/mapping")
    page = client.get(f"/imports/u/{token}/mapping").get_data(as_text=True)
    assert "This looks like" not in page and "Contacts" in page
    assert suggested(page) == {"col_0": "email", "col_1": "first_name", "col_2": "last_name",
                               "col_3": "organization"}
    assert client.post(f"/imports/u/{token}/mapping", data=suggested(page)).status_code == 303
    assert client.post(f"/imports/u/{token}/preview", data={"on_duplicate": "skip", "commit": "Import"}
                       ).status_code == 303
    assert db.session.scalar(select(Contact.first_name).where(Contact.email == "ana@example.org")) == "Ana"
    # …and the other way round; a switch to anything else is refused.
    token = token_of(upload(client, b"Organization name,State,Website\nNew Group,NY,example.org\n",
                            kind="contacts"))
    page = client.get(f"/imports/u/{token}/mapping").get_data(as_text=True)
    assert "This looks like a file of organizations" in page
    assert client.post(f"/imports/u/{token}/kind", data={"kind": "users"}).status_code == 400
    assert client.post(f"/imports/u/{token}/kind", data={"kind": "orgs"}).status_code == 303
    # A file that fits its kind gets no hint.
    token = token_of(upload(client, b"email,first_name\nx@example.org,X\n"))
    assert "This looks like" not in client.get(f"/imports/u/{token}/mapping").get_data(as_text=True)
