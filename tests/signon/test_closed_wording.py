"""A personal sign-on link to a letter that takes no signatures says why in words true to the letter's state: a
draft is not open *yet* (invitations can reach signers before the organizers open the letter), a closed or
delivered letter is no longer open, and a collecting letter's deadline has passed."""

from datetime import date, timedelta
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select

from crm.extensions import db
from crm.letters.links import personal_signon_url
from crm.letters.models import Signature
from tests.factories import LetterFactory, OrganizationFactory


@pytest.mark.parametrize(
    ("letter", "said"),
    [
        ({"status": "draft"}, "This letter is not open for signatures yet."),
        ({"status": "closed"}, "Sign-ons for this letter are closed: it no longer takes signatures."),
        ({"status": "delivered", "delivered_on": date(2024, 3, 5)},
         "This letter was delivered on 5 March 2024 and no longer takes signatures."),
        ({"status": "collecting", "deadline": date(2024, 3, 5)}, "Sign-ons for this letter closed on 5 March 2024."),
    ],
)
def test_the_personal_page_says_why_in_the_letters_own_terms(app, client, letter, said):
    letter = LetterFactory(title="The next letter", **letter)
    org = OrganizationFactory(name="Upturn")
    link = urlsplit(personal_signon_url(letter, org)).path
    page = client.get(link).get_data(as_text=True)
    assert said in page and "Nothing was recorded" in page and "Add Upturn as a signatory" not in page
    assert "any more" not in page  # the old words, which told a draft's signers it had closed
    refused = client.post(link, data={"seen": "none", "action": "sign", "listed_name": "Upturn"})
    assert refused.status_code == 409 and said in refused.get_data(as_text=True)
    assert db.session.scalar(select(func.count(Signature.id))) == 0


def test_a_letter_still_collecting_is_open(app, client):
    letter = LetterFactory(status="collecting", deadline=date.today() + timedelta(days=10))
    org = OrganizationFactory(name="Upturn")
    page = client.get(urlsplit(personal_signon_url(letter, org)).path).get_data(as_text=True)
    assert "Add Upturn as a signatory" in page and "Nothing was recorded" not in page


def test_a_confirmation_link_to_a_draft_letter_is_headed_not_open_yet(app, client):
    from crm.common.tokens import make_token
    from crm.letters.models import SignOnRequest

    letter = LetterFactory(title="The next letter", status="draft")
    row = SignOnRequest(letter_id=letter.id, organization_name="Upturn", email="a@upturn.example",
                        status="unconfirmed")
    db.session.add(row)
    db.session.flush()
    token = make_token("signon-confirm", {"r": row.id, "e": row.email})
    page = client.get(f"/sign/{letter.slug}/confirm/{token}").get_data(as_text=True)
    assert "Not open for signatures yet" in page and "not open for signatures yet" in page
    assert "Sign-ons are closed" not in page


def test_the_composer_names_each_letters_state(app, as_role):
    LetterFactory(title="The next letter", status="draft")
    LetterFactory(title="Last year's letter", status="delivered")
    page = as_role("organizer").get("/merges/new").get_data(as_text=True)
    assert "The next letter (draft)" in page and "Last year&#39;s letter (delivered)" in page
