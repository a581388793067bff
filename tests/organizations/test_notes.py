"""An organization's notes are Markdown, rendered and sanitised like the notes of calls and meetings."""

from tests.factories import OrganizationFactory


def test_organization_notes_are_rendered_markdown_without_live_html(as_role):
    org = OrganizationFactory(notes="Met at **RightsCon**; see [their site](https://example.org).\n\n"
                                    "- one\n- two\n\n<script>alert(1)</script> [x](javascript:alert(1))")
    page = as_role("viewer").get(f"/organizations/{org.id}").get_data(as_text=True)
    notes = page.split('id="org-notes"')[1].split("</div>")[0]
    assert "<strong>RightsCon</strong>" in notes and "**" not in notes
    assert '<a href="https://example.org"' in notes and "<li>one</li>" in notes
    assert "<script>" not in notes and 'href="javascript:' not in notes
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in notes  # shown as text, as typed
