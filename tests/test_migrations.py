"""Migrations and models agree; upgrade → downgrade → upgrade works on a populated database."""

import os

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade

from crm import create_app
from crm.extensions import db
from tests.conftest import POSTGRES_URL, _postgres_available, base_config

SCHEMA = "crm_migrations"


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request, tmp_path):
    """An empty database: a new SQLite file, or a dedicated PostgreSQL schema."""
    from tests import conftest

    if request.param not in conftest.BACKENDS:
        pytest.skip(f"{request.param} not selected")
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrate.sqlite3'}"
        return
    if not _postgres_available():
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is required under CI")
        pytest.skip("PostgreSQL not reachable")
    engine = sa.create_engine(POSTGRES_URL)
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
        conn.execute(sa.text(f"CREATE SCHEMA {SCHEMA}"))
    sep = "&" if "?" in POSTGRES_URL else "?"
    yield f"{POSTGRES_URL}{sep}options=-csearch_path%3D{SCHEMA}"
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
    engine.dispose()


def test_migrations_match_models_and_round_trip(empty_database):
    app = create_app(base_config(empty_database))
    with app.app_context():
        upgrade()
        with db.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), db.metadata)
        assert diff == [], f"models and migrations differ: {diff}"
        from crm.seed import load_seed

        load_seed()
        downgrade(revision="base")
        with db.engine.connect() as conn:
            assert "organizations" not in sa.inspect(conn).get_table_names()
        upgrade()
        load_seed()
        from crm.organizations.models import Organization

        assert db.session.scalar(sa.select(sa.func.count(Organization.id))) == 68
        db.session.remove()
        db.engine.dispose()


def test_setup_command_migrates_seeds_and_prints_admin_once(empty_database, monkeypatch):
    monkeypatch.setenv("CRM_ADMIN_EMAIL", "first@example.org")
    monkeypatch.delenv("CRM_ADMIN_PASSWORD", raising=False)
    app = create_app(base_config(empty_database))
    runner = app.test_cli_runner()
    first = runner.invoke(args=["setup"])
    assert first.exit_code == 0, first.output
    assert "Seeded 68 organizations" in first.output and "first@example.org" in first.output
    password = next(line.split(":", 1)[1].strip() for line in first.output.splitlines() if "password:" in line)
    second = runner.invoke(args=["setup"])
    assert second.exit_code == 0
    assert "First admin" not in second.output and "Seeded" not in second.output
    with app.app_context():
        from crm.auth.services import authenticate

        assert authenticate("first@example.org", password).role == "admin"
        db.session.remove()
        db.engine.dispose()


def test_signed_counts_are_filled_on_existing_data_and_kept_after(empty_database):
    """Migration 0006 fills letters_signed / last_signed_at for data already there, then its triggers keep them."""
    app = create_app(base_config(empty_database))
    now = "2021-04-19 12:00:00"
    with app.app_context():
        upgrade(revision="0005_imports")
        with db.engine.begin() as conn:
            for org_id in (1, 2):
                conn.execute(sa.text(
                    "INSERT INTO organizations (id, name, sort_name, search_text, notes, archived, version, "
                    "created_at, updated_at) VALUES (:id, :n, :n, :q, '', false, 1, :t, :t)"),
                    {"id": org_id, "n": f"Org {org_id}", "q": f"org {org_id}", "t": now})
            for letter_id in (1, 2):
                conn.execute(sa.text(
                    "INSERT INTO letters (id, slug, title, recipients, cc, summary, body, status, public_signon, "
                    "review_required, version, created_at, updated_at) VALUES (:id, :s, :title, '', '', '', '', "
                    "'delivered', false, false, 1, :t, :t)"),
                    {"id": letter_id, "s": f"letter-{letter_id}", "title": f"Letter {letter_id}", "t": now})
            for letter_id, status in ((1, "confirmed"), (2, "pending")):
                conn.execute(sa.text(
                    "INSERT INTO signatures (letter_id, organization_id, role, listed_name, status, signed_at, source, "
                    "authorized_name, authorized_title, authorized_email, text_fingerprint, created_at, updated_at) "
                    "VALUES (:l, 1, 'signatory', 'Org 1', :st, :t, 'import', '', '', '', '', :t, :t)"),
                    {"l": letter_id, "st": status, "t": now})
        upgrade()
        counts = "SELECT id, letters_signed, last_signed_at IS NOT NULL FROM organizations ORDER BY id"
        with db.engine.begin() as conn:
            assert [tuple(r) for r in conn.execute(sa.text(counts))] == [(1, 1, True), (2, 0, False)]
            conn.execute(sa.text("UPDATE signatures SET status = 'confirmed' WHERE letter_id = 2"))
            conn.execute(sa.text("UPDATE signatures SET organization_id = 2 WHERE letter_id = 1"))
        with db.engine.begin() as conn:
            assert [tuple(r) for r in conn.execute(sa.text(counts))] == [(1, 1, True), (2, 1, True)]
        downgrade(revision="0005_imports")
        with db.engine.connect() as conn:
            assert "letters_signed" not in {c["name"] for c in sa.inspect(conn).get_columns("organizations")}
        upgrade()
        db.session.remove()
        db.engine.dispose()
