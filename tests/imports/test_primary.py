"""One active primary contact per organization: the database, the API, the pages, imports and merges agree."""

import pytest
import sqlalchemy as sa
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from crm.auth.services import create_token
from crm.contacts.models import Contact
from crm.organizations.models import Organization


def _org(db, name="Mijente"):
    """An organization by name."""
    return db.session.scalar(select(Organization).where(Organization.name == name))


def _primaries(db, org_id):
    """Emails of the organization's active primary contacts."""
    db.session.expire_all()
    return sorted(db.session.scalars(select(Contact.email).where(Contact.organization_id == org_id,
                                                                 Contact.is_primary.is_(True),
                                                                 Contact.status == "active")))


def test_the_database_refuses_a_second_active_primary(seeded, db):
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


def test_api_setting_a_new_primary_demotes_the_old_one_and_says_so(seeded, db, api):
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


def test_api_primary_without_an_organization_is_a_clear_400(seeded, db, api):
    client, auth = api
    response = client.post("/api/v1/contacts", json={"email": "solo@example.org", "is_primary": True},
                           headers=auth)
    assert response.status_code == 400 and "without an organization" in response.json["errors"]["is_primary"][0]
    assert db.session.scalar(select(func.count(Contact.id))) == 0


def test_the_contact_page_says_whom_a_new_primary_replaced(seeded, db, as_role):
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
