"""Organization forms (validation only)."""

from flask_wtf import FlaskForm
from wtforms import SelectChoice, SelectField, SelectMultipleField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional, ValidationError

from crm.organizations.filters import US_STATES
from crm.organizations.models import ORG_TYPES, SCOPES


def _no_control_characters(form, field):
    """Refuse NUL and other control characters in one-line fields."""
    if field.data and any(ord(ch) < 32 for ch in field.data):
        raise ValidationError("Line breaks and control characters are not allowed here.")


def _us_state(form, field):
    """Accept a two-letter US state or territory code."""
    if field.data:
        field.data = field.data.strip().upper()
        if field.data not in US_STATES:
            raise ValidationError("Use a two-letter US state code, such as NY or DC.")


def _web_url(form, field):
    """Accept an http(s) URL; a bare domain gets https:// in front."""
    from urllib.parse import urlsplit

    if not field.data:
        return
    value = field.data.strip()
    if "://" not in value:
        value = "https://" + value
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or "." not in parts.netloc or any(c in value for c in " <>\"'"):
        raise ValidationError("Enter a web address such as https://example.org.")
    field.data = value


class OrganizationForm(FlaskForm):
    """Create or edit an organization."""

    name = StringField("Name", validators=[DataRequired(), Length(max=300), _no_control_characters])
    acronym = StringField("Acronym", validators=[Optional(), Length(max=40), _no_control_characters])
    org_type = SelectField("Type", choices=[SelectChoice("", "—")]
                           + [SelectChoice(t, t.replace("-", " ").capitalize()) for t in ORG_TYPES],
                           validators=[Optional()])
    scope = SelectField("Scope", choices=[SelectChoice("", "—")] + [SelectChoice(s, s.capitalize()) for s in SCOPES],
                        validators=[Optional()])
    city = StringField("City", validators=[Optional(), Length(max=120), _no_control_characters])
    state = StringField("State", validators=[Optional(), Length(max=2), _us_state])
    website = StringField("Website", validators=[Optional(), Length(max=500), _web_url])
    issue_areas = SelectMultipleField("Issue areas", choices=[], validators=[Optional()])
    notes = TextAreaField("Notes", validators=[Optional(), Length(max=20000)])
