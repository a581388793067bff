"""Fixtures for mail-merge tests: a misbehaving SMTP sink and bulk recipients."""

import pytest
from sqlalchemy import insert, select

from tests import conftest as base
from tests.mailmerge.sink import Sink


@pytest.fixture
def sink():
    """A configurable SMTP sink on a free loopback port (allowed by the SMTP guard), advertising PIPELINING."""
    yield from serve_sink(pipelining=True)


def serve_sink(pipelining: bool):
    """Run a sink for the duration of a fixture."""
    server = Sink(base.free_port(), pipelining=pipelining)
    server.start()
    base._ALLOWED_SMTP.add((server.host, server.port))
    yield server
    base._ALLOWED_SMTP.discard((server.host, server.port))
    server.stop()


def smtp_config(server, **extra) -> dict:
    """App settings that send to `server`."""
    config = {
        "MAIL_BACKEND": "smtp",
        "MAIL_SERVER": server.host,
        "MAIL_PORT": server.port,
        "MAIL_RETRY_BASE_SECONDS": 0.05,
        "MAIL_TIMEOUT": 10,
        "MAIL_MAX_EMAILS": 500,
    }
    config.update(extra)
    return config


def worker_env(app, server, instance_path, **extra: str) -> dict[str, str]:
    """The environment of a worker process (`crm worker`, `celery worker`) on the test database, sending to
    `server`."""
    import os
    from pathlib import Path

    return {
        **os.environ,
        "DATABASE_URL": app.config["DATABASE_URL"],
        "MAIL_BACKEND": "smtp",
        "MAIL_SERVER": server.host,
        "MAIL_PORT": str(server.port),
        "SECRET_KEY": app.config["SECRET_KEY"],
        "CRM_INSTANCE_PATH": str(instance_path),
        "CRM_POSTAL_ADDRESS": "1 Test Street",
        "MAIL_DEFAULT_SENDER": "organizer@example.org",
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
        **extra,
    }


def make_recipients(
    count: int, *, prefix: str = "person", domain: str = "example.net", letter_slug: str | None = None
) -> list[int]:
    """`count` organizations, each with one primary contact; returns the organization ids (bulk inserts)."""
    from crm.common.types import utcnow
    from crm.contacts.models import Contact
    from crm.extensions import db
    from crm.letters.models import Letter, Signature
    from crm.organizations.models import Organization

    now = utcnow()
    start = (db.session.scalar(select(Organization.id).order_by(Organization.id.desc()).limit(1)) or 0) + 1
    orgs = [
        {
            "name": f"{prefix.title()} Org {i}",
            "sort_name": f"{prefix} org {i:06d}",
            "search_text": f"{prefix} org {i}",
            "notes": "",
            "archived": False,
            "version": 1,
            "created_at": now,
            "updated_at": now,
        }
        for i in range(count)
    ]
    for chunk in range(0, count, 1000):
        db.session.execute(insert(Organization), orgs[chunk : chunk + 1000])
    ids = list(
        db.session.scalars(
            select(Organization.id)
            .where(Organization.id >= start, Organization.sort_name.like(f"{prefix} org %"))
            .order_by(Organization.id)
        )
    )
    contacts = [
        {
            "organization_id": org_id,
            "first_name": f"First{i}",
            "last_name": f"Last{i}",
            "title": "",
            "email": f"{prefix}{i}@{domain}",
            "phone": "",
            "is_primary": True,
            "status": "active",
            "notes": "",
            "version": 1,
            "created_at": now,
            "updated_at": now,
        }
        for i, org_id in enumerate(ids)
    ]
    for chunk in range(0, count, 1000):
        db.session.execute(insert(Contact), contacts[chunk : chunk + 1000])
    if letter_slug:
        letter = db.session.scalar(select(Letter).where(Letter.slug == letter_slug))
        if letter is None:
            letter = Letter(slug=letter_slug, title=f"Letter {letter_slug}", status="collecting")
            db.session.add(letter)
            db.session.flush()
        sigs = [
            {
                "letter_id": letter.id,
                "organization_id": org_id,
                "role": "signatory",
                "listed_name": "x",
                "status": "confirmed",
                "source": "manual",
                "signed_at": now,
                "authorized_name": "",
                "authorized_title": "",
                "authorized_email": "",
                "text_fingerprint": "",
                "created_at": now,
                "updated_at": now,
            }
            for org_id in ids
        ]
        for chunk in range(0, count, 1000):
            db.session.execute(insert(Signature), sigs[chunk : chunk + 1000])
    db.session.commit()
    return ids


def new_merge(
    body: str = "Dear {{ contact.first_name }},\n\nHello from **{{ org.name }}**.",
    *,
    subject: str = "Hello {{ org.name }}",
    audience: dict | None = None,
    letter: str | None = None,
    **extra,
):
    """A draft merge through the service."""
    from crm.mailmerge import compose

    data = {
        "name": extra.pop("name", "Test merge"),
        "subject": subject,
        "body": body,
        "letter": letter,
        "audience": audience or {"filter": {}, "contacts": "primary"},
    }
    data.update(extra)
    return compose.create_merge(data)
