"""API shapes for accounts."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class UserOut(BaseModel):
    """A user as the API shows it (never the password hash)."""

    id: int
    username: str
    display_name: str
    role: str
    department: str | None
    credit_code: str | None
    institution: str | None
    is_active: bool

    model_config = {"from_attributes": True}


class UserIn(BaseModel):
    """An administrator's request to create a user."""

    username: str
    password: str = Field(min_length=10)
    role: str
    display_name: str = ""
    email: str | None = None
    department: str | None = None
    credit_code: str | None = None
    institution: str | None = None


class TokenRequest(BaseModel):
    """Exchange credentials for an API token."""

    username: str
    password: str
    name: str = "api"


class TokenOut(BaseModel):
    """A newly created token; the value is shown only once."""

    token: str
    token_type: str = "bearer"


class AuditOut(BaseModel):
    """One audit event."""

    at: datetime
    event: str
    username: str | None
    ip: str | None
    detail: dict[str, object]

    model_config = {"from_attributes": True}
