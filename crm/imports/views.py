"""The import wizard (upload → map columns → preview and options → import → report, undo)."""

import csv
import dataclasses
import json
import time
from datetime import UTC, datetime
from pathlib import Path

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, send_file, url_for
from flask_login import current_user
from wtforms import SelectChoice

from crm.common.access import access
from crm.common.validation import whole_number
from crm.exports.rows import safe_cell
from crm.imports.batches import get_batch, list_batches, new_organizations, undo_blockers, undo_import
from crm.imports.fields import KINDS, likelier_kind, suggest_mapping
from crm.imports.forms import OptionsForm, SwitchKindForm, UploadForm, mapping_form
from crm.imports.mappings import apply_mapping, save_mapping, saved_mappings
from crm.imports.options import ImportError_, ImportOptions
from crm.imports.outcomes import REPORT_COLUMNS, ImportResult, RowOutcome
from crm.imports.reader import FileProblem, sample_rows, sniff
from crm.imports.resolving import OrgRef
from crm.imports.running import run_import
from crm.imports.uploads import (
    Quota,
    UploadError,
    batch_report_path,
    load_upload,
    pending_uploads,
    store_upload,
    sweep,
)
from crm.letters.queries import list_letters

bp = Blueprint("imports", __name__, url_prefix="/imports")
PREVIEW_ROWS = 100
PREVIEW_PROBLEMS = 200


def _folder() -> Path:
    """Where uploads and reports live: the instance folder, never anywhere the user names."""
    return Path(current_app.instance_path) / "imports"


def _quota() -> Quota:
    """The upload limits from the configuration."""
    config = current_app.config
    return Quota(max_bytes=config.get("CRM_IMPORT_MAX_BYTES", 60 * 1024 * 1024),
                 user_bytes=int(config.get("CRM_IMPORT_USER_QUOTA_MB") or 200) * 1024 * 1024,
                 total_bytes=int(config.get("CRM_IMPORT_TOTAL_QUOTA_MB") or 1000) * 1024 * 1024)


def _upload_or_404(token: str):
    """The current user's upload, or 404."""
    return load_upload(_folder(), token, current_user.id) or abort(404)


def _page() -> int:
    """The page number from the query string."""
    page = request.args.get("page", "1")
    return whole_number(page, 1, 1_000_000) or 1


@bp.route("", methods=["GET", "POST"])
@access("organizer")
def index():
    """Step 1: upload a file (?kind= chooses what it holds, for links like "Import contacts"); below, the imports
    done so far."""
    form = UploadForm()
    if request.method == "GET" and request.args.get("kind") in KINDS:
        form.kind.data = request.args["kind"]
    form.letter.choices = [SelectChoice("", "—")] + [SelectChoice(letter.slug, letter.title)
                                                     for letter, _ in list_letters()]
    if form.validate_on_submit():
        upload_file = form.file.data
        quota = _quota()
        sweep(_folder(), report_days=int(current_app.config.get("CRM_IMPORT_REPORT_DAYS", 90)))
        try:
            upload = store_upload(upload_file.stream, upload_file.filename or "upload.csv", _folder(),
                                  quota.max_bytes, {"user_id": current_user.id, "kind": form.kind.data,
                                                    "letter": form.letter.data or None}, quota=quota)
        except UploadError as exc:
            form.file.errors.append(str(exc))
        else:
            try:
                sniff(upload.path)  # a file that is no table (or too wide to map) is refused here, and not kept
            except FileProblem as exc:
                upload.discard()
                form.file.errors.append(str(exc))
            else:
                return redirect(url_for("imports.mapping", token=upload.token), 303)
    return render_template("imports/index.html", form=form, batches=list_batches(_page()), kinds=KINDS,
                           pending=pending_uploads(_folder(), current_user.id)), 400 if form.errors else 200


@bp.post("/u/<token>/kind")
@access("organizer")
def switch_kind(token: str):
    """Import the uploaded file as organizations or contacts instead (the mapping starts again from the headers)."""
    upload = _upload_or_404(token)
    kind = request.form.get("kind", "")
    if not (SwitchKindForm().validate_on_submit() and kind in ("orgs", "contacts")):
        abort(400)
    upload.meta.update(kind=kind, columns=None, options=None, letter=None)
    upload.save()
    upload.preview_path.unlink(missing_ok=True)
    flash(f"The file will be imported as {KINDS[kind].lower()}.", "info")
    return redirect(url_for("imports.mapping", token=token), 303)


@bp.post("/u/<token>/discard")
@access("organizer")
def discard(token: str):
    """Forget an unfinished upload (its file, mapping and preview)."""
    upload = _upload_or_404(token)
    upload.discard()
    flash(f"Discarded {upload.meta.get('filename') or 'the upload'}.", "info")
    return redirect(url_for("imports.index"), 303)


@bp.route("/u/<token>/mapping", methods=["GET", "POST"])
@access("organizer")
def mapping(token: str):
    """Step 2: say which field each column holds (suggested from the headers; saved mappings reusable)."""
    upload = _upload_or_404(token)
    kind = upload.meta["kind"]
    try:
        info = sniff(upload.path)
    except FileProblem as exc:
        return render_template("imports/unreadable.html", upload=upload, problem=str(exc), kinds=KINDS), 400
    defaults = upload.meta.get("columns") or suggest_mapping(kind, info.header)
    saved = saved_mappings(kind)
    if request.method == "POST" and request.form.get("apply_saved"):
        chosen = next((m for m in saved if m.name == request.form.get("saved")), None)
        if chosen is not None:
            defaults = apply_mapping(chosen, info.header)
            flash(f"Applied the saved mapping '{chosen.name}'.", "info")
        form = mapping_form(kind, info.header, defaults=defaults)
    else:
        form = mapping_form(kind, info.header, formdata=request.form if request.method == "POST" else None,
                            defaults=defaults)
    form.saved.choices = [SelectChoice(m.name, m.name) for m in saved]
    problems: list[str] = []
    if request.method == "POST" and not request.form.get("apply_saved") and form.validate_on_submit():
        from crm.imports.fields import check_mapping

        columns = [getattr(form, f"col_{i}").data or "" for i in range(len(info.header))]
        problems = check_mapping(kind, info.header, columns)
        if not problems:
            upload.meta["columns"] = columns
            upload.save()
            if form.save_as.data:
                try:
                    save_mapping(kind, form.save_as.data, info.header, columns, current_user.id)
                    flash(f"Mapping saved as '{form.save_as.data.strip()}'.", "success")
                except ImportError_ as exc:
                    problems.append(str(exc))
            if not problems:
                return redirect(url_for("imports.preview", token=token), 303)
    columns = [getattr(form, f"col_{i}") for i in range(len(info.header))]
    return render_template("imports/mapping.html", upload=upload, info=info, form=form, columns=columns,
                           samples=sample_rows(upload.path, info), problems=problems, kinds=KINDS,
                           likelier=likelier_kind(kind, info.header)), \
        400 if problems or form.errors else 200


def _options_from(upload, form: OptionsForm, dry_run: bool) -> ImportOptions:
    """Import options from the wizard's state and form."""
    return ImportOptions(kind=upload.meta["kind"], columns=upload.meta.get("columns") or [],
                         on_duplicate=form.on_duplicate.data or "skip",
                         skip_invalid=bool(form.skip_invalid.data),
                         accept_uncertain=bool(form.accept_uncertain.data),
                         create_issue_areas=bool(form.create_issue_areas.data),
                         letter_slug=upload.meta.get("letter"), dry_run=dry_run,
                         primary=form.primary.data or "keep")


def _run_with_report(upload, options: ImportOptions, report: Path):
    """Run the engine, writing its report to `report` and keeping the rows the page shows."""
    shown: list = []
    problems_shown = 0

    with open(report, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(REPORT_COLUMNS)

        def on_row(outcome, cells):
            nonlocal problems_shown
            writer.writerow([safe_cell(v) for v in outcome.as_report_row()])
            if len(shown) < PREVIEW_ROWS or (outcome.errors and problems_shown < PREVIEW_PROBLEMS):
                outcome.cells = cells
                shown.append(outcome)
                problems_shown += bool(outcome.errors)

        result = run_import(upload.path, options, filename=upload.meta.get("filename", ""),
                            user_id=current_user.id, on_row=on_row)
    return result, shown


@bp.route("/u/<token>/preview", methods=["GET", "POST"])
@access("organizer")
def preview(token: str):
    """Step 3: every row's outcome, the choices for duplicates and invalid rows; then the import itself."""
    upload = _upload_or_404(token)
    if not upload.meta.get("columns"):
        return redirect(url_for("imports.mapping", token=token), 303)
    form = OptionsForm(data=upload.meta.get("options") or None) if request.method == "GET" else OptionsForm()
    if request.method == "POST" and not form.validate():
        abort(400)
    upload.meta["options"] = {k: getattr(form, k).data for k in ("on_duplicate", "skip_invalid", "accept_uncertain",
                                                                 "create_issue_areas", "primary")}
    upload.save()
    committing = request.method == "POST" and bool(form.commit.data)
    report = upload.report_path
    options = _options_from(upload, form, dry_run=not committing)
    # The preview of these choices, when it was already computed (a reload, back from the report): a preview
    # reads the whole file and matches every organization, which is not worth doing again on every GET.
    kept = _kept_preview(upload, options) if request.method == "GET" and report.exists() else None
    if kept is not None:
        result, shown, previewed_at = kept
    else:
        result, shown = _run_with_report(upload, options, report)
        previewed_at = None if committing else _keep_preview(upload, options, result, shown)
    if committing and result.committed:
        report.replace(batch_report_path(_folder(), result.batch_id))
        upload.discard()
        flash(f"Imported: {result.summary} skipped"
              + (f"; {result.new_organizations_text}." if result.new_organizations else "."), "success")
        return redirect(url_for("imports.batch", batch_id=result.batch_id), 303)
    if committing:
        upload.preview_path.unlink(missing_ok=True)
        flash("Nothing was imported: " + ("; ".join(result.problems) if result.problems else
                                          f"{result.errors} row(s) have errors. Fix them, or choose to import "
                                          f"the valid rows."), "danger")
    info_header = result.header
    mapped = [(i, key) for i, key in enumerate(upload.meta["columns"]) if key]
    return render_template("imports/preview.html", upload=upload, result=result, rows=shown, form=form,
                           header=info_header, mapped=mapped, kinds=KINDS,
                           previewed_at=datetime.fromtimestamp(previewed_at, UTC) if previewed_at else None), \
        400 if result.problems else 200


# Kept previews of another shape (before rows named their organization) are computed again.
PREVIEW_FORMAT = 2


def _preview_key(options: ImportOptions) -> dict:
    """What a kept preview must have been computed with to be shown again."""
    return {**options.as_dict(), "kind": options.kind, "format": PREVIEW_FORMAT}


def _keep_preview(upload, options: ImportOptions, result, shown) -> float:
    """Keep a preview's counts and shown rows beside the upload; when it was computed."""
    now = time.time()
    rows = [{"row": o.row, "action": o.action, "record": o.record, "errors": o.errors, "cells": o.cells,
             "org": dataclasses.asdict(o.org) if o.org else None} for o in shown]
    upload.preview_path.write_text(json.dumps({"key": _preview_key(options), "at": now,
                                               "result": dataclasses.asdict(result), "rows": rows}),
                                   encoding="utf-8")
    return now


def _kept_preview(upload, options: ImportOptions):
    """(result, shown rows, when) of the kept preview for these options, or None."""
    try:
        kept = json.loads(upload.preview_path.read_text(encoding="utf-8"))
        if kept["key"] != _preview_key(options):
            return None
        result = ImportResult(**kept["result"])
        shown = [RowOutcome(r["row"], r["action"], r["record"], [tuple(e) for e in r["errors"]],
                            r["cells"], org=OrgRef(**r["org"]) if r["org"] else None) for r in kept["rows"]]
        return result, shown, kept["at"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


@bp.get("/u/<token>/report.csv")
@access("organizer")
def preview_report(token: str):
    """The latest preview's report as CSV."""
    upload = _upload_or_404(token)
    if not upload.report_path.exists():
        abort(404)
    return send_file(upload.report_path, mimetype="text/csv", as_attachment=True,
                     download_name="import-preview-report.csv")


@bp.get("/batches/<int:batch_id>")
@access("organizer")
def batch(batch_id: int):
    """One import: counts, its report, undo."""
    item = get_batch(batch_id) or abort(404)
    rows = []
    path = batch_report_path(_folder(), item.id)
    if path.exists():
        with open(path, encoding="utf-8", newline="") as handle:
            reader = csv.reader(handle)
            next(reader, None)
            for row in reader:
                rows.append(row)
                if len(rows) >= 500:
                    break
    new_orgs, new_org_links = new_organizations(item)
    return render_template("imports/batch.html", batch=item, rows=rows, has_report=path.exists(),
                           blockers=undo_blockers(item) if item.status == "committed" else [], kinds=KINDS,
                           new_orgs=new_orgs, new_org_links=new_org_links)


@bp.get("/batches/<int:batch_id>/report.csv")
@access("organizer")
def batch_report(batch_id: int):
    """A committed import's report as CSV (row,action,record,errors,organization,organization_match)."""
    item = get_batch(batch_id) or abort(404)
    path = batch_report_path(_folder(), item.id)
    if not path.exists():
        abort(404)
    return send_file(path, mimetype="text/csv", as_attachment=True, download_name=f"import-{item.id}-report.csv")


@bp.post("/batches/<int:batch_id>/undo")
@access("organizer")
def undo(batch_id: int):
    """Undo an import: delete what it created, restore what it changed."""
    try:
        undo_import(batch_id, current_user.id)
        flash("The import was undone.", "success")
    except ImportError_ as exc:
        flash(str(exc), "danger")
    return redirect(url_for("imports.batch", batch_id=batch_id), 303)
