"""How a request's transaction ends: COMMIT when it only read (psycopg keeps its prepared statements), ROLLBACK when
it wrote without committing or failed — never a write made durable that the code did not commit."""

import pytest
from sqlalchemy import event, func, select, update

from crm.common.access import access
from crm.extensions import db
from crm.organizations.models import Organization
from tests.factories import OrganizationFactory

# Real transactions on both databases: the point is how they end (and psycopg's prepared statements).
pytestmark = [pytest.mark.commits, pytest.mark.bothdb]


@pytest.fixture
def organizations(app):
    """Three organizations for the routes to read and change (committed before `endings` starts listening)."""
    return OrganizationFactory.create_batch(3)


@pytest.fixture
def endings(app, organizations):
    """Routes that read, write without committing, and fail; and the list of how each transaction ended."""

    @access("public")
    def read():
        return str(db.session.scalar(select(func.count(Organization.id))))

    @access("public")
    def write_uncommitted():
        db.session.execute(update(Organization).values(name="changed and never committed"))
        return "wrote"

    @access("public")
    def pending_orm_change():
        db.session.add(Organization(name="pending, never committed", sort_name="pending", search_text="pending"))
        return "added"

    @access("public")
    def read_then_fail():
        db.session.scalar(select(func.count(Organization.id)))
        raise RuntimeError("boom")

    for view in (read, write_uncommitted, pending_orm_change, read_then_fail):
        app.add_url_rule(f"/_test/{view.__name__}", view.__name__, view)
    ends: list[str] = []
    listeners = {"commit": lambda conn: ends.append("commit"), "rollback": lambda conn: ends.append("rollback")}
    for name, listener in listeners.items():
        event.listen(db.engine, name, listener)
    yield ends
    for name, listener in listeners.items():
        event.remove(db.engine, name, listener)


def test_a_request_that_only_read_ends_with_commit(app, client, endings):
    response = client.get("/_test/read")
    assert response.status_code == 200 and int(response.get_data(as_text=True)) > 0
    assert endings == ["commit"]


def test_a_request_that_wrote_without_committing_rolls_back(app, client, endings):
    before = db.session.scalar(select(func.count()).where(Organization.name == "changed and never committed"))
    db.session.remove()
    assert client.get("/_test/write_uncommitted").status_code == 200
    assert client.get("/_test/pending_orm_change").status_code == 200
    assert "commit" not in endings and endings.count("rollback") == 2
    assert db.session.scalar(select(func.count()).where(Organization.name == "changed and never committed")) == before
    assert db.session.scalar(select(func.count()).where(Organization.name == "pending, never committed")) == 0


def test_a_request_that_failed_rolls_back(app, client, endings):
    app.config["PROPAGATE_EXCEPTIONS"] = False
    assert client.get("/_test/read_then_fail").status_code == 500
    assert endings == ["rollback"]
