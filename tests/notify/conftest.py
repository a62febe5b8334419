"""Helpers for the notification tests: enterprises' push settings."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy.orm import Session

from huiqi.notify import service
from huiqi.notify.models import Subscription
from huiqi.notify.schemas import SettingsInput

ENT_A = "91620102MA72H8K3X0"  # the default enterprise user's code in tests/conftest.py
ENT_B = "91620102MA72H8K38Y"
ENT_C = "91620102MA72H8K46R"


@pytest.fixture
def subscribe(db_session: Session) -> Callable[..., Subscription]:
    """Give an enterprise push settings (all consents on by default)."""

    def make(credit_code: str = ENT_A, **fields: object) -> Subscription:
        values: dict[str, object] = {
            "email": "finance@example.com",
            "phone": "13912345678",
            "webhook_url": "https://hooks.example.com/huiqi",
            "consent_email": True,
            "consent_sms": True,
            "consent_webhook": True,
            "allow_private_webhooks": True,
        }
        values.update(fields)
        data = SettingsInput.parse(**values)  # type: ignore[arg-type]
        return service.save_settings(db_session, credit_code, data, actor="test")

    return make
