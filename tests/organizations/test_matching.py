"""Organization matching: a table of real-world spellings against the seed's organizations (an index built from the
seed file, no database; the last test checks it is the index the seeded database gives)."""

from sqlalchemy import select

from crm.organizations.matching import Match, MatchIndex, match_many, match_organization
from crm.organizations.models import Organization, OrganizationAlias
from crm.organizations.names import normalize_org_name
from tests.seed_index import seed_ids, seed_index_rows, seed_match_index

ACLU = "American Civil Liberties Union (ACLU)"
EFF = "Electronic Frontier Foundation (EFF)"
GEORGETOWN = "The Center on Privacy & Technology at Georgetown Law"
STOP = "S.T.O.P. – Surveillance Technology Oversight Project"

# (how a letter writes it, the organization it must match, or None: must not be matched to anything).
CASES = [
    ("ACLU", ACLU),
    ("American Civil Liberties Union", ACLU),
    ("American Civil Liberties Union (ACLU)", ACLU),
    ("The American Civil Liberties Union", ACLU),
    ("AMERICAN CIVIL LIBERTIES UNION", ACLU),
    ("EFF", EFF),
    ("Electronic Frontier Foundation", EFF),
    ("Electronic Frontier Foundation, Inc.", EFF),
    ("Electronc Frontier Foundation", EFF),
    ("Center on Privacy and Technology at Georgetown Law", GEORGETOWN),
    ("Center on Privacy & Technology at Georgetown Law", GEORGETOWN),
    ("Georgetown Law Center on Privacy and Technology", GEORGETOWN),
    ("ACLU of Minnesota", "ACLU of Minnesota"),
    ("ACLU of Northern California", "ACLU of Northern California"),
    ("ACLU of North Carolina", "ACLU of North Carolina"),
    ("NYCLU", "New York Civil Liberties Union"),
    ("New York Civil Liberties Union (NYCLU)", "New York Civil Liberties Union"),
    ("EPIC", "Electronic Privacy Information Center"),
    ("Electronic Privacy Information Center (EPIC)", "Electronic Privacy Information Center"),
    ("POGO", "Project On Government Oversight"),
    ("Project on Government Oversight", "Project On Government Oversight"),
    ("Project On Government Oversight (POGO)", "Project On Government Oversight"),
    ("S.T.O.P.", STOP),
    ("STOP", STOP),
    ("Surveillance Technology Oversight Project", STOP),
    ("Surveillance Technology Oversight Project (S.T.O.P.)", STOP),
    ("NNIRR", "National Network for Immigrant & Refugee Rights"),
    ("National Network for Immigrant and Refugee Rights", "National Network for Immigrant & Refugee Rights"),
    ("NILC", "National Immigration Law Center"),
    ("Natonal Immigration Law Center", "National Immigration Law Center"),
    ("NIJC", "National Immigrant Justice Center"),
    ("National Immigrant Justice Center (NIJC)", "National Immigrant Justice Center"),
    ("Open Technology Institute", "New America's Open Technology Institute"),
    ("OTI", "New America's Open Technology Institute"),
    ("Open MIC", "Open MIC (Open Media and Information Companies Initiative)"),
    (
        "Open Media and Information Companies Initiative",
        "Open MIC (Open Media and Information Companies Initiative)",
    ),
    ("OpenMedia", "OpenMedia"),
    ("Open Media", "OpenMedia"),
    ("Open the Government", "Open The Government"),
    ("OpenTheGovernment", "Open The Government"),
    ("Asian Americans Advancing Justice - AAJC", "Asian Americans Advancing Justice | AAJC"),
    ("Asian Americans Advancing Justice – AAJC", "Asian Americans Advancing Justice | AAJC"),
    ("AAJC", "Asian Americans Advancing Justice | AAJC"),
    ("CCR", "Center for Constitutional Rights"),
    ("Center for Constitutional Right", "Center for Constitutional Rights"),
    ("CPD", "Center for Popular Democracy"),
    ("Community Justice Project", "Community Justice Project, Inc."),
    ("Community Justice Project Inc", "Community Justice Project, Inc."),
    ("Meyer Law Office", "Meyer Law Office, P.C."),
    ("Meyer Law Office PC", "Meyer Law Office, P.C."),
    ("Latino Justice PRLDEF", "LatinoJustice PRLDEF"),
    ("Media Justice", "MediaJustice"),
    ("Fight For The Future", "Fight for the Future"),
    ("MIJENTE", "Mijente"),
    ("Mijente", "Mijente"),
    ("Just Futures Law", "Just Futures Law"),
    ("Detention Watch Network (DWN)", "Detention Watch Network"),
    ("DWN", "Detention Watch Network"),
    ("Detention Watch Netwrok", "Detention Watch Network"),
    ("UUSC", "Unitarian Universalist Service Committee"),
    ("Unitarian Universalist Service Committee (UUSC)", "Unitarian Universalist Service Committee"),
    ("Colorado Immigrant Rights Coalition (CIRC)", "Colorado Immigrant Rights Coalition"),
    ("NOW", "National Organization for Women"),
    ("National Organization for Women (NOW)", "National Organization for Women"),
    ("X Lab", "X-Lab"),
    ("Defending Rights and Dissent", "Defending Rights & Dissent"),
    ("Restore the Fourth", "Restore The Fourth"),
    ("Restore the 4th", "Restore The Fourth"),
    ("Massachusetts Jobs with Justice", "MA Jobs with Justice"),
    ("ACLU of Northern CA", "ACLU of Northern California"),
    ("Legal Aid At Work", "Legal Aid at Work"),
    ("Muslim Justice League", "Muslim Justice League"),
    ("Wind of the Spirit Immigrant Resource Center", "Wind of the Spirit Immigrant Resource Center"),
    ("Electronic Privacy Information Centre (EPIC)", "Electronic Privacy Information Center"),
    ("The Electronic Frontier Foundation", EFF),
    ("Center on Privacy & Technology, Georgetown Law", GEORGETOWN),
    ("New America’s Open Technology Institute", "New America's Open Technology Institute"),
    ("Northwest Immigrant Rights Project (NWIRP)", "Northwest Immigrant Rights Project"),
    ("La Resistencía", "La Resistencia"),
    ("Asian Americans Advancing Justice-AAJC", "Asian Americans Advancing Justice | AAJC"),
    ("Surveillance Technology Oversight Project (STOP)", STOP),
    ("Open Media & Information Companies Initiative (Open MIC)",
     "Open MIC (Open Media and Information Companies Initiative)"),
    ("Project for Privacy & Surveillance Accountability", "Project for Privacy and Surveillance Accountability"),
    # Not in the database, or an affiliate that is not its parent: never matched.
    # An affiliate or a sister organization written with the parent's acronym or name in parentheses.
    ("American Civil Liberties Union of Texas (ACLU)", None),
    ("ACLU of Texas (American Civil Liberties Union)", None),
    ("Electronic Privacy Information Center Europe (EPIC)", None),
    ("Center for Popular Democracy Action (CPD)", None),
    ("Center for Democracy", None),
    ("American Civil Rights Union", None),
    ("Chicago Jobs with Justice", None),
    ("Open Technology Fund", None),
    ("ACLU of Southern California", None),
    ("ACLU of Texas", None),
    ("ACLU of Florida", None),
    ("ACLU Foundation of Southern California", None),
    ("American Civil Liberties Union of Texas", None),
    ("New York Immigration Coalition", None),
    ("Jobs with Justice", None),
    ("Southern Poverty Law Center", None),
    ("Amnesty International USA", None),
    ("Human Rights Watch", None),
    ("Immigrant Legal Resource Center", None),
    ("National Immigration Project", None),
    ("Center for Democracy & Technology", None),
    ("Electronic Frontier Alabama", None),
    ("Free Press Action", None),
    ("Georgetown Law", None),
    ("Muslim Legal Fund of America", None),
    ("Detention Watch Network of Texas", None),
]


def test_the_table_is_large_enough():
    assert len(CASES) >= 60
    assert sum(1 for _, expected in CASES if expected) >= 60


def test_precision_and_recall_on_the_alias_table():
    ids = seed_ids()
    for _, expected in CASES:
        assert expected is None or expected in ids, expected
    results = match_many([text for text, _ in CASES], seed_match_index())
    right = wrong = 0
    misses = []
    for (text, expected), found in zip(CASES, results, strict=True):
        if found.applied:
            if expected is not None and found.organization_id == ids[expected]:
                right += 1
            else:
                wrong += 1
                misses.append((text, expected, found))
        elif expected is not None:
            misses.append((text, expected, found))
    positives = sum(1 for _, expected in CASES if expected)
    precision = right / max(1, right + wrong)
    recall = right / positives
    assert precision >= 0.98, misses
    assert recall >= 0.90, misses
    # The cases the issue names, individually.
    by_text = dict(zip([t for t, _ in CASES], results, strict=True))
    assert by_text["ACLU"].organization_id == ids[ACLU]
    assert by_text["EFF"].organization_id == ids[EFF]
    assert by_text["Electronic Frontier Foundation"].organization_id == ids[EFF]
    assert by_text["Center on Privacy and Technology at Georgetown Law"].organization_id == ids[GEORGETOWN]
    assert by_text["ACLU of Southern California"].organization_id != ids[ACLU]
    assert by_text["ACLU of Southern California"].action in ("new", "review")


def test_an_affiliate_is_never_matched_to_its_parent():
    index = seed_match_index()
    for name in ("ACLU of Southern California", "ACLU of Texas", "ACLU of New Mexico", "NYCLU Foundation"):
        found = match_organization(name, index)
        assert not found.applied, (name, found)


def test_a_loose_match_is_proposed_not_applied():
    found = match_organization("United We Dream", seed_match_index())
    assert found.organization_id is not None and not found.applied
    assert found.action == "review"


def test_normalisation():
    assert (
        normalize_org_name("The Center on Privacy & Technology at Georgetown Law")
        == "center on privacy and technology at georgetown law"
    )
    assert normalize_org_name("Meyer Law Office, P.C.") == "meyer law office"
    assert normalize_org_name("Community Justice Project, Inc.") == "community justice project"
    assert normalize_org_name("Demand Progress Education Fund") == "demand progress education"
    assert normalize_org_name("Electronic Frontier Foundation (EFF)") == "electronic frontier foundation"
    assert normalize_org_name("Centro Legal de la Raza — Éxito") == "centro legal de la raza exito"
    assert normalize_org_name("") == ""


def test_an_ambiguous_name_goes_to_review():
    index = MatchIndex(
        [
            (1, "Friends of the Earth", None, None, False),
            (2, "Friends of the Earth", None, None, False),
            (3, "Old Name", None, None, True),
            (4, "Old Name", None, None, False),
        ]
    )
    assert index.match("Friends of the Earth").action == "review"
    assert index.match("Old Name") == Match(4, 1.0, "name")
    assert index.match("   ").action == "skipped"


def test_the_seed_index_from_the_file_is_the_seeded_database(seeded, db):
    """The rows the tests above match against are the rows MatchIndex.from_database() reads after load_seed()."""
    orgs, aliases = seed_index_rows()
    file_names = {org_id: name for org_id, name, *_ in orgs}
    from_file = sorted((name, acronym, file_names.get(parent), archived, website)
                       for _, name, acronym, parent, archived, website in orgs)
    db_names = dict(db.session.execute(select(Organization.id, Organization.name)).all())
    from_db = sorted((name, acronym, db_names.get(parent), archived, website) for _, name, acronym, parent, archived,
                     website in db.session.execute(select(Organization.id, Organization.name, Organization.acronym,
                                                          Organization.parent_id, Organization.archived,
                                                          Organization.website)))
    assert from_file == from_db
    assert sorted((file_names[org], alias) for org, alias in aliases) == sorted(
        (db_names[org], alias) for org, alias in db.session.execute(
            select(OrganizationAlias.organization_id, OrganizationAlias.name)))
    # …and so the index matches every case of the table to the same organization, by name.
    texts = [text for text, _ in CASES] + ["United We Dream", "ACLU of New Mexico", "NYCLU Foundation"]
    by_file = [(file_names.get(m.organization_id), m.confidence, m.method, m.action)
               for m in match_many(texts, seed_match_index())]
    by_db = [(db_names.get(m.organization_id), m.confidence, m.method, m.action) for m in match_many(texts)]
    assert by_file == by_db
