"""The JSON API under /api/v1: bearer tokens, problem+json errors, an OpenAPI document generated from the code."""

from flask import Flask
from flask_smorest import Api
from flask_smorest.spec.plugins import integerconverter2paramschema

from crm.api.errors import ProblemSchema
from crm.common.urls import IdConverter


class UndersignedApi(Api):
    """flask-smorest's Api with problem+json errors documented; the app's own handler renders them."""

    ERROR_SCHEMA = ProblemSchema

    def _register_error_handlers(self):
        """Errors are rendered by crm.error_pages (problem+json under /api/), not by flask-smorest."""

    def _register_responses(self):
        """Document error responses as application/problem+json, the type they are sent with."""
        self.DEFAULT_RESPONSE_CONTENT_TYPE = "application/problem+json"
        try:
            super()._register_responses()
        finally:
            del self.DEFAULT_RESPONSE_CONTENT_TYPE


def register_api(app: Flask) -> UndersignedApi:
    """Create the Api for this app and register every resource blueprint."""
    # Importing a resource module puts its operations on its blueprints, so every one is imported before the
    # blueprints are registered (some are imported only for that: hence the noqa).
    from crm.api import (  # noqa: F401
        blueprints,
        contacts,
        imports,
        issue_areas,
        letters,
        merges,
        organizations,
        segments,
        signatures,
        signon_requests,
    )
    from crm.extensions import csrf

    api = UndersignedApi(app, spec_kwargs={
        "info": {"description": "Undersigned's JSON API. Authenticate with `Authorization: Bearer TOKEN` "
                                "(create one with `crm token create EMAIL`)."},
    })
    api.register_converter(IdConverter, integerconverter2paramschema)
    api.spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer"})
    api.spec.options["security"] = [{"bearerAuth": []}]
    # One smorest blueprint per OpenAPI tag, in the order the tags are published; each made by make_blueprint.
    for blueprint in (blueprints.reads, blueprints.organization_writes, segments.blp, blueprints.letter_writes,
                      merges.blp, imports.blp):
        csrf.exempt(blueprint)  # bearer tokens, no cookies: CSRF does not apply
        api.register_blueprint(blueprint)
    return api


def make_blueprint(name: str, description: str):
    """A flask-smorest blueprint under /api/v1 with bearer-token authentication installed."""
    from flask_smorest import Blueprint

    from crm.api.auth import install
    from crm.api.parsing import BoundedParser

    blueprint = Blueprint(name, __name__, url_prefix="/api/v1", description=description)
    blueprint.ARGUMENTS_PARSER = BoundedParser()  # JSON bodies bounded in size and depth: a 400, never a 500
    install(blueprint)
    return blueprint
