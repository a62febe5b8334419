"""The one domain error type: a refusal with a Chinese and an English message and an HTTP status.

Services raise a `DomainError` subclass (their own, re-based on these kinds) and never think
about HTTP; the web app has one handler that turns any of them into an error page in the user's
language or a JSON body ``{"error": {"code", "message", "field"}}``, and the CLI prints the
message. Every domain error is also a ``ValueError``, so callers that catch ``ValueError`` keep
working.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar


class DomainError(ValueError):
    """A request the domain refuses; carries zh/en messages, a status and optionally the field."""

    status: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"

    def __init__(
        self,
        message_zh: str,
        message_en: str | None = None,
        *,
        field: str | None = None,
        problems: Sequence[str] = (),
    ) -> None:
        self.message_zh = message_zh
        # Older services wrote one bilingual or English message; it serves both languages.
        self.message_en = message_zh if message_en is None else message_en
        self.field = field
        self.problems = list(problems)
        super().__init__(message_zh if message_en is None else f"{message_zh} / {self.message_en}")

    def localized(self, lang: str) -> str:
        """The message in a language ("zh" or "en")."""
        return self.message_en if lang == "en" else self.message_zh

    @property
    def headers(self) -> dict[str, str]:
        """HTTP headers the refusal carries (e.g. Retry-After); none by default."""
        return {}


class Invalid(DomainError):
    """The input breaks a rule of the domain (422)."""

    status = 422
    code = "invalid"


class NotFound(DomainError):
    """The object does not exist or the user may not see it (404: existence is not revealed)."""

    status = 404
    code = "not_found"


class Forbidden(DomainError):
    """The user's role or scope may not do this (403)."""

    status = 403
    code = "forbidden"


class Conflict(DomainError):
    """The object's state does not allow the step (409)."""

    status = 409
    code = "conflict"


class Unauthorized(DomainError):
    """The credentials are wrong or missing (401)."""

    status = 401
    code = "unauthorized"


class Throttled(DomainError):
    """Too many attempts in a window (429)."""

    status = 429
    code = "throttled"
