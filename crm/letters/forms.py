"""Letter forms (validation only)."""

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    HiddenField,
    IntegerField,
    SelectChoice,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Email, Length, NumberRange, Optional, Regexp

from crm.letters.models import (
    LETTER_DATE_YEARS,
    LETTER_STATUSES,
    SIGNATURE_ROLES,
    SIGNATURE_SOURCES,
    SIGNATURE_STATUSES,
    SOURCE_LABELS,
)
from crm.organizations.forms import _no_control_characters


def _choices(values) -> list[SelectChoice]:
    """Select choices from words."""
    return [SelectChoice(v, v.replace("-", " ").capitalize()) for v in values]


def _source_choices() -> list[SelectChoice]:
    """Signature sources in words ("public form", "API")."""
    return [SelectChoice(v, SOURCE_LABELS[v]) for v in SIGNATURE_SOURCES]


# The letter's fields the form edits, in the form's order.
EDITED_FIELDS = (
    "title", "slug", "recipients", "letter_date", "cc", "summary", "body", "issue_areas", "deadline",
    "public_signon", "review_required",
)


class LetterForm(FlaskForm):
    """Create or edit a letter; `version` is the one the edit form was opened with (optimistic locking)."""

    title = StringField("Title", validators=[DataRequired(), Length(max=300), _no_control_characters])
    slug = StringField(
        "Slug (in the letter's address)",
        validators=[
            Optional(),
            Length(max=100),
            Regexp(r"^[a-z0-9][a-z0-9-]*$", message="Lower-case letters, digits and hyphens only."),
        ],
    )
    recipients = TextAreaField("Recipients", validators=[Optional(), Length(max=5000)])
    # min/max: the date picker offers the years the service accepts (the service checks them too).
    letter_date = DateField("Letter date", validators=[Optional()],
                            render_kw={"min": f"{LETTER_DATE_YEARS[0]}-01-01", "max": f"{LETTER_DATE_YEARS[1]}-12-31"})
    cc = TextAreaField("cc", validators=[Optional(), Length(max=5000)])
    summary = TextAreaField("Summary", validators=[Optional(), Length(max=5000)])
    body = TextAreaField("Text (Markdown)", validators=[Optional(), Length(max=200_000)], render_kw={"rows": 22})
    issue_areas = SelectMultipleField("Issue areas", choices=[], validators=[Optional()])
    deadline = DateField("Sign-on deadline", validators=[Optional()])
    public_signon = BooleanField("Public sign-on page open")
    review_required = BooleanField("Review public sign-ons before they count", default=True)
    version = HiddenField()

    def service_data(self) -> dict:
        """The fields as create_letter/update_letter take them (an empty slug: made from the title)."""
        data = {name: self[name].data for name in EDITED_FIELDS}
        data["slug"] = (data["slug"] or "").strip()
        return data


class StatusForm(FlaskForm):
    """Move a letter along its status flow, or record its delivery."""

    status = SelectField("Status", choices=_choices(LETTER_STATUSES), validators=[DataRequired()])
    delivered_on = DateField("Delivered on", validators=[Optional()])
    thank = BooleanField("Also send each confirmed signer a thank-you message")


class AddSignatureForm(FlaskForm):
    """Add an organization to a letter by hand."""

    q = StringField("Organization", validators=[Optional(), Length(max=300)])
    organization_id = IntegerField("Organization id", validators=[Optional(), NumberRange(min=1)])
    role = SelectField("Role", choices=_choices(SIGNATURE_ROLES), default="signatory")
    status = SelectField("Status", choices=_choices(SIGNATURE_STATUSES), default="confirmed")
    listed_name = StringField("Listed as", validators=[Optional(), Length(max=300), _no_control_characters])
    source = SelectField("Source", choices=_source_choices(), default="manual")


class SignatureForm(FlaskForm):
    """Edit one organization's participation."""

    role = SelectField("Role", choices=_choices(SIGNATURE_ROLES))
    position = IntegerField("Lead order", validators=[Optional(), NumberRange(min=0, max=10_000)])
    status = SelectField("Status", choices=_choices(SIGNATURE_STATUSES))
    listed_name = StringField(
        "Listed as", validators=[DataRequired(), Length(max=300), _no_control_characters]
    )
    # Optional() alone would take a whitespace value for "empty" and drop the choice error with it.
    contact_id = SelectField("Authorized by", choices=[], validators=[Optional(strip_whitespace=False)])
    source = SelectField("Source", choices=_source_choices())


class ImportForm(FlaskForm):
    """Paste a signatory block."""

    text = TextAreaField("Signatory block", validators=[DataRequired(), Length(max=500_000)])


class ReconfirmForm(FlaskForm):
    """A button: ask signers of an earlier text to confirm again (CSRF only)."""


class DeleteLetterForm(FlaskForm):
    """A button: delete the letter (CSRF only)."""


class SegmentForm(FlaskForm):
    """Save the matrix's "signed A and B, not C" as a segment."""

    name = StringField("Segment name", validators=[DataRequired(), Length(max=200), _no_control_characters])
    signed = HiddenField()
    not_signed = HiddenField()


class ReviewForm(FlaskForm):
    """Decide one sign-on in the review queue: the decision comes from the button pressed."""

    decision = SelectField(
        "Decision",
        choices=[
            SelectChoice("accept", "Accept as the chosen organization"),
            SelectChoice("new", "Create a new organization"),
            SelectChoice("reject", "Decline"),
        ],
    )
    organization_id = IntegerField("Organization", validators=[Optional(), NumberRange(min=1)])


class MergeForm(FlaskForm):
    """Merge one organization into another."""

    keep = IntegerField("Keep organization (id)", validators=[DataRequired(), NumberRange(min=1)])
    remove = IntegerField("Merge into it and remove (id)", validators=[DataRequired(), NumberRange(min=1)])


class PublicSignOnForm(FlaskForm):
    """The public sign-on form."""

    organization_name = StringField(
        "Organization name", validators=[DataRequired(), Length(max=300), _no_control_characters]
    )
    listed_name = StringField(
        "List the organization as", validators=[Optional(), Length(max=300), _no_control_characters]
    )
    contact_name = StringField(
        "Your name", validators=[DataRequired(), Length(max=200), _no_control_characters]
    )
    contact_title = StringField(
        "Your title", validators=[Optional(), Length(max=200), _no_control_characters]
    )
    email = StringField(
        "Your email", validators=[DataRequired(), Length(max=254), Email(check_deliverability=False)]
    )
    city = StringField("City", validators=[Optional(), Length(max=120), _no_control_characters])
    state = StringField("State", validators=[Optional(), Length(max=2)])
    org_type = SelectField("Organization type", choices=[], validators=[Optional(strip_whitespace=False)])
    issue_areas = SelectMultipleField("Issue areas", choices=[])
    consent_public = BooleanField(
        "You may list our organization publicly as a signatory",
        validators=[DataRequired(message="We can only list organizations that agree.")],
    )
    # Traps for robots: a field people never see, and when the form was shown (signed).
    website = StringField("Leave this field empty", validators=[Optional()])
    started = HiddenField()


class PersonalSignForm(FlaskForm):
    """One click: add the organization as a signatory, with the listed name editable.

    `seen` is the answer the page showed (none, pending, confirmed, withdrawn, declined): a change is made
    only when it is still the answer, so a link never overturns what the signer did not see.
    """

    listed_name = StringField(
        "List us as", validators=[Optional(), Length(max=300), _no_control_characters]
    )
    seen = HiddenField()
    action = HiddenField()


class ConfirmSignOnForm(FlaskForm):
    """A button: confirm a public sign-on (CSRF only; the link itself changes nothing)."""


class DeadlineForm(FlaskForm):
    """Extend (or remove) a letter's sign-on deadline."""

    deadline = DateField("New deadline", validators=[Optional()])


class RevokeLinksForm(FlaskForm):
    """Revoke an organization's personal sign-on links for a letter."""

    organization_id = IntegerField("Organization", validators=[DataRequired(), NumberRange(min=1)])
