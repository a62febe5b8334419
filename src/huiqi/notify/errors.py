"""The error every delivery channel raises or returns for a message that did not go out."""

from __future__ import annotations


class DeliveryError(Exception):
    """A send failed; `permanent` means retrying cannot help (dead-letter at once).

    `unreachable` means the channel's own relay or gateway could not be reached: the message is
    not at fault, so the attempt does not count against it and the channel pauses.
    """

    def __init__(self, message: str, *, permanent: bool = False, unreachable: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.unreachable = unreachable
