"""The smoke pass: every page and API route that reads, with real records in its path, answers an admin without
an error (nothing missing or forbidden, no 500), on SQLite and on PostgreSQL (see tests/conftest.py: most tests run
on SQLite alone).

A route whose path names something no fixture here makes (a one-time token) must still answer below 500.
"""

import io
import re

import pytest
from sqlalchemy import select

from crm.auth.services import create_token
from crm.extensions import db
from crm.imports.models import ImportBatch
from crm.letters.models import Signature
from crm.mailmerge.models import Message
from crm.seed import SEED_LETTER_SLUG
from tests.conftest import login

pytestmark = pytest.mark.bothdb

# Routes that may answer 404 for a real record, and why.
MAY_BE_MISSING = {
    "/imports/batches/<int:batch_id>/report.csv": "the report file is written by imports through the wizard only",
}


@pytest.fixture
def records(app, seeded, users):
    """One of each record a path can name, made through the API: {parameter name: value}."""
    headers = {"Authorization": f"Bearer {create_token(users['organizer'].email).secret}"}
    client = app.test_client()

    def created(response):
        assert response.status_code in (200, 201), response.get_data(as_text=True)[:500]
        return response.get_json()

    org_id = created(client.get("/api/v1/organizations?per_page=1", headers=headers))["items"][0]["id"]
    contact = created(client.post("/api/v1/contacts", headers=headers, json={
        "organization_id": org_id, "first_name": "Ada", "last_name": "Smoke", "email": "ada@example.net",
        "is_primary": True}))
    segment = created(client.post("/api/v1/segments", headers=headers,
                                  json={"name": "Smoke", "filter": {"issue_area": ["privacy"]}}))
    merge = created(client.post("/api/v1/merges", headers=headers, json={
        "name": "Smoke", "subject": "Hello {{ org.name }}", "body": "Dear {{ contact.first_name }}",
        "audience": {"filter": {}, "contacts": "primary"}}))
    assert client.post(f"/api/v1/merges/{merge['id']}/queue", headers=headers).status_code == 200
    signon = created(client.post("/api/v1/letters", headers=headers, json={
        "slug": "smoke-signon", "title": "Smoke", "body": "Text", "status": "collecting", "public_signon": True}))
    created(client.post("/api/v1/imports", headers=headers, content_type="multipart/form-data", data={
        "kind": "orgs", "file": (io.BytesIO(b"name,state\nSmoke Test Coalition,NY\n"), "orgs.csv")}))
    return {
        "org_id": org_id,
        "contact_id": contact["id"],
        "segment_id": segment["id"],
        "merge_id": merge["id"],
        "message_id": db.session.scalar(select(Message.id).where(Message.merge_id == merge["id"]).limit(1)),
        "batch_id": db.session.scalar(select(ImportBatch.id).limit(1)),
        "signature_id": db.session.scalar(select(Signature.id).limit(1)),
        "slug": SEED_LETTER_SLUG,
        "signon_slug": signon["slug"],
        "what": "orgs",
        "fmt": "csv",
    }


def _path(rule: str, records: dict) -> tuple[str, bool]:
    """The rule's URL with real records, and whether every parameter was one of them."""
    real = True

    def value(match):
        nonlocal real
        converter, arguments, name = match.groups()
        if name == "slug" and rule.startswith("/sign/"):
            name = "signon_slug"  # the public pages of a letter collecting sign-ons
        if converter == "any":
            return arguments.strip("()").split(",")[0].strip().strip("'\"")
        if name in records and records[name] is not None:
            return str(records[name])
        real = False
        return "999999" if converter == "int" else "x"

    return re.sub(r"<(?:(\w+)(\([^)]*\))?:)?(\w+)>", value, rule), real


def test_every_page_and_api_route_that_reads_answers(app, users, records):
    assert None not in records.values(), records
    pages = app.test_client()
    login(pages, users["admin"].email)
    api = {"Authorization": f"Bearer {create_token(users['admin'].email).secret}"}
    failures, checked, unreal = [], 0, []
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if rule.endpoint == "static" or "GET" not in rule.methods or rule.rule.startswith("/logout"):
            continue
        path, real = _path(rule.rule, records)
        is_api = rule.rule.startswith("/api/")
        response = app.test_client().get(path, headers=api) if is_api else pages.get(path)
        checked += 1
        if not real:
            unreal.append(rule.rule)
        code = response.status_code
        # With real records nothing is missing or forbidden; a page that needs query arguments may say 400.
        if code >= 500 or (real and code in (401, 403, 404) and rule.rule not in MAY_BE_MISSING):
            failures.append((rule.rule, path, code))
    assert failures == [], "\n".join(map(str, failures))
    assert len(unreal) < checked / 4, unreal  # the pages of one-time tokens (their own tests have real ones)
    assert checked >= 70  # every GET route (79 today), so a broken iteration cannot pass
