"""What an import is asked to do: the kind of record, the column mapping and the organizer's choices."""

from dataclasses import dataclass

DUPLICATE_MODES = ("skip", "fill", "overwrite")
# A row making a contact primary where the organization has another active primary: keep that one (the row's
# contact is imported as a plain contact) or replace it (it stays a contact, no longer primary).
PRIMARY_MODES = ("keep", "replace")


class ImportError_(ValueError):
    """An import request that cannot be carried out (unknown letter, mapping, batch already undone…)."""


@dataclass
class ImportOptions:
    """What to import and how: the column mapping (a field key or '' per column) and the user's choices."""

    kind: str
    columns: list[str]
    on_duplicate: str = "skip"
    skip_invalid: bool = False
    accept_uncertain: bool = False
    create_issue_areas: bool = False
    letter_slug: str | None = None
    dry_run: bool = False
    primary: str = "keep"

    def as_dict(self) -> dict:
        """The choices as stored on the batch."""
        return {"on_duplicate": self.on_duplicate, "skip_invalid": self.skip_invalid, "primary": self.primary,
                "accept_uncertain": self.accept_uncertain, "create_issue_areas": self.create_issue_areas,
                "letter": self.letter_slug, "columns": self.columns}
