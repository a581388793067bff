"""Marshmallow schemas: the JSON shapes of SPEC (field names are contract)."""

import marshmallow as ma

from crm.letters.signatures import text_fingerprint
from crm.organizations.filters import ARCHIVED_MODES, MATCH_MODES, SORTS, US_STATES
from crm.organizations.models import ORG_TYPES, SCOPES

MAX_ID = 2**31 - 1


class Id(ma.fields.Integer):
    """A record id (or version) in a request: a positive number that fits the database's integer columns."""

    def __init__(self, **kwargs):
        kwargs.setdefault("validate", ma.validate.Range(1, MAX_ID))
        super().__init__(**kwargs)


class PageArgsSchema(ma.Schema):
    """Pagination parameters."""

    class Meta:
        unknown = ma.EXCLUDE

    page = ma.fields.Integer(load_default=1, validate=ma.validate.Range(1, 1_000_000))
    per_page = ma.fields.Integer(load_default=50, validate=ma.validate.Range(1, 200))


class OrganizationQuerySchema(PageArgsSchema):
    """The organization filter language (see crm.organizations.filters)."""

    issue_area = ma.fields.List(ma.fields.String(), metadata={"description": "issue-area slug, repeatable"})
    match = ma.fields.String(validate=ma.validate.OneOf(MATCH_MODES),
                             metadata={"description": "how several issue areas combine"})
    not_issue_area = ma.fields.List(ma.fields.String(), metadata={
        "description": "issue-area slug the organization must not have, repeatable (combines with issue_area)"})
    state = ma.fields.List(ma.fields.String(validate=ma.validate.OneOf(sorted(US_STATES))),
                           metadata={"description": "two-letter state code, repeatable"})
    org_type = ma.fields.List(ma.fields.String(validate=ma.validate.OneOf(ORG_TYPES)))
    scope = ma.fields.List(ma.fields.String(validate=ma.validate.OneOf(SCOPES)))
    parent = ma.fields.Integer(validate=ma.validate.Range(1, 10_000_000),
                               metadata={"description": "affiliates of this organization id"})
    signed = ma.fields.List(ma.fields.String(), metadata={"description": "letter slug signed, repeatable"})
    signed_match = ma.fields.String(validate=ma.validate.OneOf(("any", "all")))
    not_signed = ma.fields.List(ma.fields.String(), metadata={"description": "letter slug not signed"})
    min_signed = ma.fields.Integer(validate=ma.validate.Range(0, 100_000))
    last_signed_before = ma.fields.Date()
    last_signed_after = ma.fields.Date()
    never_signed = ma.fields.Boolean()
    has_mailable = ma.fields.Boolean()
    archived = ma.fields.String(validate=ma.validate.OneOf(ARCHIVED_MODES))
    q = ma.fields.String(validate=ma.validate.Length(max=200), metadata={"description": "name, acronym, alias"})
    sort = ma.fields.String(validate=ma.validate.OneOf(tuple(SORTS)))


class IssueAreaSchema(ma.Schema):
    """An issue area."""

    slug = ma.fields.String()
    name = ma.fields.String()
    retired = ma.fields.Boolean()


class OrganizationOptionalFields(ma.Schema):
    """An organization's optional one-line fields, alike in what the API sends and what it takes."""

    acronym = ma.fields.String(allow_none=True)
    org_type = ma.fields.String(allow_none=True)
    scope = ma.fields.String(allow_none=True)
    city = ma.fields.String(allow_none=True)
    state = ma.fields.String(allow_none=True)
    country = ma.fields.String(allow_none=True)
    website = ma.fields.String(allow_none=True)


class OrganizationSchema(OrganizationOptionalFields):
    """An organization."""

    id = ma.fields.Integer()
    name = ma.fields.String()
    parent_id = ma.fields.Integer(allow_none=True)
    issue_areas = ma.fields.Function(lambda org: [a.slug for a in org.issue_areas],
                                     metadata={"type": "array", "items": {"type": "string"}})
    aliases = ma.fields.Function(lambda org: [a.name for a in org.aliases],
                                 metadata={"type": "array", "items": {"type": "string"}})
    archived = ma.fields.Boolean()
    version = ma.fields.Integer()


class LetterSchema(ma.Schema):
    """A letter."""

    slug = ma.fields.String()
    title = ma.fields.String()
    recipients = ma.fields.String()
    cc = ma.fields.String()
    summary = ma.fields.String()
    body = ma.fields.String()
    status = ma.fields.String()
    date = ma.fields.Date(allow_none=True, attribute="letter_date",
                          metadata={"description": "The date printed on the letter; null: undated (the pages then "
                                                   "show `delivered_on`)"})
    deadline = ma.fields.Date(allow_none=True)
    delivered_on = ma.fields.Date(allow_none=True)
    public_signon = ma.fields.Boolean()
    review_required = ma.fields.Boolean()
    issue_areas = ma.fields.Function(lambda letter: [a.slug for a in letter.issue_areas],
                                     metadata={"type": "array", "items": {"type": "string"}})
    version = ma.fields.Integer()


def _on_earlier_text(sig) -> bool:
    """Whether a signature was given on an earlier text of its letter."""
    return sig.text_fingerprint not in ("", text_fingerprint(sig.letter))


class SignatureSchema(ma.Schema):
    """One organization's participation in a letter."""

    id = ma.fields.Integer()
    letter = ma.fields.Function(lambda s: s.letter.slug, metadata={"type": "string"})
    organization_id = ma.fields.Integer()
    organization = ma.fields.Function(lambda s: s.organization.name, metadata={"type": "string"})
    listed_as = ma.fields.String(attribute="listed_name")
    role = ma.fields.String()
    status = ma.fields.String()
    signed_at = ma.fields.DateTime(allow_none=True)
    source = ma.fields.String()
    # Proof of authority: who authorized it, and whether they saw the letter's current text.
    contact_id = ma.fields.Integer(allow_none=True)
    authorized_name = ma.fields.String()
    authorized_title = ma.fields.String()
    authorized_email = ma.fields.String()
    text_fingerprint = ma.fields.String()
    earlier_text = ma.fields.Function(_on_earlier_text, metadata={"type": "boolean"})


def page_schema(item_schema: type[ma.Schema], name: str) -> type[ma.Schema]:
    """A list envelope {items, total, page, per_page} around an item schema."""
    return ma.Schema.from_dict({
        "items": ma.fields.List(ma.fields.Nested(item_schema)),
        "total": ma.fields.Integer(),
        "page": ma.fields.Integer(),
        "per_page": ma.fields.Integer(),
    }, name=name)


def page_of(items: list, args: dict) -> dict:
    """One page (`page`, `per_page` of the query) of a list read whole, in page_schema's envelope."""
    start = (args["page"] - 1) * args["per_page"]
    return {"items": items[start:start + args["per_page"]], "total": len(items), "page": args["page"],
            "per_page": args["per_page"]}


OrganizationPageSchema = page_schema(OrganizationSchema, "OrganizationPage")
IssueAreaPageSchema = page_schema(IssueAreaSchema, "IssueAreaPage")
LetterPageSchema = page_schema(LetterSchema, "LetterPage")
SignaturePageSchema = page_schema(SignatureSchema, "SignaturePage")
