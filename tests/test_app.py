"""The app factory, configuration and packaging."""

import os
import subprocess
import sys
import textwrap
import venv
from pathlib import Path

import pytest

from crm import config, create_app

ROOT = Path(__file__).resolve().parent.parent


def test_create_app_does_no_io(tmp_path, monkeypatch):
    instance = tmp_path / "instance"
    monkeypatch.setenv("CRM_INSTANCE_PATH", str(instance))
    app = create_app({"SECRET_KEY": "x", "DATABASE_URL": f"sqlite:///{tmp_path / 'never.sqlite3'}"})
    assert app.name == "crm"
    assert not instance.exists(), "the factory must not create the instance folder"
    assert not (tmp_path / "never.sqlite3").exists(), "the factory must not touch the database"


def test_configuration_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("CRM_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@db.example/crm")
    monkeypatch.setenv("MAIL_PORT", "2525")
    monkeypatch.setenv("MAIL_USE_TLS", "yes")
    monkeypatch.setenv("CRM_BASE_URL", "https://crm.example.org")
    app = create_app()
    assert app.config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://u@db.example/crm"
    assert app.config["MAIL_PORT"] == 2525 and app.config["MAIL_USE_TLS"] is True
    assert app.config["CRM_BASE_URL"] == "https://crm.example.org"
    monkeypatch.setenv("MAIL_PORT", "twenty")
    with pytest.raises(RuntimeError, match="MAIL_PORT"):
        create_app()


def test_login_rate_limit_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("CRM_INSTANCE_PATH", str(tmp_path))
    assert create_app().config["LOGIN_RATE_LIMIT"] == "10 per minute"
    monkeypatch.setenv("LOGIN_RATE_LIMIT", "100 per minute")
    assert create_app().config["LOGIN_RATE_LIMIT"] == "100 per minute"
    monkeypatch.setenv("LOGIN_RATE_LIMIT", "lots")
    with pytest.raises(RuntimeError, match="LOGIN_RATE_LIMIT"):
        create_app()


def test_signon_checks_from_environment(monkeypatch, tmp_path):
    """The README's SIGNON_RATE_LIMIT and SIGNON_MIN_FILL_SECONDS are settings an operator can change."""
    monkeypatch.setenv("CRM_INSTANCE_PATH", str(tmp_path))
    config = create_app().config
    assert (config["SIGNON_RATE_LIMIT"], config["SIGNON_MIN_FILL_SECONDS"]) == ("10 per hour", 3)
    monkeypatch.setenv("SIGNON_RATE_LIMIT", "30 per hour")
    monkeypatch.setenv("SIGNON_MIN_FILL_SECONDS", "5")
    config = create_app().config
    assert (config["SIGNON_RATE_LIMIT"], config["SIGNON_MIN_FILL_SECONDS"]) == ("30 per hour", 5)
    monkeypatch.setenv("SIGNON_RATE_LIMIT", "often")
    with pytest.raises(RuntimeError, match="SIGNON_RATE_LIMIT"):
        create_app()


def test_default_database_is_sqlite_in_instance_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("CRM_INSTANCE_PATH", str(tmp_path / "inst"))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    app = create_app()
    assert app.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'inst' / 'undersigned.sqlite3'}"


def test_sqlite_pragmas(app, db):
    if not app.config["DATABASE_URL"].startswith("sqlite"):
        pytest.skip("SQLite only")
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 5000


def test_secret_key_generated_once_into_instance(tmp_path, monkeypatch):
    monkeypatch.setenv("CRM_INSTANCE_PATH", str(tmp_path / "inst"))
    monkeypatch.delenv("SECRET_KEY", raising=False)
    app = create_app()
    config.prepare_instance(app)
    key = app.config["SECRET_KEY"]
    assert len(key) >= 32
    key_file = tmp_path / "inst" / "secret_key"
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    again = create_app()
    config.prepare_instance(again)
    assert again.config["SECRET_KEY"] == key


def test_secret_key_from_environment_wins(tmp_path, monkeypatch):
    monkeypatch.setenv("CRM_INSTANCE_PATH", str(tmp_path / "inst"))
    monkeypatch.setenv("SECRET_KEY", "from-the-environment")
    app = create_app()
    config.prepare_instance(app)
    assert app.config["SECRET_KEY"] == "from-the-environment"
    assert not (tmp_path / "inst" / "secret_key").exists()


@pytest.mark.slow
def test_wheel_ships_templates_static_and_renders_a_page(tmp_path):
    """Build a wheel, install it into a fresh venv (dependencies borrowed from ours), render the login page."""
    dist = tmp_path / "dist"
    built = subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(dist),
                            str(ROOT)], capture_output=True, text=True)
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    wheel = next(dist.glob("undersigned-*.whl"))
    target = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(target)
    python = target / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    find_site = "import flask, os; print(os.path.dirname(os.path.dirname(flask.__file__)))"
    ours = subprocess.run([sys.executable, "-c", find_site],
                          check=True, capture_output=True, text=True).stdout.strip()
    # Our site-packages for the dependencies; its editable-install .pth is not read from there, so the checkout
    # is not importable in the new venv.
    Path(site, "deps.pth").write_text(ours + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--quiet",
                    str(wheel)], check=True, capture_output=True)
    script = textwrap.dedent(f"""
        import crm, os
        assert "{ROOT}" not in crm.__file__, crm.__file__
        from crm import create_app
        app = create_app({{"SECRET_KEY": "x", "DATABASE_URL": "sqlite:///{tmp_path / 'w.sqlite3'}", "TESTING": True}})
        assert app.template_folder.startswith(os.path.dirname(crm.__file__)), app.template_folder
        client = app.test_client()
        page = client.get("/login")
        assert page.status_code == 200 and b"Log in to Undersigned" in page.data, page.status_code
        css = client.get("/static/vendor/bootstrap-5.3.9/bootstrap.min.css")
        assert css.status_code == 200 and len(css.data) > 100000
        from crm.seed import default_seed_file
        assert default_seed_file().exists() and str(default_seed_file()).startswith(os.path.dirname(crm.__file__))
        print("ok", crm.__file__)
    """)
    result = subprocess.run([str(python), "-c", script], capture_output=True, text=True, cwd=tmp_path,
                            env={**os.environ, "PYTHONPATH": ""})
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok")

