"""The export downloads: every export as CSV, CSV for Excel or XLSX, filtered by the query string, audited."""

from flask import Blueprint, abort, request, send_file
from flask_login import current_user

from crm.audit.services import record
from crm.common.access import access, can, refusal
from crm.contacts.filters import parse_contact_filter
from crm.exports.rows import (
    CONTACT_COLUMNS,
    ORG_COLUMNS,
    SIGNATURE_COLUMNS,
    SUPPRESSION_COLUMNS,
    contact_rows,
    csv_file,
    matrix_header,
    matrix_letters,
    matrix_rows,
    org_rows,
    signature_rows,
    suppression_rows,
    xlsx_file,
)
from crm.extensions import db
from crm.letters.queries import get_letter
from crm.organizations.filters import FilterError, conditions, parse_filter

bp = Blueprint("exports", __name__, url_prefix="/exports")
_EXPORTS = {"orgs": "organizations", "contacts": "contacts", "signatures": "signatures",
            "matrix": "participation matrix", "suppressions": "suppressions"}
# Exports that need more than the route's viewer role (suppressed addresses are the mail desk's business).
_EXPORT_ROLES = {"suppressions": "organizer"}


def _export_rows(what: str):
    """(header, rows) for an export, read with the organization filter language from the query string."""
    try:
        org_filter = parse_filter(request.args)
        conditions(org_filter)
    except FilterError as exc:
        abort(400, str(exc))
    if what == "orgs":
        return ORG_COLUMNS, org_rows(org_filter)
    if what == "contacts":
        try:
            contact_filter = parse_contact_filter(request.args)
        except FilterError as exc:
            abort(400, str(exc))
        return CONTACT_COLUMNS, contact_rows(contact_filter)
    if what == "matrix":
        letters = matrix_letters()
        return matrix_header(letters), matrix_rows(org_filter, letters)
    if what == "suppressions":
        return SUPPRESSION_COLUMNS, suppression_rows()
    slugs = [s for s in request.args.getlist("letter") if s][:100]
    for slug in slugs:
        if get_letter(slug) is None:
            abort(404)
    return SIGNATURE_COLUMNS, signature_rows(slugs)


@bp.get("/<what>.<fmt>")
@access("viewer")
def download(what: str, fmt: str):
    """An export as CSV, CSV for Excel (BOM) or XLSX, with the filters in the query string; audited."""
    if what not in _EXPORTS or fmt not in ("csv", "xlsx"):
        abort(404)
    # The route is for viewers; some exports need more. Say which role, as the access check's 403 does.
    needed = _EXPORT_ROLES.get(what, "viewer")
    if not can(needed):
        abort(403, refusal(needed, current_user.role))
    excel = request.args.get("excel") == "1"
    header, rows = _export_rows(what)
    params = {k: v for k, v in request.args.lists() if k != "excel"}
    record("export", "export", None, user_id=current_user.id,
           summary=f"Exported {_EXPORTS[what]} as {fmt.upper()}{' for Excel' if excel else ''}"
                   f"{' with filters ' + str(params) if params else ''}.")
    db.session.commit()
    name = f"undersigned-{what}"
    if fmt == "xlsx":
        return send_file(xlsx_file(header, rows, _EXPORTS[what]), as_attachment=True, download_name=f"{name}.xlsx",
                         mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    return send_file(csv_file(header, rows, excel=excel), mimetype="text/csv", as_attachment=True,
                     download_name=f"{name}.csv")
