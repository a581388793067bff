"""organizations.letters_signed / last_signed_at stay true whatever writes a signature (triggers, both databases)."""

from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa

from crm.extensions import db
from crm.letters.models import Letter, Signature
from crm.letters.signatures import add_signature, update_signature
from crm.letters.writing import create_letter
from crm.organizations.creation import create_organization
from crm.organizations.filters import parse_filter
from crm.organizations.merging import merge_organizations
from crm.organizations.models import Organization
from crm.organizations.queries import list_organizations
from tests.factories import LetterFactory, SignatureFactory

# Triggers written per database: on PostgreSQL too (tests/conftest.py).
pytestmark = pytest.mark.bothdb


@pytest.fixture
def signers(app):
    """Three organizations (in privacy) that signed a letter in 2021, as the seed's did."""
    letter = LetterFactory(status="delivered", letter_date=date(2021, 4, 19))
    return SignatureFactory.create_batch(3, letter=letter, organization__issue_areas=["privacy"])


def truth() -> dict[int, tuple[int, datetime | None]]:
    """What the two columns must say, computed from the signatures."""
    rows = db.session.execute(
        sa.select(Organization.id, sa.func.count(Signature.id), sa.func.max(Signature.signed_at))
        .outerjoin(Signature, (Signature.organization_id == Organization.id) & (Signature.status == "confirmed"))
        .group_by(Organization.id)
    )
    return {org_id: (n, last) for org_id, n, last in rows}


def stored() -> dict[int, tuple[int, datetime | None]]:
    """What the columns say."""
    db.session.expire_all()
    rows = db.session.execute(sa.select(Organization.id, Organization.letters_signed, Organization.last_signed_at))
    return {org_id: (n, last) for org_id, n, last in rows}


def assert_counts_true():
    """Every organization's stored values equal the ones computed from signatures."""
    expected, actual = truth(), stored()
    # max() over a DateTime column comes back as text on SQLite: compare on the stored column's type.
    assert {k: v[0] for k, v in actual.items()} == {k: v[0] for k, v in expected.items()}
    assert {k for k, v in actual.items() if v[1]} == {k for k, v in expected.items() if v[1]}


def new_org(name: str) -> Organization:
    """A new organization."""
    return create_organization({"name": name, "issue_areas": ["privacy"]})


def new_letter(slug: str) -> Letter:
    """A new collecting letter."""
    return create_letter({"title": slug.title(), "slug": slug, "status": "collecting"})


def test_seed_counts(seeded):
    assert_counts_true()
    assert db.session.scalar(sa.select(sa.func.count()).where(Organization.letters_signed == 1)) == 68


def test_every_kind_of_write_keeps_counts_true(app, signers):
    a, b = new_org("Counts A"), new_org("Counts B")
    one, two, three = new_letter("counts-one"), new_letter("counts-two"), new_letter("counts-three")
    # Pending rows do not count; confirming does; signed_at moves last_signed_at.
    sig, _ = add_signature(one, a, status="pending")
    assert stored()[a.id] == (0, None)
    update_signature(sig, {"status": "confirmed"})
    assert stored()[a.id][0] == 1 and stored()[a.id][1] is not None
    add_signature(two, a)
    add_signature(two, b)
    assert_counts_true()
    # Withdrawing and declining take it back.
    update_signature(sig, {"status": "withdrawn"})
    assert stored()[a.id][0] == 1
    # A Core bulk insert and a raw UPDATE count too.
    when = datetime(2030, 1, 2, 3, 4, tzinfo=UTC)
    db.session.execute(sa.insert(Signature), [{
        "letter_id": three.id, "organization_id": b.id, "listed_name": "B", "status": "confirmed",
        "signed_at": when, "created_at": when, "updated_at": when,
    }])
    db.session.commit()
    assert stored()[b.id] == (2, when)
    db.session.execute(sa.text("UPDATE signatures SET status = 'declined' WHERE letter_id = :l"), {"l": three.id})
    db.session.commit()
    assert stored()[b.id][0] == 1 and stored()[b.id][1] != when
    # Merging organizations moves signatures: the kept one gets them, the removed one is gone.
    merge_organizations(a.id, b.id)
    assert_counts_true()
    assert stored()[a.id][0] == 1  # both had signed letter two: one row is kept
    # Deleting a letter cascades to its signatures.
    db.session.execute(sa.delete(Letter).where(Letter.id == two.id))
    db.session.commit()
    assert_counts_true()
    assert stored()[a.id][0] == 0 and stored()[a.id][1] is None
    # The dashboard's headline count is the sum of the stored counts.
    from crm.dashboard.services import counts

    confirmed = db.session.scalar(sa.select(sa.func.count()).where(Signature.status == "confirmed"))
    assert counts()["signatures"] == confirmed > 0


def test_filters_and_sorts_read_the_counts(app, signers):
    a = new_org("Zeta Counts")
    for slug in ("counts-x", "counts-y", "counts-z"):
        add_signature(new_letter(slug), a)
    page = list_organizations(parse_filter({"min_signed": "3"}))
    assert [o.name for o in page.items] == ["Zeta Counts"] and page.items[0].letters_signed == 3
    top = list_organizations(parse_filter({}), sort="-letters", per_page=1).items
    assert top[0].id == a.id
    recent = list_organizations(parse_filter({}), sort="-last_signed", per_page=1).items
    assert recent[0].id == a.id
    never = list_organizations(parse_filter({"never_signed": "true"}))
    assert never.total == 0
    new_org("Never Signed Counts")
    assert list_organizations(parse_filter({"never_signed": "true"})).total == 1
    after = list_organizations(parse_filter({"last_signed_after": datetime.now(UTC).date().isoformat()}))
    assert [o.id for o in after.items] == [a.id]
