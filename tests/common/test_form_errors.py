"""Form errors are hard to miss: a summary above the form, focused on load, links each error to its field, and an
invalid field says so (aria-invalid) and is described by its help and its message (templates/_macros.html)."""

import re

from flask_wtf import FlaskForm
from wtforms import HiddenField, StringField

from crm.common.forms import FormError, error_list, error_summary
from tests.factories import IssueAreaFactory, OrganizationFactory


def text(response) -> str:
    """A response body as text."""
    return response.get_data(as_text=True)


def summary_of(page: str) -> str:
    """The error summary's HTML (the first element marked error-summary); fails when there is none."""
    match = re.search(r'<div class="alert alert-danger error-summary" role="alert" tabindex="-1" autofocus>(.*?)</div>',
                      page, re.S)
    assert match, "no focused error summary"
    return match.group(1)


def tag_of(page: str, element_id: str) -> str:
    """The opening tag of the element with this id."""
    return re.search(rf'<[a-z]+[^>]*\bid="{element_id}"[^>]*>', page).group(0)


class _Form(FlaskForm):
    """Two fields, one hidden."""

    name = StringField("Name")
    version = HiddenField()


def test_error_list_links_visible_fields_and_puts_the_forms_own_errors_first(app):
    with app.test_request_context():
        form = _Form(formdata=None)
        form.name.errors = ["Too long."]
        form.version.errors = ["Not a number."]
        form.form_errors.append("The letter is closed.")
        assert error_list(form) == [FormError(None, "The letter is closed."), FormError("name", "Name: Too long."),
                                    FormError(None, "Version: Not a number.")]
        assert error_list(form, {"version": "name"})[2] == FormError("name", "Version: Not a number.")
        assert error_summary(form) == "The letter is closed. Name: Too long. Version: Not a number."
        form.name.errors = ["Name is limited to 200 characters."]  # a message that names its field already
        assert error_list(form)[1] == FormError("name", "Name is limited to 200 characters.")


def test_organization_edit_with_a_bad_state(as_role, db):
    org = OrganizationFactory(name="Mijente")
    page = as_role("organizer").post(f"/organizations/{org.id}/edit", data={
        "name": "Mijente", "state": "Massachusetts", "version": str(org.version)})
    assert page.status_code == 400
    body = text(page)
    summary = summary_of(body)
    assert "Nothing was saved: correct the field marked below." in summary
    assert re.search(r'<a class="alert-link" href="#state">State: Use a two-letter', summary)
    # Before the first field, so that the next Tab goes from the summary's links to the form.
    assert body.index("error-summary") < body.index('id="name"')
    state = tag_of(body, "state")
    assert 'aria-invalid="true"' in state and 'aria-describedby="state-help state-errors"' in state
    assert 'id="state-help"' in body and 'id="state-errors"' in body
    assert 'aria-invalid' not in tag_of(body, "country")  # valid fields stay unmarked, described by their help
    assert 'aria-describedby="country-help"' in tag_of(body, "country")


def test_new_organization_without_a_name(as_role):
    body = text(as_role("organizer").post("/organizations/new", data={"name": ""}))
    assert '<a class="alert-link" href="#name">Name: This field is required.</a>' in summary_of(body)


def test_contact_form_links_a_picked_organization_error_to_the_box(as_role):
    body = text(as_role("organizer").post("/contacts/new", data={
        "first_name": "Ana", "organization": "Mijente", "organization_id": "x", "status": "active"}))
    assert '<a class="alert-link" href="#organization">Organization picked: Pick an organization' in summary_of(body)
    box = tag_of(body, "organization")
    assert 'aria-invalid="true"' in box and 'aria-describedby="organization-help organization-errors"' in box
    assert 'id="organization-errors"' in body


def test_letter_form_several_errors_and_a_group_of_checkboxes(as_role, db):
    IssueAreaFactory(slug="privacy", name="Privacy")
    body = text(as_role("organizer").post("/letters/new", data={
        "title": "", "slug": "Bad Slug", "issue_areas": ["nope"], "deadline": "someday"}))
    summary = summary_of(body)
    assert "correct the fields marked below" in summary
    for target in ("title", "slug", "issue_areas", "deadline"):
        assert f'href="#{target}"' in summary, target
    assert 'aria-describedby="issue_areas-errors"' in tag_of(body, "issue_areas")  # the fieldset
    assert 'aria-invalid="true"' in tag_of(body, "issue_areas-privacy")


def test_the_other_staff_forms_have_the_summary(as_role, db, users):
    IssueAreaFactory(name="Privacy")
    org = OrganizationFactory()
    client = as_role("admin")
    pages = {
        "Nothing was added": client.post("/organizations/issue-areas", data={"name": "Privacy"}),
        "Nobody was invited": client.post("/users", data={"email": "not an address", "role": "viewer"}),
        "Your password is not changed": client.post("/account", data={
            "current_password": "wrong", "new_password": "x", "confirm": "y"}),
        "Nothing was logged": client.post(f"/organizations/{org.id}/interactions", data={
            "kind": "call", "occurred_on": "", "summary": ""}),
    }
    for lead, response in pages.items():
        assert response.status_code == 400, lead
        assert lead in summary_of(text(response)), lead


def test_the_merge_form_keeps_its_wording(as_role):
    body = text(as_role("organizer").post("/merges/new", data={"name": ""}))
    assert "Nothing was saved: correct the fields marked below." in summary_of(body)


def test_a_refusal_after_a_redirect_takes_the_focus(as_role):
    client = as_role("organizer")
    client.post("/segments", data={"name": "   ", "query": ""})
    body = text(client.get("/organizations"))
    assert "Give the segment a name" in summary_of(body)
