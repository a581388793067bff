"""Segment forms (validation only)."""

from flask_wtf import FlaskForm
from wtforms import HiddenField, StringField
from wtforms.validators import DataRequired

from crm.common import validation as check
from crm.organizations.forms import checked


class SegmentForm(FlaskForm):
    """Name a segment; `query` carries the organization list's query string when saving a new one."""

    name = StringField(
        "Name", validators=[DataRequired(), checked(lambda v: check.text_line(v, 200, label="Name"))]
    )
    query = HiddenField()


class DeleteSegmentForm(FlaskForm):
    """A delete button (CSRF only)."""
