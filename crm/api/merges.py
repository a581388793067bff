"""/api/v1/merges: create, check, preview, queue, send, control and follow mail merges."""

import marshmallow as ma
from flask import g
from flask.views import MethodView
from flask_smorest import abort

from crm.api import make_blueprint
from crm.common.access import access
from crm.mailmerge import checking, compose, previews, queueing, reports
from crm.mailmerge.errors import MergeError

blp = make_blueprint("api_merges", "Mail merges")


class MergeCreateSchema(ma.Schema):
    """A new merge (audience: {segment_id, filter, contacts, after_merge})."""

    name = ma.fields.String(required=True)
    subject = ma.fields.String(required=True)
    body = ma.fields.String(required=True)
    letter = ma.fields.String(load_default=None, allow_none=True, metadata={"description": "letter slug"})
    sender = ma.fields.String(load_default="")
    reply_to = ma.fields.String(load_default="")
    throttle_per_minute = ma.fields.Integer(load_default=None, allow_none=True, validate=ma.validate.Range(1, 100_000))
    audience = ma.fields.Dict(load_default=dict)


class MergeSchema(ma.Schema):
    """A merge with its counts per status."""

    id = ma.fields.Integer()
    name = ma.fields.String()
    status = ma.fields.String()
    letter = ma.fields.Function(lambda m: m.letter.slug if m.letter else None)
    subject = ma.fields.String(attribute="subject_template")
    body = ma.fields.String(attribute="body_template")
    sender = ma.fields.String()
    reply_to = ma.fields.String()
    throttle_per_minute = ma.fields.Integer(allow_none=True)
    audience = ma.fields.Dict()
    counts = ma.fields.Function(lambda m: reports.merge_counts(m.id))
    queued_at = ma.fields.DateTime(allow_none=True)
    finished_at = ma.fields.DateTime(allow_none=True)


class PreviewArgs(ma.Schema):
    """Which recipient to preview."""

    contact_id = ma.fields.Integer(load_default=None, validate=ma.validate.Range(1, 2**31 - 1))


class TestSendSchema(ma.Schema):
    """A test message: to whom, rendered for which recipient."""

    email = ma.fields.String(load_default=None, allow_none=True,
                             metadata={"description": "address the test goes to (default: the token's user)"})
    contact_id = ma.fields.Integer(load_default=None, allow_none=True, validate=ma.validate.Range(1, 2**31 - 1),
                                   metadata={"description": "render it for this contact (default: the first of "
                                                            "the audience)"})


class TestSentSchema(ma.Schema):
    """The queued test message."""

    id = ma.fields.Integer()
    email = ma.fields.String()
    subject = ma.fields.String()
    status = ma.fields.String()


def _json_object(description: str) -> dict:
    """OpenAPI doc for a 200 JSON object answer (these endpoints return plain dicts built by the services)."""
    return {"responses": {"200": {"description": description,
                                  "content": {"application/json": {"schema": {"type": "object"}}}}}}


def _get(merge_id: int):
    """The merge or a 404 problem."""
    return reports.get_merge(merge_id) or abort(404, message="No such merge.")


def _fail(exc: MergeError):
    """A MergeError as a 400 problem."""
    abort(400, message=str(exc), errors=exc.errors or None)


@blp.route("/merges")
class Merges(MethodView):
    """Mail merges."""

    @blp.response(200, MergeSchema(many=True))
    def get(self):
        """Every merge, newest first, with counts."""
        return [merge for merge, _ in reports.list_merges()]

    @blp.arguments(MergeCreateSchema)
    @blp.response(201, MergeSchema)
    def post(self, data):
        """Create a draft merge."""
        try:
            return compose.create_merge(data, g.api_user.id)
        except MergeError as exc:
            _fail(exc)


@blp.route("/merges/<int:merge_id>")
class MergeById(MethodView):
    """One merge."""

    @blp.response(200, MergeSchema)
    def get(self, merge_id):
        """A merge with counts per status."""
        return _get(merge_id)


@blp.route("/merges/<int:merge_id>/status")
class MergeStatus(MethodView):
    """Progress."""

    @blp.doc(**_json_object("id, status and counts per status"))
    def get(self, merge_id):
        """Counts per status."""
        merge = _get(merge_id)
        return {"id": merge.id, "status": merge.status, "counts": reports.merge_counts(merge.id)}


@blp.route("/merges/<int:merge_id>/audience")
class MergeAudience(MethodView):
    """Audience counts before queueing."""

    @blp.doc(**_json_object("audience counts"))
    def get(self, merge_id):
        """organizations, contacts, mailable, suppressed, without_contact."""
        try:
            return checking.audience_counts(_get(merge_id)).as_dict()
        except MergeError as exc:
            _fail(exc)


@blp.route("/merges/<int:merge_id>/check")
class MergeCheck(MethodView):
    """The dry run."""

    @access("organizer")
    @blp.doc(**_json_object("the dry run's result"))
    def get(self, merge_id):
        """Render every recipient once; problems block queueing (organizers, as on the merge page)."""
        try:
            return checking.check_merge(_get(merge_id)).as_dict()
        except MergeError as exc:
            _fail(exc)


@blp.route("/merges/<int:merge_id>/preview")
class MergePreview(MethodView):
    """One recipient's message."""

    @access("organizer")
    @blp.arguments(PreviewArgs, location="query")
    @blp.doc(**_json_object("subject, text, html and raw of one recipient's message"))
    def get(self, args, merge_id):
        """subject, text, html and the raw MIME of one recipient's message (organizers, as on the merge page: a
        message holds the recipient's personal sign-on link, which signs for their organization)."""
        try:
            rendered = previews.preview(_get(merge_id), args.get("contact_id"))
        except MergeError as exc:
            _fail(exc)
        return {
            "subject": rendered.subject,
            "text": rendered.text,
            "html": rendered.html,
            "raw": rendered.raw,
        }


@blp.route("/merges/<int:merge_id>/test")
class MergeTest(MethodView):
    """A test message to yourself."""

    @blp.arguments(TestSendSchema)
    @blp.response(202, TestSentSchema)
    def post(self, data, merge_id):
        """Queue a test of the merge, rendered for one recipient and sent to `email` with "[TEST]" in the subject.
        Its sign-on and unsubscribe links (List-Unsubscribe too) are test links that change nothing."""
        merge = _get(merge_id)
        try:
            return previews.send_test(merge, data.get("email") or g.api_user.email, data.get("contact_id"),
                                      g.api_user.id)
        except MergeError as exc:
            _fail(exc)


def _action(name: str, doc: str):
    """POST /merges/<id>/<name>."""

    def post(self, merge_id):
        merge = _get(merge_id)
        try:
            if name == "queue":
                queueing.queue_merge(merge, g.api_user.id)
            elif name == "send":
                if merge.status == "draft":
                    queueing.queue_merge(merge, g.api_user.id)
                elif merge.status == "paused":
                    queueing.set_state(merge, "resume", g.api_user.id)
            else:
                queueing.set_state(merge, name, g.api_user.id)
        except MergeError as exc:
            _fail(exc)
        return {"id": merge.id, "status": merge.status, "counts": reports.merge_counts(merge.id)}

    post.__doc__ = doc
    post = blp.doc(**_json_object("id, status and counts per status"))(post)
    view = type(f"Merge{name.capitalize()}", (MethodView,), {"post": post, "__doc__": doc})
    blp.route(f"/merges/<int:merge_id>/{name}")(view)


_action("queue", "Freeze the audience and content into the outbox (after the dry run passes; refused while the "
                 "merge uses sign_on_url and its letter takes no signatures).")
_action("send", "Queue (if a draft) or resume; the workers send it.")
_action("pause", "Pause sending within a few messages.")
_action("resume", "Resume a paused merge.")
_action("cancel", "Cancel: nothing more is sent.")
