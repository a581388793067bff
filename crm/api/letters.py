"""/api/v1/letters: list, create, read (with what waits for review), change, delete a draft, revoke personal links."""

import marshmallow as ma
from flask import g
from flask.views import MethodView
from flask_smorest import abort

from crm.api import schemas
from crm.api.blueprints import letter_writes, reads
from crm.api.errors import conflict_response
from crm.api.schemas import Id
from crm.common.errors import ConflictError
from crm.letters import deadlines, personal_links, queries, writing
from crm.letters.models import LETTER_DATE_YEARS, LETTER_STATUSES
from crm.organizations.queries import get_organization


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
    # The same name as in the letter read back (LetterSchema.date): what a client sends is what it reads.
    date = ma.fields.Date(allow_none=True, attribute="letter_date", metadata={
        "description": f"The date printed on the letter (years {LETTER_DATE_YEARS[0]}–{LETTER_DATE_YEARS[1]}); "
                       "null: undated, the pages show the delivery date"})
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


def letter_or_404(slug: str):
    """The letter or a 404 problem."""
    return queries.get_letter(slug) or abort(404, message="No such letter.")


# Service field names the API spells otherwise.
_API_FIELDS = {"letter_date": "date"}


def letter_error(exc: writing.LetterError):
    """A LetterError as a 400 problem naming the field as the API spells it."""
    abort(400, message=str(exc), errors={_API_FIELDS.get(exc.field, exc.field): [str(exc)]})


def _apply_status(letter, data: dict) -> None:
    """Change status (and delivery date) when asked."""
    if "status" in data and data["status"] != letter.status:
        writing.set_status(
            letter, data["status"], delivered_on=data.get("delivered_on"), user_id=g.api_user.id
        )


@reads.route("/letters")
class Letters(MethodView):
    """Letters."""

    @reads.arguments(schemas.PageArgsSchema, location="query")
    @reads.response(200, schemas.LetterPageSchema)
    def get(self, args):
        """List letters, newest first."""
        return schemas.page_of([letter for letter, _ in queries.list_letters()], args)


@letter_writes.route("/letters")
class LetterCreate(MethodView):
    """Create letters (listing is GET /letters)."""

    @letter_writes.arguments(LetterInSchema)
    @letter_writes.response(201, schemas.LetterSchema)
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
            letter_error(exc)
        return letter


@letter_writes.route("/letters/<slug>")
class LetterPatch(MethodView):
    """Read, change or delete a letter."""

    @letter_writes.response(200, LetterDetailSchema)
    def get(self, slug):
        """Get a letter, with `awaiting_review` (public sign-ons waiting for an organizer)."""
        return letter_or_404(slug)

    @letter_writes.arguments(LetterPatchSchema)
    @letter_writes.response(200, LetterDetailSchema)
    @letter_writes.alt_response(409, description="The version sent is not the current one")
    def patch(self, data, slug):
        """Change a letter's fields and/or status; with `version`, only if it is still the current one."""
        letter = letter_or_404(slug)
        version = data.pop("version", None)
        fields = {k: v for k, v in data.items() if k not in ("status", "delivered_on")}
        try:
            if fields or version is not None:
                writing.update_letter(letter, fields, user_id=g.api_user.id, version=version)
            _apply_status(letter, data)
        except writing.LetterError as exc:
            letter_error(exc)
        except ConflictError as exc:
            return conflict_response(exc, LetterDetailSchema())
        return letter

    @letter_writes.response(204)
    @letter_writes.alt_response(409, description="Something depends on the letter (signatures, sign-ons, merges, or "
                                                 "it is no longer a draft); the detail says what to do instead")
    def delete(self, slug):
        """Delete a draft letter that nothing depends on (its issue-area links go with it)."""
        try:
            writing.delete_letter(letter_or_404(slug), user_id=g.api_user.id)
        except writing.LetterInUse as exc:
            abort(409, message=str(exc))


@letter_writes.route("/letters/<slug>/revoke-links")
class RevokeLinks(MethodView):
    """Revoke personal sign-on links."""

    @letter_writes.arguments(RevokeLinksInSchema)
    @letter_writes.response(204)
    def post(self, data, slug):
        """Refuse every personal sign-on link of the organization for this letter made until now (new links work)."""
        letter = letter_or_404(slug)
        org = get_organization(data["organization_id"])
        if org is None:
            abort(400, message="organization_id must name an organization.",
                  errors={"organization_id": ["No such organization."]})
        personal_links.revoke_personal_links(letter, org, user_id=g.api_user.id)
