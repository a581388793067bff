"""Two simultaneous parent changes (A→B and B→A) must not make a cycle: the check runs under a lock."""

import threading

import pytest
from sqlalchemy import select

from crm.common.validation import InvalidData
from crm.extensions import db as _db
from crm.organizations import editing
from crm.organizations.models import Organization

# Locks (an advisory lock on PostgreSQL, the write lock on SQLite): on PostgreSQL too (tests/conftest.py).
pytestmark = pytest.mark.bothdb


def _new(name: str) -> Organization:
    """An organization with no parent."""
    org = Organization(name=name, sort_name=name.lower(), notes="")
    _db.session.add(org)
    _db.session.commit()
    return org


@pytest.mark.commits  # two threads, each on a connection of its own
def test_simultaneous_opposite_parent_changes(app, db, monkeypatch):
    a, b = _new("Alpha Coalition"), _new("Beta Network")
    versions = {a.id: a.version, b.id: b.version}
    # Both requests pass the first (unlocked) check before either writes: the race the lock must close.
    both_checked = threading.Barrier(2, timeout=20)
    original = editing._check_parent

    def check_then_wait(ref, org_id):
        result = original(ref, org_id)
        both_checked.wait()
        return result

    monkeypatch.setattr(editing, "_check_parent", check_then_wait)
    outcomes: dict[int, str] = {}

    def change(org_id: int, parent_id: int) -> None:
        with app.app_context():
            try:
                editing.update_organization(org_id, {"parent_id": parent_id}, version=versions[org_id])
                outcomes[org_id] = "saved"
            except InvalidData as exc:
                outcomes[org_id] = "refused: " + exc.errors["parent_id"][0]
            finally:
                _db.session.remove()

    threads = [threading.Thread(target=change, args=(a.id, b.id)), threading.Thread(target=change, args=(b.id, a.id))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(o.split(":")[0] for o in outcomes.values()) == ["refused", "saved"], outcomes
    db.session.expire_all()
    parents = dict(db.session.execute(select(Organization.id, Organization.parent_id)
                                      .where(Organization.id.in_([a.id, b.id]))).all())
    assert None in parents.values(), f"a cycle was saved: {parents}"


def test_a_direct_cycle_is_still_refused(app, db):
    a, b = _new("Gamma Alliance"), _new("Delta Project")
    editing.update_organization(a.id, {"parent_id": b.id}, version=a.version)
    with pytest.raises(InvalidData):
        editing.update_organization(b.id, {"parent_id": a.id}, version=_db.session.get(Organization, b.id).version)
