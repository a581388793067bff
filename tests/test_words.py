"""Words, not internals (issue 13, point 8): filters as sentences, letter titles in the matrix, labels for
signature sources and audited fields, notes rendered from Markdown."""

import re
from datetime import date

from sqlalchemy import select

from crm.letters.models import Letter
from crm.seed import SEED_LETTER_SLUG
from crm.segments.models import Segment


def _letters(db, n: int) -> None:
    """n more letters, older than the seed letter's 2021 date, so they page after it."""
    db.session.add_all([
        Letter(slug=f"old-{i:02d}", title=f"Old letter number {i:02d} about something long enough to shorten",
               status="delivered", recipients="", cc="", summary="", body="", letter_date=date(2000, 1, 1 + i))
        for i in range(n)
    ])
    db.session.commit()


def test_matrix_heads_columns_with_titles_and_pages_older_letters(seeded, as_role, db):
    _letters(db, 30)
    client = as_role("viewer")
    html = client.get("/letters/participation").get_data(as_text=True)
    head = html.split("<thead>")[1].split("</thead>")[0]
    assert head.count("<th") == 31  # the organization column and the 30 newest letters
    assert 'title="Urge DHS to stop using Clearview AI facial recognition"' in head
    assert ">Urge DHS to stop using Clearview…<" in head  # shortened, the full title on hover
    assert f">{SEED_LETTER_SLUG}<" not in head
    older = re.search(r'href="([^"]*letters_page=2[^"]*)">older letters', html).group(1).replace("&amp;", "&")
    page2 = client.get(older).get_data(as_text=True)
    head2 = page2.split("<thead>")[1].split("</thead>")[0]
    assert head2.count("<th") == 2 and "Old letter number 00" in head2 and "newer letters" in page2


def test_matrix_save_as_segment_keeps_every_filter(seeded, as_role, db):
    client = as_role("organizer")
    query = f"signed={SEED_LETTER_SLUG}&state=CA&not_issue_area=immigration&org_type=advocacy&letters_page=1"
    page = client.get("/letters/participation?" + query).get_data(as_text=True)
    assert 'id="matrix-save-segment"' in page and 'name="state" value="CA"' in page  # the form keeps it too
    response = client.post("/segments", data={"name": "CA advocates", "query": query, "back": "matrix"})
    assert response.status_code == 303
    segment = db.session.scalar(select(Segment).where(Segment.name == "CA advocates"))
    assert segment.filter == {"signed": [SEED_LETTER_SLUG], "state": ["CA"], "not_issue_area": ["immigration"],
                              "org_type": ["advocacy"]}
    shown = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Does not work on immigration; signed <em" in shown and "; in CA; type advocacy" in shown
    # an error goes back to the matrix, not to the organization list
    again = client.post("/segments", data={"name": "CA advocates", "query": query, "back": "matrix"})
    assert again.headers["Location"].startswith("/letters/participation?")


def test_segment_list_shows_sentences_not_json(seeded, as_role, db):
    from crm.segments.services import create_segment

    create_segment("Mix", {"issue_area": ["privacy", "labor"], "match": "all", "never_signed": True,
                           "has_mailable": False, "q": "<b>x</b>"})
    html = as_role("viewer").get("/segments").get_data(as_text=True)
    assert "Works on privacy and labor; never signed a letter; has no mailable contact; " \
           "name or alias matches “&lt;b&gt;x&lt;/b&gt;”" in html
    assert "&#34;" not in html and "{&quot;" not in html
