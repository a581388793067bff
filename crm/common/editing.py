"""The edit page of a versioned record (organizations, contacts): fill, save at a version, show a conflict."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import abort, request

from crm.common.validation import InvalidData, whole_number
from crm.organizations.services import ConflictError


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
