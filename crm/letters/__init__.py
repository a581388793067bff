"""Sign-on letters and the organizations' participation in them."""


def pages_blueprint():
    """The `letters` blueprint with the routes of every page module added to it."""
    # Importing the page modules is what adds their routes to the blueprint.
    from crm.letters import import_views, review_views, signature_views, views  # noqa: F401
    from crm.letters.blueprint import bp

    return bp
