"""Subscriptions seeded from the registry: an address with its consent flag gives the channel,
dated and recorded with source "registry"; without consent nothing; registry changes keep it
current through the enterprise-changed hook; the enterprise's own later choices stand."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time
from typing import Any

from bs4 import BeautifulSoup
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from huiqi.core.clock import BEIJING, aware
from huiqi.enterprise import service as registry
from huiqi.notify import service
from huiqi.notify.models import ConsentEvent, Subscription
from huiqi.notify.schemas import SettingsInput
from tests.notify.conftest import ENT_A, ENT_B, ENT_C

CONSENT_DAY = date(2024, 3, 15)


def _report(session: Session, code: str, as_of: date = CONSENT_DAY, **values: Any) -> set[str]:
    """The enterprise reports contact and consent values (as the registry's self-report does)."""
    return registry.apply_changes(
        session, code, values, source="self-reported", as_of=as_of, recorded_by="test"
    )


def _events(session: Session, code: str) -> list[tuple[str, bool, str, str | None]]:
    return [
        (e.channel, e.granted, e.via, e.address)
        for e in session.scalars(
            select(ConsentEvent).where(ConsentEvent.credit_code == code).order_by(ConsentEvent.id)
        )
    ]


def test_consented_contacts_become_subscriptions_and_unconsented_do_not(
    db_session: Session,
) -> None:
    registry.apply_changes(
        db_session,
        ENT_A,
        {"name": "兰州甲机械有限公司", "region_code": "620102"},
        source="市场监管",
        as_of=date(2024, 1, 1),
    )
    _report(
        db_session,
        ENT_A,
        contact_email="Finance@Example.cn",
        consent_email=True,
        contact_phone="139 1234 5678",
        consent_phone=False,  # a number without consent: no SMS
        contact_webhook="https://hooks.example.cn/huiqi",
        consent_webhook=True,
    )
    _report(db_session, ENT_B, contact_email="office@example.cn", consent_email=False)
    _report(db_session, ENT_C, contact_email="not an address", consent_email=True)

    # the registry hook already applied it in the same transaction; a full run finds nothing new
    report = service.sync_subscriptions_from_registry(db_session)
    assert report.granted == [] and report.withdrawn == []
    assert [(code, name) for code, name, _ in report.refused] == [(ENT_C, "contact_email")]

    sub = service.get_subscription(db_session, ENT_A)
    assert sub is not None
    assert (sub.email, sub.phone, sub.webhook_url) == (
        "Finance@example.cn",
        None,
        "https://hooks.example.cn/huiqi",
    )
    given = datetime.combine(CONSENT_DAY, time(0), BEIJING).astimezone(UTC)
    assert aware(sub.email_consent_at) == given  # type: ignore[arg-type]
    assert sub.sms_consent_at is None and sub.webhook_secret
    assert [ch for ch, _ in service.active_channels(sub)] == ["email", "webhook"]
    assert sorted(_events(db_session, ENT_A)) == [
        ("email", True, "registry", "Finance@example.cn"),
        ("webhook", True, "registry", "https://hooks.example.cn/huiqi"),
    ]
    event = db_session.scalar(select(ConsentEvent).where(ConsentEvent.channel == "email"))
    assert event is not None and event.actor == "self-reported"
    assert aware(event.at) == given
    # without consent (B) or with an invalid address (C): no subscription at all
    assert service.get_subscription(db_session, ENT_B) is None
    assert service.get_subscription(db_session, ENT_C) is None


def test_explicit_sync_seeds_what_was_loaded_before_the_hook(db_session: Session) -> None:
    """A load that bypasses the hook (notify=False) is picked up by the sync function."""
    item = registry.Incoming(ENT_B)
    item.values[("contact_email", 0)] = ("ops@example.cn", "self-reported", CONSENT_DAY)
    item.values[("consent_email", 0)] = (True, "self-reported", CONSENT_DAY)
    registry.upsert(db_session, [item], notify=False)
    assert service.get_subscription(db_session, ENT_B) is None
    report = service.sync_subscriptions_from_registry(db_session, [ENT_B, ENT_C])
    assert report.granted == [(ENT_B, "email")]
    assert service.channel_consented(service.get_subscription(db_session, ENT_B), "email")
    # running it again changes nothing (idempotent)
    again = service.sync_subscriptions_from_registry(db_session)
    assert again.granted == [] and again.withdrawn == []
    assert _events(db_session, ENT_B) == [("email", True, "registry", "ops@example.cn")]


def test_registry_changes_keep_it_current_but_do_not_override_the_enterprise(
    db_session: Session,
) -> None:
    _report(db_session, ENT_A, contact_email="a@example.cn", consent_email=True)
    sub = service.get_subscription(db_session, ENT_A)
    assert sub is not None and sub.email == "a@example.cn"

    # a new address in the registry: consent moves to it, the old one is withdrawn first
    _report(db_session, ENT_A, as_of=date(2024, 4, 1), contact_email="b@example.cn")
    db_session.refresh(sub)
    assert sub.email == "b@example.cn" and sub.email_consent_at is not None
    assert _events(db_session, ENT_A)[-2:] == [
        ("email", False, "registry", None),
        ("email", True, "registry", "b@example.cn"),
    ]

    # the enterprise unsubscribes; an unrelated registry change must not re-subscribe it
    assert service.unsubscribe(db_session, ENT_A, "email") == ["email"]
    _report(db_session, ENT_A, contact_phone="13912345678")  # no consent flag for SMS
    registry.apply_changes(
        db_session, ENT_A, {"name": "兰州甲机械有限公司"}, source="市场监管", as_of=CONSENT_DAY
    )
    service.sync_subscriptions_from_registry(db_session)
    db_session.refresh(sub)
    assert sub.email_consent_at is None and sub.sms_consent_at is None

    # consent given again in the registry is a new statement and applies
    _report(db_session, ENT_A, as_of=date(2024, 5, 1), consent_email=False)
    _report(db_session, ENT_A, as_of=date(2024, 5, 2), consent_email=True)
    db_session.refresh(sub)
    assert sub.email_consent_at is not None

    # the registry withdrawing consent withdraws the channel it gave
    _report(db_session, ENT_A, as_of=date(2024, 6, 1), consent_email=False)
    db_session.refresh(sub)
    assert sub.email_consent_at is None
    assert _events(db_session, ENT_A)[-1] == ("email", False, "registry", "b@example.cn")


def test_registry_withdrawal_leaves_consent_given_on_the_settings_page(
    db_session: Session,
) -> None:
    _report(db_session, ENT_A, contact_email="a@example.cn", consent_email=True)
    # the enterprise then confirms its own address on the settings page
    service.save_settings(
        db_session,
        ENT_A,
        SettingsInput.parse(email="own@example.cn", consent_email=True),
        actor="enterprise",
    )
    _report(db_session, ENT_A, as_of=date(2024, 6, 1), consent_email=False)
    sub = service.get_subscription(db_session, ENT_A)
    assert sub is not None and sub.email == "own@example.cn" and sub.email_consent_at is not None
    count = db_session.scalar(
        select(func.count()).select_from(Subscription).where(Subscription.credit_code == ENT_A)
    )
    assert count == 1


def test_private_webhook_from_the_registry_is_refused(db_session: Session) -> None:
    _report(
        db_session,
        ENT_A,
        contact_webhook="http://127.0.0.1:8080/hook",
        consent_webhook=True,
    )
    report = service.sync_subscriptions_from_registry(
        db_session, [ENT_A], allow_private_webhooks=False
    )
    assert report.refused and report.refused[0][1] == "contact_webhook"
    assert service.get_subscription(db_session, ENT_A) is None
    allowed = service.sync_subscriptions_from_registry(
        db_session, [ENT_A], allow_private_webhooks=True
    )
    assert allowed.granted == [(ENT_A, "webhook")]


def test_settings_page_shows_the_registry_consent(
    client: TestClient, login_as: Callable[..., object], db_session: Session
) -> None:
    _report(db_session, ENT_A, contact_email="a@example.cn", consent_email=True)
    db_session.commit()
    login_as("enterprise")  # bound to ENT_A
    page = BeautifulSoup(client.get("/notify/settings").text, "lxml")
    email = page.find(id="ns-email")
    assert email is not None and email["value"] == "a@example.cn"
    (row,) = page.select("#consent-history tbody tr")
    cells = [td.get_text() for td in row.select("td")]
    assert cells[0] == "2024-03-15 00:00" and cells[2:] == ["同意", "企业库登记信息"]
