"""Contact forms (validation only; the checks are shared with the API)."""

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    EmailField,
    HiddenField,
    SelectChoice,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import Optional

from crm.common import validation as check
from crm.organizations.forms import checked


def _picked_id(value: str) -> str:
    """An organization id picked from the suggestions (a database id, never '²' or 40 digits)."""
    if check.whole_number(value, 1) is None:
        raise check.FieldError("Pick an organization from the list under the box.")
    return value


class ContactForm(FlaskForm):
    """Create or edit a contact; `version` carries optimistic locking."""

    first_name = StringField(
        "First name", validators=[Optional(), checked(lambda v: check.text_line(v, 120, label="First name"))]
    )
    last_name = StringField(
        "Last name", validators=[Optional(), checked(lambda v: check.text_line(v, 120, label="Last name"))]
    )
    title = StringField(
        "Title", validators=[Optional(), checked(lambda v: check.text_line(v, 200, label="Title"))]
    )
    email = EmailField("Email", validators=[Optional(), checked(check.email_address)])
    phone = StringField("Phone", validators=[Optional(), checked(check.phone)])
    organization = StringField(
        "Organization",
        validators=[Optional(), checked(lambda v: check.text_line(v, 320, label="Organization"))],
    )
    # The organization picked from the suggestions under `organization` (a radio list, filled as one types).
    organization_id = StringField("Organization picked", validators=[Optional(), checked(_picked_id)])
    is_primary = BooleanField("Primary contact of the organization")
    status = SelectField(
        "Status", choices=[SelectChoice("active", "Active"), SelectChoice("left", "Left the organization")]
    )
    notes = TextAreaField(
        "Notes", validators=[Optional(), checked(lambda v: check.text_block(v, 20000, label="Notes"))]
    )
    version = HiddenField()

    def service_data(self) -> dict:
        """The fields as the contact service takes them."""
        return {
            "first_name": self.first_name.data or "",
            "last_name": self.last_name.data or "",
            "title": self.title.data or "",
            "email": self.email.data or None,
            "phone": self.phone.data or "",
            # A picked suggestion wins; otherwise the typed text must be an exact name, acronym or #id. An emptied
            # box means no organization, whatever was picked before.
            "organization_id": (check.whole_number(self.organization_id.data, 1)
                                if self.organization_id.data and self.organization.data
                                else self.organization.data or None),
            "is_primary": bool(self.is_primary.data),
            "status": self.status.data,
            "notes": self.notes.data or "",
        }


class QuickContactForm(FlaskForm):
    """One-click changes on a contact's page (make primary, mark as left), with the version shown."""

    version = HiddenField()
