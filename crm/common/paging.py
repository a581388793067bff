"""What every paged list shares."""


class Paged:
    """A page of a list with `total` items, `per_page` to a page (mixed into the page dataclasses)."""

    total: int
    per_page: int

    @property
    def pages(self) -> int:
        """How many pages there are."""
        return max(1, -(-self.total // self.per_page))
