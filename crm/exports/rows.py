"""Export rows (organizations, contacts, signatures, the participation matrix, suppressions), neutralised against
spreadsheet formula injection, and the CSV / XLSX writers the pages and `crm export` share.

Every export reads the organization filter language (crm.organizations.filters); none has a filter of its own.
"""

import csv
import io
import tempfile
from collections.abc import Iterable, Iterator

from sqlalchemy import select

from crm.extensions import db
from crm.letters.models import Letter, Signature
from crm.letters.queries import iter_signatures
from crm.mailmerge.models import Suppression
from crm.organizations.filters import OrgFilter
from crm.organizations.models import Organization
from crm.organizations.queries import iter_organizations

ORG_COLUMNS = ("name", "acronym", "org_type", "scope", "city", "state", "issue_areas", "parent", "letters_signed")
CONTACT_COLUMNS = ("id", "first_name", "last_name", "title", "email", "phone", "organization", "organization_id",
                   "is_primary", "status", "mailable")
SIGNATURE_COLUMNS = ("letter", "organization", "listed_as", "role", "status", "signed_at", "source")
SUPPRESSION_COLUMNS = ("email", "reason", "note", "created_at")
MATRIX_CELLS = {"confirmed": "signed", "declined": "declined", "pending": "pending", "withdrawn": "withdrawn"}
FORMATS = {"csv": "CSV (UTF-8)", "excel": "CSV for Excel (UTF-8 with BOM)", "xlsx": "Excel workbook (.xlsx)"}
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value) -> str:
    """A cell value a spreadsheet will show as text: a leading formula character gets an apostrophe before it.

    Text that already starts with apostrophes before a formula character ("'=x", typed in a form) gets one more,
    so that an import, which removes one (crm.imports.fields.unformula), reads back exactly the text exported.
    """
    text = "" if value is None else str(value)
    if text.lstrip("'").startswith(_FORMULA_STARTS):
        return "'" + text
    return text


def org_rows(org_filter: OrgFilter) -> Iterator[list[str]]:
    """Organization rows for the filter, by sort name."""
    for org, letters_signed in iter_organizations(org_filter):
        yield [safe_cell(v) for v in (
            org.name, org.acronym, org.org_type, org.scope, org.city, org.state,
            ";".join(a.slug for a in org.issue_areas), org.parent.name if org.parent else "", letters_signed)]


def signature_rows(letter_slugs: list[str], org_filter: OrgFilter | None = None) -> Iterator[list[str]]:
    """Signature rows, letter by letter in delivery order; an organization filter chooses whose."""
    for sig in iter_signatures(letter_slugs, org_filter):
        yield [safe_cell(v) for v in (
            sig.letter.slug, sig.organization.name, sig.listed_name, sig.role, sig.status,
            sig.signed_at.isoformat() if sig.signed_at else "", sig.source)]


def contact_row(contact) -> list[str]:
    """One contact as a CSV row (annotate_mailable must have run on it)."""
    return [safe_cell(v) for v in (
        contact.id, contact.first_name, contact.last_name, contact.title, contact.email or "", contact.phone,
        contact.organization.name if contact.organization else "", contact.organization_id or "",
        "yes" if contact.is_primary else "no", contact.status, "yes" if getattr(contact, "mailable", False) else "no")]


def contact_rows(contact_filter=None) -> Iterator[list[str]]:
    """Contact rows for a ContactFilter (every contact when None), in the contacts list's order."""
    from crm.contacts.filters import ContactFilter
    from crm.contacts.services import iter_contacts

    for contact in iter_contacts(contact_filter or ContactFilter()):
        yield contact_row(contact)


def suppression_rows() -> Iterator[list[str]]:
    """Every suppressed address, oldest first."""
    for item in db.session.scalars(select(Suppression).order_by(Suppression.id).execution_options(yield_per=1000)):
        yield [safe_cell(v) for v in (item.email, item.reason, item.note, item.created_at.isoformat())]


def matrix_letters() -> list[Letter]:
    """The letters that are the matrix's columns, oldest first."""
    return list(db.session.scalars(select(Letter).order_by(Letter.letter_date.asc().nulls_last(), Letter.id)))


def matrix_header(letters: list[Letter]) -> list[str]:
    """organization, then one column per letter slug."""
    return ["organization", *(safe_cell(letter.slug) for letter in letters)]


def matrix_rows(org_filter: OrgFilter, letters: list[Letter]) -> Iterator[list[str]]:
    """Organizations (filtered) × letters: signed / declined / pending / withdrawn, or blank when never asked."""
    column = {letter.id: i for i, letter in enumerate(letters)}
    batch: list[Organization] = []

    def flush(orgs: list[Organization]) -> Iterator[list[str]]:
        cells: dict[int, list[str]] = {org.id: [""] * len(letters) for org in orgs}
        for org_id, letter_id, status in db.session.execute(
                select(Signature.organization_id, Signature.letter_id, Signature.status)
                .where(Signature.organization_id.in_(list(cells)))):
            if letter_id in column:
                cells[org_id][column[letter_id]] = MATRIX_CELLS.get(status, status)
        for org in orgs:
            yield [safe_cell(org.name), *cells[org.id]]

    for org, _ in iter_organizations(org_filter):
        batch.append(org)
        if len(batch) >= 1000:
            yield from flush(batch)
            batch = []
    if batch:
        yield from flush(batch)


def csv_chunks(header: Iterable[str], rows: Iterable[list[str]], excel: bool = False) -> Iterator[str]:
    """CSV text in pieces (for a streamed download): UTF-8; with `excel` a BOM and CRLF line ends."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n" if excel else "\n")
    if excel:
        buffer.write("\ufeff")
    writer.writerow(header)
    for count, row in enumerate(rows, start=1):
        writer.writerow(row)
        if count % 500 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def csv_file(header: Iterable[str], rows: Iterable[list[str]], excel: bool = False):
    """The CSV in a temporary file, rewound (rows go to disk as they are read, so memory stays flat)."""
    handle = tempfile.TemporaryFile()  # noqa: SIM115 (handed to the response, which closes it)
    text = io.TextIOWrapper(handle, encoding="utf-8", newline="")
    for piece in csv_chunks(header, rows, excel=excel):
        text.write(piece)
    text.flush()
    text.detach()
    handle.seek(0)
    return handle


def xlsx_file(header: Iterable[str], rows: Iterable[list[str]], title: str = "Export"):
    """An .xlsx workbook (openpyxl write-only, so rows stream to disk) in a temporary file, rewound."""
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title[:31])
    sheet.append(list(header))
    for row in rows:
        sheet.append(row)
    handle = tempfile.TemporaryFile()  # noqa: SIM115 (handed to the response, which closes it)
    workbook.save(handle)
    handle.seek(0)
    return handle
