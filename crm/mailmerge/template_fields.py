"""The field catalogue of merge templates: every field a template may name, with what it holds."""

# Every field a template may use, with a description for the field picker.
FIELDS: dict[str, str] = {
    "contact.first_name": "Recipient's first name",
    "contact.last_name": "Recipient's last name",
    "contact.full_name": "First and last name",
    "contact.title": "Recipient's job title",
    "contact.email": "Recipient's email address",
    "org.name": "Organization's name",
    "org.acronym": "Organization's acronym",
    "org.city": "Organization's city",
    "org.state": "Organization's state",
    "letter.title": "Title of the letter this merge promotes",
    "letter.summary": "Summary of the promoted letter",
    "letter.deadline": "Sign-on deadline of the promoted letter",
    "letter.date": "Date of the promoted letter",
    "letter.url": "Public page of the promoted letter",
    "last_signed.title": "Last letter the organization signed",
    "last_signed.date": "Date of that letter",
    "last_signed.role": "lead or signatory",
    "history": "Letters the organization took part in, newest first: each has title, date, role",
    "sign_on_url": "Personal one-click sign-on link (needs a promoted letter)",
    "unsubscribe_url": "Personal unsubscribe link",
}
HISTORY_FIELDS = {"title", "date", "role"}
RECORDS = {name.split(".")[0]: set() for name in FIELDS if "." in name}
for _name in FIELDS:
    if "." in _name:
        RECORDS[_name.split(".")[0]].add(_name.split(".")[1])
TOP_LEVEL = set(RECORDS) | {n for n in FIELDS if "." not in n}
