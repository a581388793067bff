"""/api/v1/contacts: list (filtered by their organization and their own fields), read, create, change with a version."""

import marshmallow as ma
from flask import g, request
from flask.views import MethodView
from flask_smorest import abort

from crm.api.blueprints import organization_writes
from crm.api.schemas import Id, OrganizationQuerySchema, page_schema
from crm.api.writes import answer_write
from crm.contacts import services as contacts
from crm.contacts.filters import CONTACT_SORTS, FilterError, parse_contact_filter


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
_CURRENT = ContactSchema()  # what a 409 carries as `current`


def _write(change):
    """Run a service write on a contact, answering 404, 400 or 409 as for every versioned record."""
    return answer_write(change, _CURRENT, "No such contact.")


@organization_writes.route("/contacts")
class Contacts(MethodView):
    """Contacts, filtered by their organization and their own fields."""

    @organization_writes.arguments(ContactQuerySchema, location="query")
    @organization_writes.response(200, ContactPageSchema)
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

    @organization_writes.arguments(ContactInSchema)
    @organization_writes.response(201, ContactSchema)
    def post(self, data):
        """Create a contact."""
        return _write(lambda: contacts.create_contact(data, user_id=g.api_user.id))


@organization_writes.route("/contacts/<int:contact_id>")
class ContactById(MethodView):
    """One contact."""

    @organization_writes.response(200, ContactSchema)
    def get(self, contact_id):
        """Get a contact."""
        return contacts.get_contact(contact_id) or abort(404, message="No such contact.")

    @organization_writes.arguments(ContactPatchSchema)
    @organization_writes.response(200, ContactSchema)
    @organization_writes.alt_response(409, description="The version sent is not the current one")
    def patch(self, data, contact_id):
        """Change some fields (move, mark primary, mark as left); `version` must be the one you read."""
        version = data.pop("version")
        return _write(lambda: contacts.update_contact(contact_id, data, version=version, user_id=g.api_user.id))
