"""Notification services, one module per part; this module gathers their public names.

- outbox: enqueue exactly once per dedupe key, an outbox row per push channel, the delivery view
- messages: what matching results and grant decisions tell enterprises (event handlers)
- subscriptions: push settings and consent, unsubscribing
- registry_sync: subscriptions from the registry's contact and consent fields
- links: signed unsubscribe and open links
- inbox: the inbox and read receipts
- digests: rows held over the daily cap bundled into digests

Every function takes the session first and never commits; the caller's transaction decides."""

from __future__ import annotations

from huiqi.notify.digests import build_digests
from huiqi.notify.inbox import (
    can_read,
    inbox,
    inbox_for,
    inbox_stamp,
    mark_read,
    mark_unread,
    unread_count,
    unread_count_for,
)
from huiqi.notify.links import (
    ALL_CHANNELS,
    OPEN_SALT,
    UNSUBSCRIBE_SALT,
    open_token,
    read_open_token,
    read_unsubscribe_token,
    unsubscribe_token,
)
from huiqi.notify.messages import (
    INBOX_LINK,
    SINGLES_UP_TO,
    compose_result_message,
    grouped_result_notes,
    notify_results,
    on_grant_decided,
    on_results_changed,
    queue_result_notes,
    result_dedupe_key,
    result_notes,
    summary_note,
)
from huiqi.notify.outbox import (
    MAX_LINK,
    MAX_SUBJECT,
    NoteSpec,
    describe,
    enqueue,
    enqueue_institution,
    enqueue_user,
    institution_users,
    new_idempotency_key,
    outbox_rows,
    queue_notes,
    requeue_dead,
    status_counts,
)
from huiqi.notify.registry_sync import (
    REGISTRY_FIELDS,
    REGISTRY_VIA,
    RegistrySync,
    on_enterprise_changed,
    sync_subscriptions_from_registry,
)
from huiqi.notify.schemas import InvalidLink, NotifyError
from huiqi.notify.subscriptions import (
    active_channels,
    cancel_queued,
    channel_consented,
    consent_change,
    consent_history,
    get_subscription,
    quiet_until,
    rotate_webhook_secret,
    save_settings,
    subscriptions_for,
    unsubscribe,
)

__all__ = [
    "ALL_CHANNELS",
    "INBOX_LINK",
    "InvalidLink",
    "MAX_LINK",
    "MAX_SUBJECT",
    "NoteSpec",
    "NotifyError",
    "OPEN_SALT",
    "REGISTRY_FIELDS",
    "REGISTRY_VIA",
    "RegistrySync",
    "SINGLES_UP_TO",
    "UNSUBSCRIBE_SALT",
    "active_channels",
    "build_digests",
    "can_read",
    "cancel_queued",
    "channel_consented",
    "compose_result_message",
    "consent_change",
    "consent_history",
    "describe",
    "enqueue",
    "enqueue_institution",
    "enqueue_user",
    "get_subscription",
    "grouped_result_notes",
    "inbox",
    "inbox_for",
    "inbox_stamp",
    "institution_users",
    "mark_read",
    "mark_unread",
    "new_idempotency_key",
    "notify_results",
    "on_enterprise_changed",
    "on_grant_decided",
    "on_results_changed",
    "open_token",
    "outbox_rows",
    "queue_notes",
    "queue_result_notes",
    "quiet_until",
    "read_open_token",
    "read_unsubscribe_token",
    "requeue_dead",
    "result_dedupe_key",
    "result_notes",
    "rotate_webhook_secret",
    "save_settings",
    "status_counts",
    "subscriptions_for",
    "summary_note",
    "sync_subscriptions_from_registry",
    "unread_count",
    "unread_count_for",
    "unsubscribe",
    "unsubscribe_token",
]
