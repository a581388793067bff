"""API: letters (create, patch), signatures (add, patch), sign-on review, signatory import, merging."""

import marshmallow as ma
from flask import g
from flask.views import MethodView
from flask_smorest import abort

from crm.api import make_blueprint, schemas
from crm.api.errors import conflict_response
from crm.api.schemas import Id
from crm.common.access import access
from crm.common.errors import ConflictError
from crm.letters import deadlines, personal_links, queries, signatures, writing
from crm.letters.models import LETTER_STATUSES, SIGNATURE_ROLES, SIGNATURE_SOURCES, SIGNATURE_STATUSES
from crm.letters.signatory_import import analyse, apply_import
from crm.letters.signatory_lines import BlockTooLarge
from crm.organizations import merging
from crm.organizations.queries import get_organization
from crm.signon import services as signon

blp = make_blueprint(
    "api_letters", "Letters, signatures, sign-on review, signatory import, merging organizations"
)


class LetterInSchema(ma.Schema):
    """A letter to create or change (every field optional on PATCH)."""

    class Meta:
        unknown = ma.RAISE

    slug = ma.fields.String(validate=ma.validate.Length(1, 100))
    title = ma.fields.String(validate=ma.validate.Length(1, 300))
    recipients = ma.fields.String(validate=ma.validate.Length(max=5000))
    cc = ma.fields.String(validate=ma.validate.Length(max=5000))
    summary = ma.fields.String(validate=ma.validate.Length(max=5000))
    body = ma.fields.String(validate=ma.validate.Length(max=200_000))
    status = ma.fields.String(validate=ma.validate.OneOf(LETTER_STATUSES))
    deadline = ma.fields.Date(allow_none=True)
    delivered_on = ma.fields.Date(allow_none=True)
    public_signon = ma.fields.Boolean()
    review_required = ma.fields.Boolean()
    issue_areas = ma.fields.List(ma.fields.String(), validate=ma.validate.Length(max=50))


class LetterPatchSchema(LetterInSchema):
    """Fields to change (any subset), plus the version the client last read when it wants the change refused if
    someone saved in between (optional, so scripts written before letters had versions keep working)."""

    version = Id(strict=True, metadata={"description": "the version you read; a newer one answers 409"})


class LetterDetailSchema(schemas.LetterSchema):
    """A letter, with what waits for the organizers."""

    awaiting_review = ma.fields.Function(
        queries.awaiting_review, metadata={"type": "integer", "description": "Confirmed public sign-ons waiting "
                                                                          "for an organizer's review"})
    deadline_passed = ma.fields.Function(
        lambda letter: deadlines.deadline_passed(letter),
        metadata={"type": "boolean", "description": "The sign-on deadline is over (end of that day in "
                                                    "CRM_TIMEZONE): sign-ons record nothing"})


class RevokeLinksInSchema(ma.Schema):
    """Whose personal links to revoke."""

    class Meta:
        unknown = ma.RAISE

    organization_id = Id(required=True)


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


class SignOnRequestSchema(ma.Schema):
    """A public sign-on waiting for review."""

    id = ma.fields.Integer()
    letter = ma.fields.Function(lambda r: r.letter.slug, metadata={"type": "string"})
    organization_name = ma.fields.String()
    listed_as = ma.fields.String(attribute="listed_name")
    contact_name = ma.fields.String()
    email = ma.fields.String()
    status = ma.fields.String()
    proposed_organization_id = ma.fields.Integer(allow_none=True)
    confidence = ma.fields.Float()


class DecisionSchema(ma.Schema):
    """accept (the proposal, or organization_id), new, or reject."""

    decision = ma.fields.String(required=True, validate=ma.validate.OneOf(("accept", "new", "reject")))
    organization_id = Id()


class MergeInSchema(ma.Schema):
    """Which organization to merge into the one in the path."""

    remove_id = Id(required=True)
    dry_run = ma.fields.Boolean(load_default=False)


class MergeOutSchema(ma.Schema):
    """What a merge moved."""

    keep_id = ma.fields.Integer()
    remove_id = ma.fields.Integer()
    contacts = ma.fields.Integer()
    signatures_moved = ma.fields.Integer()
    signatures_collapsed = ma.fields.List(ma.fields.String())
    aliases = ma.fields.Integer()
    interactions = ma.fields.Integer()
    segments = ma.fields.List(ma.fields.String())
    applied = ma.fields.Boolean()
    summary = ma.fields.String()


def _letter(slug: str):
    """The letter or a 404 problem."""
    return queries.get_letter(slug) or abort(404, message="No such letter.")


def _letter_error(exc: writing.LetterError):
    """A LetterError as a 400 problem naming the field."""
    abort(400, message=str(exc), errors={exc.field: [str(exc)]})


def _apply_status(letter, data: dict) -> None:
    """Change status (and delivery date) when asked."""
    if "status" in data and data["status"] != letter.status:
        writing.set_status(
            letter, data["status"], delivered_on=data.get("delivered_on"), user_id=g.api_user.id
        )


@blp.route("/letters")
class LetterCreate(MethodView):
    """Create letters (the list is in the main API blueprint)."""

    @blp.arguments(LetterInSchema)
    @blp.response(201, schemas.LetterSchema)
    def post(self, data):
        """Create a letter (a draft unless `status` says otherwise)."""
        if not data.get("title"):
            abort(
                400, message="A letter needs a title.", errors={"title": ["Missing data for required field."]}
            )
        fields = {k: v for k, v in data.items() if k not in ("status", "delivered_on")}
        try:
            letter = writing.create_letter(fields, user_id=g.api_user.id)
            _apply_status(letter, data)
        except writing.LetterError as exc:
            _letter_error(exc)
        return letter


@blp.route("/letters/<slug>")
class LetterPatch(MethodView):
    """Read, change or delete a letter."""

    @blp.response(200, LetterDetailSchema)
    def get(self, slug):
        """Get a letter, with `awaiting_review` (public sign-ons waiting for an organizer)."""
        return _letter(slug)

    @blp.arguments(LetterPatchSchema)
    @blp.response(200, LetterDetailSchema)
    @blp.alt_response(409, description="The version sent is not the current one")
    def patch(self, data, slug):
        """Change a letter's fields and/or status; with `version`, only if it is still the current one."""
        letter = _letter(slug)
        version = data.pop("version", None)
        fields = {k: v for k, v in data.items() if k not in ("status", "delivered_on")}
        try:
            if fields or version is not None:
                writing.update_letter(letter, fields, user_id=g.api_user.id, version=version)
            _apply_status(letter, data)
        except writing.LetterError as exc:
            _letter_error(exc)
        except ConflictError as exc:
            return conflict_response(exc, LetterDetailSchema())
        return letter

    @blp.response(204)
    @blp.alt_response(409, description="Something depends on the letter (signatures, sign-ons, merges, or it is "
                                       "no longer a draft); the detail says what to do instead")
    def delete(self, slug):
        """Delete a draft letter that nothing depends on (its issue-area links go with it)."""
        try:
            writing.delete_letter(_letter(slug), user_id=g.api_user.id)
        except writing.LetterInUse as exc:
            abort(409, message=str(exc))


@blp.route("/letters/<slug>/signatures")
class SignatureCreate(MethodView):
    """Add an organization to a letter."""

    @blp.arguments(SignatureInSchema)
    @blp.response(201, schemas.SignatureSchema)
    def post(self, data, slug):
        """Add a signature (an organization already on the letter is answered with its signature, 200)."""
        letter = _letter(slug)
        org = get_organization(data.get("organization_id") or 0)
        if org is None:
            abort(
                400,
                message="organization_id must name an organization.",
                errors={"organization_id": ["No such organization."]},
            )
        try:
            sig, created = signatures.add_signature(
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
        except writing.LetterError as exc:
            _letter_error(exc)
        return sig, 201 if created else 200


@blp.route("/letters/<slug>/signatures/<int:signature_id>")
class SignatureById(MethodView):
    """One signature."""

    @blp.response(200, schemas.SignatureSchema)
    def get(self, slug, signature_id):
        """Get a signature."""
        return signatures.get_signature(_letter(slug), signature_id) or abort(404, message="No such signature.")

    @blp.arguments(SignatureInSchema)
    @blp.response(200, schemas.SignatureSchema)
    def patch(self, data, slug, signature_id):
        """Change status, role, listed name, source or who authorized it."""
        sig = signatures.get_signature(_letter(slug), signature_id) or abort(404, message="No such signature.")
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
            return signatures.update_signature(sig, changes, user_id=g.api_user.id)
        except writing.LetterError as exc:
            _letter_error(exc)


@blp.route("/letters/<slug>/import")
class SignatoryImport(MethodView):
    """Match a signatory block; with dry_run false, create the signatures in one transaction."""

    @blp.arguments(ImportInSchema)
    @blp.response(200, ImportOutSchema)
    def post(self, data, slug):
        """Import a signatory block (report shaped like the CLI's; review lines are never applied)."""
        letter = _letter(slug)
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


@blp.route("/letters/<slug>/revoke-links")
class RevokeLinks(MethodView):
    """Revoke personal sign-on links."""

    @blp.arguments(RevokeLinksInSchema)
    @blp.response(204)
    def post(self, data, slug):
        """Refuse every personal sign-on link of the organization for this letter made until now (new links work)."""
        letter = _letter(slug)
        org = get_organization(data["organization_id"])
        if org is None:
            abort(400, message="organization_id must name an organization.",
                  errors={"organization_id": ["No such organization."]})
        personal_links.revoke_personal_links(letter, org, user_id=g.api_user.id)


@blp.route("/signon-requests")
class SignOnQueue(MethodView):
    """The review queue."""

    @access("organizer")  # names and addresses of strangers: organizers only, as on the review page
    @blp.response(200, SignOnRequestSchema(many=True))
    def get(self):
        """Confirmed public sign-ons waiting for a decision (organizers, as on the review page)."""
        return signon.review_queue()


@blp.route("/signon-requests/<int:request_id>/decision")
class SignOnDecision(MethodView):
    """Decide a sign-on."""

    @blp.arguments(DecisionSchema)
    @blp.response(200, SignOnRequestSchema)
    def post(self, data, request_id):
        """accept (the proposed or the given organization), new (create one), or reject."""
        row = signon.get_request(request_id) or abort(404, message="No such sign-on.")
        try:
            if data["decision"] == "reject":
                return signon.reject_signon(row, user_id=g.api_user.id)
            org_id = (
                None
                if data["decision"] == "new"
                else (data.get("organization_id") or row.proposed_organization_id)
            )
            if data["decision"] == "accept" and org_id is None:
                abort(
                    400,
                    message="No proposed match: give organization_id or decide 'new'.",
                    errors={"organization_id": ["Required here."]},
                )
            return signon.accept_signon(row, org_id, user_id=g.api_user.id)
        except signon.SignOnError as exc:
            abort(409, message=str(exc))


@blp.route("/organizations/<int:org_id>/merge")
class OrganizationMerge(MethodView):
    """Merge another organization into this one."""

    @blp.arguments(MergeInSchema)
    @blp.response(200, MergeOutSchema)
    def post(self, data, org_id):
        """Merge `remove_id` into this organization (dry_run: preview only)."""
        try:
            plan = (
                merging.plan_merge(org_id, data["remove_id"])
                if data["dry_run"]
                else merging.merge_organizations(org_id, data["remove_id"], user_id=g.api_user.id)
            )
        except merging.MergeError as exc:
            abort(
                404 if "does not exist" in str(exc) else 400,
                message=str(exc),
                errors={"remove_id": [str(exc)]},
            )
        return {
            "keep_id": org_id,
            "remove_id": data["remove_id"],
            "contacts": plan.contacts,
            "signatures_moved": plan.signatures_moved,
            "signatures_collapsed": plan.signatures_collapsed,
            "aliases": plan.aliases,
            "interactions": plan.interactions,
            "segments": plan.segments,
            "applied": plan.applied,
            "summary": plan.summary(),
        }
