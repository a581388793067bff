"""Links in mail lead where the server is (issue 13, point 1) and the sender stored is the sender used (issue 14,
point 15)."""

import flask.cli
import pytest
from sqlalchemy import select

from crm.cli import main
from crm.common.urls import base_url_for_run, unreachable_host
from crm.mailmerge import checking, compose, previews
from crm.mailmerge.errors import MergeError
from crm.mailmerge.models import MailMerge
from crm.mailmerge.rendering import letter_record, load_recipients, render_message
from crm.mailmerge.templating import compile_templates
from tests.conftest import login
from tests.mailmerge.conftest import make_recipients, new_merge


@pytest.fixture
def started_server(monkeypatch, tmp_path):
    """Run `crm run …` for real up to the point where it would serve; return the app it would serve."""
    served = {}

    def run_simple(host, port, app, **options):
        served.update(host=host, port=port, app=app)

    monkeypatch.setattr(flask.cli, "run_simple", run_simple)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'run.sqlite3'}")
    monkeypatch.setenv("CRM_INSTANCE_PATH", str(tmp_path / "instance"))
    monkeypatch.setenv("MAIL_EMBEDDED_WORKER", "0")
    monkeypatch.delenv("CRM_BASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)  # no .env of the checkout

    def start(*args: str):
        from click.testing import CliRunner

        result = CliRunner().invoke(main, ["run", *args], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return served["app"]

    return start


def test_crm_run_on_a_port_links_to_that_port(started_server):
    app = started_server("--port", "5399")
    assert app.config["CRM_BASE_URL"] == "http://127.0.0.1:5399"
    with app.test_request_context():
        from crm.mailmerge import links

        assert links.unsubscribe_url("a@example.org", 1).startswith("http://127.0.0.1:5399/u/")


def test_crm_run_keeps_a_configured_base_url(started_server, monkeypatch):
    monkeypatch.setenv("CRM_BASE_URL", "https://crm.example.org")
    assert started_server("--port", "5399").config["CRM_BASE_URL"] == "https://crm.example.org"


@pytest.mark.parametrize(("host", "port", "expected"), [
    ("127.0.0.1", 5301, "http://127.0.0.1:5301"),
    ("0.0.0.0", 8000, "http://127.0.0.1:8000"),  # noqa: S104 - the wildcard `crm run --host` takes
    ("::1", 8000, "http://[::1]:8000"),
    ("crm.internal", 80, "http://crm.internal:80"),
])
def test_base_url_for_run(host, port, expected):
    assert base_url_for_run(host, port) == expected


@pytest.mark.parametrize(("url", "unreachable"), [
    ("http://127.0.0.1:5000", True), ("http://localhost:5301", True), ("http://[::1]:8000", True),
    ("http://0.0.0.0:5000", True), ("http://127.3.4.5", True), ("https://crm.example.org", False),
    ("http://192.0.2.10:5000", False), ("", True),
])
def test_unreachable_hosts(url, unreachable):
    assert (unreachable_host(url) is not None) is unreachable


@pytest.fixture
def app_config():
    return {"MAIL_BACKEND": "smtp", "CRM_BASE_URL": "http://127.0.0.1:5301"}


def test_check_and_merge_page_warn_about_loopback_links_when_sending_by_smtp(app, as_role, runner):
    make_recipients(2)
    merge = new_merge()
    result = checking.check_merge(merge)
    assert result.ok  # a warning, not a problem: the organizer may know better (a tunnel, a test relay)
    assert "http://127.0.0.1:5301" in result.warnings[0] and "could not open" in result.warnings[0]
    client = as_role("organizer")
    for path in (f"/merges/{merge.id}/check", f"/merges/{merge.id}"):
        page = client.get(path).get_data(as_text=True)
        assert 'id="link-warning"' in page and "only this computer can open" in page, path
    cli = runner.invoke(args=["merge", "check", str(merge.id)])
    assert cli.exit_code == 0 and "Warning: Links in these messages point to http://127.0.0.1:5301" in cli.output
    app.config["CRM_BASE_URL"] = "https://crm.example.org"
    assert checking.check_merge(merge).warnings == []
    assert 'id="link-warning"' not in client.get(f"/merges/{merge.id}").get_data(as_text=True)
    app.config.update(CRM_BASE_URL="http://localhost:5000", MAIL_BACKEND="outbox")
    assert checking.check_merge(merge).warnings == []  # the dev outbox keeps mail on this machine


# --- the sender --------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("typed", "stored"), [
    ("Ana Ruiz <ana@EXAMPLE.org>", "Ana Ruiz <ana@example.org>"),
    ("ana@example.org", "ana@example.org"),
    ('"Ruiz, Ana" <ana@example.org>', '"Ruiz, Ana" <ana@example.org>'),
    ("José Pérez <jose@example.org>", "José Pérez <jose@example.org>"),
    ("Ana (Mijente) <ana@example.org>", '"Ana (Mijente)" <ana@example.org>'),
])
def test_the_sender_is_stored_as_the_header_will_say_it(app, typed, stored):
    make_recipients(1)
    merge = new_merge(sender=typed)
    assert merge.sender == stored
    compiled = compile_templates(merge.subject_template, merge.body_template)
    contact_id = previews.preview_contacts(merge, 1)[0][0]
    raw = render_message(compiled, load_recipients([contact_id])[contact_id], letter=letter_record(None),
                         merge_id=merge.id, sender=merge.sender).raw
    from email import message_from_string, policy

    header = message_from_string(raw, policy=policy.default)["From"]
    assert header.addresses[0].addr_spec == stored.rsplit("<", 1)[-1].rstrip(">")
    assert str(header) == stored


@pytest.mark.parametrize("typed", [
    "Name\r\nBcc: a@b.org <evil@example.org>",
    "Name\nBcc: evil@example.org",
    "Name Bcc: a@b.org <evil@example.org>",
    "a@b.org <evil@example.org>",
    "a@b.org, c@d.org",
    "Ruiz, Ana <ana@example.org>",
    "Ana <not an address>",
    "Ana\x00 <ana@example.org>",
])
def test_a_sender_that_is_not_one_address_is_refused_everywhere(app, users, client, runner, tmp_path, typed):
    make_recipients(1)
    with pytest.raises(MergeError) as caught:
        new_merge(sender=typed)
    assert "sender" in caught.value.errors
    merge = new_merge()
    with pytest.raises(MergeError):
        compose.update_merge(merge, {"name": "x", "subject": "s", "body": "b", "sender": typed,
                                      "audience": {"filter": {}, "contacts": "primary"}})
    reasons = ("not one address", "one line", "not a valid")
    from crm.auth.services import create_token

    token = {"Authorization": f"Bearer {create_token(users['organizer'].email).secret}"}
    api = client.post("/api/v1/merges", headers=token, json={
        "name": "x", "subject": "s", "body": "b", "sender": typed, "audience": {"filter": {}}})
    assert api.status_code == 400 and "sender" in api.get_json()["errors"]
    login(client, users["organizer"].email)
    page = client.post("/merges/new", data={"name": "x", "subject": "s", "body": "b", "sender": typed,
                                            "contacts": "primary", "match": "any"})
    assert page.status_code == 400
    assert any(reason in page.get_data(as_text=True) for reason in reasons)
    body = tmp_path / "body.md"
    body.write_text("b")
    result = runner.invoke(args=["merge", "create", "--name", "x", "--subject", "s", "--body-file", str(body),
                                 "--sender", typed])
    assert result.exit_code != 0 and any(reason in result.output for reason in reasons), result.output
    from crm.extensions import db

    assert db.session.scalar(select(MailMerge).where(MailMerge.name == "x")) is None
