"""Push subscriptions seeded and updated from the enterprise registry's contact and
consent fields."""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from huiqi.core import clock
from huiqi.core.bulk import insert_many
from huiqi.core.db import utcnow
from huiqi.enterprise import repository as ent_repo
from huiqi.events import EnterpriseChanged
from huiqi.notify.models import (
    Channel,
    ConsentEvent,
    Subscription,
)
from huiqi.notify.schemas import (
    SettingsError,
    check_email,
    check_phone,
    check_webhook_url,
)
from huiqi.notify.subscriptions import channel_consented, consent_change

REGISTRY_VIA = "registry"
# (channel, registry address field, registry consent field, subscription address attribute)
REGISTRY_FIELDS: tuple[tuple[Channel, str, str, str], ...] = (
    (Channel.email, "contact_email", "consent_email", "email"),
    (Channel.sms, "contact_phone", "consent_phone", "phone"),
    (Channel.webhook, "contact_webhook", "consent_webhook", "webhook_url"),
)


@dataclass
class RegistrySync:
    """What a registry sync did: consents granted or withdrawn, addresses it refused."""

    granted: list[tuple[str, str]] = field(default_factory=list)  # (credit code, channel)
    withdrawn: list[tuple[str, str]] = field(default_factory=list)
    refused: list[tuple[str, str, str]] = field(default_factory=list)  # (code, field, why)


def _registry_contacts(
    session: Session, credit_codes: Sequence[str] | None
) -> dict[str, dict[str, tuple[str, date, str]]]:
    """Current contact and consent values per enterprise: field → (stored text, as-of, source)."""
    names = [name for _, address, consent, _ in REGISTRY_FIELDS for name in (address, consent)]
    out: dict[str, dict[str, tuple[str, date, str]]] = {}
    for code, name, _year, value, as_of, source in ent_repo.live_values(
        session, credit_codes, names, year=0
    ):
        out.setdefault(code, {})[name] = (value, as_of, source)
    return out


def _last_registry_events(
    session: Session, credit_codes: Sequence[str] | None
) -> dict[tuple[str, str], ConsentEvent]:
    """The latest consent event the registry recorded per (enterprise, channel)."""
    q = select(ConsentEvent).where(ConsentEvent.via == REGISTRY_VIA).order_by(ConsentEvent.id)
    if credit_codes is not None:
        q = q.where(ent_repo.codes_in(session.connection(), ConsentEvent.credit_code, credit_codes))
    return {(event.credit_code, event.channel): event for event in session.scalars(q)}


def _new_subscription(code: str, now: datetime) -> dict[str, Any]:
    """The columns of a subscription the registry creates, before its channels are filled in."""
    return {
        "credit_code": code, "email": None, "phone": None, "webhook_url": None,
        "webhook_secret": None, "email_consent_at": None, "sms_consent_at": None,
        "webhook_consent_at": None, "muted_topics": [], "quiet_start": None, "quiet_end": None,
        "daily_cap": 5, "updated_at": now, "updated_by": REGISTRY_VIA,
    }  # fmt: skip


def _registry_address(channel: Channel, raw: str, *, allow_private: bool) -> str:
    """The registry's address checked as the settings page checks it (SettingsError if bad)."""
    if channel == Channel.email:
        return check_email(raw)
    if channel == Channel.sms:
        return check_phone(raw)
    return check_webhook_url(raw, allow_private=allow_private)


def sync_subscriptions_from_registry(
    session: Session,
    credit_codes: Iterable[str] | None = None,
    *,
    allow_private_webhooks: bool | None = None,
) -> RegistrySync:
    """Seed and update push subscriptions from the registry's contact_* and consent_* fields.

    An address with its consent flag set gives the channel's subscription and consent, dated
    by the registry value and recorded with source "registry"; without the flag nothing is
    stored. Only a change of the registry is applied: an enterprise that later unsubscribed
    or changed its settings is not overridden by the same registry values again. Consent the
    registry withdraws is withdrawn only if it still rests on the registry. Idempotent; never
    commits. All enterprises when `credit_codes` is None.
    """
    if allow_private_webhooks is None:
        from huiqi.core.config import get_settings

        allow_private_webhooks = get_settings().webhook_allow_private
    codes = None if credit_codes is None else sorted(set(credit_codes))
    report = RegistrySync()
    if codes == []:
        return report
    contacts = _registry_contacts(session, codes)
    last = _last_registry_events(session, codes)
    targets = sorted(set(contacts) | {code for code, _ in last})
    subs = (
        {
            s.credit_code: s
            for s in session.scalars(
                select(Subscription).where(
                    ent_repo.codes_in(session.connection(), Subscription.credit_code, targets)
                )
            )
        }
        if targets
        else {}
    )
    # subscriptions the registry creates and the consent it grants are inserted in bulk after
    # the loop (a bulk import brings tens of thousands per batch, too many for one ORM object
    # each); withdrawals and changes to existing subscriptions go through the ORM as before
    created: dict[str, dict[str, Any]] = {}
    grants: list[dict[str, Any]] = []
    now = utcnow()
    for code in targets:
        values = contacts.get(code, {})
        for channel, address_field, consent_field, attr in REGISTRY_FIELDS:
            address_value = values.get(address_field)
            consent_value = values.get(consent_field)
            wanted: str | None = None
            if address_value and address_value[0].strip() and consent_value:
                if consent_value[0] == "1":
                    try:
                        wanted = _registry_address(
                            channel, address_value[0], allow_private=allow_private_webhooks
                        )
                    except SettingsError as exc:
                        report.refused.append((code, address_field, exc.message))
            previous = last.get((code, channel.value))
            if wanted is not None:
                if previous is not None and previous.granted and previous.address == wanted:
                    continue  # already applied; later choices of the enterprise stand
                assert address_value is not None and consent_value is not None
                day = max(address_value[1], consent_value[1])
                given = clock.day_start(day)
                consent_attr = f"{channel.value}_consent_at"
                sub = subs.get(code)
                if sub is None:
                    # a new subscription holds no consent yet, so there is none to withdraw
                    row = created.get(code)
                    if row is None:
                        row = created[code] = _new_subscription(code, now)
                    row[attr] = wanted
                    if row[consent_attr] is None:
                        row[consent_attr] = given
                    if channel == Channel.webhook and not row["webhook_secret"]:
                        row["webhook_secret"] = secrets.token_hex(32)
                else:
                    if getattr(sub, attr) != wanted:
                        # consent given for the old address does not carry over to the new one
                        consent_change(
                            session, sub, channel, False, None, via=REGISTRY_VIA, actor=None,
                            now=now,
                        )  # fmt: skip
                        setattr(sub, attr, wanted)
                    if getattr(sub, consent_attr) is None:
                        setattr(sub, consent_attr, given)
                    if channel == Channel.webhook and not sub.webhook_secret:
                        sub.webhook_secret = secrets.token_hex(32)
                    sub.updated_at, sub.updated_by = now, REGISTRY_VIA
                grants.append(
                    {
                        "credit_code": code,
                        "channel": channel.value,
                        "granted": True,
                        "at": given,
                        "via": REGISTRY_VIA,
                        "actor": consent_value[2][:64],
                        "address": wanted,
                    }
                )
                report.granted.append((code, channel.value))
            elif previous is not None and previous.granted:
                sub = subs.get(code)
                latest = session.scalar(
                    select(ConsentEvent.id)
                    .where(ConsentEvent.credit_code == code, ConsentEvent.channel == channel.value)
                    .order_by(ConsentEvent.id.desc())
                    .limit(1)
                )
                actor = consent_value[2][:64] if consent_value else None
                # withdraw only a consent that still rests on the registry's statement
                if (
                    sub is not None
                    and latest == previous.id
                    and getattr(sub, attr) == previous.address
                    and channel_consented(sub, channel)
                ):
                    consent_change(
                        session,
                        sub,
                        channel,
                        False,
                        previous.address,
                        via=REGISTRY_VIA,
                        actor=actor,
                        now=now,
                    )
                    sub.updated_at, sub.updated_by = now, REGISTRY_VIA
                    report.withdrawn.append((code, channel.value))
                elif not channel_consented(sub, channel):
                    # already withdrawn by the enterprise: note the registry's withdrawal too,
                    # so consent given in the registry again later is a change and applies
                    session.add(
                        ConsentEvent(
                            credit_code=code,
                            channel=channel.value,
                            granted=False,
                            at=now,
                            via=REGISTRY_VIA,
                            actor=actor,
                            address=previous.address,
                        )
                    )
    # the ORM's withdrawals first, so a grant that replaces one is the later event
    session.flush()
    # at the driver's speed (COPY on PostgreSQL), as a bulk import brings thousands per batch
    insert_many(session, Subscription.__table__, list(created.values()))  # type: ignore[arg-type]
    insert_many(session, ConsentEvent.__table__, grants)  # type: ignore[arg-type]
    return report


def on_enterprise_changed(session: Session, event: EnterpriseChanged) -> None:
    """Registry changes update the subscriptions from contact and consent values (handler)."""
    sync_subscriptions_from_registry(session, event.codes)
