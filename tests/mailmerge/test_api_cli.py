"""The merge API and the `crm merge` / `crm worker` commands."""

import json

import pytest

from crm.auth.services import create_token
from crm.mailmerge import previews, reports
from tests.mailmerge.conftest import make_recipients, smtp_config


@pytest.fixture
def app_config(sink):
    """Send to the sink."""
    return smtp_config(sink)


def _auth(user):
    return {"Authorization": f"Bearer {create_token(user.email).secret}"}


def test_api_create_preview_queue_send_status(app, client, users, sink):
    make_recipients(3)
    organizer, viewer = _auth(users["organizer"]), _auth(users["viewer"])
    body = {
        "name": "API merge",
        "subject": "Hi {{ org.name }}",
        "body": "Dear {{ contact.first_name }}",
        "audience": {"filter": {"q": "person"}, "contacts": "primary"},
    }
    assert client.post("/api/v1/merges", json=body, headers=viewer).status_code == 403
    bad = client.post("/api/v1/merges", json={**body, "body": "{{ config }}"}, headers=organizer)
    assert bad.status_code == 400 and bad.content_type == "application/problem+json"
    assert "unknown field config" in json.dumps(bad.get_json())
    bad = client.post(
        "/api/v1/merges", json={**body, "audience": {"filter": {"signed": ["nope"]}}}, headers=organizer
    )
    assert bad.status_code == 400 and "audience.filter.signed" in bad.get_json()["errors"]
    created = client.post("/api/v1/merges", json=body, headers=organizer)
    assert created.status_code == 201, created.get_json()
    merge_id = created.get_json()["id"]
    assert client.get(f"/api/v1/merges/{merge_id}/audience", headers=viewer).get_json()["mailable"] == 3
    contact_id = previews.preview_contacts(reports.get_merge(merge_id))[0][0]
    preview_url = f"/api/v1/merges/{merge_id}/preview?contact_id={contact_id}"
    # A message holds the recipient's personal sign-on link: like the merge page, previews are for organizers.
    assert client.get(preview_url, headers=viewer).status_code == 403
    assert client.get(f"/api/v1/merges/{merge_id}/check", headers=viewer).status_code == 403
    preview = client.get(preview_url, headers=organizer).get_json()
    assert preview["text"].startswith("Dear First0") and "List-Unsubscribe-Post" in preview["raw"]
    assert client.get(f"/api/v1/merges/{merge_id}/preview?contact_id=x", headers=organizer).status_code == 400
    assert client.get(f"/api/v1/merges/{merge_id}/check", headers=organizer).get_json()["ok"] is True
    sent = client.post(f"/api/v1/merges/{merge_id}/send", headers=organizer)
    assert sent.status_code == 200 and sent.get_json()["status"] == "queued"
    assert client.post(f"/api/v1/merges/{merge_id}/queue", headers=organizer).status_code == 400
    from crm.mailmerge.worker import drain

    drain()
    status = client.get(f"/api/v1/merges/{merge_id}", headers=viewer).get_json()
    assert status["status"] == "done" and status["counts"]["sent"] == 3
    assert client.get("/api/v1/merges/999", headers=viewer).status_code == 404
    spec = client.get("/api/v1/openapi.json").get_json()
    assert "/api/v1/merges/{merge_id}/preview" in spec["paths"]


def test_cli_create_check_send_status(app, runner, sink, tmp_path):
    make_recipients(4)
    body = tmp_path / "body.md"
    body.write_text("Dear {{ contact.first_name | default('friends') }},\n\n{{ org.name }}")
    result = runner.invoke(
        args=[
            "merge",
            "create",
            "--name",
            "CLI",
            "--subject",
            "Hello",
            "--body-file",
            str(body),
            "--contacts",
            "all",
        ]
    )
    assert result.exit_code == 0, result.output
    merge_id = int(result.output.strip().splitlines()[-1])
    assert runner.invoke(args=["merge", "check", str(merge_id)]).exit_code == 0
    app.config["MAIL_EMBEDDED_WORKER"] = True  # as outside tests: the CLI still must not start the thread
    result = runner.invoke(args=["merge", "send", str(merge_id)])
    assert result.exit_code == 0 and "Sent 4" in result.output
    # This process drained the outbox itself, on one connection; no background thread raced it (or would be killed
    # mid-message when the command exits).
    assert "(1 SMTP connections)" in result.output and "mailmerge_worker" not in app.extensions
    status = json.loads(runner.invoke(args=["merge", "status", str(merge_id), "--json"]).output)
    assert status["counts"]["sent"] == 4 and status["status"] == "done"
    assert len(sink.messages) == 4
    bad = runner.invoke(
        args=[
            "merge",
            "create",
            "--name",
            "x",
            "--subject",
            "s",
            "--body-file",
            str(body),
            "--signed",
            "no-such-letter",
        ]
    )
    assert bad.exit_code == 1 and "Unknown letter" in bad.output
    assert runner.invoke(args=["merge", "pause", str(merge_id)]).exit_code == 1
    assert runner.invoke(args=["merge", "status", "999"]).exit_code == 1
    assert runner.invoke(args=["worker", "--until-empty"]).exit_code == 0
