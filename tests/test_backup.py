"""crm backup and crm restore: clear errors, and no restore under a running app (its later writes would be lost)."""

import subprocess
import sys
import textwrap

import pytest
from sqlalchemy import func, select

from crm.organizations.models import Organization
from tests.factories import OrganizationFactory

# crm backup / restore work on the database file, and a second process holds it.
pytestmark = pytest.mark.commits

HOLDER = textwrap.dedent("""
    import sys
    from sqlalchemy import text
    from crm import create_app
    from crm.extensions import db
    app = create_app({"TESTING": True, "SECRET_KEY": "x", "DATABASE_URL": sys.argv[1]})
    with app.app_context():
        db.session.execute(text("SELECT count(*) FROM organizations")).scalar()
        print("ready", flush=True)
        sys.stdin.read()  # hold the database until the test closes our stdin
""")


@pytest.fixture
def sqlite_only(app):
    """These are about the SQLite file; PostgreSQL deployments use pg_dump (the command says so)."""
    if not app.config["DATABASE_URL"].startswith("sqlite"):
        pytest.skip("SQLite backups")


def test_backup_into_a_missing_folder_is_a_clear_error(sqlite_only, runner, tmp_path):
    for target in (tmp_path / "missing" / "dir" / "x.sqlite3", tmp_path):
        result = runner.invoke(args=["backup", "-o", str(target)])
        assert result.exit_code in (1, 2), result.output
        assert isinstance(result.exception, SystemExit), result.exception
        assert "Error:" in result.output and "Traceback" not in result.output
    assert "does not exist" in runner.invoke(args=["backup", "-o", str(tmp_path / "no" / "x.db")]).output


def test_restore_refuses_while_another_process_uses_the_database(sqlite_only, app, runner, db, tmp_path):
    OrganizationFactory.create_batch(3)
    snapshot = tmp_path / "snapshot.sqlite3"
    assert runner.invoke(args=["backup", "-o", str(snapshot)]).exit_code == 0
    db.session.execute(Organization.__table__.delete())
    db.session.commit()
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, app.config["DATABASE_URL"]], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        refused = runner.invoke(args=["restore", str(snapshot), "--yes"])
        assert refused.exit_code == 1
        assert "in use by a running Undersigned process" in refused.output and "nothing was changed" in refused.output
        db.session.remove()
        assert db.session.scalar(select(func.count(Organization.id))) == 0, "the live database is untouched"
    finally:
        holder.stdin.close()
        holder.wait(30)
    restored = runner.invoke(args=["restore", str(snapshot), "--yes"])
    assert restored.exit_code == 0, restored.output
    db.session.remove()
    assert db.session.scalar(select(func.count(Organization.id))) == 3


def test_restore_of_a_missing_file_or_folder(sqlite_only, runner, tmp_path):
    for missing in (tmp_path / "nothing.sqlite3", tmp_path):
        result = runner.invoke(args=["restore", str(missing), "--yes"])
        assert result.exit_code != 0 and "Traceback" not in result.output
