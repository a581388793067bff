"""/api/v1/signon-requests: the queue of public sign-ons waiting for review, and the decision on one."""

import marshmallow as ma
from flask import g
from flask.views import MethodView
from flask_smorest import abort

from crm.api.blueprints import letter_writes
from crm.api.schemas import Id
from crm.common.access import access
from crm.signon import services as signon


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


@letter_writes.route("/signon-requests")
class SignOnQueue(MethodView):
    """The review queue."""

    @access("organizer")  # names and addresses of strangers: organizers only, as on the review page
    @letter_writes.response(200, SignOnRequestSchema(many=True))
    def get(self):
        """Confirmed public sign-ons waiting for a decision (organizers, as on the review page)."""
        return signon.review_queue()


@letter_writes.route("/signon-requests/<int:request_id>/decision")
class SignOnDecision(MethodView):
    """Decide a sign-on."""

    @letter_writes.arguments(DecisionSchema)
    @letter_writes.response(200, SignOnRequestSchema)
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
