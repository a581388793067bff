"""API for segments: saved organization filters {id, name, filter}."""

import marshmallow as ma
from flask import g
from flask.views import MethodView
from flask_smorest import abort

from crm.api import make_blueprint
from crm.api.schemas import PageArgsSchema, page_of, page_schema
from crm.common.errors import NotFound
from crm.common.validation import InvalidData
from crm.segments import services

blp = make_blueprint("api_segments", "Segments: saved organization filters, re-evaluated when used")


class SegmentSchema(ma.Schema):
    """A segment; `filter` uses the organization list's query-parameter names."""

    id = ma.fields.Integer()
    name = ma.fields.String()
    filter = ma.fields.Dict()


class SegmentInSchema(ma.Schema):
    """Create a segment."""

    class Meta:
        unknown = ma.RAISE

    name = ma.fields.String(required=True)
    filter = ma.fields.Dict(load_default=dict)


class SegmentPatchSchema(ma.Schema):
    """Rename a segment or replace its filter."""

    class Meta:
        unknown = ma.RAISE

    name = ma.fields.String()
    filter = ma.fields.Dict()


SegmentPageSchema = page_schema(SegmentSchema, "SegmentPage")


@blp.route("/segments")
class Segments(MethodView):
    """Every segment."""

    @blp.arguments(PageArgsSchema, location="query")
    @blp.response(200, SegmentPageSchema)
    def get(self, args):
        """List segments by name."""
        return page_of(services.list_segments(), args)

    @blp.arguments(SegmentInSchema)
    @blp.response(201, SegmentSchema)
    def post(self, data):
        """Save a filter under a name."""
        try:
            return services.create_segment(data["name"], data["filter"], user_id=g.api_user.id)
        except InvalidData as exc:
            abort(400, message="Some fields are not valid.", errors=exc.errors)


@blp.route("/segments/<int:segment_id>")
class SegmentById(MethodView):
    """One segment."""

    @blp.response(200, SegmentSchema)
    def get(self, segment_id):
        """Get a segment."""
        return services.get_segment(segment_id) or abort(404, message="No such segment.")

    @blp.arguments(SegmentPatchSchema)
    @blp.response(200, SegmentSchema)
    def patch(self, data, segment_id):
        """Rename a segment or replace its filter."""
        try:
            return services.update_segment(
                segment_id, name=data.get("name"), filter_source=data.get("filter"), user_id=g.api_user.id
            )
        except NotFound:
            abort(404, message="No such segment.")
        except InvalidData as exc:
            abort(400, message="Some fields are not valid.", errors=exc.errors)

    @blp.response(204)
    def delete(self, segment_id):
        """Delete a segment."""
        try:
            services.delete_segment(segment_id, user_id=g.api_user.id)
        except NotFound:
            abort(404, message="No such segment.")
