"""Generated files: the counts always add up; an export imported again changes nothing; email normalization."""

import csv
import io

from email_validator import EmailNotValidError, validate_email
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, func, select

from crm.contacts.models import Contact
from crm.exports.rows import CONTACT_COLUMNS, ORG_COLUMNS, contact_rows, org_rows, safe_cell
from crm.extensions import db as _db
from crm.imports.emails import normalize_email
from crm.imports.fields import org_key, suggest_mapping
from crm.imports.models import ImportBatch, ImportChange
from crm.imports.options import DUPLICATE_MODES, ImportOptions
from crm.imports.outcomes import ACTIONS, ImportResult
from crm.imports.running import run_import
from crm.organizations.filters import OrgFilter
from crm.organizations.models import Organization, organization_issue_areas

FIXTURES = settings(max_examples=25, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

cells = st.one_of(
    st.text(max_size=20),
    st.sampled_from(["", " ", "=1+1", "+1 202 555 0100", "-x", "@x", "'=ok", "a,b", 'q"uote', "line\nbreak",
                     "\x00", "Mijente", "ok@example.org", "OK@EXAMPLE.ORG", "bad@", "NY", "zz", "yes", "left"]),
    st.from_regex(r"[a-z]{1,8}@example\.(org|net)", fullmatch=True),
)
headers = st.lists(st.sampled_from(["email", "E-mail", "First", "last_name", "Organization", "Title", "Phone",
                                    "primary", "status", "notes", "Junk", "email"]), min_size=1, max_size=6)


def _write(rows: list[list[str]], delimiter: str, encoding: str) -> bytes:
    """rows as CSV bytes."""
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue().encode(encoding, errors="replace")


@FIXTURES
@given(header=headers, body=st.lists(st.lists(cells, max_size=7), max_size=25),
       delimiter=st.sampled_from([",", ";", "\t"]), encoding=st.sampled_from(["utf-8", "utf-8-sig", "utf-16"]),
       mode=st.sampled_from(DUPLICATE_MODES), skip=st.booleans())
def test_counts_always_add_up(app, db, tmp_path_factory, header, body, delimiter, encoding, mode, skip):
    path = tmp_path_factory.mktemp("gen") / "gen.csv"
    path.write_bytes(_write([header, *body], delimiter, encoding))
    from crm.imports.reader import FileProblem, sniff

    try:
        info = sniff(path)
    except FileProblem:
        return
    options = ImportOptions(kind="contacts", columns=suggest_mapping("contacts", info.header),
                            on_duplicate=mode, skip_invalid=skip, dry_run=True)
    seen = []
    result = run_import(path, options, on_row=lambda outcome, cells: seen.append(outcome))
    if result.problems:
        assert result.rows == 0 or "Nothing was imported" in " ".join(result.problems)
        return
    assert result.created + result.updated + result.skipped + result.errors == result.rows == len(seen)
    assert all(o.action in ACTIONS for o in seen)
    assert db.session.scalar(select(func.count(Contact.id))) == 0


names = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Zl", "Zp")), min_size=1,
                max_size=25).filter(lambda s: any(ch.isalnum() for ch in s) and s.strip() == s)
# An organization's name must keep a letter or digit once folded to ASCII (an import reports it otherwise).
org_names = names.filter(lambda s: bool(org_key(s)))
people = st.lists(st.fixed_dictionaries({
    "first_name": st.one_of(st.just(""), names), "last_name": names,
    "local": st.from_regex(r"[a-z0-9][a-z0-9_+-]{0,12}", fullmatch=True),
    "domain": st.sampled_from(["example.org", "Example.NET", "mail.example.org"]),
    "organization": st.one_of(st.just(""), st.sampled_from(["Sample Coalition", "The Sample Fund",
                                                            "=Formula Org", "-Dash Group", "Ünïcode Org"]), org_names),
    "title": st.one_of(st.just(""), names), "phone": st.sampled_from(["", "+1 202 555 0100", "(212) 555-0199"]),
    "is_primary": st.booleans(), "status": st.sampled_from(["active", "left"]),
}), min_size=1, max_size=15)


def _snapshot():
    """Everything an import could have changed, as plain values."""
    contacts = [(c.email, c.first_name, c.last_name, c.title, c.phone, c.is_primary, c.status, c.organization_id,
                 c.version) for c in _db.session.scalars(select(Contact).order_by(Contact.id))]
    orgs = [(o.id, o.name, o.acronym, o.state, o.version)
            for o in _db.session.scalars(select(Organization).order_by(Organization.id))]
    return contacts, orgs


def _import(path, kind: str, mode: str = "skip") -> ImportResult:
    """Import a file we wrote, with the suggested mapping; the rows' problems are in result.notes."""
    from crm.imports.reader import sniff

    info = sniff(path)
    problems: list[str] = []
    result = run_import(path, ImportOptions(kind=kind, columns=suggest_mapping(kind, info.header),
                                            on_duplicate=mode),
                        on_row=lambda o, c: problems.append(f"{o.row} {o.action} {o.error_text}")
                        if o.errors or o.action not in ("create", "duplicate") else None)
    result.notes.extend(problems)
    return result


def _clean(db):
    """Empty what the previous example imported."""
    for table in (ImportChange, ImportBatch, Contact, organization_issue_areas, Organization):
        db.session.execute(delete(table))
    db.session.commit()


@FIXTURES
@given(rows=people, mode=st.sampled_from(["fill", "overwrite"]))
def test_export_then_import_changes_nothing(app, db, tmp_path_factory, rows, mode):
    _clean(db)
    folder = tmp_path_factory.mktemp("rt")
    first = folder / "first.csv"
    with open(first, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(("first_name", "last_name", "email", "organization", "title", "phone", "is_primary", "status"))
        for r in rows:
            writer.writerow([safe_cell(v) for v in (r["first_name"], r["last_name"], f"{r['local']}@{r['domain']}",
                                                    r["organization"], r["title"], r["phone"],
                                                    "yes" if r["is_primary"] else "no", r["status"])])
    result = _import(first, "contacts")
    assert result.committed and result.errors == 0, result
    before = _snapshot()
    exported = folder / "export.csv"
    with open(exported, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(CONTACT_COLUMNS)
        writer.writerows(contact_rows())
    again = _import(exported, "contacts", mode)
    assert (again.created, again.updated, again.errors) == (0, 0, 0), again
    assert again.skipped == len(before[0])
    assert _snapshot() == before
    orgs = folder / "orgs.csv"
    with open(orgs, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(ORG_COLUMNS)
        writer.writerows(org_rows(OrgFilter()))
    again = _import(orgs, "orgs", mode) if before[1] else None
    if again is not None:
        assert (again.created, again.updated, again.errors) == (0, 0, 0), again
        assert _snapshot() == before


@settings(max_examples=300, deadline=None)
@given(local=st.from_regex(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,70}", fullmatch=True),
       domain=st.sampled_from(["example.org", "EXAMPLE.org", "mail.example.co.uk", "localhost", "example",
                               "xn--mnchen-3ya.example", "münchen.example", "a..b.org", "-bad.org", "1.2.3.4",
                               "example.test", "x" * 64 + ".org"]))
def test_fast_email_normalization_agrees_with_email_validator(local, domain):
    address = f"{local}@{domain}"
    try:
        expected = validate_email(address, check_deliverability=False).normalized.lower()
    except EmailNotValidError:
        expected = None
    try:
        actual = normalize_email(address)
    except EmailNotValidError:
        actual = None
    assert actual == expected


@settings(max_examples=300, deadline=None)
@given(text=st.text(alphabet=st.sampled_from("'=+-@\t\rax 1"), max_size=8))
def test_an_exported_cell_is_read_back_as_it_was(text):
    from crm.imports.fields import unformula

    cell = safe_cell(text)
    assert not cell.startswith(("=", "+", "-", "@", "\t", "\r"))
    assert unformula(cell) == text
