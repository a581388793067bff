"""Links to the import page choose what the file holds: "Import contacts" opens it with Contacts selected."""

import html
import re

from tests.factories import OrganizationFactory


def selected_kind(page: str) -> str:
    """The option a browser shows in the upload form's "What the file holds" select (the first when none is
    marked selected)."""
    select = re.search(r'<select[^>]*id="kind"[^>]*>(.*?)</select>', page, re.S).group(1)
    options = re.findall(r"<option([^>]*)>", select)
    chosen = [o for o in options if re.search(r"\bselected\b", o)] or options
    return re.search(r'value="([^"]*)"', chosen[0]).group(1)


def import_links(page: str) -> dict[str, str]:
    """Each link to the import page on a page: its text → its address."""
    return {re.sub(r"\s+", " ", text).strip(): html.unescape(href) for href, text in
            re.findall(r'<a[^>]*href="(/imports(?:\?[^"]*)?)"[^>]*>(.*?)</a>', page, re.S)}


def test_dashboard_and_contacts_links_preselect_what_they_say(as_role):
    client = as_role("organizer")
    dashboard = client.get("/").get_data(as_text=True)
    links = import_links(dashboard.split('id="getting-started"')[1].split("</section>")[0])
    assert set(links) == {"Import contacts", "importing organizations"}
    assert selected_kind(client.get(links["Import contacts"]).get_data(as_text=True)) == "contacts"
    assert selected_kind(client.get(links["importing organizations"]).get_data(as_text=True)) == "orgs"
    # The contacts list with no contact offers an import of contacts too.
    contacts = import_links(client.get("/contacts").get_data(as_text=True))
    assert selected_kind(client.get(contacts["Import a CSV"]).get_data(as_text=True)) == "contacts"
    # With organizations but no contacts, the dashboard offers only the contacts import.
    OrganizationFactory()
    assert set(import_links(client.get("/").get_data(as_text=True).split('id="getting-started"')[1]
                            .split("</section>")[0])) == {"Import contacts"}


def test_the_kind_in_the_address_is_only_a_default(as_role):
    client = as_role("organizer")
    assert selected_kind(client.get("/imports").get_data(as_text=True)) == "orgs"
    assert selected_kind(client.get("/imports?kind=signatures").get_data(as_text=True)) == "signatures"
    # An unknown kind is ignored, not an error.
    response = client.get("/imports?kind=%3Cscript%3E")
    assert response.status_code == 200 and selected_kind(response.get_data(as_text=True)) == "orgs"
