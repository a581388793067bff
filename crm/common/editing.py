"""The edit page of a versioned record (organizations, contacts, letters, merges): fill, save at a version, show a
conflict."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import abort, request

from crm.common.errors import ConflictError
from crm.common.validation import InvalidData, whole_number


def form_version(form) -> int | None:
    """The version a form was opened with (its hidden `version` field), None when missing or not a number."""
    return whole_number(form.version.data or "")


@dataclass
class EditOutcome:
    """What an edit request came to: saved, or the form page to show again with its status."""

    record: Any
    saved: bool = False
    conflict: dict | None = None
    status: int = 200


def edit_record(
    form,
    record,
    *,
    fill: Callable[[Any, Any], None],
    save: Callable[[dict, int | None], Any],
    attach_errors: Callable[[Any, dict[str, list[str]]], None],
    conflict_rows: Callable[[Any], list[tuple[str, object, object]]],
) -> EditOutcome:
    """Run an edit page: GET fills the form from `record`; a valid POST saves at the version it was opened with.

    `save(data, version)` calls the service. Its InvalidData is shown next to the fields; a ConflictError (someone
    saved in between) shows `conflict_rows(current)` — (field, saved value, your value) — and puts the current
    version in the form, so that saving again overwrites knowingly. Status: 409 on a conflict, 400 on errors.
    """
    conflict = None
    if request.method == "GET":
        fill(form, record)
    elif form.validate_on_submit():
        try:
            return EditOutcome(save(form.service_data(), form_version(form)), saved=True)
        except InvalidData as exc:
            attach_errors(form, exc.errors)
        except ConflictError as exc:
            current = exc.current
            if current is None:
                abort(404)
            conflict = {"rows": conflict_rows(current), "event": exc.last_change, "current": current}
            form.version.data = str(current.version)
            record = current
    return EditOutcome(record, conflict=conflict, status=409 if conflict else (400 if form.errors else 200))


def _choice_labels(field) -> dict[str, str]:
    """value → label of a select's choices (SelectChoice objects or (value, label) pairs); empty for other fields."""
    labels = {}
    for choice in getattr(field, "choices", None) or []:
        value, label = (choice.value, choice.label) if hasattr(choice, "value") else (choice[0], choice[-1])
        labels[str(value)] = label
    return labels


def _shown(field, value) -> object:
    """A form value as the conflict panel shows it: choices by their labels, yes/no, text with plain line ends."""
    labels = _choice_labels(field)
    if isinstance(value, list | tuple):
        return sorted(labels.get(str(v), str(v)) for v in value) or None
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        return labels.get(value, value.replace("\r\n", "\n").strip()) or None
    return labels.get(str(value), value) if value is not None else None


def form_differences(yours, saved, names) -> list[tuple[str, object, object]]:
    """(field label, saved value, your value) where the form sent differs from the same form filled from the record
    as saved now, over the fields `names` (for edit_record's `conflict_rows`)."""
    rows = []
    for name in names:
        field = yours[name]
        mine, theirs = _shown(field, field.data), _shown(field, saved[name].data)
        if mine != theirs:
            rows.append((field.label.text, theirs, mine))
    return rows
