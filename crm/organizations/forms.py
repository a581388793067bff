"""Organization, interaction and issue-area forms (validation only: the checks are shared with the API)."""

from flask_wtf import FlaskForm
from wtforms import (
    DateField,
    HiddenField,
    SelectChoice,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, InputRequired, Length, Optional, ValidationError

from crm.common import validation as check
from crm.organizations.models import ORG_TYPES, SCOPES


def checked(function):
    """A WTForms validator running one of crm.common.validation's checks and keeping the value it cleans."""

    def validator(form, field):
        try:
            cleaned = function(field.data)
        except check.FieldError as exc:
            raise ValidationError(str(exc)) from exc
        if cleaned is not None:
            field.data = cleaned

    return validator


def _no_control_characters(form, field):
    """Refuse NUL, line breaks and other control characters in one-line fields (used by other features' forms)."""
    if field.data and any(ord(ch) < 32 or ord(ch) == 127 for ch in field.data):
        raise ValidationError("Line breaks and control characters are not allowed here.")


def _line(max_length: int, label: str):
    """A one-line text check."""
    return checked(lambda v: check.text_line(v, max_length, label=label))


class OrganizationForm(FlaskForm):
    """Create or edit an organization; `version` is the one the form was opened with (optimistic locking)."""

    name = StringField("Name", validators=[DataRequired(), _line(300, "Name")])
    acronym = StringField("Acronym", validators=[Optional(), _line(40, "Acronym")])
    org_type = SelectField(
        "Type",
        choices=[SelectChoice("", "—")]
        + [SelectChoice(t, t.replace("-", " ").capitalize()) for t in ORG_TYPES],
        validators=[Optional()],
    )
    scope = SelectField(
        "Scope",
        choices=[SelectChoice("", "—")] + [SelectChoice(s, s.capitalize()) for s in SCOPES],
        validators=[Optional()],
    )
    city = StringField("City", validators=[Optional(), _line(120, "City")])
    state = StringField("State", validators=[Optional(), checked(check.us_state)])
    country = StringField("Country", validators=[Optional(), checked(check.country)])
    website = StringField("Website", validators=[Optional(), checked(check.web_url)])
    parent = StringField("Parent organization", validators=[Optional(), _line(320, "Parent organization")])
    issue_areas = SelectMultipleField("Issue areas", choices=[])
    aliases = TextAreaField("Other spellings of the name", validators=[Optional()])
    notes = TextAreaField(
        "Notes", validators=[Optional(), checked(lambda v: check.text_block(v, 20000, label="Notes"))]
    )
    version = HiddenField()

    def service_data(self) -> dict:
        """The fields as the organization service takes them."""
        return {
            "name": self.name.data,
            "acronym": self.acronym.data,
            "org_type": self.org_type.data or None,
            "scope": self.scope.data or None,
            "city": self.city.data,
            "state": self.state.data,
            "country": self.country.data,
            "website": self.website.data,
            "parent_id": self.parent.data,
            "issue_areas": self.issue_areas.data or [],
            "aliases": self.aliases.data or "",
            "notes": self.notes.data or "",
        }


class ArchiveForm(FlaskForm):
    """Archive or restore (a button with the version it was shown with)."""

    version = HiddenField()


class InteractionForm(FlaskForm):
    """Log a note, call, meeting or email."""

    kind = SelectField(
        "Kind", choices=[SelectChoice(k, k.capitalize()) for k in ("note", "call", "meeting", "email")]
    )
    occurred_on = DateField("Date", validators=[InputRequired(message="Give the date (YYYY-MM-DD).")])
    summary = StringField("Summary", validators=[DataRequired(), _line(300, "Summary")])
    body = TextAreaField(
        "Details", validators=[Optional(), checked(lambda v: check.text_block(v, 20000, label="Details"))]
    )
    contact_id = SelectField("With", choices=[], validators=[Optional(strip_whitespace=False)])


class IssueAreaForm(FlaskForm):
    """Add or rename an issue area."""

    name = StringField("Name", validators=[DataRequired(), Length(max=120), _line(120, "Name")])


class IssueAreaMergeForm(FlaskForm):
    """Fold one issue area into another."""

    source = SelectField("Merge", choices=[])
    target = SelectField("into", choices=[])


__all__ = [
    "OrganizationForm",
    "ArchiveForm",
    "InteractionForm",
    "IssueAreaForm",
    "IssueAreaMergeForm",
]
