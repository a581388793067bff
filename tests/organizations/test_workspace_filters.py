"""One filter language: the page, the API and `crm export` agree row for row; constant statements per page."""

import csv
import io
import re

import pytest
import sqlalchemy as sa

from crm.auth.services import create_token
from crm.seed import SEED_LETTER_SLUG

# The filter language's SQL (search, IN lists, counts): on PostgreSQL too (tests/conftest.py).
pytestmark = pytest.mark.bothdb

# (page/API query parameters, the same filter as `crm export orgs` arguments)
FILTERS = [
    (
        {"issue_area": ["immigration", "surveillance"], "match": "all"},
        ["--issue-area", "immigration", "--issue-area", "surveillance", "--match", "all"],
    ),
    (
        {"issue_area": ["privacy", "digital-rights"], "match": "any"},
        ["--issue-area", "privacy", "--issue-area", "digital-rights", "--match", "any"],
    ),
    (
        {"signed": [SEED_LETTER_SLUG], "state": ["CA", "NY"]},
        ["--signed", SEED_LETTER_SLUG, "--state", "CA", "--state", "NY"],
    ),
    ({"q": "aclu"}, ["-q", "aclu"]),
    (
        {"issue_area": ["immigration"], "match": "none", "scope": ["state"]},
        ["--issue-area", "immigration", "--match", "none", "--scope", "state"],
    ),
    (
        {"min_signed": "1", "org_type": ["legal-services"]},
        ["--min-signed", "1", "--org-type", "legal-services"],
    ),
    (
        {"last_signed_after": "2021-01-01", "last_signed_before": "2021-12-31", "q": "center"},
        ["--last-signed-after", "2021-01-01", "--last-signed-before", "2021-12-31", "-q", "center"],
    ),
    ({"never_signed": "1"}, ["--never-signed"]),
    ({"has_mailable": "true"}, ["--has-mailable", "true"]),
    ({"archived": "only"}, ["--archived", "only"]),
]


def _query(params: dict) -> str:
    """A query string with repeated parameters."""
    from urllib.parse import urlencode

    return urlencode(params, doseq=True)


def page_names(client, params: dict) -> list[str]:
    """Organization names on the list page (200 per page), in order."""
    html = client.get("/organizations?" + _query({**params, "per_page": 200})).get_data(as_text=True)
    table = html.split('id="org-table"', 1)[1].split("</table>", 1)[0]
    names = re.findall(r'<a href="/organizations/\d+">([^<]*)</a>', table)
    total = int(re.search(r"<strong>(\d+)</strong> organization", html).group(1))
    assert total == len(names)
    import html as html_lib

    return [html_lib.unescape(n) for n in names]


@pytest.fixture
def workspace(seeded, users, db):
    """The seed plus an organization that never signed, an archived one and a mailable contact."""
    from crm.contacts.services import create_contact
    from crm.organizations.creation import create_organization
    from crm.organizations.editing import set_archived

    create_organization(
        {
            "name": "Quiet Legal Aid",
            "org_type": "legal-services",
            "scope": "state",
            "state": "TX",
            "issue_areas": ["legal-services"],
        }
    )
    old = create_organization({"name": "Gone Coalition", "issue_areas": ["labor"]})
    set_archived(old.id, True)
    aclu = db.session.scalar(sa.text("SELECT id FROM organizations WHERE acronym = 'ACLU'"))
    create_contact(
        {
            "first_name": "Ana",
            "last_name": "Ruiz",
            "email": "ana@aclu.example.org",
            "organization_id": aclu,
            "is_primary": True,
        }
    )
    return users


@pytest.mark.parametrize(("params", "cli_args"), FILTERS, ids=[_query(p) for p, _ in FILTERS])
def test_page_api_and_export_agree(client, workspace, runner, params, cli_args):
    client.post("/login", data={"email": workspace["viewer"].email, "password": "correct horse battery"})
    on_page = page_names(client, params)
    token = create_token(workspace["viewer"].email).secret
    body = client.get(
        "/api/v1/organizations?" + _query({**params, "per_page": 200}),
        headers={"Authorization": f"Bearer {token}"},
    ).get_json()
    from_api = [item["name"] for item in body["items"]]
    result = runner.invoke(args=["export", "orgs", *cli_args])
    assert result.exit_code == 0, result.output
    exported = [row["name"] for row in csv.DictReader(io.StringIO(result.output))]
    assert on_page == from_api == exported
    assert body["total"] == len(on_page)
    assert on_page, "each filter in the table should select something"


def test_the_checked_filters_select_what_they_say(client, workspace):
    client.post("/login", data={"email": workspace["viewer"].email, "password": "correct horse battery"})
    aclu = page_names(client, {"q": "aclu"})
    assert {
        "American Civil Liberties Union (ACLU)",
        "ACLU of Minnesota",
        "New York Civil Liberties Union",
    } <= set(aclu)
    assert page_names(client, {"q": "ÁCLU"}) == aclu  # accents and case do not matter
    ca_ny = page_names(client, {"signed": [SEED_LETTER_SLUG], "state": ["CA", "NY"]})
    assert "ACLU of Northern California" in ca_ny and "Quiet Legal Aid" not in ca_ny
    assert page_names(client, {"never_signed": "1"}) == ["Quiet Legal Aid"]
    assert page_names(client, {"archived": "only"}) == ["Gone Coalition"]
    assert page_names(client, {"has_mailable": "1"}) == ["American Civil Liberties Union (ACLU)"]
    aclu_id = re.search(
        r'/organizations/(\d+)">American Civil', client.get("/organizations?q=aclu").get_data(as_text=True)
    ).group(1)
    affiliates = page_names(client, {"parent": aclu_id})
    assert "ACLU of Minnesota" in affiliates and "American Civil Liberties Union (ACLU)" not in affiliates


def test_every_filter_is_on_the_form_and_the_url_reproduces_it(as_role, workspace):
    client = as_role("viewer")
    html = client.get(
        "/organizations?issue_area=privacy&match=all&min_signed=1&last_signed_after=2020-01-01"
        "&never_signed=0&has_mailable=0&archived=include&org_type=advocacy&scope=state&parent=1"
        "&signed_match=any&sort=-letters&per_page=25"
    ).get_data(as_text=True)
    for name in (
        "q",
        "issue_area",
        "match",
        "signed",
        "signed_match",
        "not_signed",
        "min_signed",
        "last_signed_before",
        "last_signed_after",
        "never_signed",
        "state",
        "org_type",
        "scope",
        "parent",
        "has_mailable",
        "archived",
        "sort",
        "per_page",
    ):
        assert f'name="{name}"' in html, name
    assert 'value="2020-01-01"' in html and 'value="all" selected' in html
    assert '<option value="-letters" selected>' in html and '<option value="25" selected>' in html


def test_statement_count_is_the_same_for_10_and_100_rows(as_role, workspace, db):
    client = as_role("viewer")
    statements = []

    def count(*args, **kwargs):
        statements.append(args[2])

    sa.event.listen(db.engine, "before_cursor_execute", count)
    try:
        counts = {}
        for per_page in (10, 100):
            statements.clear()
            response = client.get(
                f"/organizations?per_page={per_page}&issue_area=privacy&issue_area=immigration"
            )
            assert response.status_code == 200
            counts[per_page] = len(statements)
        api = {}
        token = create_token(workspace["viewer"].email).secret
        # A token's first use records "last used" (once a minute): not a per-row cost, so out of the count.
        client.get("/api/v1/issue-areas", headers={"Authorization": f"Bearer {token}"})
        for per_page in (10, 100):
            statements.clear()
            client.get(
                f"/api/v1/organizations?per_page={per_page}", headers={"Authorization": f"Bearer {token}"}
            )
            api[per_page] = len(statements)
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", count)
    assert counts[10] == counts[100], counts
    assert api[10] == api[100], api


@pytest.mark.parametrize(
    "query",
    [
        "issue_area=nope",
        "signed=no-such-letter",
        "min_signed=-1",
        "state=ZZ",
        "last_signed_before=yesterday",
        "archived=maybe",
        "parent=abc",
        "has_mailable=perhaps",
        "q=" + "x" * 300,
    ],
)
def test_bad_filters_are_400_everywhere(as_role, workspace, runner, query):
    client = as_role("viewer")
    page = client.get("/organizations?" + query)
    assert page.status_code == 400 and "alert-danger" in page.get_data(as_text=True)
    token = create_token(workspace["viewer"].email).secret
    api = client.get("/api/v1/organizations?" + query, headers={"Authorization": f"Bearer {token}"})
    assert api.status_code == 400 and api.mimetype == "application/problem+json"


def test_contacts_filtered_by_their_organization_and_themselves(as_role, workspace, runner, db):
    from crm.contacts.services import create_contact
    from crm.mailmerge.models import Suppression

    mn = db.session.scalar(sa.text("SELECT id FROM organizations WHERE name = 'ACLU of Minnesota'"))
    create_contact(
        {"first_name": "Bo", "last_name": "Lind", "email": "bo@mn.example.org", "organization_id": mn}
    )
    create_contact(
        {
            "first_name": "Cy",
            "last_name": "Gone",
            "email": "cy@mn.example.org",
            "organization_id": mn,
            "status": "left",
        }
    )
    create_contact(
        {"first_name": "Di", "last_name": "Stop", "email": "di@mn.example.org", "organization_id": mn}
    )
    db.session.add(Suppression(email="di@mn.example.org", reason="unsubscribed"))
    db.session.commit()
    client = as_role("viewer")
    html = client.get("/contacts?q=aclu").get_data(as_text=True)
    assert '<strong>4</strong> contacts, <strong id="mailable-count">2</strong> mailable' in html
    html = client.get("/contacts?q=aclu&mailable=1").get_data(as_text=True)
    assert "Bo Lind" in html and "Ana Ruiz" in html and "Cy Gone" not in html and "Di Stop" not in html
    html = client.get("/contacts?unsubscribed=1").get_data(as_text=True)
    assert "Di Stop" in html and "Bo Lind" not in html
    html = client.get("/contacts?status=left").get_data(as_text=True)
    assert "Cy Gone" in html and "Bo Lind" not in html
    html = client.get("/contacts?primary=1&issue_area=immigration").get_data(as_text=True)
    assert "Ana Ruiz" in html and "Bo Lind" not in html
    exported = client.get("/contacts/export.csv?q=aclu&mailable=1").get_data(as_text=True)
    rows = list(csv.DictReader(io.StringIO(exported)))
    assert sorted(r["email"] for r in rows) == ["ana@aclu.example.org", "bo@mn.example.org"]
    result = runner.invoke(args=["export", "contacts", "-q", "aclu", "--mailable", "true"])
    assert result.exit_code == 0, result.output
    assert list(csv.DictReader(io.StringIO(result.output))) == rows
    token = create_token(workspace["viewer"].email).secret
    body = client.get(
        "/api/v1/contacts?q=aclu&mailable=true", headers={"Authorization": f"Bearer {token}"}
    ).get_json()
    assert sorted(i["email"] for i in body["items"]) == ["ana@aclu.example.org", "bo@mn.example.org"]
    assert set(body["items"][0]) == {
        "id",
        "organization_id",
        "first_name",
        "last_name",
        "title",
        "email",
        "phone",
        "is_primary",
        "status",
        "mailable",
        "version",
    }
    bad = runner.invoke(args=["export", "contacts", "--issue-area", "nope"])
    assert bad.exit_code == 1 and "Unknown issue area" in bad.output


@pytest.mark.parametrize("sort", ["name", "-name", "state", "-letters", "-last_signed", "-created"])
def test_list_rows_are_the_orm_organizations_as_plain_values(workspace, db, sort):
    """list_organizations (plain rows) shows what the ORM loads for the same filter and sort, in every sort, the
    iterator the exports use yields the same rows, and like session.execute it sees unflushed changes."""
    from crm.organizations.filters import OrgFilter, conditions, order_clause
    from crm.organizations.models import Organization
    from crm.organizations.queries import iter_organizations, list_organizations

    def plain(org) -> tuple:
        """What a list row shows of an organization."""
        return (org.id, org.name, org.acronym, org.org_type, org.scope, org.city, org.state, org.country,
                org.website, org.archived, org.version, org.letters_signed, org.parent_id,
                org.parent and (org.parent.id, org.parent.name), sorted((a.slug, a.name) for a in org.issue_areas),
                sorted(a.name for a in org.aliases))

    for f in (OrgFilter(), OrgFilter(archived="include", issue_area=["immigration"]), OrgFilter(q="aclu")):
        orm = db.session.scalars(sa.select(Organization).where(*conditions(f)).order_by(*order_clause(sort))).all()
        for page, per_page in ((1, 10), (2, 25)):
            rows = list_organizations(f, sort=sort, page=page, per_page=per_page, with_aliases=True)
            start = (page - 1) * per_page
            assert [plain(r) for r in rows.items] == [plain(o) for o in orm[start:start + per_page]]
            assert rows.total == len(orm)
        exported = [row for row, _ in iter_organizations(f, sort=sort, batch=7)]
        assert [plain(r)[:-1] for r in exported] == [plain(o)[:-1] for o in orm]
    renamed = db.session.scalars(sa.select(Organization).order_by(Organization.sort_name)).first()
    renamed.name = "Renamed, not yet flushed"
    assert list_organizations(OrgFilter()).items[0].name == "Renamed, not yet flushed"
    db.session.rollback()
