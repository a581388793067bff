"""A preview (dry run) decides every row as the import would, without writing: other requests keep working."""

import re
import threading
import time

import pytest
from sqlalchemy import event, func, select

from crm.contacts.models import Contact
from crm.imports.batches import undo_import
from crm.imports.fields import suggest_mapping
from crm.imports.options import ImportOptions
from crm.imports.reader import sniff
from crm.imports.running import run_import
from crm.letters.models import Letter
from crm.organizations.models import IssueArea, Organization
from crm.seed import SEED_LETTER_SLUG
from tests.factories import LetterFactory, OrganizationFactory, SignatureFactory


def _run(path, kind, **options):
    """Import with the suggested mapping; (result, [(row, action, errors, organization, how)])."""
    info = sniff(path)
    seen = []
    result = run_import(path, ImportOptions(kind=kind, columns=suggest_mapping(kind, info.header),
                                            **options),
                        on_row=lambda o, c: seen.append((o.row, o.action, o.error_text, *o.as_report_row()[4:])))
    return result, seen


@pytest.fixture
def mijente(db):
    """Mijente, a lead signer of the letter the signatures file is for, in the issue areas the files name."""
    org = OrganizationFactory(name="Mijente", issue_areas=["immigration", "privacy"])
    SignatureFactory(organization=org, letter=LetterFactory(slug=SEED_LETTER_SLUG, status="delivered"),
                     role="lead", position=0)
    return org


@pytest.fixture
def writes(db):
    """The statements other than SELECT sent to the database while the test runs."""
    sent: list[str] = []

    def note(connection, cursor, statement, parameters, context, executemany):
        if statement.lstrip()[:6].upper() != "SELECT":
            sent.append(statement)

    event.listen(db.engine, "before_cursor_execute", note)
    yield sent
    event.remove(db.engine, "before_cursor_execute", note)


CONTACTS = ("email,first_name,organization,title,primary\n"
            "ana@example.org,Ana,Mijente,Director,yes\n"
            "new1@example.org,New,Brand New Group,,\n"
            "new1@example.org,New,Brand New Group,Organizer,\n"  # same address again: an update of row 3
            "bad-address,Bad,Mijente,,\n"
            "new2@example.org,Other,brand new group,,\n"  # the organization row 3 creates
            "ana@example.org,Ana,Mijente,Chair,\n")
ORGS = ("name,state,issue areas,parent\n"
        "Fresh Coalition,NY,privacy; brand new area,\n"
        "Fresh Coalition Chapter,CA,privacy,Fresh Coalition\n"
        "Fresh Coalition,,immigration,\n"
        "Mijente,AZ,,\n"
        "Nowhere Group,ZZ,,\n")
SIGNATURES = ("organization,role,status\n"
              "Mijente,lead,confirmed\n"
              "Quite New Signers,signatory,pending\n"
              "Quite New Signers,,confirmed\n"
              "Mijente,,withdrawn\n")


@pytest.mark.commits  # it watches every statement sent: the rolled-back tests' SAVEPOINTs would be among them
@pytest.mark.parametrize("kind,text,extra", [
    ("contacts", CONTACTS, {}),
    ("orgs", ORGS, {"create_issue_areas": True}),
    ("signatures", SIGNATURES, {"letter_slug": SEED_LETTER_SLUG}),
])
def test_a_dry_run_writes_nothing_and_decides_each_row_as_the_import_does(mijente, db, tmp_path, monkeypatch,
                                                                          writes, kind, text, extra):
    monkeypatch.setattr("crm.imports.running.CHUNK_ROWS", 2)  # rows that depend on an earlier chunk's records
    path = tmp_path / "f.csv"
    path.write_text(text)
    before = (db.session.scalar(select(func.count(Contact.id))), db.session.scalar(select(func.count(
        Organization.id))), db.session.scalar(select(func.count(IssueArea.id))))
    db.session.commit()
    writes.clear()
    for mode in ("skip", "fill", "overwrite"):
        preview, preview_rows = _run(path, kind, dry_run=True, on_duplicate=mode, skip_invalid=True, **extra)
        assert writes == [], writes[:3]
        assert not preview.problems and preview.rows == len(text.splitlines()) - 1
        done, done_rows = _run(path, kind, on_duplicate=mode, skip_invalid=True, **extra)
        assert done.committed
        assert preview_rows == done_rows, mode
        assert preview.counts == done.counts, mode
        assert preview.new_organizations == done.new_organizations, mode
        if mode != "overwrite":
            undo_import(done.batch_id)
            writes.clear()
    after = (db.session.scalar(select(func.count(Contact.id))), db.session.scalar(select(func.count(
        Organization.id))), db.session.scalar(select(func.count(IssueArea.id))))
    assert after != before  # the last import was kept: the previews above changed nothing by themselves


@pytest.mark.commits  # the edit runs in another thread, on a connection of its own
@pytest.mark.bothdb  # who waits for whose lock
def test_an_edit_while_a_large_preview_runs_succeeds_at_once(mijente, app, db, tmp_path, users):
    """Before, the preview inserted its rows and held SQLite's write lock until its rollback; the edit waited for
    the busy timeout and failed with 'database is locked'."""
    from tests.conftest import login

    mijente = db.session.scalar(select(Organization).where(Organization.name == "Mijente"))
    db.session.add(Contact(email="ana@example.org", first_name="Ana", organization_id=mijente.id))
    db.session.commit()
    rows = "".join(f"p{i}@example.org,Person {i},Org {i % 500}\n" for i in range(5000))
    path = tmp_path / "big.csv"
    path.write_text("email,first_name,organization\nana@example.org,Ana Changed,Mijente\n" + rows)
    edit: dict = {}

    def edit_meanwhile():
        client = app.test_client()
        login(client, "organizer@example.org")
        started = time.monotonic()
        response = client.post("/contacts/new", data={"first_name": "Meanwhile", "email": "meanwhile@example.org",
                                                      "status": "active"})
        edit["seconds"] = time.monotonic() - started
        edit["code"] = response.status_code

    thread = None

    def on_row(outcome, cells):
        nonlocal thread
        if thread is None:  # the first chunk has been decided; the preview's transaction is open
            thread = threading.Thread(target=edit_meanwhile)
            thread.start()
            thread.join(30)

    info = sniff(path)
    result = run_import(path, ImportOptions(kind="contacts", columns=suggest_mapping(
        "contacts", info.header), dry_run=True, on_duplicate="overwrite"), on_row=on_row)
    assert result.rows == 5001 and result.created == 5000 and result.updated == 1
    assert edit["code"] in (302, 303), edit
    assert edit["seconds"] < 2, edit
    db.session.expire_all()
    assert db.session.scalar(select(Contact.first_name).where(Contact.email == "meanwhile@example.org")) == \
        "Meanwhile"
    assert db.session.scalar(select(Contact.first_name).where(Contact.email == "ana@example.org")) == "Ana"
    assert db.session.scalar(select(func.count(Letter.id))) == 1


@pytest.mark.commits  # another connection holds the lock
def test_a_write_that_waits_too_long_for_the_sqlite_lock_is_a_503_to_retry(app, db, users, database_url):
    """Another writer (an import, a backup) holding SQLite's lock past the busy timeout: 503 with Retry-After, for
    pages and API alike, never a 500; the request after the lock is gone succeeds."""
    if not database_url.startswith("sqlite"):
        pytest.skip("SQLite's single writer lock")
    import sqlite3

    from crm.auth.services import create_token
    from tests.conftest import login

    def short_wait(dbapi_connection, record):
        dbapi_connection.execute("PRAGMA busy_timeout=200")  # after the app's own 10 s

    event.listen(db.engine, "connect", short_wait)
    db.engine.dispose()
    client = app.test_client()
    login(client, "organizer@example.org")
    token = create_token("organizer@example.org").secret
    db.session.commit()
    holder = sqlite3.connect(database_url.removeprefix("sqlite:///"), timeout=0)
    holder.execute("BEGIN IMMEDIATE")
    try:
        page = client.post("/contacts/new", data={"first_name": "Locked", "email": "locked@example.org",
                                                  "status": "active"})
        assert page.status_code == 503 and page.headers["Retry-After"] == "5"
        assert "busy with another task" in page.get_data(as_text=True)
        api = app.test_client().post("/api/v1/contacts", json={"first_name": "Locked"},
                                     headers={"Authorization": f"Bearer {token}"})
        assert api.status_code == 503 and api.mimetype == "application/problem+json"
        assert "Try again" in api.json["detail"]
    finally:
        holder.rollback()
        holder.close()
        event.remove(db.engine, "connect", short_wait)
    page = client.post("/contacts/new", data={"first_name": "Later", "email": "later@example.org",
                                              "status": "active"})
    assert page.status_code == 303


def _says_locked(record) -> bool:
    """A log line of the outbox worker about SQLite's lock (the worker's back-off or the embedded loop's wait)."""
    message = record.getMessage()
    return "database is locked" in message or "database is busy" in message


def test_the_embedded_mail_worker_waits_out_a_held_lock_and_sends(app, db, smtp_server, worker_stopped,
                                                                  database_url, caplog):
    """A write lock held longer than the busy timeout (an import committing) is no crash for the outbox thread:
    it says so in the log (the worker backs off), waits, and sends once the lock is gone."""
    if not database_url.startswith("sqlite"):
        pytest.skip("SQLite's single writer lock")
    import logging
    import sqlite3

    from crm.mailmerge import queueing
    from crm.mailmerge.embedded import start_embedded_worker
    from crm.mailmerge.models import Message
    from tests.conftest import embedded_smtp_config
    from tests.mailmerge.conftest import make_recipients, new_merge

    app.config.update(embedded_smtp_config(smtp_server))
    make_recipients(3)
    queueing.queue_merge(new_merge())
    db.session.commit()

    def short_wait(dbapi_connection, record):
        dbapi_connection.execute("PRAGMA busy_timeout=100")

    event.listen(db.engine, "connect", short_wait)
    db.engine.dispose()
    caplog.set_level(logging.WARNING, logger="crm.mailmerge")
    holder = sqlite3.connect(database_url.removeprefix("sqlite:///"), timeout=0)
    holder.execute("BEGIN IMMEDIATE")
    try:
        start_embedded_worker(app)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not any(_says_locked(r) for r in caplog.records):
            time.sleep(0.05)
    finally:
        holder.rollback()
        holder.close()
    assert any(_says_locked(r) for r in caplog.records)
    deadline = time.monotonic() + 10
    statuses: set = set()
    while time.monotonic() < deadline and statuses != {"sent"}:
        time.sleep(0.1)
        db.session.rollback()
        statuses = set(db.session.scalars(select(Message.status)))
    event.remove(db.engine, "connect", short_wait)
    assert statuses == {"sent"} and len(smtp_server.messages) == 3
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], [r.getMessage() for r in caplog.records]


def test_a_preview_is_kept_for_the_next_get_and_computed_again_on_request(as_role, db):
    from tests.imports.test_wizard import token_of, upload

    client = as_role("organizer")
    token = token_of(upload(client, b"email,first_name\nana@example.org,Ana\nluis@example.org,Luis\n"))
    client.post(f"/imports/u/{token}/mapping", data={"col_0": "email", "col_1": "first_name"})
    first = client.get(f"/imports/u/{token}/preview").get_data(as_text=True)
    assert "2 to create" in first
    db.session.add(Contact(email="ana@example.org", first_name="Ana"))
    db.session.commit()
    again = client.get(f"/imports/u/{token}/preview").get_data(as_text=True)
    assert "2 to create" in again and "Previewed at" in again  # the kept preview: the file was not read again
    assert "ana@example.org" in again  # its rows too
    updated = client.post(f"/imports/u/{token}/preview", data={"on_duplicate": "skip", "preview": "Update preview"})
    assert "1 to create" in updated.get_data(as_text=True)
    # Other choices are another preview.
    other = client.post(f"/imports/u/{token}/preview", data={"on_duplicate": "overwrite", "preview": "x"})
    assert "1 to create" in other.get_data(as_text=True)
    # The import itself always decides afresh.
    done = client.post(f"/imports/u/{token}/preview", data={"on_duplicate": "skip", "commit": "Import"})
    assert done.status_code == 303
    assert db.session.scalar(select(func.count(Contact.id)).where(Contact.email == "luis@example.org")) == 1


@pytest.fixture
def coalition(db):
    """Organizations an organizer's file names in other words: the ACLU by its alias, EFF with a typo."""
    from crm.organizations.editing import add_alias

    aclu = OrganizationFactory(name="American Civil Liberties Union")
    add_alias(aclu, "ACLU")
    db.session.commit()
    return {"aclu": aclu, "eff": OrganizationFactory(name="Electronic Frontier Foundation"),
            "mijente": OrganizationFactory(name="Mijente")}


COALITION = ("email,first_name,organization\n"
             "maria@example.org,María,ACLU\n"
             "jordan@example.org,Jordan,American Civil Liberties Union\n"
             "dana@example.org,Dana,Electronic Fronteir Foundation\n"
             "ana@example.org,Ana,Mijente Support Committee\n"
             "luis@example.org,Luis,mijente support committee\n"  # the organization row 5 creates, in a later chunk
             "carla@example.org,Carla,\n"
             "not-an-email,Bad,Only Named By A Bad Row\n")


def _orgs(path, **options):
    """Import with the suggested mapping; (result, {row: (organization, how, API view)})."""
    info = sniff(path)
    seen = {}
    result = run_import(path, ImportOptions(kind="contacts", columns=suggest_mapping("contacts", info.header),
                                            **options),
                        on_row=lambda o, c: seen.update({o.row: (*o.as_report_row()[4:], o.as_dict()["organization"])}))
    return result, seen


@pytest.mark.bothdb  # the organizations are created with INSERT … RETURNING
def test_each_row_says_which_organization_it_goes_to_and_how(coalition, db, tmp_path, monkeypatch):
    """Before, the report said only "new contact (…)": that ACLU was the American Civil Liberties Union, and that
    two organizations would be created, showed only after the import."""
    monkeypatch.setattr("crm.imports.running.CHUNK_ROWS", 2)
    path = tmp_path / "c.csv"
    path.write_text(COALITION)
    preview, rows = _orgs(path, dry_run=True, skip_invalid=True)
    assert {row: value[:2] for row, value in rows.items()} == {
        2: ("American Civil Liberties Union", "matched by alias"),
        3: ("American Civil Liberties Union", "same name"),
        4: ("Electronic Frontier Foundation", rows[4][1]),
        5: ("Mijente Support Committee", "new organization"),
        6: ("Mijente Support Committee", "new organization"),
        7: ("", ""),
        8: ("", ""),  # an error: it goes nowhere, and creates nothing
    }
    assert re.fullmatch(r"close match \d\d%", rows[4][1])
    assert (preview.new_organizations, preview.new_organization_names) == (1, ["Mijente Support Committee"])
    aclu = coalition["aclu"].id
    assert rows[2][2] == {"id": aclu, "name": "American Civil Liberties Union", "match": "alias",
                          "confidence": 1.0, "new": False}
    assert rows[5][2]["id"] is None and rows[5][2]["new"]  # a preview's organization has no id yet
    done, done_rows = _orgs(path, skip_invalid=True)
    assert done.committed and done.new_organizations == 1
    assert {r: v[:2] for r, v in done_rows.items()} == {r: v[:2] for r, v in rows.items()}
    created = db.session.scalar(select(Organization.id).where(Organization.name == "Mijente Support Committee"))
    assert done_rows[5][2]["id"] == done_rows[6][2]["id"] == created
    assert db.session.scalar(select(func.count(Organization.id))) == 4


@pytest.mark.bothdb
def test_a_rolled_back_import_names_no_id_for_the_organizations_it_would_have_made(coalition, db, tmp_path):
    path = tmp_path / "c.csv"
    path.write_text(COALITION)
    result, rows = _orgs(path)  # the bad row stops the import
    assert not result.committed and result.new_organizations == 1
    assert rows[5][:2] == ("Mijente Support Committee", "new organization") and rows[5][2]["id"] is None
    assert rows[2][2]["id"] == coalition["aclu"].id


@pytest.mark.bothdb
@pytest.mark.parametrize("mode,says", [
    # An existing contact keeps its organization unless the choice moves it: the row names where it ends up.
    ("skip", {2: ("Mijente", "same name"), 3: ("", ""), 4: ("", "")}),
    ("fill", {2: ("Mijente", "same name"), 3: ("", ""), 4: ("Brand New Group", "new organization")}),
    ("overwrite", {2: ("Mijente", "same name"), 3: ("Brand New Group", "new organization"),
                   4: ("Brand New Group", "new organization")}),
])
def test_a_duplicate_row_names_the_organization_only_where_its_contact_ends_up(coalition, db, tmp_path, mode,
                                                                               says):
    mijente = coalition["mijente"]
    db.session.add_all([Contact(email="ana@example.org", organization_id=mijente.id),
                        Contact(email="olga@example.org", organization_id=mijente.id),
                        Contact(email="nobody@example.org")])
    db.session.commit()
    path = tmp_path / "c.csv"
    path.write_text("email,organization\nana@example.org,Mijente\nolga@example.org,Brand New Group\n"
                    "nobody@example.org,Brand New Group\n")
    for dry_run in (True, False):
        result, rows = _orgs(path, dry_run=dry_run, on_duplicate=mode)
        assert {r: v[:2] for r, v in rows.items()} == says, (mode, dry_run)
        assert result.new_organizations == (0 if mode == "skip" else 1)


@pytest.mark.bothdb
def test_signature_rows_name_their_organization_and_the_new_ones_are_counted(mijente, db, tmp_path):
    path = tmp_path / "s.csv"
    path.write_text(SIGNATURES)
    info = sniff(path)
    seen = {}
    result = run_import(path, ImportOptions(kind="signatures", columns=suggest_mapping("signatures", info.header),
                                            letter_slug=SEED_LETTER_SLUG, dry_run=True),
                        on_row=lambda o, c: seen.update({o.row: tuple(o.as_report_row()[4:])}))
    assert seen == {2: ("Mijente", "same name"), 3: ("Quite New Signers", "new organization"),
                    4: ("Quite New Signers", "new organization"), 5: ("Mijente", "same name")}
    assert (result.new_organizations, result.new_organization_names) == (1, ["Quite New Signers"])


def test_an_accepted_uncertain_match_says_so(coalition, db, tmp_path, monkeypatch):
    from crm.imports import resolving
    from crm.organizations.matching import Match

    mijente = coalition["mijente"].id
    monkeypatch.setattr(resolving, "match_many", lambda names: [Match(mijente, 0.7, "fuzzy-proposed") for _ in names])
    path = tmp_path / "c.csv"
    path.write_text("email,organization\na@example.org,Mijentte\n")
    result, rows = _orgs(path, dry_run=True)
    assert result.errors == 1 and rows[2][:2] == ("", "")  # for review: it goes nowhere yet
    result, rows = _orgs(path, dry_run=True, accept_uncertain=True)
    assert rows[2][:2] == ("Mijente", "uncertain match 70%, accepted") and rows[2][2]["id"] == mijente
