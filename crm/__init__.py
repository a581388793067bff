"""Undersigned: the coalition contact and sign-on letter CRM."""

import os
from pathlib import Path

import click
from flask import Flask

from crm import config

_PACKAGE = Path(__file__).resolve().parent


def _asset_folder(name: str) -> str:
    """templates/ and static/ sit inside the package in a wheel and at the repository root in a checkout."""
    inside = _PACKAGE / name
    return str(inside if inside.is_dir() else _PACKAGE.parent / name)


def create_app(test_config: dict | None = None) -> Flask:
    """Build the Flask application; no database, network or migration work happens here."""
    app = Flask(
        __name__,
        template_folder=_asset_folder("templates"),
        static_folder=_asset_folder("static"),
        instance_path=os.environ.get("CRM_INSTANCE_PATH") or None,
        instance_relative_config=True,
    )
    config.load(app, test_config)
    from crm.common.urls import IdConverter

    app.url_map.converters["int"] = IdConverter  # before any route is added
    register_extensions(app)
    register_blueprints(app)
    register_errorhandlers(app)
    register_template_helpers(app)
    register_commands(app)
    return app


def make_app() -> Flask:
    """The app of a process of its own (the `crm` command, a Celery worker): the factory plus the instance folder
    (and its generated secret key)."""
    app = create_app()
    config.prepare_instance(app)
    _links_follow_run_port(app)
    return app


def _links_follow_run_port(app: Flask) -> None:
    """`crm run --port P` without CRM_BASE_URL links mail to the server it starts, not to port 5000."""
    context = click.get_current_context(silent=True)
    if os.environ.get("CRM_BASE_URL") or context is None or context.info_name != "run":
        return
    from crm.common.urls import base_url_for_run

    app.config["CRM_BASE_URL"] = base_url_for_run(context.params.get("host"), context.params.get("port"))


def register_extensions(app: Flask) -> None:
    """Bind the unbound extensions of crm.extensions to this app."""
    from crm import db as database
    from crm.extensions import csrf, db, limiter, login_manager, mail, migrate

    database.init_app(app)
    migrate.init_app(app, db, directory=_asset_folder("migrations"), render_as_batch=True, compare_type=True)
    mail.init_app(app)
    csrf.init_app(app)
    limiter.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message_category = "info"

    from crm.auth.services import load_session_user

    login_manager.user_loader(load_session_user)
    from crm.backup import install_in_use_marker

    install_in_use_marker()  # every process using an SQLite database marks it, so restore can refuse


def register_blueprints(app: Flask) -> None:
    """One blueprint per feature, plus the JSON API."""
    from crm.api import register_api
    from crm.audit.views import bp as audit_bp
    from crm.auth.views import bp as auth_bp
    from crm.common.access import install_access_control
    from crm.contacts.views import bp as contacts_bp
    from crm.dashboard.views import bp as dashboard_bp
    from crm.exports.views import bp as exports_bp
    from crm.imports.views import bp as imports_bp
    from crm.letters import pages_blueprint as letters_pages
    from crm.mailmerge import pages_blueprint as mailmerge_pages
    from crm.mailmerge.health import bp as health_bp
    from crm.organizations.views import bp as organizations_bp
    from crm.segments.views import bp as segments_bp
    from crm.signon.views import bp as signon_bp

    for blueprint in (auth_bp, dashboard_bp, organizations_bp, contacts_bp, letters_pages(), signon_bp, segments_bp,
                      mailmerge_pages(), imports_bp, exports_bp, audit_bp, health_bp):
        app.register_blueprint(blueprint)
    register_api(app)
    install_access_control(app)
    from crm.audit.downloads import install_download_audit

    install_download_audit(app)


def register_errorhandlers(app: Flask) -> None:
    """Error pages in the site's layout (API errors are problem+json, handled in crm.api)."""
    from crm.common.security import install_security_headers
    from crm.error_pages import install_error_pages

    install_error_pages(app)
    install_security_headers(app)


def register_template_helpers(app: Flask) -> None:
    """Filters and globals the templates use."""
    from crm.common.templating import install_template_helpers

    install_template_helpers(app)


def register_commands(app: Flask) -> None:
    """The `crm` sub-commands (seed, user, token, export, …)."""
    from crm.cli import register_cli

    register_cli(app)
