"""/api/v1/letters/<slug>/signatures and /import: a letter's signatures (list, add, read, change), a block imported."""

import marshmallow as ma
from flask import g
from flask.views import MethodView
from flask_smorest import abort

from crm.api import schemas
from crm.api.blueprints import letter_writes, reads
from crm.api.letters import letter_error, letter_or_404
from crm.api.schemas import Id
from crm.letters.models import SIGNATURE_ROLES, SIGNATURE_SOURCES, SIGNATURE_STATUSES
from crm.letters.queries import signatories
from crm.letters.signatory_import import analyse, apply_import
from crm.letters.signatory_lines import BlockTooLarge
from crm.letters.signatures import add_signature, get_signature, update_signature
from crm.letters.writing import LetterError
from crm.organizations.queries import get_organization


class SignatureInSchema(ma.Schema):
    """A signature to add (organization_id) or change."""

    class Meta:
        unknown = ma.RAISE

    organization_id = Id()
    role = ma.fields.String(validate=ma.validate.OneOf(SIGNATURE_ROLES))
    position = ma.fields.Integer(allow_none=True, validate=ma.validate.Range(0, 10_000))
    status = ma.fields.String(validate=ma.validate.OneOf(SIGNATURE_STATUSES))
    listed_as = ma.fields.String(validate=ma.validate.Length(1, 300))
    source = ma.fields.String(validate=ma.validate.OneOf(SIGNATURE_SOURCES))
    contact_id = Id(allow_none=True)
    authorized_name = ma.fields.String(validate=ma.validate.Length(max=200))
    authorized_title = ma.fields.String(validate=ma.validate.Length(max=200))
    authorized_email = ma.fields.String(validate=ma.validate.Length(max=254))


class ImportInSchema(ma.Schema):
    """A pasted signatory block."""

    text = ma.fields.String(required=True, validate=ma.validate.Length(1, 500_000))
    dry_run = ma.fields.Boolean(load_default=True)


class ImportLineSchema(ma.Schema):
    """One line of the import report."""

    line = ma.fields.Integer()
    text = ma.fields.String()
    action = ma.fields.String()
    organization = ma.fields.String()
    organization_id = ma.fields.Integer(allow_none=True)
    confidence = ma.fields.Float()
    candidates = ma.fields.String(metadata={"description": "up to three 'name (score)' joined by '; '"})
    reason = ma.fields.String()


class ImportOutSchema(ma.Schema):
    """The import report and, when applied, what changed."""

    items = ma.fields.List(ma.fields.Nested(ImportLineSchema))
    counts = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Integer())
    applied = ma.fields.Boolean()
    signatures_added = ma.fields.Integer()


@reads.route("/letters/<slug>/signatures")
class LetterSignatures(MethodView):
    """A letter's signatures in delivery order (leads first, then alphabetical)."""

    @reads.arguments(schemas.PageArgsSchema, location="query")
    @reads.response(200, schemas.SignaturePageSchema)
    def get(self, args, slug):
        """List a letter's signatures."""
        items = signatories(letter_or_404(slug), ("confirmed", "pending", "declined", "withdrawn"))
        return schemas.page_of(items, args)


@letter_writes.route("/letters/<slug>/signatures")
class SignatureCreate(MethodView):
    """Add an organization to a letter."""

    @letter_writes.arguments(SignatureInSchema)
    @letter_writes.response(201, schemas.SignatureSchema)
    def post(self, data, slug):
        """Add a signature (an organization already on the letter is answered with its signature, 200)."""
        letter = letter_or_404(slug)
        org = get_organization(data.get("organization_id") or 0)
        if org is None:
            abort(
                400,
                message="organization_id must name an organization.",
                errors={"organization_id": ["No such organization."]},
            )
        try:
            sig, created = add_signature(
                letter,
                org,
                role=data.get("role", "signatory"),
                status=data.get("status", "confirmed"),
                listed_name=data.get("listed_as") or org.name,
                source=data.get("source", "api"),
                position=data.get("position"),
                authorized_name=data.get("authorized_name", ""),
                authorized_title=data.get("authorized_title", ""),
                authorized_email=data.get("authorized_email", ""),
                user_id=g.api_user.id,
            )
        except LetterError as exc:
            letter_error(exc)
        return sig, 201 if created else 200


@letter_writes.route("/letters/<slug>/signatures/<int:signature_id>")
class SignatureById(MethodView):
    """One signature."""

    @letter_writes.response(200, schemas.SignatureSchema)
    def get(self, slug, signature_id):
        """Get a signature."""
        return get_signature(letter_or_404(slug), signature_id) or abort(404, message="No such signature.")

    @letter_writes.arguments(SignatureInSchema)
    @letter_writes.response(200, schemas.SignatureSchema)
    def patch(self, data, slug, signature_id):
        """Change status, role, listed name, source or who authorized it."""
        sig = get_signature(letter_or_404(slug), signature_id) or abort(404, message="No such signature.")
        if "organization_id" in data:
            abort(
                400,
                message="A signature's organization cannot change; merge organizations instead.",
                errors={"organization_id": ["Read-only."]},
            )
        changes = dict(data)
        if "listed_as" in changes:
            changes["listed_name"] = changes.pop("listed_as")
        try:
            return update_signature(sig, changes, user_id=g.api_user.id)
        except LetterError as exc:
            letter_error(exc)


@letter_writes.route("/letters/<slug>/import")
class SignatoryImport(MethodView):
    """Match a signatory block; with dry_run false, create the signatures in one transaction."""

    @letter_writes.arguments(ImportInSchema)
    @letter_writes.response(200, ImportOutSchema)
    def post(self, data, slug):
        """Import a signatory block (report shaped like the CLI's; review lines are never applied)."""
        letter = letter_or_404(slug)
        try:
            candidates = analyse(data["text"])
        except BlockTooLarge as exc:
            abort(400, message=str(exc), errors={"text": [str(exc)]})
        counts = {
            a: sum(1 for c in candidates if c.action == a) for a in ("matched", "new", "review", "skipped")
        }
        added = 0
        if not data["dry_run"]:
            decisions = [
                (c.name, c.organization_id if c.action == "matched" else None, c.text)
                for c in candidates
                if c.action in ("matched", "new")
            ]
            added = apply_import(letter, decisions, user_id=g.api_user.id).signatures
        return {
            "items": [
                {
                    "line": c.line,
                    "text": c.text,
                    "action": c.action,
                    "organization": c.organization,
                    "organization_id": c.organization_id,
                    "confidence": c.confidence,
                    "candidates": c.report_row()[5],
                    "reason": c.reason,
                }
                for c in candidates
            ],
            "counts": counts,
            "applied": not data["dry_run"],
            "signatures_added": added,
        }
