"""Mail-merge and suppression forms (validation only; the services check meaning)."""

from urllib.parse import parse_qs

from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import (
    HiddenField,
    IntegerField,
    RadioField,
    SelectChoice,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from crm.mailmerge.models import SUPPRESSION_REASONS


class MergeForm(FlaskForm):
    """Compose a merge: content, sender, and audience; `version` is the one the edit form was opened with."""

    name = StringField("Name (for you)", validators=[DataRequired(), Length(max=200)])
    letter = SelectField("Letter it promotes", choices=[], validate_choice=False)
    sender = StringField(
        "From",
        validators=[Optional(), Length(max=320)],
        description="e.g. Ana Ruiz <ana@example.org>; empty uses the instance's default sender",
    )
    reply_to = StringField("Reply-To", validators=[Optional(), Length(max=320)])
    subject = StringField("Subject", validators=[DataRequired(), Length(max=1000)])
    body = TextAreaField(
        "Body (Markdown with fields)",
        validators=[DataRequired(), Length(max=50_000)],
        render_kw={"rows": 14, "class": "font-monospace"},
    )
    throttle_per_minute = IntegerField(
        "Throttle (messages per minute, empty for no limit)", validators=[Optional(), NumberRange(1, 100_000)]
    )
    segment = SelectField("Segment", choices=[], validate_choice=False)
    issue_area = SelectMultipleField("Issue areas", choices=[], validate_choice=False)
    match = SelectField(
        "Issue areas match",
        choices=[
            SelectChoice("any", "any of them"),
            SelectChoice("all", "all of them"),
            SelectChoice("none", "none of them"),
        ],
        default="any",
    )
    not_issue_area = SelectMultipleField("Works on none of", choices=[], validate_choice=False)
    signed = SelectMultipleField(
        "Signed (all of these letters)", choices=[], validate_choice=False,
        description="Past signers: invite them to the letter this merge promotes, or thank them for one they "
                    "signed.",
    )
    not_signed = SelectMultipleField("Has not signed", choices=[], validate_choice=False)
    state = StringField(
        "States (two-letter codes, comma-separated)", validators=[Optional(), Length(max=400)]
    )
    extra_filter = StringField(
        "More filters (as in the Organizations page's address, e.g. scope=national)",
        validators=[Optional(), Length(max=2000)],
    )
    after_merge = SelectField("Only contacts who received merge", choices=[], validate_choice=False)
    contacts = RadioField(
        "Contacts per organization",
        default="primary",
        choices=[SelectChoice("primary", "Primary contact only"), SelectChoice("all", "All active contacts")],
    )
    version = HiddenField()

    def audience(self) -> dict:
        """The audience dict the services validate."""
        params: dict = {}
        if self.extra_filter.data:
            params.update({k: v for k, v in parse_qs(self.extra_filter.data.strip().lstrip("?")).items()})
        for key in ("issue_area", "not_issue_area", "signed", "not_signed"):
            values = [v for v in getattr(self, key).data or [] if v]
            if values:
                params[key] = values
        if params.get("issue_area"):
            params["match"] = self.match.data or "any"
        if self.state.data:
            params["state"] = [s.strip() for s in self.state.data.split(",") if s.strip()]
        return {
            "segment_id": self.segment.data or None,
            "filter": params,
            "contacts": self.contacts.data,
            "after_merge": self.after_merge.data or None,
        }

    def service_data(self) -> dict:
        """The plain values create_merge/update_merge take."""
        return {
            "name": self.name.data,
            "letter": self.letter.data or None,
            "sender": self.sender.data,
            "reply_to": self.reply_to.data,
            "subject": self.subject.data,
            "body": self.body.data,
            "throttle_per_minute": self.throttle_per_minute.data,
            "audience": self.audience(),
        }


class ActionForm(FlaskForm):
    """A POST button (CSRF only)."""


class ConfirmForm(FlaskForm):
    """The second click of "Queue and send"."""

    confirmed = HiddenField()


class TestForm(FlaskForm):
    """Send a test to yourself, rendered for one recipient."""

    contact_id = SelectField("Render it for", choices=[], validate_choice=False)


class SuppressionForm(FlaskForm):
    """Suppress an address by hand."""

    email = StringField("Email", validators=[DataRequired(), Length(max=254)])
    reason = SelectField(
        "Reason", choices=[SelectChoice(r, r) for r in SUPPRESSION_REASONS], default="manual"
    )
    note = StringField("Note", validators=[Optional(), Length(max=500)])


class RemoveSuppressionForm(FlaskForm):
    """Un-suppress an address, saying why."""

    email = StringField("Email", validators=[DataRequired(), Length(max=254)])
    reason = StringField("Why may it be mailed again?", validators=[DataRequired(), Length(min=3, max=500)])


class ImportSuppressionsForm(FlaskForm):
    """A CSV with an email column."""

    file = FileField("CSV file (column email; optional reason, note)", validators=[FileRequired()])
