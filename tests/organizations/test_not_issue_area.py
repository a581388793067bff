"""Include and exclude issue areas together: "privacy, not immigration" through the page, the API, the CLI,
segments and merge audiences (issue 13, point 7)."""

import csv
import io
import re

import pytest

from crm.auth.services import create_token
from crm.seed import SEED_LETTER_SLUG
from tests.factories import ContactFactory, OrganizationFactory
from tests.organizations.test_workspace_filters import page_names

PRIVACY_NOT_IMMIGRATION = 12  # on the seed: 12 organizations work on privacy and not on immigration


def _expected(db) -> list[str]:
    """The organizations with privacy and without immigration, read straight from the tables."""
    import sqlalchemy as sa

    rows = db.session.execute(sa.text(
        "SELECT o.name FROM organizations o WHERE o.archived = false AND o.id IN (SELECT oia.organization_id "
        "FROM organization_issue_areas oia JOIN issue_areas a ON a.id = oia.issue_area_id WHERE a.slug = 'privacy') "
        "AND o.id NOT IN (SELECT oia.organization_id FROM organization_issue_areas oia JOIN issue_areas a "
        "ON a.id = oia.issue_area_id WHERE a.slug = 'immigration')"
    ))
    return sorted(name for (name,) in rows)


def test_privacy_not_immigration_everywhere(as_role, users, seeded, runner, db):
    expected = _expected(db)
    assert len(expected) == PRIVACY_NOT_IMMIGRATION
    client = as_role("organizer")
    params = {"issue_area": ["privacy"], "not_issue_area": ["immigration"]}
    # the page: the second list ticks the excluded area, the URL carries it
    html = client.get("/organizations?issue_area=privacy&not_issue_area=immigration").get_data(as_text=True)
    assert "Works on none of" in html
    assert re.search(r'name="not_issue_area" value="immigration" id="nia-immigration" checked', html)
    assert sorted(page_names(client, params)) == expected
    # the API, organizations and contacts
    token = create_token(users["viewer"].email).secret
    auth = {"Authorization": f"Bearer {token}"}
    body = client.get("/api/v1/organizations?issue_area=privacy&not_issue_area=immigration&per_page=200",
                      headers=auth).get_json()
    assert body["total"] == PRIVACY_NOT_IMMIGRATION and sorted(i["name"] for i in body["items"]) == expected
    contacts = client.get("/api/v1/contacts?issue_area=privacy&not_issue_area=nope", headers=auth)
    assert contacts.status_code == 400 and "nope" in contacts.get_json()["detail"]
    spec = client.get("/api/v1/openapi.json").get_json()
    for path in ("/api/v1/organizations", "/api/v1/contacts"):
        names = {p["name"] for p in spec["paths"][path]["get"]["parameters"]}
        assert "not_issue_area" in names, path
    # the CLI
    result = runner.invoke(args=["export", "orgs", "--issue-area", "privacy", "--not-issue-area", "immigration"])
    assert result.exit_code == 0, result.output
    assert sorted(r["name"] for r in csv.DictReader(io.StringIO(result.output))) == expected
    result = runner.invoke(args=["export", "contacts", "--not-issue-area", "no-such-area"])
    assert result.exit_code != 0 and "no-such-area" in result.output
    # a segment saved from the page keeps it, counts 12 and says so in words
    response = client.post("/segments", data={
        "name": "Privacy, not immigration", "query": "issue_area=privacy&not_issue_area=immigration&page=2",
    })
    assert response.status_code == 303
    segment_page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert f'id="segment-orgs">{PRIVACY_NOT_IMMIGRATION}<' in segment_page
    assert "Works on privacy, not immigration" in segment_page
    assert "{&#34;" not in segment_page and '{"issue_area"' not in segment_page  # no JSON
    # a merge audience (a stored filter) selects the same organizations
    from crm.mailmerge.audience import audience_counts, normalise_audience

    audience = normalise_audience({"filter": params, "contacts": "all"})
    assert audience["filter"]["not_issue_area"] == ["immigration"]
    assert audience_counts(audience).organizations == PRIVACY_NOT_IMMIGRATION


def test_the_exclusion_combines_with_signed_and_unknown_areas_are_refused(as_role, seeded, db):
    client = as_role("viewer")
    both = page_names(client, {"issue_area": ["privacy"], "not_issue_area": ["immigration"],
                               "signed": [SEED_LETTER_SLUG]})
    assert sorted(both) == _expected(db)  # every seed organization signed the seed letter
    alone = page_names(client, {"not_issue_area": ["immigration", "privacy"]})
    assert alone and not set(alone) & set(page_names(client, {"issue_area": ["immigration", "privacy"]}))
    page = client.get("/organizations?not_issue_area=nope")
    assert page.status_code == 400 and "Unknown issue area: nope" in page.get_data(as_text=True)


@pytest.fixture
def areas(db):
    """An organization with a primary contact in surveillance, in privacy, in both, and in immigration."""
    for slugs in (["surveillance"], ["privacy"], ["surveillance", "privacy"], ["immigration"]):
        ContactFactory(organization=OrganizationFactory(issue_areas=slugs), is_primary=True)


@pytest.mark.parametrize("key", ["issue_area", "not_issue_area"])
def test_merging_issue_areas_rewrites_both_lists_in_segments(areas, users, db, key):
    from crm.organizations.issue_areas import merge_issue_areas
    from crm.segments.services import create_segment, get_segment

    segment = create_segment("S", {key: ["surveillance"]})
    merge_issue_areas("surveillance", "privacy")
    assert get_segment(segment.id).filter[key] == ["privacy"]


@pytest.mark.parametrize("key", ["issue_area", "not_issue_area"])
def test_merging_issue_areas_rewrites_merge_audiences_too(areas, users, db, key):
    """A merge's own audience filter names issue areas like a segment does: after a merge of areas it names the
    one kept, and still counts (an area that no longer exists would make the merge unusable)."""
    from crm.mailmerge.audience import audience_counts
    from crm.mailmerge.models import MailMerge
    from crm.organizations.issue_areas import merge_issue_areas
    from tests.mailmerge.conftest import new_merge

    merge = new_merge(audience={"filter": {key: ["surveillance", "privacy"]}, "contacts": "primary"})
    version = merge.version
    merge_issue_areas("surveillance", "privacy")
    db.session.expire_all()
    saved = db.session.get(MailMerge, merge.id)
    assert saved.audience["filter"][key] == ["privacy"]
    assert saved.version == version + 1  # a form opened before the merge of areas does not put the old one back
    assert audience_counts(saved.audience) == audience_counts({"filter": {key: ["privacy"]}, "contacts": "primary"})


def test_merge_create_takes_not_issue_area(areas, runner, tmp_path):
    from crm.extensions import db
    from crm.mailmerge.models import MailMerge

    body = tmp_path / "body.md"
    body.write_text("Dear {{ contact.first_name }},", encoding="utf-8")
    result = runner.invoke(args=["merge", "create", "--name", "Privacy only", "--subject", "Hi", "--body-file",
                                 str(body), "--issue-area", "privacy", "--not-issue-area", "immigration"])
    assert result.exit_code == 0, result.output
    merge = db.session.get(MailMerge, int(result.output.strip().splitlines()[-1]))
    assert merge.audience["filter"]["not_issue_area"] == ["immigration"]
    refused = runner.invoke(args=["merge", "create", "--name", "Bad", "--subject", "Hi", "--body-file", str(body),
                                  "--not-issue-area", "nope"])
    assert refused.exit_code != 0 and "nope" in refused.output


def test_a_merge_audience_reads_as_the_segment_sentence(areas, runner, tmp_path, as_role):
    """Merge page, check page and report describe the audience as segments do, not as stored keys."""
    body = tmp_path / "body.md"
    body.write_text("Dear {{ contact.first_name }},", encoding="utf-8")
    result = runner.invoke(args=["merge", "create", "--name", "Privacy only", "--subject", "Hi", "--body-file",
                                 str(body), "--issue-area", "privacy", "--not-issue-area", "immigration"])
    assert result.exit_code == 0, result.output
    merge_id = int(result.output.strip().splitlines()[-1])
    client = as_role("organizer")
    for url in (f"/merges/{merge_id}", f"/merges/{merge_id}/check", f"/merges/{merge_id}/report"):
        page = client.get(url).get_data(as_text=True)
        shown = re.search(r'id="merge-audience">([^<]*)<', page).group(1)
        assert "Organizations: works on privacy, not immigration · primary contacts only" in shown, (url, shown)
        assert "issue area =" not in page and "not_issue_area" not in page, url
