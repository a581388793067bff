"""Every export is in the audit log: every download route of the site and every `crm export` command."""

import re

import pytest
from sqlalchemy import func, select

from crm.audit.models import AuditEvent
from crm.imports.models import ImportBatch
from tests.factories import ContactFactory, SignatureFactory
from tests.imports.test_wizard import fetch, token_of, upload

DOWNLOAD = re.compile(r"\.(csv|xlsx|txt|md|html|pdf|docx|ics)$|<fmt>$")


def exports(db) -> int:
    """How many export events the audit log holds."""
    return db.session.scalar(select(func.count(AuditEvent.id)).where(AuditEvent.action == "export"))


def download_urls(app, values: dict[str, str]) -> dict[str, list[str]]:
    """Each download route's rule with the URLs that exercise it (each of its formats and kinds)."""
    urls = {}
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or rule.rule.startswith("/api/") or not DOWNLOAD.search(rule.rule):
            continue
        if rule.rule == "/exports/<what>.<fmt>":
            urls[rule.rule] = [f"/exports/{what}.{fmt}" for what in ("orgs", "contacts", "signatures", "matrix",
                                                                     "suppressions") for fmt in ("csv", "xlsx")]
            continue
        urls[rule.rule] = [re.sub(r"<(?:\w+:)?(\w+)>", lambda m: values[m.group(1)], rule.rule)]
    return urls


@pytest.fixture
def import_done(as_role, db):
    """A letter with a signature; an upload with a preview report, and a committed import with its report."""
    letter = SignatureFactory().letter
    client = as_role("organizer")
    token = token_of(upload(client, b"email,first_name\nsam@example.org,Sam\n"))
    client.post(f"/imports/u/{token}/mapping", data={"col_0": "email", "col_1": "first_name"})
    client.get(f"/imports/u/{token}/preview")
    committed = token_of(upload(client, b"email,first_name\nkim@example.org,Kim\n"))
    client.post(f"/imports/u/{committed}/mapping", data={"col_0": "email", "col_1": "first_name"})
    client.post(f"/imports/u/{committed}/preview", data={"on_duplicate": "skip", "commit": "Import"})
    return {"token": token, "batch_id": str(db.session.scalar(select(ImportBatch.id))), "slug": letter.slug}


def test_every_download_route_is_audited(app, as_role, import_done, db):
    client = as_role("organizer")  # the uploads are the organizer's own
    urls = download_urls(app, import_done)
    assert {"/contacts/export.csv", "/exports/<what>.<fmt>", "/letters/<slug>/signatories.csv",
            "/letters/<slug>/signatories.txt", "/suppressions.csv", "/imports/batches/<int:batch_id>/report.csv",
            "/imports/u/<token>/report.csv"} <= set(urls)
    missing = []
    for rule, paths in sorted(urls.items()):
        for path in paths:
            before = exports(db)
            response = fetch(client, path)
            assert response.status_code == 200, (path, response.status_code)
            assert response.headers["Content-Disposition"].startswith("attachment"), path
            db.session.expire_all()
            if exports(db) != before + 1:
                missing.append((rule, path, exports(db) - before))
    assert missing == []
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.summary.contains("contacts.csv")))
    assert event.user.email == "organizer@example.org"


def test_contacts_export_records_its_filters(as_role, db):
    client = as_role("viewer")
    assert fetch(client, "/contacts/export.csv?q=ana").status_code == 200
    summary = db.session.scalar(select(AuditEvent.summary).where(AuditEvent.action == "export"))
    assert "contacts.csv" in summary and "q=ana" in summary


def test_a_refused_download_records_nothing(as_role, db):
    client = as_role("viewer")
    assert client.get("/exports/orgs.csv?issue_area=no-such-area").status_code == 400
    assert client.get("/suppressions.csv").status_code == 403
    assert exports(db) == 0


def test_every_export_command_is_audited(app, runner, db):
    from crm.exports.cli import export_group

    ContactFactory(organization=SignatureFactory().organization)  # a row for each export
    commands = sorted(export_group.commands)
    assert {"orgs", "contacts", "signatures", "matrix", "suppressions"} <= set(commands)
    for name in commands:
        before = exports(db)
        result = runner.invoke(args=["export", name])
        assert result.exit_code == 0, (name, result.output)
        db.session.expire_all()
        assert exports(db) == before + 1, name
