"""API writes for organizations (create, patch with a version, archive) and the contacts resource."""

import marshmallow as ma
from flask import g, request
from flask.views import MethodView
from flask_smorest import abort

from crm.api import make_blueprint
from crm.api.errors import conflict_response
from crm.api.schemas import (
    Id,
    OrganizationOptionalFields,
    OrganizationQuerySchema,
    OrganizationSchema,
    page_schema,
)
from crm.common.errors import ConflictError, NotFound
from crm.common.validation import InvalidData
from crm.contacts import services as contacts
from crm.contacts.filters import CONTACT_SORTS, FilterError, parse_contact_filter
from crm.organizations.creation import create_organization
from crm.organizations.editing import set_archived, update_organization

blp = make_blueprint("api_organizations", "Creating and changing organizations and contacts")


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


class ContactSchema(ma.Schema):
    """A contact (SPEC shape)."""

    id = ma.fields.Integer()
    organization_id = ma.fields.Integer(allow_none=True)
    first_name = ma.fields.String()
    last_name = ma.fields.String()
    title = ma.fields.String()
    email = ma.fields.String(allow_none=True)
    phone = ma.fields.String()
    is_primary = ma.fields.Boolean()
    status = ma.fields.String()
    mailable = ma.fields.Boolean()
    version = ma.fields.Integer()
    # Only in the answer to a write that made this contact primary in someone's place.
    replaced_primary = ma.fields.Dict(allow_none=True, metadata={
        "description": "The contact this one replaced as the organization's primary contact: {id, name}"})


class ContactInSchema(ma.Schema):
    """Fields to create a contact."""

    class Meta:
        unknown = ma.RAISE

    organization_id = Id(allow_none=True, strict=True)
    first_name = ma.fields.String()
    last_name = ma.fields.String()
    title = ma.fields.String()
    email = ma.fields.String(allow_none=True)
    phone = ma.fields.String()
    is_primary = ma.fields.Boolean()
    status = ma.fields.String()
    notes = ma.fields.String()


class ContactPatchSchema(ContactInSchema):
    """Fields to change plus the version the client last read."""

    version = Id(required=True, strict=True)


class ContactQuerySchema(OrganizationQuerySchema):
    """The organization filter (contacts whose organization matches) plus the contact's own filters."""

    contact_q = ma.fields.String(validate=ma.validate.Length(max=200))
    primary = ma.fields.Boolean()
    status = ma.fields.String(validate=ma.validate.OneOf(("active", "left")))
    mailable = ma.fields.Boolean()
    suppressed = ma.fields.Boolean()
    unsubscribed = ma.fields.Boolean()
    sort = ma.fields.String(validate=ma.validate.OneOf(tuple(CONTACT_SORTS)))


ContactPageSchema = page_schema(ContactSchema, "ContactPage")

# For each kind of record _write answers for: the schema of a 409's `current`, and the 404's message.
_KINDS = {
    "organization": (OrganizationSchema(), "No such organization."),
    "contact": (ContactSchema(), "No such contact."),
}


def _user_id() -> int:
    """The token's user, for the audit log."""
    return g.api_user.id


def _write(kind: str, change):
    """Run a service write on an organization or a contact and answer its errors the same way for both.

    NotFound is a 404, InvalidData a 400 naming each field at fault, ConflictError a 409 carrying the record as
    it is saved now.
    """
    schema, not_found = _KINDS[kind]
    try:
        return change()
    except NotFound:
        abort(404, message=not_found)
    except InvalidData as exc:
        abort(400, message="Some fields are not valid.", errors=exc.errors)
    except contacts.PrimaryTaken as exc:
        abort(409, message=str(exc), errors={"is_primary": [str(exc)]})
    except ConflictError as exc:
        return conflict_response(exc, schema)


@blp.route("/organizations")
class OrganizationCreate(MethodView):
    """Create organizations (listing is GET /organizations)."""

    @blp.arguments(OrganizationInSchema)
    @blp.response(201, OrganizationSchema)
    def post(self, data):
        """Create an organization."""
        return _write("organization", lambda: create_organization(data, user_id=_user_id()))


@blp.route("/organizations/<int:org_id>")
class OrganizationChange(MethodView):
    """Change or archive one organization."""

    @blp.arguments(OrganizationPatchSchema)
    @blp.response(200, OrganizationSchema)
    @blp.alt_response(409, description="The version sent is not the current one")
    def patch(self, data, org_id):
        """Change some fields; `version` must be the one you read."""
        version = data.pop("version")
        return _write(
            "organization",
            lambda: update_organization(org_id, data, version=version, user_id=_user_id()),
        )

    @blp.response(200, OrganizationSchema)
    def delete(self, org_id):
        """Archive the organization (nothing is deleted; its history stays)."""
        return _archive(org_id, None)


@blp.route("/organizations/<int:org_id>/archive")
class OrganizationArchive(MethodView):
    """Archive one organization."""

    @blp.arguments(VersionSchema)
    @blp.response(200, OrganizationSchema)
    def post(self, data, org_id):
        """Archive the organization; with `version`, only if it is still current."""
        return _archive(org_id, data.get("version"))


def _archive(org_id: int, version: int | None):
    """Archive, answering 404 or 409."""
    return _write(
        "organization", lambda: set_archived(org_id, True, version=version, user_id=_user_id())
    )


@blp.route("/contacts")
class Contacts(MethodView):
    """Contacts, filtered by their organization and their own fields."""

    @blp.arguments(ContactQuerySchema, location="query")
    @blp.response(200, ContactPageSchema)
    def get(self, args):
        """List contacts."""
        try:
            result = contacts.list_contacts(
                parse_contact_filter(request.args),
                sort=args.get("sort", "name"),
                page=args["page"],
                per_page=args["per_page"],
            )
        except FilterError as exc:
            abort(400, message=str(exc), errors={exc.param: [str(exc)]})
        return {
            "items": result.items,
            "total": result.total,
            "page": result.page,
            "per_page": result.per_page,
        }

    @blp.arguments(ContactInSchema)
    @blp.response(201, ContactSchema)
    def post(self, data):
        """Create a contact."""
        return _write("contact", lambda: contacts.create_contact(data, user_id=_user_id()))


@blp.route("/contacts/<int:contact_id>")
class ContactById(MethodView):
    """One contact."""

    @blp.response(200, ContactSchema)
    def get(self, contact_id):
        """Get a contact."""
        return contacts.get_contact(contact_id) or abort(404, message="No such contact.")

    @blp.arguments(ContactPatchSchema)
    @blp.response(200, ContactSchema)
    @blp.alt_response(409, description="The version sent is not the current one")
    def patch(self, data, contact_id):
        """Change some fields (move, mark primary, mark as left); `version` must be the one you read."""
        version = data.pop("version")
        return _write(
            "contact", lambda: contacts.update_contact(contact_id, data, version=version, user_id=_user_id())
        )
