"""Push subscriptions seeded and updated from the enterprise registry's contact and
consent fields.

A bulk import calls the sync for every batch of thousands of enterprises, so it works on the
batch at once. The enterprises the batch created come with their values (EnterpriseChanged's
created_values) and have no subscription or consent yet: their consented addresses become
subscriptions as frames, inserted in one statement (COPY on PostgreSQL), each keeping the
registry's grants on itself rather than as one event per channel (Subscription.
registry_grants_by). Any other enterprise goes the general way: one read of the contact values
(a frame), one of the subscriptions and one of the consent events that exist, each distinct
address checked once, the new subscriptions and grants written in bulk and changes to existing
subscriptions through the ORM. Only (enterprise, channel) pairs with a consented address or an
earlier registry grant are looked at; the others have nothing to apply.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import polars as pl
from email_validator import SPECIAL_USE_DOMAIN_NAMES
from email_validator.rfc_constants import CASE_INSENSITIVE_MAILBOX_NAMES
from psycopg.errors import UniqueViolation
from sqlalchemy import Table, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from huiqi.core import clock
from huiqi.core.bulk import insert_rows, rows_of_codes
from huiqi.core.db import note_write, utcnow
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
from huiqi.notify.subscriptions import (
    REGISTRY_VIA,
    channel_consented,
    consent_change,
    kept_grants,
    write_kept_grants,
)

# (channel, registry address field, registry consent field, subscription address attribute)
REGISTRY_FIELDS: tuple[tuple[Channel, str, str, str], ...] = (
    (Channel.email, "contact_email", "consent_email", "email"),
    (Channel.sms, "contact_phone", "consent_phone", "phone"),
    (Channel.webhook, "contact_webhook", "consent_webhook", "webhook_url"),
)
_CHANNELS = [channel.value for channel, *_ in REGISTRY_FIELDS]
CONTACT_FIELDS = [name for _, address, consent, _ in REGISTRY_FIELDS for name in (address, consent)]

# the columns of a subscription the registry creates, and where each channel's go
SUBSCRIPTION_COLUMNS = [
    "credit_code", "email", "phone", "webhook_url", "webhook_secret", "email_consent_at",
    "sms_consent_at", "webhook_consent_at", "muted_topics", "quiet_start", "quiet_end",
    "daily_cap", "updated_at", "updated_by",
]  # fmt: skip
_SUB_ADDRESS = [SUBSCRIPTION_COLUMNS.index(attr) for *_, attr in REGISTRY_FIELDS]
_SUB_CONSENT = [SUBSCRIPTION_COLUMNS.index(f"{ch.value}_consent_at") for ch, *_ in REGISTRY_FIELDS]
_SUB_SECRET = SUBSCRIPTION_COLUMNS.index("webhook_secret")
EVENT_COLUMNS = ["credit_code", "channel", "granted", "at", "via", "actor", "address"]
_MOMENT = pl.Datetime("us", "UTC")
# Polars types of the columns the sync writes (PostgreSQL's COPY takes them as CSV text)
_FRAME_TYPES: dict[str, Any] = {
    "credit_code": pl.Utf8, "email": pl.Utf8, "phone": pl.Utf8, "webhook_url": pl.Utf8,
    "webhook_secret": pl.Utf8, "email_consent_at": _MOMENT, "sms_consent_at": _MOMENT,
    "webhook_consent_at": _MOMENT, "muted_topics": pl.Utf8, "quiet_start": pl.Int64,
    "quiet_end": pl.Int64, "daily_cap": pl.Int64, "updated_at": _MOMENT, "updated_by": pl.Utf8,
    "channel": pl.Utf8, "granted": pl.Boolean, "at": _MOMENT, "via": pl.Utf8, "actor": pl.Utf8,
    "address": pl.Utf8,
}  # fmt: skip
_SUBSCRIPTIONS: Table = Subscription.__table__  # type: ignore[assignment]
_EVENTS: Table = ConsentEvent.__table__  # type: ignore[assignment]

# Addresses of these plain forms are accepted unchanged by the settings page's checks, so the
# sync takes them as they are, decided for a whole batch at once: an e-mail address in ASCII
# dot-atom form at a lower-case host name without "--" under a letter top-level domain, short
# enough for every length limit, neither at a special-use domain nor an RFC 2142 mailbox name
# (which email_validator lower-cases); a mobile number of 11 ASCII digits; a webhook URL as
# below, public whether private addresses are allowed or not. Any other address
# goes through the full check (`_AddressCheck`), so both ways accept, normalise and refuse alike.
_PLAIN_EMAIL = r"^[A-Za-z0-9_+\-]+(?:\.[A-Za-z0-9_+\-]+)*@(?:[a-z0-9]+(?:-[a-z0-9]+)*\.)+[a-z]+$"
_PLAIN_EMAIL_LENGTH = 63  # ≤ any of email_validator's limits: label, domain, address
_PLAIN_PHONE = r"^1[3-9][0-9]{9}$"
# a webhook URL: http(s) to a lower-case host name (no user, password or port) under a letter
# top-level domain, so neither an IP address nor localhost, with a path of unreserved characters
_PLAIN_WEBHOOK = r"^https?://(?:[a-z0-9]+(?:-+[a-z0-9]+)*\.)+[a-z]+(?:/[A-Za-z0-9._~/-]*)?$"
_PLAIN_WEBHOOK_LENGTH = 500


def plain_address(channel: Channel, address: pl.Expr) -> pl.Expr:
    """Whether each address is one the settings page's check returns unchanged (see above);
    False where it cannot tell, and the full check decides."""
    if channel == Channel.sms:
        return address.str.contains(_PLAIN_PHONE).fill_null(False)
    if channel == Channel.webhook:
        return (
            address.str.contains(_PLAIN_WEBHOOK)
            & (address.str.len_chars() <= _PLAIN_WEBHOOK_LENGTH)
            & ~address.str.contains(r"^https?://(?:[^/]*\.)?localhost(?:/|$)")
        ).fill_null(False)
    if channel != Channel.email:
        return pl.lit(False)
    special = "|".join(re.escape(name) for name in SPECIAL_USE_DOMAIN_NAMES)
    mailbox = "|".join(re.escape(name) for name in CASE_INSENSITIVE_MAILBOX_NAMES)
    return (
        address.str.contains(_PLAIN_EMAIL)
        & (address.str.len_chars() <= _PLAIN_EMAIL_LENGTH)
        & ~address.str.contains(f"[@.](?:{special})$")
        & ~address.str.contains(f"^(?i:{mailbox})@")
    ).fill_null(False)


@dataclass
class RegistrySync:
    """What a registry sync did: consents granted or withdrawn, addresses it refused."""

    granted: list[tuple[str, str]] = field(default_factory=list)  # (credit code, channel)
    withdrawn: list[tuple[str, str]] = field(default_factory=list)
    refused: list[tuple[str, str, str]] = field(default_factory=list)  # (code, field, why)


class _AddressCheck:
    """The registry's addresses checked as the settings page checks them, each distinct one once."""

    def __init__(self, allow_private_webhooks: bool) -> None:
        self.allow_private = allow_private_webhooks
        self.seen: dict[tuple[Channel, str], tuple[str | None, str | None]] = {}

    def __call__(self, channel: Channel, raw: str) -> tuple[str | None, str | None]:
        """(the address to store, None) or (None, why it was refused)."""
        key = (channel, raw)
        known = self.seen.get(key)
        if known is None:
            try:
                if channel == Channel.email:
                    known = (check_email(raw), None)
                elif channel == Channel.sms:
                    known = (check_phone(raw), None)
                else:
                    known = (check_webhook_url(raw, allow_private=self.allow_private), None)
            except SettingsError as exc:
                known = (None, exc.message)
            self.seen[key] = known
        return known


Pair = tuple[str, int, str | None, date | None, str | None, date | None, str | None, bool]
_CHANNEL_OF = {
    name: ch
    for ch, (_, address, consent, _) in enumerate(REGISTRY_FIELDS)
    for name in (address, consent)
}
_ADDRESS_FIELDS = [address for _, address, _, _ in REGISTRY_FIELDS]


def _registry_contacts(
    session: Session, codes: Sequence[str] | None, known: pl.DataFrame | None
) -> pl.DataFrame:
    """The current contact and consent values of these enterprises (None: all), as a frame
    (code, field, year, value, as_of, source); those of `known` enterprises are taken from it."""
    if known is None or codes is None:
        return ent_repo.live_value_frame(session, codes, CONTACT_FIELDS, year=0)
    wanted = known.filter(pl.col("code").is_in(codes))
    given = set(wanted["code"].unique().to_list())
    rest = [code for code in codes if code not in given]
    found = wanted.filter(pl.col("field").is_in(CONTACT_FIELDS) & (pl.col("year") == 0)).select(
        list(ent_repo.LIVE_SCHEMA)
    )
    if not rest:
        return found
    return pl.concat([found, ent_repo.live_value_frame(session, rest, CONTACT_FIELDS, year=0)])


def _pairs(contacts: pl.DataFrame, last: dict[tuple[str, str], Any]) -> list[Pair]:
    """The (enterprise, channel) pairs the sync has to look at, by credit code and channel: a
    consented address, or a consent the registry granted before (it may be withdrawn now).

    Each is (code, channel index, address, its as-of, consent flag, its as-of, its source,
    whether the address is plain: see plain_address).
    """
    tagged = contacts.with_columns(
        ch=pl.col("field").replace_strict(_CHANNEL_OF, return_dtype=pl.Int64)
    )
    is_address = pl.col("field").is_in(_ADDRESS_FIELDS)
    address = tagged.filter(is_address).select("code", "ch", address="value", address_on="as_of")
    consent = tagged.filter(~is_address).select(
        "code", "ch", consent="value", consent_on="as_of", consent_source="source"
    )
    granted = [(code, _CHANNELS.index(name)) for (code, name), e in last.items() if e.granted]
    before = pl.DataFrame(
        granted, schema={"code": pl.Utf8, "ch": pl.Int64}, orient="row"
    ).with_columns(granted=pl.lit(True))
    both = address.join(consent, on=["code", "ch"], how="full", coalesce=True).join(
        before, on=["code", "ch"], how="full", coalesce=True
    )
    ch, address_col = pl.col("ch"), pl.col("address")
    plain = (
        pl.when(ch == 0)
        .then(plain_address(Channel.email, address_col))
        .when(ch == 1)
        .then(plain_address(Channel.sms, address_col))
        .otherwise(plain_address(Channel.webhook, address_col))
    )
    return (
        both.filter(
            (pl.col("consent") == "1") & pl.col("address").is_not_null()
            | pl.col("granted").is_not_null()
        )
        .select(
            "code",
            "ch",
            "address",
            "address_on",
            "consent",
            "consent_on",
            "consent_source",
            plain.alias("plain"),
        )  # fmt: skip
        .sort("code", "ch")
        .rows()
    )


def _consent_events(
    session: Session, credit_codes: Sequence[str] | None, subs: dict[str, Subscription]
) -> tuple[dict[tuple[str, str], Any], dict[tuple[str, str], int]]:
    """Per (enterprise, channel): the latest consent event the registry recorded (its id,
    whether it granted, the address), and the id of the latest event of any origin; the
    grants kept on these subscriptions are the oldest (id 0)."""
    t = _EVENTS
    columns = [t.c.id, t.c.credit_code, t.c.channel, t.c.granted, t.c.address, t.c.via]
    last: dict[tuple[str, str], Any] = {}
    latest: dict[tuple[str, str], int] = {}
    for sub in subs.values():
        for kept in kept_grants(sub):
            key = (kept.credit_code, kept.channel)
            kept.id = latest[key] = 0
            last[key] = kept
    for row in sorted(session.execute(rows_of_codes(session, t, columns, credit_codes)), key=_id):
        key = (row.credit_code, row.channel)
        latest[key] = row.id
        if row.via == REGISTRY_VIA:
            last[key] = row
    return last, latest


def _id(row: Any) -> int:
    return int(row.id)


def _new_subscription(code: str, now: datetime, no_topics: list[str]) -> list[Any]:
    """The columns of a subscription the registry creates, before its channels are filled in
    (`no_topics`: one empty list for all, which the bulk insert encodes once)."""
    return [
        code,
        None,
        None,
        None,
        None,
        None,
        None,
        None,
        no_topics,
        None,
        None,
        5,
        now,
        REGISTRY_VIA,
    ]


def sync_subscriptions_from_registry(
    session: Session,
    credit_codes: Iterable[str] | None = None,
    *,
    allow_private_webhooks: bool | None = None,
    created: pl.DataFrame | None = None,
) -> RegistrySync:
    """Seed and update push subscriptions from the registry's contact_* and consent_* fields.

    An address with its consent flag set gives the channel's subscription and consent, dated
    by the registry value and recorded with source "registry"; without the flag nothing is
    stored. Only a change of the registry is applied: an enterprise that later unsubscribed
    or changed its settings is not overridden by the same registry values again. Consent the
    registry withdraws is withdrawn only if it still rests on the registry. Idempotent; never
    commits. All enterprises when `credit_codes` is None. `created`: all the values of the
    enterprises among these that the change created (as ``live_value_frame``), read there
    instead of from the database (see EnterpriseChanged.created_values).
    """
    if allow_private_webhooks is None:
        from huiqi.core.config import get_settings

        allow_private_webhooks = get_settings().webhook_allow_private
    codes = None if credit_codes is None else sorted(set(credit_codes))
    report = RegistrySync()
    if codes == []:
        return report
    check = _AddressCheck(allow_private_webhooks)
    rest = codes
    if codes is not None and created is not None:
        listed = pl.Series("code", codes, dtype=pl.Utf8)
        new = listed.is_in(created["code"].implode())
        if new.any():
            contacts = _contact_values(created).filter(
                pl.col("code").is_in(listed.filter(new).implode())
            )
            held = _seed_created(session, contacts, check, report)
            rest = sorted({*listed.filter(~new).to_list(), *held})
            if rest:
                # each way reports by enterprise and channel; together, too
                order = {name: i for i, name in enumerate(_CHANNELS)}
                fields = {name: i for i, name in enumerate(CONTACT_FIELDS)}
                _sync_pairs(session, rest, created, check, report)
                report.granted.sort(key=lambda g: (g[0], order[g[1]]))
                report.withdrawn.sort(key=lambda w: (w[0], order[w[1]]))
                report.refused.sort(key=lambda r: (r[0], fields[r[1]]))
            return report
    _sync_pairs(session, rest, created, check, report)
    return report


def _sync_pairs(
    session: Session,
    codes: list[str] | None,
    known: pl.DataFrame | None,
    check: _AddressCheck,
    report: RegistrySync,
) -> None:
    """The sync of these enterprises (None: all) in general, whatever they held before
    (`known`: the values of some of them, as ``live_value_frame``)."""
    stmt = rows_of_codes(session, _SUBSCRIPTIONS, list(_SUBSCRIPTIONS.c), codes)
    subs = {
        sub.credit_code: sub for sub in session.scalars(select(Subscription).from_statement(stmt))
    }
    last, latest = _consent_events(session, codes, subs)
    pairs = _pairs(_registry_contacts(session, codes, known), last)
    if not pairs:
        return
    wanted: list[str | None] = []
    for code, ch, address, _, consent, _, _, plain in pairs:
        ok: str | None = None
        if plain and consent == "1":
            ok = address
        elif address is not None and address.strip() and consent == "1":
            channel, address_field = REGISTRY_FIELDS[ch][:2]
            ok, why = check(channel, address)
            if why is not None:
                report.refused.append((code, address_field, why))
        wanted.append(ok)
    # subscriptions the registry creates and the consent it grants are inserted in bulk after
    # the loop (a bulk import brings thousands per batch, too many for one ORM object each);
    # withdrawals and changes to existing subscriptions go through the ORM
    created: dict[str, list[Any]] = {}
    grants: list[tuple[Any, ...]] = []
    now = utcnow()
    no_topics: list[str] = []
    # one moment per day, shared by its rows, so the bulk insert encodes each once
    day_starts: dict[date, datetime] = {}
    for (code, ch, _, address_on, _, consent_on, consent_source, _), ok in zip(
        pairs, wanted, strict=True
    ):
        channel, _, _, attr = REGISTRY_FIELDS[ch]
        name = _CHANNELS[ch]
        previous = last.get((code, name))
        if ok is not None:
            if previous is not None and previous.granted and previous.address == ok:
                continue  # already applied; later choices of the enterprise stand
            assert address_on is not None and consent_on is not None and consent_source
            day = max(address_on, consent_on)
            given = day_starts.get(day)
            if given is None:
                given = day_starts[day] = clock.day_start(day)
            sub = subs.get(code)
            if sub is None:
                # a new subscription holds no consent yet, so there is none to withdraw
                row = created.get(code)
                if row is None:
                    row = created[code] = _new_subscription(code, now, no_topics)
                row[_SUB_ADDRESS[ch]] = ok
                if row[_SUB_CONSENT[ch]] is None:
                    row[_SUB_CONSENT[ch]] = given
                if channel == Channel.webhook and not row[_SUB_SECRET]:
                    row[_SUB_SECRET] = secrets.token_hex(32)
            else:
                write_kept_grants(session, sub)
                consent_attr = f"{name}_consent_at"
                if getattr(sub, attr) != ok:
                    # consent given for the old address does not carry over to the new one
                    consent_change(
                        session, sub, channel, False, None, via=REGISTRY_VIA, actor=None, now=now
                    )
                    setattr(sub, attr, ok)
                if getattr(sub, consent_attr) is None:
                    setattr(sub, consent_attr, given)
                if channel == Channel.webhook and not sub.webhook_secret:
                    sub.webhook_secret = secrets.token_hex(32)
                sub.updated_at, sub.updated_by = now, REGISTRY_VIA
            grants.append((code, name, True, given, REGISTRY_VIA, consent_source[:64], ok))
            report.granted.append((code, name))
        elif previous is not None and previous.granted:
            sub = subs.get(code)
            actor = consent_source[:64] if consent_source is not None else None
            # withdraw only a consent that still rests on the registry's statement
            if (
                sub is not None
                and latest.get((code, name)) == previous.id
                and getattr(sub, attr) == previous.address
                and channel_consented(sub, channel)
            ):
                consent_change(
                    session, sub, channel, False, previous.address, via=REGISTRY_VIA,
                    actor=actor, now=now,
                )  # fmt: skip
                sub.updated_at, sub.updated_by = now, REGISTRY_VIA
                report.withdrawn.append((code, name))
            elif not channel_consented(sub, channel):
                # already withdrawn by the enterprise: note the registry's withdrawal too,
                # so consent given in the registry again later is a change and applies
                if sub is not None:
                    write_kept_grants(session, sub)
                session.add(
                    ConsentEvent(
                        credit_code=code,
                        channel=name,
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
    _insert(session, _SUBSCRIPTIONS, SUBSCRIPTION_COLUMNS, list(created.values()))
    _insert(session, _EVENTS, EVENT_COLUMNS, grants)


def _contact_values(values: pl.DataFrame) -> pl.DataFrame:
    """The contact and consent values among these (as ``live_value_frame``)."""
    return values.filter(pl.col("field").is_in(CONTACT_FIELDS) & (pl.col("year") == 0))


def _seed_created(
    session: Session, contacts: pl.DataFrame, check: _AddressCheck, report: RegistrySync
) -> set[str]:
    """The sync of enterprises the change created, from their contact values, as frames (a bulk import's new enterprises:
    thousands a batch, no Python per enterprise); returns those that had a subscription already,
    which the general sync takes instead.

    An enterprise without a subscription has no consent event either (every event is recorded
    with the enterprise's subscription, and subscriptions are never deleted), so there is
    nothing earlier to respect: each consented address is granted, on a new subscription that
    keeps the grants itself when they have one actor (Subscription.registry_grants_by). That
    a subscription exists shows when inserting the new ones fails on the unique credit code:
    the insert is undone and the batch split, so the common case pays for no look-up.
    """
    wanted = _consented_pairs(contacts, check, report)
    if wanted.is_empty():
        return set()
    now = utcnow()
    subscriptions = _new_subscriptions(wanted, now)
    held: set[str] = set()
    try:
        with session.begin_nested():
            _insert_frame(session, _SUBSCRIPTIONS, subscriptions)
    except (IntegrityError, UniqueViolation):
        listed = subscriptions["credit_code"].to_list()
        stmt = rows_of_codes(session, _SUBSCRIPTIONS, [_SUBSCRIPTIONS.c.credit_code], listed)
        held = set(session.scalars(stmt))
        subscriptions = subscriptions.filter(~pl.col("credit_code").is_in(held))
        wanted = wanted.filter(~pl.col("code").is_in(held))
        _insert_frame(session, _SUBSCRIPTIONS, subscriptions)
    # the grants of a subscription kept on it are not written as events (see
    # Subscription.registry_grants_by): only those of an enterprise whose consent values came
    # from more than one source
    kept = subscriptions.filter(pl.col("registry_grants_by").is_not_null())["credit_code"]
    grants = wanted.select(
        credit_code="code",
        channel=pl.col("ch").replace_strict(dict(enumerate(_CHANNELS)), return_dtype=pl.Utf8),
        granted=pl.lit(True),
        at="given",
        via=pl.lit(REGISTRY_VIA),
        actor="actor",
        address="ok",
    )
    _insert_frame(session, _EVENTS, grants.filter(~pl.col("credit_code").is_in(kept.implode())))
    report.granted.extend(
        zip(grants["credit_code"].to_list(), grants["channel"].to_list(), strict=True)
    )
    return held


def _consented_pairs(
    contacts: pl.DataFrame, check: _AddressCheck, report: RegistrySync
) -> pl.DataFrame:
    """The (enterprise, channel) pairs of these contact values with a consented address the
    settings page accepts: code, ch (channel index), ok (the address to store), given (the
    moment consent dates from: the later registry value's day) and actor (the consent's
    source), by code and channel; the refused addresses go to the report."""
    tagged = contacts.with_columns(
        ch=pl.col("field").replace_strict(_CHANNEL_OF, return_dtype=pl.Int64)
    )
    is_address = pl.col("field").is_in(_ADDRESS_FIELDS)
    address = tagged.filter(is_address).select("code", "ch", address="value", address_on="as_of")
    consent = tagged.filter(~is_address & (pl.col("value") == "1")).select(
        "code", "ch", consent_on="as_of", source="source"
    )
    ch, raw = pl.col("ch"), pl.col("address")
    pairs = (
        address.join(consent, on=["code", "ch"])
        .filter(raw.is_not_null())
        .with_columns(
            plain=pl.when(ch == 0)
            .then(plain_address(Channel.email, raw))
            .when(ch == 1)
            .then(plain_address(Channel.sms, raw))
            .otherwise(plain_address(Channel.webhook, raw))
        )
        .sort("code", "ch")
    )
    # every other distinct address through the settings page's own check, once
    checked: list[tuple[int, str, str | None, str | None]] = []
    for index, value in pairs.filter(~pl.col("plain")).select("ch", "address").unique().rows():
        ok, why = check(REGISTRY_FIELDS[index][0], value) if value.strip() else (None, None)
        checked.append((index, value, ok, why))
    verdicts = pl.DataFrame(
        checked,
        schema={"ch": pl.Int64, "address": pl.Utf8, "checked": pl.Utf8, "why": pl.Utf8},
        orient="row",
    )
    pairs = pairs.join(verdicts, on=["ch", "address"], how="left").with_columns(
        ok=pl.when("plain").then(raw).otherwise(pl.col("checked"))
    )
    refused = pairs.filter(pl.col("why").is_not_null()).select(
        "code", pl.col("ch").replace_strict(dict(enumerate(_ADDRESS_FIELDS))), "why"
    )
    report.refused.extend(refused.iter_rows())
    pairs = pairs.filter(pl.col("ok").is_not_null())
    days = pl.concat([pairs["address_on"], pairs["consent_on"]]).unique().drop_nulls()
    starts = {day: clock.day_start(day) for day in days.to_list()}
    return pairs.select(
        "code",
        "ch",
        "ok",
        given=pl.max_horizontal("address_on", "consent_on").replace_strict(
            starts, return_dtype=_MOMENT
        ),
        actor=pl.col("source").str.slice(0, 64),
    )


def _new_subscriptions(wanted: pl.DataFrame, now: datetime) -> pl.DataFrame:
    """The subscriptions the registry creates for these consented pairs: one per enterprise,
    each pair's address and consent moment in its channel's columns, and the grants kept on it
    when they have one actor."""
    channel = pl.col("ch")
    per_channel: list[pl.Expr] = []
    for index, (_, _, _, attr) in enumerate(REGISTRY_FIELDS):
        per_channel.append(pl.col("ok").filter(channel == index).first().alias(attr))
        per_channel.append(
            pl.col("given").filter(channel == index).first().alias(f"{_CHANNELS[index]}_consent_at")
        )
    one = pl.col("actor").n_unique() == 1
    subs = wanted.group_by("code", maintain_order=True).agg(
        *per_channel, grants_by=pl.when(one).then(pl.col("actor").first())
    )
    hooks = subs["webhook_url"].is_not_null()
    secrets_ = [secrets.token_hex(32) if hook else None for hook in hooks.to_list()]
    return subs.select(
        credit_code="code",
        email="email",
        phone="phone",
        webhook_url="webhook_url",
        webhook_secret=pl.Series(secrets_, dtype=pl.Utf8),
        email_consent_at="email_consent_at",
        sms_consent_at="sms_consent_at",
        webhook_consent_at="webhook_consent_at",
        muted_topics=pl.lit("[]"),
        quiet_start=pl.lit(None, pl.Int64),
        quiet_end=pl.lit(None, pl.Int64),
        daily_cap=pl.lit(5, pl.Int64),
        updated_at=pl.lit(now, _MOMENT),
        updated_by=pl.lit(REGISTRY_VIA),
        registry_grants_by="grants_by",
    )


def _insert_frame(session: Session, table: Table, frame: pl.DataFrame) -> None:
    """Insert a frame's rows (its columns are the table's): one CSV COPY on PostgreSQL, an
    executemany elsewhere, each distinct moment bound as the column's type binds it."""
    if frame.is_empty():
        return
    columns = frame.columns
    if session.connection().dialect.name == "postgresql":
        ent_repo.insert_frame(session, table, columns, frame)
        return
    dialect = session.connection().dialect
    bound: list[pl.Expr] = []
    for name in columns:
        if frame.schema[name] == _MOMENT:
            bind = table.c[name].type._cached_bind_processor(dialect)
            moments = frame[name].drop_nulls().unique().to_list()
            mapping = {m: bind(m) if bind else m for m in moments}
            bound.append(pl.col(name).replace_strict(mapping, default=None, return_dtype=pl.Utf8))
        else:
            bound.append(pl.col(name))
    note_write(session)  # driver SQL passes by the ORM's record of writes
    marks = ", ".join("?" for _ in columns)
    session.connection().exec_driver_sql(
        f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({marks})",  # noqa: S608
        frame.select(bound).rows(),
    )


def _insert(
    session: Session, table: Table, columns: list[str], rows: Sequence[Sequence[Any]]
) -> None:
    """Insert the rows the sync creates: on PostgreSQL as one CSV text COPY made by Polars
    (psycopg formats a COPY row by row in Python, several times slower), elsewhere through
    ``insert_rows``."""
    if not rows:
        return
    if session.connection().dialect.name != "postgresql":
        insert_rows(session, table, columns, rows)
        return
    schema = {name: _FRAME_TYPES[name] for name in columns}
    topics = columns.index("muted_topics") if "muted_topics" in columns else None
    # the registry creates subscriptions without muted topics: their JSON is an empty list
    listed = [
        [*row[:topics], "[]", *row[topics + 1 :]] if topics is not None else row for row in rows
    ]
    ent_repo.insert_frame(
        session, table, columns, pl.DataFrame(listed, schema=schema, orient="row")
    )


def on_enterprise_changed(session: Session, event: EnterpriseChanged) -> None:
    """Registry changes update the subscriptions from contact and consent values (handler)."""
    sync_subscriptions_from_registry(session, event.codes, created=event.created_values)
