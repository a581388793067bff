"""Mail merges, the outbox and suppressions."""


def pages_blueprint():
    """The `mailmerge` blueprint with the routes of every page module added to it."""
    # Importing the page modules is what adds their routes to the blueprint.
    from crm.mailmerge import outbox_views, public_views, suppression_views, views  # noqa: F401
    from crm.mailmerge.blueprint import bp

    return bp
