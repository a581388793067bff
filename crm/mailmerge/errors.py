"""MergeError: what every mail-merge service raises when a request cannot be done."""


class MergeError(ValueError):
    """A merge request that cannot be done; `errors` maps fields to messages."""

    def __init__(self, message: str, errors: dict[str, list[str]] | None = None):
        super().__init__(message)
        self.errors = errors or {}
