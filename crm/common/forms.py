"""Helpers shared by the features' forms."""

from dataclasses import dataclass

from flask_wtf import FlaskForm

# Fields a person never sees: an error on one has nothing to link to in the page.
_UNSEEN = ("HiddenField", "CSRFTokenField")


@dataclass(frozen=True)
class FormError:
    """One line of a form's error summary: the id of the element to go to (None when there is none), the text."""

    target: str | None
    text: str


def error_list(form: FlaskForm, targets: dict[str, str] | None = None) -> list[FormError]:
    """A form's errors, in field order, as sentences ("State: Use a two-letter…") with the field to link to.

    `targets` names the element to go to for a field shown under another one (the contact form's picked
    organization is chosen under the Organization box)."""
    general, fields = [], []
    for name, errors in form.errors.items():
        if name == "csrf_token":
            general.append(FormError(None, "The form expired: reload the page and try again."))
        elif not name or name not in form:  # the form's own errors ("" in WTForms 3.3, None before)
            general.append(FormError(None, " ".join(errors)))
        else:
            field = form[name]
            target = (targets or {}).get(name) or (None if field.type in _UNSEEN else field.id)
            message = " ".join(errors)
            # "Summary: Summary is limited to 300 characters" says the name once.
            fields.append(FormError(target, message if message.startswith(field.label.text)
                                    else f"{field.label.text}: {message}"))
    # The form's own errors first: they say why nothing was saved, before the fields say what to correct.
    return general + fields


def error_summary(form: FlaskForm) -> str:
    """A form's errors as sentences for a flash message ("Delivered on: Not a valid date value."), never a dict."""
    return " ".join(item.text for item in error_list(form))
