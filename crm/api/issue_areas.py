"""/api/v1/issue-areas: the issue-area vocabulary."""

from flask.views import MethodView

from crm.api import schemas
from crm.api.blueprints import reads
from crm.organizations.issue_areas import issue_areas


@reads.route("/issue-areas")
class IssueAreas(MethodView):
    """The issue-area vocabulary."""

    @reads.arguments(schemas.PageArgsSchema, location="query")
    @reads.response(200, schemas.IssueAreaPageSchema)
    def get(self, args):
        """List issue areas."""
        return schemas.page_of(issue_areas(include_retired=True), args)
