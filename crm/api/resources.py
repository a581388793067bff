"""API resources: thin handlers that parse, call services and serialise."""

from flask import request
from flask.views import MethodView
from flask_smorest import abort

from crm.api import make_blueprint, schemas
from crm.letters.queries import get_letter, list_letters, signatories
from crm.organizations.filters import FilterError, parse_filter
from crm.organizations.issue_areas import issue_areas
from crm.organizations.queries import get_organization, list_organizations

blp = make_blueprint("api", "Organizations, issue areas, letters and signatures")


@blp.route("/issue-areas")
class IssueAreas(MethodView):
    """The issue-area vocabulary."""

    @blp.arguments(schemas.PageArgsSchema, location="query")
    @blp.response(200, schemas.IssueAreaPageSchema)
    def get(self, args):
        """List issue areas."""
        areas = issue_areas(include_retired=True)
        start = (args["page"] - 1) * args["per_page"]
        return {"items": areas[start:start + args["per_page"]], "total": len(areas), "page": args["page"],
                "per_page": args["per_page"]}


@blp.route("/organizations")
class Organizations(MethodView):
    """Organizations, filtered with the same language as the list page and the export."""

    @blp.arguments(schemas.OrganizationQuerySchema, location="query")
    @blp.response(200, schemas.OrganizationPageSchema)
    def get(self, args):
        """List organizations matching the filters."""
        try:
            result = list_organizations(parse_filter(request.args), sort=args.get("sort", "name"),
                                        page=args["page"], per_page=args["per_page"], with_aliases=True)
        except FilterError as exc:
            abort(400, message=str(exc), errors={exc.param: [str(exc)]})
        return {"items": result.items, "total": result.total, "page": result.page, "per_page": result.per_page}


@blp.route("/organizations/<int:org_id>")
class OrganizationById(MethodView):
    """One organization."""

    @blp.response(200, schemas.OrganizationSchema)
    def get(self, org_id):
        """Get an organization."""
        return get_organization(org_id) or abort(404, message="No such organization.")


@blp.route("/letters")
class Letters(MethodView):
    """Letters."""

    @blp.arguments(schemas.PageArgsSchema, location="query")
    @blp.response(200, schemas.LetterPageSchema)
    def get(self, args):
        """List letters, newest first."""
        items = [letter for letter, _ in list_letters()]
        start = (args["page"] - 1) * args["per_page"]
        return {"items": items[start:start + args["per_page"]], "total": len(items), "page": args["page"],
                "per_page": args["per_page"]}


@blp.route("/letters/<slug>/signatures")
class LetterSignatures(MethodView):
    """A letter's signatures in delivery order (leads first, then alphabetical)."""

    @blp.arguments(schemas.PageArgsSchema, location="query")
    @blp.response(200, schemas.SignaturePageSchema)
    def get(self, args, slug):
        """List a letter's signatures."""
        letter = get_letter(slug) or abort(404, message="No such letter.")
        items = signatories(letter, ("confirmed", "pending", "declined", "withdrawn"))
        start = (args["page"] - 1) * args["per_page"]
        return {"items": items[start:start + args["per_page"]], "total": len(items), "page": args["page"],
                "per_page": args["per_page"]}
