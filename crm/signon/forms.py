"""Sign-on mail wording forms (validation only)."""

from flask_wtf import FlaskForm
from wtforms import StringField, TextAreaField
from wtforms.validators import DataRequired, Length

from crm.mailmerge.templating import MAX_BODY_TEMPLATE, MAX_SUBJECT_TEMPLATE


class MailWordingForm(FlaskForm):
    """An organizer's subject and body for one kind of sign-on mail; the button pressed says preview or save."""

    subject = StringField("Subject", validators=[DataRequired(), Length(max=MAX_SUBJECT_TEMPLATE)])
    body = TextAreaField("Body (Markdown, with fields in {{ }})",
                         validators=[DataRequired(), Length(max=MAX_BODY_TEMPLATE)], render_kw={"rows": 14})
