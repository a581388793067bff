"""Helpers shared by the features' forms."""

from flask_wtf import FlaskForm


def error_summary(form: FlaskForm) -> str:
    """A form's errors as sentences for a flash message ("Delivered on: Not a valid date value."), never a dict."""
    parts = []
    for name, errors in form.errors.items():
        if name == "csrf_token":
            parts.append("The form expired: reload the page and try again.")
        elif name is None or name not in form:
            parts.append(" ".join(errors))
        else:
            parts.append(f"{form[name].label.text}: {' '.join(errors)}")
    return " ".join(parts)
