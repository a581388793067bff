"""A dashboard that helps on day one (issue 13, point 16)."""

from datetime import date

from tests.factories import LetterFactory, OrganizationFactory, SignatureFactory


def test_day_one_says_what_to_do_first(as_role):
    OrganizationFactory.create_batch(3)
    page = as_role("organizer").get("/").get_data(as_text=True)
    start = page.split('id="getting-started"')[1].split("</section>")[0]
    assert "3 organizations are here, but no contacts yet" in start
    assert 'href="/imports?kind=contacts"' in start and 'href="/contacts/new"' in start and "Import contacts" in start
    viewer = as_role("viewer").get("/").get_data(as_text=True)
    assert "An organizer imports or adds them" in viewer.split('id="getting-started"')[1]


def test_empty_database_points_to_organizations_too(as_role):
    page = as_role("organizer").get("/").get_data(as_text=True)
    start = page.split('id="getting-started"')[1].split("</section>")[0]
    assert 'href="/organizations/new"' in start
    assert "Nobody has signed a letter yet." in page


def test_one_letter_each_explains_instead_of_ranking(as_role, db):
    first = LetterFactory(status="delivered", letter_date=date(2021, 4, 19))
    signatures = SignatureFactory.create_batch(10, letter=first)
    page = as_role("viewer").get("/").get_data(as_text=True)
    assert "Every organization has signed one letter at most" in page.split('id="engaged-explained"')[1]
    assert 'id="chart-engaged"' not in page and 'id="chart-lapsed"' not in page
    assert "Nobody can have lapsed yet" in page.split('id="lapsed-explained"')[1]
    newest = page.split('id="newest-partners"')[1].split("</ul>")[0]
    assert newest.count("<li>") == 8
    # A second letter signed by one organization: now there is history to rank and lapsed partners to show.
    second = LetterFactory(slug="second", title="Second letter", status="closed", letter_date=date.today())
    SignatureFactory(letter=second, organization=signatures[0].organization, signed_at=None)
    page = as_role("viewer").get("/").get_data(as_text=True)
    assert 'id="chart-engaged"' in page and 'id="chart-lapsed"' in page
    assert 'id="engaged-explained"' not in page and 'id="newest-partners"' not in page
