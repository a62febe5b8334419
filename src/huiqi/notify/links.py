"""Signed links in pushed messages: unsubscribe from a channel, open (a read receipt)."""

from __future__ import annotations

from functools import lru_cache

from itsdangerous import BadSignature, URLSafeSerializer

from huiqi.notify.models import (
    PUSH_CHANNELS,
)
from huiqi.notify.schemas import (
    InvalidLink,
)

UNSUBSCRIBE_SALT = "huiqi.notify.unsubscribe.v1"
OPEN_SALT = "huiqi.notify.open.v1"


ALL_CHANNELS = "all"


@lru_cache(maxsize=16)
def _serializer(secret_key: str, salt: str) -> URLSafeSerializer:
    """One signer per key and purpose (a push renders two links per message)."""
    return URLSafeSerializer(secret_key, salt=salt)


def unsubscribe_token(secret_key: str, credit_code: str, channel: str = ALL_CHANNELS) -> str:
    """A signed token that can only unsubscribe this enterprise from this channel (or all)."""
    return _serializer(secret_key, UNSUBSCRIBE_SALT).dumps({"c": credit_code, "ch": channel})


def read_unsubscribe_token(secret_key: str, token: str) -> tuple[str, str]:
    """Credit code and channel from an unsubscribe token; NotifyError when forged or damaged."""
    try:
        data = _serializer(secret_key, UNSUBSCRIBE_SALT).loads(token)
    except BadSignature:
        raise InvalidLink("退订链接无效", "invalid unsubscribe link") from None
    if not isinstance(data, dict) or not isinstance(data.get("c"), str):
        raise InvalidLink("退订链接无效", "invalid unsubscribe link")
    channel = data.get("ch")
    if channel != ALL_CHANNELS and channel not in {c.value for c in PUSH_CHANNELS}:
        raise InvalidLink("退订链接无效", "invalid unsubscribe link")
    return data["c"], str(channel)


def open_token(secret_key: str, notification_id: int, channel: str) -> str:
    """A signed token for the link in a pushed message; opening it records a read receipt."""
    return _serializer(secret_key, OPEN_SALT).dumps({"n": notification_id, "ch": channel})


def read_open_token(secret_key: str, token: str) -> tuple[int, str]:
    """Notification id and channel from an open-link token."""
    try:
        data = _serializer(secret_key, OPEN_SALT).loads(token)
    except BadSignature:
        raise InvalidLink("链接无效", "invalid link") from None
    if not isinstance(data, dict) or not isinstance(data.get("n"), int):
        raise InvalidLink("链接无效", "invalid link")
    return data["n"], str(data.get("ch", "link"))
