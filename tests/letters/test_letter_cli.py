"""`crm letter …` and `crm signon …`: every command's happy path and its errors (exit 1, one line, nothing changed)."""

import json

import pytest
from sqlalchemy import func, select

from crm.audit.models import AuditEvent
from crm.letters.models import Letter, Signature, SignOnRequest
from crm.mailmerge.models import Message
from crm.organizations.models import Organization, OrganizationAlias
from crm.seed import SEED_LETTER_SLUG
from tests.factories import LetterFactory, OrganizationFactory, SignatureFactory


def run(runner, *args, code=0, input=None):
    """Invoke `crm ARGS`, check the exit code, and return the result."""
    result = runner.invoke(args=list(args), input=input)
    assert result.exit_code == code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def error_line(result) -> str:
    """The single error line a failing command printed."""
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    return lines[0]


def audit_count(db, action: str, entity: str) -> int:
    """How many audit events of a kind there are."""
    return db.session.scalar(select(func.count()).where(AuditEvent.action == action,
                                                        AuditEvent.entity_type == entity))


def org(db, acronym: str) -> Organization:
    """A seed organization by acronym."""
    return db.session.scalar(select(Organization).where(Organization.acronym == acronym))


def test_letter_list_and_show(runner, seeded):
    listed = run(runner, "letter", "list").output
    assert SEED_LETTER_SLUG in listed and "68 confirmed" in listed
    items = json.loads(run(runner, "letter", "list", "--json").output)
    assert items[0]["slug"] == SEED_LETTER_SLUG and items[0]["counts"]["confirmed"] == 68
    assert json.loads(run(runner, "letter", "list", "--status", "draft", "--json").output) == []
    assert "status must be one of" in error_line(run(runner, "letter", "list", "--status", "bogus", code=1))
    shown = run(runner, "letter", "show", SEED_LETTER_SLUG).output
    assert "status: delivered" in shown and "68 confirmed" in shown and "recipients:" in shown
    data = json.loads(run(runner, "letter", "show", SEED_LETTER_SLUG, "--json").output)
    assert data["counts"] == {"pending": 0, "confirmed": 68, "declined": 0, "withdrawn": 0, "awaiting_review": 0,
                              "invited": 0, "invited_unsigned": 0}
    assert "unknown letter 'nope'" in error_line(run(runner, "letter", "show", "nope", code=1))


def test_letter_create_edit_status_delete(runner, seeded, db, tmp_path):
    body = tmp_path / "body.md"
    body.write_text("We ask you to **stop**.", encoding="utf-8")
    created = run(runner, "letter", "create", "--title", "Stop the broker loophole", "--body-file", str(body),
                  "--recipients", "Secretary X", "--deadline", "2030-05-01", "--issue-area", "privacy", "--public",
                  "--no-review")
    slug = created.output.strip().splitlines()[-1]
    letter = db.session.scalar(select(Letter).where(Letter.slug == slug))
    assert slug == "stop-the-broker-loophole" and letter.status == "draft" and letter.body.startswith("We ask")
    assert letter.public_signon and not letter.review_required and str(letter.deadline) == "2030-05-01"
    assert [a.slug for a in letter.issue_areas] == ["privacy"] and audit_count(db, "create", "letter") >= 1

    letters_before = db.session.scalar(select(func.count(Letter.id)))
    for args, message in (
        (("--title", "X", "--deadline", "2030-13-01"), "--deadline must be a date written YYYY-MM-DD"),
        (("--title", "X", "--slug", SEED_LETTER_SLUG), "already uses the slug"),
        (("--title", "X", "--slug", "Bad Slug"), "Use lower-case letters"),
        (("--title", "X", "--issue-area", "nope"), "Unknown issue area: nope"),
        (("--slug", "no-title"), "needs a title"),
        (("--title", "X", "--body-file", str(tmp_path / "missing.md")), "cannot read"),
    ):
        assert message in error_line(run(runner, "letter", "create", *args, code=1))
    assert db.session.scalar(select(func.count(Letter.id))) == letters_before

    run(runner, "letter", "edit", slug, "--summary", "Short", "--deadline", "", "--review")
    db.session.refresh(letter)
    assert letter.summary == "Short" and letter.deadline is None and letter.review_required
    assert "nothing to change" in error_line(run(runner, "letter", "edit", slug, code=1))
    assert "unknown letter" in error_line(run(runner, "letter", "edit", "nope", "--title", "Y", code=1))
    assert "already uses" in error_line(run(runner, "letter", "edit", slug, "--slug", SEED_LETTER_SLUG, code=1))
    db.session.refresh(letter)
    assert letter.slug == slug

    assert "cannot become closed" in error_line(run(runner, "letter", "status", slug, "closed", code=1))
    assert "Status must be one of" in error_line(run(runner, "letter", "status", slug, "sent", code=1))
    assert "go with the status delivered" in error_line(
        run(runner, "letter", "status", slug, "collecting", "--delivered-on", "2030-01-01", code=1))
    assert "YYYY-MM-DD" in error_line(run(runner, "letter", "status", slug, "delivered", "--delivered-on", "x", code=1))
    run(runner, "letter", "status", slug, "collecting")
    db.session.refresh(letter)
    assert letter.status == "collecting" and audit_count(db, "status", "letter") == 1
    assert "close it instead" in error_line(run(runner, "letter", "delete", slug, "--yes", code=1))
    run(runner, "letter", "status", slug, "closed")
    run(runner, "letter", "status", slug, "delivered", "--delivered-on", "2030-06-01")
    db.session.refresh(letter)
    assert letter.status == "delivered" and str(letter.delivered_on) == "2030-06-01"
    assert "delivered; its text can no longer change" in error_line(
        run(runner, "letter", "edit", slug, "--title", "Other", code=1))
    assert "cannot become draft" in error_line(run(runner, "letter", "status", slug, "draft", code=1))

    draft = run(runner, "letter", "create", "--title", "Short-lived").output.strip().splitlines()[-1]
    run(runner, "letter", "delete", draft, input="n\n", code=1)  # declining the prompt deletes nothing
    assert db.session.scalar(select(Letter.id).where(Letter.slug == draft)) is not None
    assert run(runner, "letter", "delete", draft, input="y\n").output.strip().endswith(f"Deleted letter {draft}.")
    assert db.session.scalar(select(Letter.id).where(Letter.slug == draft)) is None
    assert audit_count(db, "delete", "letter") == 1
    assert "unknown letter" in error_line(run(runner, "letter", "delete", draft, "--yes", code=1))


def test_letter_signatures_sign_and_signature_status(runner, seeded, db):
    slug = run(runner, "letter", "create", "--title", "Next campaign").output.strip().splitlines()[-1]
    eff = org(db, "EFF")
    out = run(runner, "letter", "sign", slug, str(eff.id), "--role", "lead", "--status", "pending",
              "--listed-as", "EFF").output
    assert "added" in out
    assert "already on" in run(runner, "letter", "sign", slug, str(eff.id)).output
    run(runner, "letter", "sign", slug, "Electronic Privacy Information Center")  # an exact name: applied
    sigs = json.loads(run(runner, "letter", "signatures", slug, "--json").output)
    assert [(s["listed_as"], s["role"], s["status"], s["source"]) for s in sigs] == [
        ("EFF", "lead", "pending", "manual"), ("Electronic Privacy Information Center", "signatory", "confirmed",
                                               "manual")]
    assert "EFF" not in run(runner, "letter", "signatures", slug, "--status", "confirmed").output
    assert audit_count(db, "create", "signature") >= 2

    count = db.session.scalar(select(func.count(Signature.id)))
    for args, message in (
        ((slug, "999999"), "there is no organization 999999"),
        ((slug, "Electronic Frontier Foundatoin of Texas"), "no sure match"),
        ((slug, "Zzyzx Quux Collective"), "no sure match"),
        ((slug, str(eff.id), "--role", "boss"), "Role must be one of"),
        ((slug, str(org(db, "EPIC").id), "--status", "maybe"), "Status must be one of"),
        (("nope", str(eff.id)), "unknown letter"),
    ):
        assert message in error_line(run(runner, "letter", "sign", *args, code=1))
    assert db.session.scalar(select(func.count(Signature.id))) == count
    assert "unknown status maybe" in error_line(run(runner, "letter", "signatures", slug, "--status", "maybe",
                                                    code=1))

    run(runner, "letter", "signature-status", slug, str(eff.id), "confirmed")
    sig = db.session.scalar(select(Signature).join(Letter).where(Letter.slug == slug,
                                                                 Signature.organization_id == eff.id))
    assert sig.status == "confirmed" and sig.signed_at is not None and audit_count(db, "update", "signature") == 1
    assert "Status must be one of" in error_line(
        run(runner, "letter", "signature-status", slug, str(eff.id), "gone", code=1))
    assert "is not on" in error_line(run(runner, "letter", "signature-status", slug, "999999", "confirmed", code=1))
    run(runner, "letter", "signature-status", slug, "EFF", "confirmed", code=2)  # ORG_ID is a number
    db.session.refresh(sig)
    assert sig.status == "confirmed"
    assert "2 signatures: remove them first" in error_line(run(runner, "letter", "delete", slug, "--yes", code=1))


def test_sign_by_uncertain_name_lists_candidates(runner, seeded, db):
    db.session.add(Organization(name="Fight for the Future Fund", sort_name="Fight for the Future Fund"))
    db.session.add(Organization(name="Fight for the Futures", sort_name="Fight for the Futures"))
    db.session.commit()
    result = run(runner, "letter", "sign", SEED_LETTER_SLUG, "Fight for Future", code=1)
    line = error_line(result)
    assert "no sure match for 'Fight for Future'; candidates:" in line and "Give the organization's id" in line


@pytest.fixture
def queue(db):
    """Two confirmed public sign-ons on the seed letter (signed by others): one matched to EFF, one for a new
    organization."""
    letter = LetterFactory(slug=SEED_LETTER_SLUG, status="delivered")
    SignatureFactory.create_batch(2, letter=letter)
    eff = OrganizationFactory(name="Electronic Frontier Foundation (EFF)", acronym="EFF")
    rows = [
        SignOnRequest(letter_id=letter.id, organization_name="Electronic Frontier Fdn", email="a@eff.example",
                      contact_name="Ana Example", status="confirmed", proposed_organization_id=eff.id,
                      confidence=0.8),
        SignOnRequest(letter_id=letter.id, organization_name="Brand New Coalition", email="b@new.example",
                      contact_name="Bo Example", status="confirmed"),
    ]
    db.session.add_all(rows)
    db.session.commit()
    return rows


def test_signon_list_accept_decline(runner, db, queue):
    matched, new = queue
    listed = run(runner, "signon", "list").output
    assert "Electronic Frontier Fdn" in listed and "proposed: Electronic Frontier Foundation" in listed
    assert "proposed: a new organization" in listed
    items = json.loads(run(runner, "signon", "list", "--letter", SEED_LETTER_SLUG, "--json").output)
    assert [i["id"] for i in items] == [matched.id, new.id]
    assert "unknown letter" in error_line(run(runner, "signon", "list", "--letter", "nope", code=1))

    assert "no proposed match" in error_line(run(runner, "signon", "accept", str(new.id), code=1))
    assert "There is no organization 999999" in error_line(
        run(runner, "signon", "accept", str(new.id), "--organization", "999999", code=1))
    run(runner, "signon", "accept", str(new.id), "--organization", "1", "--new", code=2)
    assert "there is no sign-on request 999999" in error_line(run(runner, "signon", "accept", "999999", code=1))
    db.session.refresh(new)
    assert new.status == "confirmed"

    run(runner, "signon", "accept", str(matched.id))
    db.session.refresh(matched)
    eff = org(db, "EFF")
    assert matched.status == "accepted" and matched.signature_id is not None
    assert db.session.scalar(select(OrganizationAlias.id).where(OrganizationAlias.organization_id == eff.id,
                                                               OrganizationAlias.name == "Electronic Frontier Fdn"))
    assert db.session.scalar(select(func.count()).where(Message.kind == "signon-accepted",
                                                        Message.email == "a@eff.example")) == 1
    assert audit_count(db, "accept", "signon") == 1
    assert "already decided" in error_line(run(runner, "signon", "decline", str(matched.id), code=1))
    assert "Only confirmed sign-ons" in error_line(run(runner, "signon", "accept", str(matched.id), code=1))

    run(runner, "signon", "decline", str(new.id))
    db.session.refresh(new)
    assert new.status == "rejected" and audit_count(db, "reject", "signon") == 1
    assert db.session.scalar(select(func.count()).where(Message.kind == "signon-declined")) == 1
    assert json.loads(run(runner, "signon", "list", "--json").output) == []


def test_signon_accept_as_new_organization(runner, db, queue):
    _, new = queue
    run(runner, "signon", "accept", str(new.id), "--new")
    created = db.session.scalar(select(Organization).where(Organization.name == "Brand New Coalition"))
    assert created is not None
    assert db.session.scalar(select(Signature.status).where(Signature.organization_id == created.id)) == "confirmed"
