"""/api/v1/organizations: list and read (with the filter language), create, change with a version, archive, merge."""

import marshmallow as ma
from flask import g, request
from flask.views import MethodView
from flask_smorest import abort

from crm.api.blueprints import letter_writes, organization_writes, reads
from crm.api.schemas import (
    Id,
    OrganizationOptionalFields,
    OrganizationPageSchema,
    OrganizationQuerySchema,
    OrganizationSchema,
)
from crm.api.writes import answer_write
from crm.common.errors import NotFound
from crm.organizations import merging
from crm.organizations.creation import create_organization
from crm.organizations.editing import set_archived, update_organization
from crm.organizations.filters import FilterError, parse_filter
from crm.organizations.queries import get_organization, list_organizations


class OrganizationInSchema(OrganizationOptionalFields):
    """Fields to create an organization (checked by the same rules as the web form)."""

    class Meta:
        unknown = ma.RAISE

    name = ma.fields.String(required=True)
    parent_id = Id(allow_none=True, strict=True)
    issue_areas = ma.fields.List(ma.fields.String())
    aliases = ma.fields.List(ma.fields.String())
    notes = ma.fields.String(allow_none=True)


class OrganizationPatchSchema(OrganizationInSchema):
    """Fields to change (any subset) plus the version the client last read."""

    name = ma.fields.String()
    archived = ma.fields.Boolean()
    version = Id(
        required=True, strict=True, metadata={"description": "the version you read; a newer one answers 409"}
    )


class VersionSchema(ma.Schema):
    """An optional version for archive requests."""

    class Meta:
        unknown = ma.RAISE

    version = Id(strict=True)


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


_CURRENT = OrganizationSchema()  # what a 409 carries as `current`


def _write(change):
    """Run a service write on an organization, answering 404, 400 or 409 as for every versioned record."""
    return answer_write(change, _CURRENT, "No such organization.")


@reads.route("/organizations")
class Organizations(MethodView):
    """Organizations, filtered with the same language as the list page and the export."""

    @reads.arguments(OrganizationQuerySchema, location="query")
    @reads.response(200, OrganizationPageSchema)
    def get(self, args):
        """List organizations matching the filters."""
        try:
            result = list_organizations(parse_filter(request.args), sort=args.get("sort", "name"),
                                        page=args["page"], per_page=args["per_page"], with_aliases=True)
        except FilterError as exc:
            abort(400, message=str(exc), errors={exc.param: [str(exc)]})
        return {"items": result.items, "total": result.total, "page": result.page, "per_page": result.per_page}


@organization_writes.route("/organizations")
class OrganizationCreate(MethodView):
    """Create organizations (listing is GET /organizations)."""

    @organization_writes.arguments(OrganizationInSchema)
    @organization_writes.response(201, OrganizationSchema)
    def post(self, data):
        """Create an organization."""
        return _write(lambda: create_organization(data, user_id=g.api_user.id))


@reads.route("/organizations/<int:org_id>")
class OrganizationById(MethodView):
    """One organization."""

    @reads.response(200, OrganizationSchema)
    def get(self, org_id):
        """Get an organization."""
        return get_organization(org_id) or abort(404, message="No such organization.")


@organization_writes.route("/organizations/<int:org_id>")
class OrganizationChange(MethodView):
    """Change or archive one organization."""

    @organization_writes.arguments(OrganizationPatchSchema)
    @organization_writes.response(200, OrganizationSchema)
    @organization_writes.alt_response(409, description="The version sent is not the current one")
    def patch(self, data, org_id):
        """Change some fields; `version` must be the one you read."""
        version = data.pop("version")
        return _write(lambda: update_organization(org_id, data, version=version,
                                                                user_id=g.api_user.id))

    @organization_writes.response(200, OrganizationSchema)
    def delete(self, org_id):
        """Archive the organization (nothing is deleted; its history stays)."""
        return _archive(org_id, None)


@organization_writes.route("/organizations/<int:org_id>/archive")
class OrganizationArchive(MethodView):
    """Archive one organization."""

    @organization_writes.arguments(VersionSchema)
    @organization_writes.response(200, OrganizationSchema)
    def post(self, data, org_id):
        """Archive the organization; with `version`, only if it is still current."""
        return _archive(org_id, data.get("version"))


def _archive(org_id: int, version: int | None):
    """Archive, answering 404 or 409."""
    return _write(lambda: set_archived(org_id, True, version=version, user_id=g.api_user.id))


@letter_writes.route("/organizations/<int:org_id>/merge")
class OrganizationMerge(MethodView):
    """Merge another organization into this one."""

    @letter_writes.arguments(MergeInSchema)
    @letter_writes.response(200, MergeOutSchema)
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
                404 if isinstance(exc, NotFound) else 400,
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

