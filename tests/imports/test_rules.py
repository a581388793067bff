"""Import rules a user relies on: suppressions stay, duplicates follow the choice, uncertain matches ask; the API."""

import io

import pytest
from sqlalchemy import func, select

from crm.auth.services import create_token
from crm.contacts.models import Contact
from crm.contacts.queries import mailable_condition
from crm.imports import services
from crm.imports.fields import suggest_mapping
from crm.imports.reader import sniff
from crm.mailmerge.models import Suppression
from crm.organizations.matching import Match

# Bulk inserts, duplicate and suppression matching in SQL: on PostgreSQL too (tests/conftest.py).
pytestmark = pytest.mark.bothdb


def run(path, kind="contacts", **options):
    """Import a file with the suggested mapping."""
    info = sniff(path)
    return services.run_import(path, services.ImportOptions(kind=kind, columns=suggest_mapping(kind, info.header),
                                                            **options))


def test_a_suppressed_contact_in_an_imported_file_stays_suppressed(app, db, tmp_path):
    db.session.add(Suppression(email="gone@example.org", reason="unsubscribed"))
    db.session.commit()
    path = tmp_path / "c.csv"
    path.write_text("email,first_name,status\nGone@Example.org,Gone,active\nhere@example.org,Here,active\n")
    outcomes = []
    result = services.run_import(path, services.ImportOptions(kind="contacts", columns=["email", "first_name",
                                                                                        "status"],
                                                              on_duplicate="overwrite"),
                                 on_row=lambda o, c: outcomes.append(o))
    assert result.committed and result.created == 2
    assert "suppressed" in outcomes[0].record
    assert db.session.scalar(select(Suppression.reason).where(Suppression.email == "gone@example.org")) == \
        "unsubscribed"
    mailable = set(db.session.scalars(select(Contact.email).where(mailable_condition())))
    assert mailable == {"here@example.org"}
    run(path, on_duplicate="overwrite")  # and again, as an update
    assert db.session.scalar(select(func.count(Suppression.id))) == 1
    assert set(db.session.scalars(select(Contact.email).where(mailable_condition()))) == {"here@example.org"}


@pytest.mark.parametrize(("mode", "title", "action"), [("skip", "Old", "duplicate"), ("fill", "Old", "duplicate"),
                                                       ("overwrite", "New", "update")])
def test_duplicate_handling(app, db, tmp_path, mode, title, action):
    db.session.add(Contact(email="a@example.org", first_name="", title="Old"))
    db.session.commit()
    path = tmp_path / "c.csv"
    path.write_text("email,first_name,title\nA@example.org,Ana,New\n")
    outcomes = []
    info = sniff(path)
    services.run_import(path, services.ImportOptions(kind="contacts", columns=suggest_mapping("contacts", info.header),
                                                     on_duplicate=mode), on_row=lambda o, c: outcomes.append(o))
    contact = db.session.scalar(select(Contact))
    db.session.refresh(contact)
    assert contact.title == title
    assert contact.first_name == ("" if mode == "skip" else "Ana")
    assert outcomes[0].action == ("duplicate" if mode == "skip" else "update")
    del action


def test_an_uncertain_organization_match_asks(app, db, tmp_path, monkeypatch, seeded):
    from crm.imports import services as engine

    mijente = db.session.scalar(select(engine.Organization.id).where(engine.Organization.name == "Mijente"))
    monkeypatch.setattr(engine, "match_organization", lambda name: Match(mijente, 0.7, "fuzzy"))
    path = tmp_path / "c.csv"
    path.write_text("email,organization\na@example.org,Mijentte\n")
    result = run(path)
    assert result.errors == 1 and not result.committed
    result = run(path, accept_uncertain=True)
    assert result.committed
    assert db.session.scalar(select(Contact.organization_id)) == mijente


@pytest.fixture
def token(users):
    """An organizer's API token."""
    return create_token(users["organizer"].email).secret


def test_api_import_returns_counts_and_report(client, seeded, token, db):
    headers = {"Authorization": f"Bearer {token}"}
    data = {"kind": "contacts", "dry_run": "true",
            "file": (io.BytesIO(b"email,organization\na@example.org,Mijente\nbad,Mijente\n"), "c.csv")}
    response = client.post("/api/v1/imports", data=data, headers=headers, content_type="multipart/form-data")
    assert response.status_code == 400 and response.mimetype == "application/problem+json", response.get_json()
    assert "row 3" in response.get_json()["errors"]["rows"][0]
    assert "nothing was imported" in response.get_json()["detail"]
    data = {"kind": "contacts", "skip_invalid": "true",
            "file": (io.BytesIO(b"email,organization\na@example.org,Mijente\nbad,Mijente\n"), "c.csv")}
    body = client.post("/api/v1/imports", data=data, headers=headers, content_type="multipart/form-data").get_json()
    assert (body["rows"], body["created"], body["errors"], body["committed"]) == (2, 1, 1, True)
    assert [r["action"] for r in body["report"]] == ["create", "error"]
    png = {"kind": "contacts", "file": (io.BytesIO(b"\x89PNG\r\n\x1a\n...."), "x.png")}
    response = client.post("/api/v1/imports", data=png, headers=headers, content_type="multipart/form-data")
    assert response.status_code == 400 and "PNG" in response.get_json()["detail"]
    response = client.post("/api/v1/imports", data={"kind": "planets"}, headers=headers,
                           content_type="multipart/form-data")
    assert response.status_code == 400 and "kind" in response.get_json()["errors"]
    assert db.session.scalar(select(func.count(Contact.id))) == 1


def test_a_skipped_duplicate_does_not_create_its_organization(app, db, tmp_path):
    from crm.organizations.models import Organization

    db.session.add(Contact(email="a@example.org"))
    db.session.commit()
    path = tmp_path / "c.csv"
    path.write_text("email,organization\na@example.org,Brand New Group\n")
    assert run(path).skipped == 1
    assert db.session.scalar(select(func.count(Organization.id))) == 0
    result = run(path, on_duplicate="fill")
    assert result.updated == 1
    assert db.session.scalar(select(Contact)).organization.name == "Brand New Group"


def test_api_import_without_a_file_is_400(client, app, token):
    response = client.post("/api/v1/imports", data={"kind": "orgs"}, headers={"Authorization": f"Bearer {token}"},
                           content_type="multipart/form-data")
    assert response.status_code == 400 and response.get_json()["errors"]["file"] == ["required"]
