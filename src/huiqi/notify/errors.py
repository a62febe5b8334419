"""The error every delivery channel raises or returns for a message that did not go out."""

from __future__ import annotations


class DeliveryError(Exception):
    """A send failed; `permanent` means retrying cannot help (dead-letter at once)."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent
