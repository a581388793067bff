"""The dashboard."""

from flask import Blueprint, render_template, url_for

from crm.common.access import access
from crm.dashboard import services
from crm.organizations.issue_areas import issue_area_counts

bp = Blueprint("dashboard", __name__)


@bp.get("/")
@access("viewer")
def index():
    """Counts, letters collecting sign-ons, recent activity and the charts."""
    cutoff, lapsed = services.lapsed_by_year()
    most_signed = services.most_letters_signed()
    area_bars = [services.Bar(area.name, n, {"issue_area": area.slug}) for area, n in issue_area_counts()]
    return render_template(
        "dashboard/index.html",
        counts=services.counts(),
        collecting=services.collecting_letters(),
        per_letter=services.signatures_per_letter(),
        area_bars=area_bars,
        engaged=services.most_engaged(),
        lapsed=lapsed,
        bar_href=bar_href,
        lapsed_cutoff=cutoff,
        lapsed_years=services.LAPSED_YEARS,
        activity=services.recent_activity(),
        # With every organization on one letter at most, "most engaged" and "lapsed" cannot rank anyone yet:
        # the page says so and shows the newest partners instead.
        history=most_signed > 1,
        nobody_signed=most_signed == 0,
        newest=services.newest_partners() if most_signed <= 1 else [],
    )


def bar_href(bar: services.Bar) -> str:
    """The page behind a chart bar: an organization, or the organization list filtered to the bar's rows."""
    if "org_id" in bar.href_params:
        return url_for("organizations.show", org_id=bar.href_params["org_id"])
    return url_for("organizations.index", **bar.href_params)
