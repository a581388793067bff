"""POST /api/v1/imports: the import engine over HTTP (a multipart file plus the CLI's options)."""

import tempfile
from pathlib import Path

import marshmallow as ma
from flask import current_app, g, request
from flask.views import MethodView
from flask_smorest import abort

from crm.api import make_blueprint
from crm.imports.fields import KINDS, suggest_mapping
from crm.imports.mappings import apply_mapping, get_mapping
from crm.imports.options import DUPLICATE_MODES, PRIMARY_MODES, ImportOptions
from crm.imports.reader import FileProblem, sniff
from crm.imports.running import run_import
from crm.imports.uploads import UploadError, store_upload

blp = make_blueprint("api_imports", "Import organizations, contacts or a letter's signatures from CSV")
MAX_REPORT_ROWS = 100_000


class ImportFormSchema(ma.Schema):
    """The options of an import (multipart form fields)."""

    kind = ma.fields.String(required=True, validate=ma.validate.OneOf(list(KINDS)))
    letter = ma.fields.String(load_default=None, metadata={"description": "Letter slug (kind=signatures)"})
    dry_run = ma.fields.Boolean(load_default=False)
    skip_invalid = ma.fields.Boolean(load_default=False)
    on_duplicate = ma.fields.String(load_default="skip", validate=ma.validate.OneOf(DUPLICATE_MODES))
    mapping = ma.fields.String(load_default=None, metadata={"description": "Name of a saved column mapping"})
    accept_uncertain = ma.fields.Boolean(load_default=False)
    create_issue_areas = ma.fields.Boolean(load_default=False)
    primary = ma.fields.String(load_default="keep", validate=ma.validate.OneOf(PRIMARY_MODES), metadata={
        "description": "Contacts: a row marked primary where the organization has another active primary keeps "
                       "that one (keep) or replaces it (replace)"})
    # The file itself is read from request.files (webargs' form location does not see it); declared here so the
    # OpenAPI document shows one multipart body with every part.
    file = ma.fields.Raw(load_default=None, metadata={"type": "string", "format": "binary",
                                                      "description": "The CSV file (required)"})


class RowOrganizationSchema(ma.Schema):
    """The organization a row's contact or signature goes to, and how the file's name found it."""

    id = ma.fields.Integer(allow_none=True, metadata={
        "description": "null for an organization the import creates, until it is committed"})
    name = ma.fields.String()
    match = ma.fields.String(metadata={"description": "new | name | alias | acronym | fuzzy | … (how it was found)"})
    confidence = ma.fields.Float()
    new = ma.fields.Boolean(metadata={"description": "the import creates this organization"})


class ReportRowSchema(ma.Schema):
    """One row's outcome."""

    row = ma.fields.Integer()
    action = ma.fields.String(metadata={"description": "create | update | duplicate | error | review"})
    record = ma.fields.String()
    errors = ma.fields.List(ma.fields.Dict())
    organization = ma.fields.Nested(RowOrganizationSchema, allow_none=True, metadata={
        "description": "where the row's contact or signature goes (null: no organization, or not this row's)"})


class ImportResultSchema(ma.Schema):
    """What the import did (or, with dry_run, would do)."""

    kind = ma.fields.String()
    dry_run = ma.fields.Boolean()
    committed = ma.fields.Boolean()
    batch_id = ma.fields.Integer(allow_none=True)
    rows = ma.fields.Integer()
    created = ma.fields.Integer()
    updated = ma.fields.Integer()
    skipped = ma.fields.Integer()
    errors = ma.fields.Integer()
    new_organizations = ma.fields.Integer(metadata={
        "description": "organizations created (or, with dry_run, to be created) for the rows naming them"})
    encoding = ma.fields.String()
    delimiter = ma.fields.String()
    notes = ma.fields.List(ma.fields.String())
    report = ma.fields.List(ma.fields.Nested(ReportRowSchema))
    report_truncated = ma.fields.Boolean()


@blp.route("/imports")
class Imports(MethodView):
    """Imports."""

    @blp.arguments(ImportFormSchema, location="form", content_type="multipart/form-data")
    @blp.response(200, ImportResultSchema)
    def post(self, options):
        """Import a CSV file in one transaction; 400 listing the rows' errors when any has one (nothing imported)."""
        upload_file = request.files.get("file")
        if upload_file is None:
            abort(400, message="Send the CSV file as the multipart part 'file'.", errors={"file": ["required"]})
        folder = Path(tempfile.mkdtemp(prefix="crm-import-"))
        try:
            try:
                upload = store_upload(upload_file.stream, upload_file.filename or "", folder,
                                      current_app.config.get("CRM_IMPORT_MAX_BYTES", 60 * 1024 * 1024),
                                      {"user_id": g.api_user.id})
                info = sniff(upload.path)
            except (UploadError, FileProblem) as exc:
                abort(400, message=str(exc), errors={"file": [str(exc)]})
            if options["mapping"]:
                saved = get_mapping(options["kind"], options["mapping"])
                if saved is None:
                    abort(400, message=f"No saved mapping called {options['mapping']!r}.",
                          errors={"mapping": ["unknown mapping"]})
                columns = apply_mapping(saved, info.header)
            else:
                columns = suggest_mapping(options["kind"], info.header)
            report: list[dict] = []

            def on_row(outcome, cells):
                if len(report) < MAX_REPORT_ROWS:
                    report.append(outcome.as_dict())

            result = run_import(upload.path, ImportOptions(
                kind=options["kind"], columns=columns, on_duplicate=options["on_duplicate"],
                skip_invalid=options["skip_invalid"], accept_uncertain=options["accept_uncertain"],
                create_issue_areas=options["create_issue_areas"], letter_slug=options["letter"],
                dry_run=options["dry_run"], primary=options["primary"]),
                filename=upload.meta["filename"], user_id=g.api_user.id,
                on_row=on_row, info=info)
        finally:
            for path in folder.iterdir():
                path.unlink(missing_ok=True)
            folder.rmdir()
        if result.problems:
            abort(400, message=" ".join(result.problems), errors={"file": result.problems})
        body = {**result.counts, "kind": result.kind, "dry_run": result.dry_run, "committed": result.committed,
                "batch_id": result.batch_id, "new_organizations": result.new_organizations,
                "encoding": result.encoding, "delimiter": result.delimiter, "notes": result.notes, "report": report,
                "report_truncated": result.rows > len(report)}
        if result.errors and not options["skip_invalid"]:
            abort(400, message=f"{result.errors} row(s) have errors; nothing was imported.",
                  errors={"rows": [f"row {r['row']}: " + "; ".join(f"{e['column']}: {e['message']}"
                                                                   for e in r["errors"])
                                   for r in report if r["errors"]][:1000]})
        return body
