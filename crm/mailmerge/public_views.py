"""The public pages a recipient reaches from a message: unsubscribe, and where a test message's links lead."""

from flask import render_template, request

from crm.common.access import access
from crm.extensions import csrf
from crm.mailmerge import suppressions
from crm.mailmerge.blueprint import bp
from crm.mailmerge.errors import MergeError


@bp.route("/t/<token>", methods=["GET", "POST"])
@access("public")
@csrf.exempt
def test_link(token: str):
    """Where every personal link of a test message leads (also the one-click unsubscribe POST of its
    List-Unsubscribe header): it says what the real link would do, and changes nothing."""
    from crm.common.tokens import TokenError
    from crm.mailmerge.links import read_test_link

    try:
        link = read_test_link(token)
    except TokenError as exc:
        return render_template("mailmerge/test_link.html", error=str(exc), link=None), 400
    return render_template("mailmerge/test_link.html", error=None, link=link)


@bp.route("/u/<token>", methods=["GET", "POST"])
@access("public")
@csrf.exempt
def unsubscribe(token: str):
    """GET asks for confirmation and changes nothing; POST (one click, RFC 8058: no cookie or CSRF)
    suppresses.
    """
    try:
        data = suppressions.read_unsubscribe(token)
    except MergeError as exc:
        return render_template("mailmerge/unsubscribe.html", error=str(exc), email=None, done=False), 400
    if request.method == "POST":
        email = suppressions.unsubscribe(token)
        return render_template("mailmerge/unsubscribe.html", error=None, email=email, done=True)
    return render_template(
        "mailmerge/unsubscribe.html", error=None, email=data["email"], done=False, token=token
    )
