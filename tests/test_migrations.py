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
