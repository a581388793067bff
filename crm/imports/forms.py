"""Import wizard forms: upload, column mapping, options."""

from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import BooleanField, RadioField, SelectChoice, SelectField, StringField, SubmitField
from wtforms.validators import Length, Optional

from crm.imports.fields import FIELDS, KINDS


class UploadForm(FlaskForm):
    """Step 1: the file and what it holds."""

    kind = SelectField("What the file holds", choices=[SelectChoice(k, v) for k, v in KINDS.items()])
    letter = SelectField("Letter (for signatures)", choices=[], validate_choice=False)
    file = FileField("CSV file", validators=[FileRequired("Choose a file to upload.")])
    submit = SubmitField("Upload and continue")

    def validate_letter(self, field):
        """Signatures need a letter."""
        from wtforms.validators import ValidationError

        if self.kind.data == "signatures" and not field.data:
            raise ValidationError("Choose the letter these signatures belong to.")


def mapping_form(kind: str, header: list[str], formdata=None, defaults: list[str] | None = None):
    """Step 2: one select per column of the file (a field, or ignore), plus saving the mapping by name."""
    choices = [SelectChoice("", "— ignore this column —")] + [SelectChoice(f.key, f.label) for f in FIELDS[kind]]

    class MappingForm(FlaskForm):
        """The mapping of this file's columns."""

        saved = SelectField("Use a saved mapping", choices=[], validate_choice=False)
        apply_saved = SubmitField("Apply saved mapping")
        save_as = StringField("Save this mapping as (optional)", validators=[Optional(), Length(max=100)])
        submit = SubmitField("Preview the import")

    for index, cell in enumerate(header):
        setattr(MappingForm, f"col_{index}", SelectField(cell[:80] or f"column {index + 1}", choices=choices,
                                                         default=(defaults or [""] * len(header))[index]))
    return MappingForm(formdata=formdata) if formdata is not None else MappingForm()


class OptionsForm(FlaskForm):
    """Step 3: what to do with duplicates and invalid rows."""

    on_duplicate = RadioField("Rows that match an existing record", default="skip", choices=[
        SelectChoice("skip", "Skip them (change nothing)"),
        SelectChoice("fill", "Fill in empty fields only"),
        SelectChoice("overwrite", "Overwrite fields with the file's values (an empty cell never erases)"),
    ])
    primary = RadioField("Rows that make a contact primary where the organization already has a primary contact",
                         default="keep", choices=[
        SelectChoice("keep", "Keep the current primary contact (import the row's contact as a plain contact)"),
        SelectChoice("replace", "Make the row's contact primary in their place (they stay a contact)"),
    ])
    skip_invalid = BooleanField("Import the valid rows and skip rows with errors (otherwise nothing is imported "
                                "while any row has an error)")
    accept_uncertain = BooleanField("Accept uncertain organization matches (rows marked 'review')")
    create_issue_areas = BooleanField("Create issue areas the file names that do not exist yet")
    preview = SubmitField("Update preview")
    commit = SubmitField("Import")


class SwitchKindForm(FlaskForm):
    """One click: import the uploaded file as another kind (the kind is a button's value)."""
