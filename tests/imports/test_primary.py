"""One active primary contact per organization: the database, the API, the pages, imports and merges agree."""

import pytest
import sqlalchemy as sa
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from crm.auth.services import create_token
from crm.contacts.models import Contact
from crm.organizations.models import Organization
from tests.factories import OrganizationFactory


@pytest.fixture
def partners(db):
    """Mijente and Just Futures Law, the organizations these tests give contacts."""
    OrganizationFactory(name="Mijente")
    OrganizationFactory(name="Just Futures Law")


def _org(db, name="Mijente"):
    """An organization by name."""
    return db.session.scalar(select(Organization).where(Organization.name == name))


def _primaries(db, org_id):
    """Emails of the organization's active primary contacts."""
    db.session.expire_all()
    return sorted(db.session.scalars(select(Contact.email).where(Contact.organization_id == org_id,
                                                                 Contact.is_primary.is_(True),
                                                                 Contact.status == "active")))


def test_the_database_refuses_a_second_active_primary(partners, db):
    org = _org(db)
    db.session.add_all([Contact(email="one@example.org", organization_id=org.id, is_primary=True),
                        Contact(email="gone@example.org", organization_id=org.id, is_primary=True, status="left"),
                        Contact(email="other@example.org", organization_id=_org(db, "Just Futures Law").id,
                                is_primary=True)])
    db.session.commit()  # a primary who left, and another organization's primary, are no clash
    db.session.add(Contact(email="two@example.org", organization_id=org.id, is_primary=True))
    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()


@pytest.fixture
def api(app, users):
    """A client and the organizer's bearer header."""
    token = create_token("organizer@example.org").secret
    return app.test_client(), {"Authorization": f"Bearer {token}"}


def test_api_setting_a_new_primary_demotes_the_old_one_and_says_so(partners, db, api):
    client, auth = api
    org = _org(db)
    first = client.post("/api/v1/contacts", json={"email": "ana@example.org", "first_name": "Ana",
                                                  "organization_id": org.id, "is_primary": True}, headers=auth)
    assert first.status_code == 201 and first.json["is_primary"] and first.json.get("replaced_primary") is None
    second = client.post("/api/v1/contacts", json={"email": "bo@example.org", "first_name": "Bo",
                                                   "organization_id": org.id, "is_primary": True}, headers=auth)
    assert second.status_code == 201
    assert second.json["replaced_primary"] == {"id": first.json["id"], "name": "Ana"}
    assert _primaries(db, org.id) == ["bo@example.org"]
    # Back to the first (a lower id than the current primary: the demotion must be written first).
    ana = client.get(f"/api/v1/contacts/{first.json['id']}", headers=auth).json
    assert "replaced_primary" not in ana
    back = client.patch(f"/api/v1/contacts/{ana['id']}", json={"is_primary": True, "version": ana["version"]},
                        headers=auth)
    assert back.status_code == 200 and back.json["replaced_primary"]["name"] == "Bo"
    assert _primaries(db, org.id) == ["ana@example.org"]
    # Moving the primary to another organization takes the primary role there, in that one's place.
    nyclu = _org(db, "Just Futures Law")
    client.post("/api/v1/contacts", json={"email": "jf@example.org", "organization_id": nyclu.id,
                                          "is_primary": True}, headers=auth)
    moved = client.patch(f"/api/v1/contacts/{ana['id']}", json={"organization_id": nyclu.id, "is_primary": True,
                                                                "version": back.json["version"]}, headers=auth)
    assert moved.status_code == 200 and moved.json["replaced_primary"]["id"]
    assert _primaries(db, nyclu.id) == ["ana@example.org"] and _primaries(db, org.id) == []


def test_api_primary_without_an_organization_is_a_clear_400(db, api):
    client, auth = api
    response = client.post("/api/v1/contacts", json={"email": "solo@example.org", "is_primary": True},
                           headers=auth)
    assert response.status_code == 400 and "without an organization" in response.json["errors"]["is_primary"][0]
    assert db.session.scalar(select(func.count(Contact.id))) == 0


def test_the_contact_page_says_whom_a_new_primary_replaced(partners, db, as_role):
    client = as_role("organizer")
    org = _org(db)
    old = Contact(email="old@example.org", first_name="Olga", organization_id=org.id, is_primary=True)
    new = Contact(email="new@example.org", first_name="Nina", organization_id=org.id)
    db.session.add_all([old, new])
    db.session.commit()
    response = client.post(f"/contacts/{new.id}/primary", data={"version": str(new.version)},
                           follow_redirects=True)
    page = response.get_data(as_text=True)
    assert "Nina is now the primary contact of Mijente, in place of Olga" in page
    assert _primaries(db, org.id) == ["new@example.org"]


def test_migration_keeps_one_active_primary_per_organization(tmp_path):
    from flask_migrate import upgrade

    from crm import create_app
    from crm.extensions import db
    from tests.conftest import base_config

    app = create_app(base_config(f"sqlite:///{tmp_path / 'm.sqlite3'}"))
    with app.app_context():
        upgrade(revision="0006_signed_counts")
        with db.engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO organizations (id, name, sort_name, search_text, notes, archived, "
                                 "version, created_at, updated_at, letters_signed) VALUES "
                                 "(1, 'A', 'a', 'a', '', 0, 1, '2026-01-01', '2026-01-01', 0), "
                                 "(2, 'B', 'b', 'b', '', 0, 1, '2026-01-01', '2026-01-01', 0)"))
            for cid, org, primary, status in ((5, 1, 1, "active"), (3, 1, 1, "active"), (4, 1, 1, "left"),
                                              (7, 1, 1, "active"), (6, 2, 1, "active"), (8, 2, 0, "active")):
                conn.execute(sa.text("INSERT INTO contacts (id, organization_id, first_name, last_name, title, "
                                     "email, phone, is_primary, status, notes, version, created_at, updated_at) "
                                     "VALUES (:id, :org, '', '', '', :email, '', :p, :s, '', 1, '2026-01-01', "
                                     "'2026-01-01')"), {"id": cid, "org": org, "email": f"c{cid}@example.org",
                                                        "p": primary, "s": status})
        upgrade()
        with db.engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT id FROM contacts WHERE is_primary ORDER BY id")).scalars().all()
        assert rows == [3, 4, 6]  # the first active primary of A, A's primary who left, and B's only one
        db.engine.dispose()


def _import(path, primary="keep", dry_run=False, **options):
    """Import contacts with the suggested mapping; (result, {row: record text})."""
    from crm.imports.fields import suggest_mapping
    from crm.imports.options import ImportOptions
    from crm.imports.reader import sniff
    from crm.imports.running import run_import

    info = sniff(path)
    records = {}
    result = run_import(path, ImportOptions(
        kind="contacts", columns=suggest_mapping("contacts", info.header), primary=primary, dry_run=dry_run,
        **options), on_row=lambda o, c: records.__setitem__(o.row, (o.action, o.record, o.error_text)))
    return result, records


FILE = ("email,first_name,last_name,organization,primary\n"
        "nina@example.org,Nina,New,Mijente,yes\n"
        "jo@example.org,Jo,Fresh,Brand New Group,yes\n"
        "kim@example.org,Kim,Fresh,Brand New Group,yes\n")


@pytest.mark.parametrize("primary", ["keep", "replace"])
def test_an_import_keeps_one_primary_per_organization_and_says_which(partners, db, tmp_path, primary, monkeypatch):
    from crm.imports.batches import undo_import
    from crm.mailmerge.audience import contacts_query

    monkeypatch.setattr("crm.imports.running.CHUNK_ROWS", 2)  # the second new primary of Brand New Group is in chunk 2
    org = _org(db)
    db.session.add(Contact(email="olga@example.org", first_name="Olga", last_name="Old", organization_id=org.id,
                           is_primary=True))
    db.session.commit()
    path = tmp_path / "c.csv"
    path.write_text(FILE)
    preview, rows = _import(path, primary, dry_run=True)
    assert preview.created == 3 and preview.errors == 0
    if primary == "keep":
        assert "Olga Old stays the primary contact of Mijente" in rows[2][1]
        assert "Jo Fresh stays the primary contact of Brand New Group" in rows[4][1]
    else:
        assert "replaces Olga Old as the primary contact of Mijente" in rows[2][1]
        assert "replaces Jo Fresh as the primary contact of Brand New Group" in rows[4][1]
    assert _primaries(db, org.id) == ["olga@example.org"]  # a preview changes nothing
    done, done_rows = _import(path, primary)
    assert done.committed and [r[0] for r in done_rows.values()] == ["create"] * 3
    new_group = _org(db, "Brand New Group")
    expected = {"keep": (["olga@example.org"], ["jo@example.org"]),
                "replace": (["nina@example.org"], ["kim@example.org"])}[primary]
    assert (_primaries(db, org.id), _primaries(db, new_group.id)) == expected
    assert db.session.scalar(select(func.count(Contact.id)).where(Contact.email == "olga@example.org")) == 1
    # A "primary contacts" merge reaches each organization once.
    org_ids = db.session.scalars(select(Contact.organization_id).where(
        Contact.id.in_(contacts_query({"filter": {}, "contacts": "primary"}).with_only_columns(Contact.id)
                       .scalar_subquery()))).all()
    assert len(org_ids) == len(set(org_ids)) == 2
    # Undo restores who was primary.
    undo_import(done.batch_id)
    assert _primaries(db, org.id) == ["olga@example.org"]


def test_updating_existing_contacts_moves_the_primary_role_in_file_order(partners, db, tmp_path):
    org = _org(db)
    olga = Contact(email="olga@example.org", first_name="Olga", organization_id=org.id, is_primary=True)
    pat = Contact(email="pat@example.org", first_name="Pat", organization_id=org.id)
    db.session.add_all([pat, olga])  # pat has the lower id: the promotion's UPDATE would come first
    db.session.commit()
    path = tmp_path / "u.csv"
    path.write_text("email,organization,primary,status\npat@example.org,Mijente,yes,\nolga@example.org,,,left\n")
    result, rows = _import(path, "replace", on_duplicate="overwrite")
    assert result.committed and result.updated == 2, rows
    assert "replaces Olga as the primary contact of Mijente" in rows[2][1]
    assert _primaries(db, org.id) == ["pat@example.org"]


def test_cli_import_contacts_primary_option(runner, partners, db, tmp_path):
    org = _org(db)
    db.session.add(Contact(email="olga@example.org", first_name="Olga", organization_id=org.id, is_primary=True))
    db.session.commit()
    path = tmp_path / "c.csv"
    path.write_text("email,first_name,organization,primary\nnina@example.org,Nina,Mijente,yes\n")
    report = tmp_path / "r.csv"
    result = runner.invoke(args=["import", "contacts", str(path), "--dry-run", "--primary", "replace",
                                 "--report", str(report)])
    assert result.exit_code == 0, result.output
    assert "replaces Olga as the primary contact of Mijente" in report.read_text()
    result = runner.invoke(args=["import", "contacts", str(path), "--primary", "sideways"])
    assert result.exit_code == 2 and "sideways" in result.output
    result = runner.invoke(args=["import", "contacts", str(path), "--primary", "replace"])
    assert result.exit_code == 0, result.output
    assert _primaries(db, org.id) == ["nina@example.org"]


def test_the_wizard_offers_the_choice_and_shows_it_in_the_preview(partners, db, as_role):
    from tests.imports.test_wizard import token_of, upload

    org = _org(db)
    db.session.add(Contact(email="olga@example.org", first_name="Olga", organization_id=org.id, is_primary=True))
    db.session.commit()
    client = as_role("organizer")
    token = token_of(upload(client, b"email,first_name,organization,primary\nnina@example.org,Nina,Mijente,yes\n"))
    client.post(f"/imports/u/{token}/mapping", data={"col_0": "email", "col_1": "first_name",
                                                     "col_2": "organization", "col_3": "is_primary"})
    page = client.get(f"/imports/u/{token}/preview").get_data(as_text=True)
    assert "Keep the current primary contact" in page and "Olga stays the primary contact of Mijente" in page
    page = client.post(f"/imports/u/{token}/preview", data={"on_duplicate": "skip", "primary": "replace",
                                                            "preview": "x"}).get_data(as_text=True)
    assert "replaces Olga as the primary contact of Mijente" in page
    assert client.post(f"/imports/u/{token}/preview", data={"on_duplicate": "skip", "primary": "replace",
                                                            "commit": "Import"}).status_code == 303
    assert _primaries(db, org.id) == ["nina@example.org"]


def test_api_import_takes_the_primary_choice(partners, db, api):
    import io

    client, auth = api
    org = _org(db)
    db.session.add(Contact(email="olga@example.org", first_name="Olga", organization_id=org.id, is_primary=True))
    db.session.commit()
    body = b"email,first_name,organization,primary\nnina@example.org,Nina,Mijente,yes\n"

    def post(**fields):
        return client.post("/api/v1/imports", headers=auth, content_type="multipart/form-data",
                           data={"kind": "contacts", "file": (io.BytesIO(body), "c.csv"), **fields})

    assert post(primary="sideways").status_code == 400
    preview = post(primary="replace", dry_run="true")
    assert preview.status_code == 200 and "replaces Olga as the primary contact" in preview.json["report"][0]["record"]
    kept = post(primary="keep")
    assert kept.status_code == 200 and "Olga stays the primary contact" in kept.json["report"][0]["record"]
    assert _primaries(db, org.id) == ["olga@example.org"]
