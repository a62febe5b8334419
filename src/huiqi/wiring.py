"""The one place where domains are wired to each other's events.

`install()` subscribes every handler on the process bus. The web app factory, the command line
(before any command that opens the database, which covers the notification dispatcher it starts;
not before `policy parse`) and the test setup call it; it is idempotent. Order matters where one
handler relies on another:

- EnterpriseChanged: notify updates subscriptions from the registry's contact and consent
  values first, so the notifications matching causes reach the new channels; then matching
  re-evaluates the changed enterprises.
- ResultsChanged: grants create or flag grants, then notify queues the messages.
- GrantDecided: notify tells the enterprise; then funds marks a paid award's application paid.
"""

from __future__ import annotations

from huiqi import events
from huiqi.events import EnterpriseChanged, GrantDecided, ResultsChanged
from huiqi.funds import awarding as funds_awarding
from huiqi.grants import service as grants
from huiqi.matching import service as matching
from huiqi.notify import service as notify


def install() -> None:
    """Subscribe every domain event handler (idempotent)."""
    events.subscribe(EnterpriseChanged, notify.on_enterprise_changed, 10, "subscriptions")
    events.subscribe(EnterpriseChanged, matching.on_enterprise_changed, 100, "matching")
    events.subscribe(ResultsChanged, grants.on_results_changed, 10, "grants")
    events.subscribe(ResultsChanged, notify.on_results_changed, 20, "notifications")
    events.subscribe(GrantDecided, notify.on_grant_decided, 10, "notifications")
    events.subscribe(GrantDecided, funds_awarding.on_grant_decided, 20, "funds")
