"""The registry sync works on a whole batch at once (a bulk import's): what it stores for a
realistic mixed batch is what the rules give one enterprise at a time — valid, invalid,
duplicate, changed and withdrawn contacts, consent on and off, settings the enterprise chose
itself — and its shortcut for plain addresses accepts exactly what the settings page accepts."""

from __future__ import annotations

from datetime import date
from functools import partial
from pathlib import Path
from typing import Any

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from huiqi.core.clock import day_start
from huiqi.core.codes import make_credit_code
from huiqi.enterprise import repository as ent_repo
from huiqi.enterprise import service as registry
from huiqi.enterprise.importer import run_import
from huiqi.enterprise.population import write_file
from huiqi.notify import service
from huiqi.notify.models import Channel, ConsentEvent, Subscription
from huiqi.notify.registry_sync import plain_address, sync_subscriptions_from_registry
from huiqi.notify.schemas import (
    SettingsError,
    SettingsInput,
    check_email,
    check_phone,
    check_webhook_url,
)

BEFORE, NOW = date(2024, 3, 1), date(2024, 6, 1)
SOURCE = "self-reported"


def _code(n: int) -> str:
    return make_credit_code("9", "1", "620102", f"MA7{n:05d}")


def _load(session: Session, batch: dict[str, dict[str, Any]], on: date, *, notify: bool) -> None:
    """Registry values for several enterprises in one upsert, as a batch of an import."""
    items = []
    for code, values in batch.items():
        item = registry.Incoming(code)
        for name, value in values.items():
            item.values[(name, 0)] = (value, SOURCE, on)
        items.append(item)
    registry.upsert(session, items, notify=notify)


def _state(session: Session, codes: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Per enterprise: its subscription's addresses and which consents it holds (and since
    when, for those the registry dated), and its consent events in order; the moments the sync
    stamps itself (now) and the random webhook secret are left out."""
    session.flush()
    subs: dict[str, Any] = {}
    for sub in session.scalars(select(Subscription).where(Subscription.credit_code.in_(codes))):
        subs[sub.credit_code] = (
            sub.email, sub.phone, sub.webhook_url, bool(sub.webhook_secret),
            sub.email_consent_at is not None, sub.sms_consent_at is not None,
            sub.webhook_consent_at is not None,
        )  # fmt: skip
    # the history as the settings page reads it: the grants kept on a subscription included
    events: dict[str, list[Any]] = {}
    for code in codes:
        for e in reversed(service.consent_history(session, code)):
            events.setdefault(code, []).append((e.channel, e.granted, e.via, e.actor, e.address))
    return subs, events


E = [_code(n) for n in range(14)]
# what each enterprise holds before the batch (recorded through the hook, one at a time)
SEED: dict[str, dict[str, Any]] = {
    E[7]: {"contact_email": "old@x.example.cn", "consent_email": True},
    E[8]: {"contact_phone": "13911112222", "consent_phone": True},
    E[9]: {"contact_email": "gone@x.example.cn", "consent_email": True},
    E[11]: {"contact_email": "same@x.example.cn", "consent_email": True},
    E[13]: {"contact_email": "kept@x.example.cn", "consent_email": True},
}
# the batch
BATCH: dict[str, dict[str, Any]] = {
    E[1]: {"contact_email": "a@x.example.cn", "consent_email": True},  # plain, new
    E[2]: {"contact_email": "not an address", "consent_email": True},  # refused
    # not plain: the full check normalises them; E4 repeats E3's address
    E[3]: {"contact_email": "Shared@Example.CN", "consent_email": True,
           "contact_phone": "+86 139-1234-5678", "consent_phone": True},
    E[4]: {"contact_email": "Shared@Example.CN", "consent_email": True},
    E[5]: {"contact_email": "b@x.example.cn", "consent_email": False},  # no consent
    E[6]: {"contact_webhook": "http://10.0.0.1/hook", "consent_webhook": True,  # private
           "contact_phone": "13800000000", "consent_phone": True},
    E[7]: {"contact_email": "new@x.example.cn"},  # changed address, consent stands
    E[8]: {"consent_phone": False},  # the registry withdraws
    E[9]: {"consent_email": False},  # withdrawn after the enterprise unsubscribed itself
    E[10]: {"contact_email": "reg@x.example.cn", "consent_email": True},  # own settings before
    E[11]: {"contact_email": "same@x.example.cn", "consent_email": True},  # unchanged
    E[12]: {"contact_email": "INFO@x.example.cn", "consent_email": True,  # RFC 2142 name
            "contact_webhook": "https://hooks.example.cn/12", "consent_webhook": True},
    E[13]: {"contact_email": "bad address now"},  # the registry's address turns invalid
}  # fmt: skip
REG = ("registry", SOURCE)
EXPECTED_SUBS = {
    E[1]: ("a@x.example.cn", None, None, False, True, False, False),
    E[3]: ("Shared@example.cn", "13912345678", None, False, True, True, False),
    E[4]: ("Shared@example.cn", None, None, False, True, False, False),
    E[6]: (None, "13800000000", None, False, False, True, False),
    E[7]: ("new@x.example.cn", None, None, False, True, False, False),
    E[8]: (None, "13911112222", None, False, False, False, False),
    E[9]: ("gone@x.example.cn", None, None, False, False, False, False),
    E[10]: ("reg@x.example.cn", None, None, False, True, False, False),
    E[11]: ("same@x.example.cn", None, None, False, True, False, False),
    E[12]: ("info@x.example.cn", None, "https://hooks.example.cn/12", True, True, False, True),
    E[13]: ("kept@x.example.cn", None, None, False, False, False, False),
}
EXPECTED_EVENTS = {
    E[1]: [("email", True, *REG, "a@x.example.cn")],
    E[3]: [("email", True, *REG, "Shared@example.cn"), ("sms", True, *REG, "13912345678")],
    E[4]: [("email", True, *REG, "Shared@example.cn")],
    E[6]: [("sms", True, *REG, "13800000000")],
    E[7]: [("email", True, *REG, "old@x.example.cn"), ("email", False, "registry", None, None),
           ("email", True, *REG, "new@x.example.cn")],
    E[8]: [("sms", True, *REG, "13911112222"), ("sms", False, *REG, "13911112222")],
    E[9]: [("email", True, *REG, "gone@x.example.cn"),
           ("email", False, "unsubscribe_link", None, None),
           ("email", False, *REG, "gone@x.example.cn")],
    E[10]: [("email", True, "settings", "enterprise", "own@x.example.cn"),
            ("email", False, "registry", None, None), ("email", True, *REG, "reg@x.example.cn")],
    E[11]: [("email", True, *REG, "same@x.example.cn")],
    E[12]: [("email", True, *REG, "info@x.example.cn"),
            ("webhook", True, *REG, "https://hooks.example.cn/12")],
    E[13]: [("email", True, *REG, "kept@x.example.cn"), ("email", False, *REG, "kept@x.example.cn")],
}  # fmt: skip
EXPECTED_REFUSED = [(E[2], "contact_email"), (E[6], "contact_webhook"), (E[13], "contact_email")]


def _seed(session: Session) -> None:
    for code, values in SEED.items():
        _load(session, {code: values}, BEFORE, notify=True)
    service.save_settings(
        session,
        E[10],
        SettingsInput.parse(email="own@x.example.cn", consent_email=True),
        actor="enterprise",
        via="settings",
    )
    assert service.unsubscribe(session, E[9], "email") == ["email"]
    # the batch's values are stored without the hook: the sync below is what applies them
    _load(session, BATCH, NOW, notify=False)


def test_a_mixed_batch_gives_what_one_enterprise_at_a_time_gives(db_session: Session) -> None:
    _seed(db_session)
    savepoint = db_session.begin_nested()
    report = sync_subscriptions_from_registry(db_session, E, allow_private_webhooks=False)
    at_once = _state(db_session, E)
    savepoint.rollback()
    one_by_one = [
        sync_subscriptions_from_registry(db_session, [code], allow_private_webhooks=False)
        for code in E
    ]
    assert _state(db_session, E) == at_once
    assert at_once == (EXPECTED_SUBS, EXPECTED_EVENTS)
    assert [(code, name) for code, name, _why in report.refused] == EXPECTED_REFUSED
    assert report.refused == [r for each in one_by_one for r in each.refused]
    assert report.granted == [g for each in one_by_one for g in each.granted]
    assert report.withdrawn == [(E[8], "sms"), (E[13], "email")]
    # consent dated by the registry values it rests on
    sub = service.get_subscription(db_session, E[1])
    assert sub is not None and sub.email_consent_at is not None
    assert sub.email_consent_at.replace(tzinfo=None) == day_start(NOW).replace(tzinfo=None)
    # and a second run finds nothing to do
    again = sync_subscriptions_from_registry(db_session, E, allow_private_webhooks=False)
    assert again.granted == [] and again.withdrawn == []
    assert _state(db_session, E) == at_once


# enterprises a change creates: the sync takes them from the values handed over, as frames
CREATED: dict[str, dict[str, Any]] = {
    code: values
    for code, values in BATCH.items()
    if code in (E[1], E[2], E[3], E[4], E[5], E[6], E[12])
}


def test_enterprises_a_change_created_are_synced_as_the_database_would_sync_them(
    db_session: Session,
) -> None:
    """Handed the new enterprises' values (as an import hands them), the sync stores and reports
    what it stores reading them from the database, an enterprise that set up its subscription
    before the registry knew it included."""
    service.save_settings(
        db_session,
        E[4],
        SettingsInput.parse(phone="13700000000", consent_sms=True),
        actor="enterprise",
        via="settings",
    )
    _load(db_session, CREATED, NOW, notify=False)
    codes = sorted(CREATED)
    created = ent_repo.live_value_frame(db_session, codes)
    savepoint = db_session.begin_nested()
    read = sync_subscriptions_from_registry(db_session, codes, allow_private_webhooks=False)
    from_database = _state(db_session, codes)
    savepoint.rollback()
    handed = sync_subscriptions_from_registry(
        db_session, codes, allow_private_webhooks=False, created=created
    )
    assert _state(db_session, codes) == from_database
    assert (handed.granted, handed.withdrawn, handed.refused) == (
        read.granted, read.withdrawn, read.refused,
    )  # fmt: skip
    subs, events = from_database
    assert subs[E[4]] == ("Shared@example.cn", "13700000000", None, False, True, True, False)
    assert events[E[4]][0][:3] == ("sms", True, "settings")
    assert [(code, name) for code, name, _ in handed.refused] == [
        (E[2], "contact_email"), (E[6], "contact_webhook"),
    ]  # fmt: skip


def test_grants_kept_on_a_subscription_read_and_change_as_written_ones(
    db_session: Session,
) -> None:
    """The grants of a subscription created for a new enterprise are kept on it, not written
    as events, until it first changes; its history, and what later changes record, are what
    they are when the grants are written as events (the enterprise is synced as known one)."""
    codes = sorted(CREATED)
    _load(db_session, CREATED, BEFORE, notify=False)
    created = ent_repo.live_value_frame(db_session, codes)

    def run(kept: bool) -> tuple[dict[str, str | None], int, Any]:
        savepoint = db_session.begin_nested()
        sync_subscriptions_from_registry(
            db_session, codes, allow_private_webhooks=False, created=created if kept else None
        )
        db_session.flush()
        held = {
            sub.credit_code: sub.registry_grants_by
            for sub in db_session.scalars(select(Subscription))
        }
        written = db_session.scalar(select(func.count()).select_from(ConsentEvent))
        seeded = _state(db_session, codes)
        # then the registry changes an address and withdraws a consent, an enterprise
        # unsubscribes, another saves its settings, and the registry is synced again
        changes = {E[1]: {"contact_email": "a2@x.example.cn"}, E[3]: {"consent_phone": False}}
        _load(db_session, changes, NOW, notify=False)
        sync_subscriptions_from_registry(db_session, codes, allow_private_webhooks=False)
        assert service.unsubscribe(db_session, E[4], "email") == ["email"]
        service.save_settings(
            db_session,
            E[12],
            SettingsInput.parse(email="info@x.example.cn", consent_email=True),
            actor="enterprise",
        )
        again = sync_subscriptions_from_registry(db_session, codes, allow_private_webhooks=False)
        assert again.granted == [] and again.withdrawn == []
        state = (seeded, _state(db_session, codes))
        savepoint.rollback()
        return held, int(written or 0), state

    kept, written = run(kept=True), run(kept=False)
    assert kept[2] == written[2]
    assert kept[0] == {E[1]: SOURCE, E[3]: SOURCE, E[4]: SOURCE, E[6]: SOURCE, E[12]: SOURCE}
    assert written[0] == dict.fromkeys(kept[0])
    assert (kept[1], written[1]) == (0, 7)
    _, after = kept[2]
    assert after[1][E[1]] == [
        ("email", True, *REG, "a@x.example.cn"), ("email", False, "registry", None, None),
        ("email", True, *REG, "a2@x.example.cn"),
    ]  # fmt: skip
    assert after[1][E[3]][-1] == ("sms", False, *REG, "13912345678")
    assert after[1][E[4]] == [
        ("email", True, *REG, "Shared@example.cn"), ("email", False, "unsubscribe_link", None, None)
    ]  # fmt: skip


def test_an_import_applies_the_batch_it_holds_as_a_sync_of_the_database_would(
    session_maker: sessionmaker[Session], tmp_path: Path
) -> None:
    """The import hands its new enterprises' values to the sync, which does not read them back:
    a sync reading them from the database afterwards finds nothing to change, and a re-import
    creates nothing."""
    contacts = {
        E[1]: {"contact_email": "a@x.example.cn", "consent_email": "是"},
        E[3]: {"contact_email": "Shared@Example.CN", "consent_email": "是",
               "contact_phone": "13912345678", "consent_phone": "是"},
        E[4]: {"contact_email": "Shared@Example.CN", "consent_email": "是"},
        E[5]: {"contact_email": "b@x.example.cn", "consent_email": "否"},
        E[6]: {"contact_webhook": "http://10.0.0.1/hook", "consent_webhook": "是"},
        E[12]: {"contact_email": "INFO@x.example.cn", "consent_email": "是",
                "contact_webhook": "https://hooks.example.cn/12", "consent_webhook": "是"},
    }  # fmt: skip
    rows = [
        {"credit_code": code, "name": f"企业{i}", "industry_code": "3311", "as_of": "2024-06-01"}
        | values
        for i, (code, values) in enumerate(contacts.items())
    ]
    src = tmp_path / "contacts.csv"
    write_file(rows, src)
    with session_maker() as s:
        # a subscription the enterprise set up before the registry knew it
        service.save_settings(
            s, E[4], SettingsInput.parse(phone="13700000000", consent_sms=True), actor="enterprise"
        )
        s.commit()
    assert run_import(session_maker, src, batch_size=3).inserted == len(rows)
    with session_maker() as s:
        subs, events = _state(s, E)
        assert subs == {
            E[1]: ("a@x.example.cn", None, None, False, True, False, False),
            E[3]: ("Shared@example.cn", "13912345678", None, False, True, True, False),
            E[4]: ("Shared@example.cn", "13700000000", None, False, True, True, False),
            E[12]: ("info@x.example.cn", None, "https://hooks.example.cn/12", True, True, False,
                    True),
        }  # fmt: skip
        assert sum(len(listed) for listed in events.values()) == 6 + 1  # + E4's own SMS consent
        again = sync_subscriptions_from_registry(s, E, allow_private_webhooks=False)
        assert again.granted == [] and again.withdrawn == []
        assert [(c, name) for c, name, _ in again.refused] == [(E[6], "contact_webhook")]
    assert run_import(session_maker, src, batch_size=3).unchanged == len(rows)
    with session_maker() as s:
        assert _state(s, E) == (subs, events)
        assert s.scalar(select(func.count()).select_from(Subscription)) == len(subs)


def _accepted(check: Any, raw: str) -> str | None:
    try:
        return str(check(raw))
    except SettingsError:
        return None


def _plain(channel: Channel, addresses: list[str]) -> list[bool]:
    frame = pl.DataFrame({"a": addresses}, schema={"a": pl.Utf8})
    return frame.select(plain_address(channel, pl.col("a")).alias("plain"))["plain"].to_list()


PLAIN_EMAILS = ["contact1@abc123.example.cn", "a.b-c_d+e@mail-1.example.com", "X@y.io"]
NOT_PLAIN_EMAILS = [
    "Info@x.example.cn", "POSTMASTER@x.cn", "a@x.test", "a@sub.localhost", "a@x.arpa",
    "a@EXAMPLE.cn", "a@xn--fiqs8s.cn", "a@ab--c.cn", " a@x.cn", "a@x.cn\n", "a..b@x.cn",
    ".a@x.cn", "a@x", "a@x.c0m", "a@-x.cn", "a@x-.cn", "a@[10.0.0.1]", '"a b"@x.cn',
    "张三@x.cn", "a@例子.cn", "a@x．cn", "a" * 60 + "@x.cn", "a@b@x.cn", "",
]  # fmt: skip


def test_plain_addresses_are_the_ones_the_full_check_returns_unchanged() -> None:
    assert _plain(Channel.email, PLAIN_EMAILS) == [True] * len(PLAIN_EMAILS)
    assert _plain(Channel.email, NOT_PLAIN_EMAILS) == [False] * len(NOT_PLAIN_EMAILS)
    for address in PLAIN_EMAILS:
        assert check_email(address) == address
    assert _plain(Channel.sms, ["13912345678", "139 1234 5678", "+8613912345678", "12912345678"]) == [
        True, False, False, False,
    ]  # fmt: skip
    assert _plain(Channel.webhook, PLAIN_WEBHOOKS) == [True] * len(PLAIN_WEBHOOKS)
    assert _plain(Channel.webhook, NOT_PLAIN_WEBHOOKS) == [False] * len(NOT_PLAIN_WEBHOOKS)
    for url in PLAIN_WEBHOOKS:
        for private in (False, True):
            assert check_webhook_url(url, allow_private=private) == url


PLAIN_WEBHOOKS = [
    "https://hooks.example.cn/91620102MA7000018E", "http://a-b.c--d.example.com", "https://x.io/",
    "https://h.example.cn/a/b_c.d~e-f/",
]  # fmt: skip
NOT_PLAIN_WEBHOOKS = [
    "https://localhost/x", "https://a.localhost/x", "http://10.0.0.1/x", "https://127.0.0.1",
    "https://HOOKS.example.cn/x", "https://u:p@h.example.cn/x", "https://h.example.cn:8443/x",
    "ftp://h.example.cn/x", "https://h.example.cn/x?a=1", " https://h.example.cn/x",
    "https://h.example.cn/x\n", "https://-h.example.cn/x", "https://h.example.c0m/x",
    "https://h.example.cn/" + "x" * 500, "https://例子.cn/x", "https://h..example.cn/x", "",
]  # fmt: skip


_EMAIL_CHARS = 'aZ09._+-@ \t\n"<>()[]:;,xn-ÉéK中．'
_labels = st.text("abcxyzXn0-9-", min_size=0, max_size=8)
_emails = st.one_of(
    st.text(_EMAIL_CHARS, max_size=24),
    st.builds(
        lambda local, labels, tld: f"{local}@{'.'.join(labels)}.{tld}",
        st.text('aB0._+-"!#', max_size=10),
        st.lists(_labels, min_size=0, max_size=3),
        st.sampled_from(["cn", "com", "test", "local", "onion", "arpa", "c0", "CN", "xn--p1ai"]),
    ),
    st.builds(
        lambda name, host: f"{name}@{host}",
        st.sampled_from(["info", "Sales", "WWW", "abuse", "infox"]),
        st.sampled_from(["x.example.cn", "X.example.cn"]),
    ),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_emails, min_size=1, max_size=20))
def test_a_plain_email_address_is_accepted_unchanged(addresses: list[str]) -> None:
    for address, plain in zip(addresses, _plain(Channel.email, addresses), strict=True):
        if plain:
            assert _accepted(check_email, address) == address


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text("0123456789 -+1３", max_size=16), min_size=1, max_size=20))
def test_a_plain_mobile_number_is_accepted_unchanged(numbers: list[str]) -> None:
    for number, plain in zip(numbers, _plain(Channel.sms, numbers), strict=True):
        if plain:
            assert _accepted(check_phone, number) == number


_hosts = st.lists(st.text("abcXn0-9-_.", min_size=0, max_size=8), min_size=1, max_size=4)
_webhooks = st.one_of(
    st.text("htps:/.aZ0-@[]%?#~_ \n", max_size=30),
    st.builds(
        lambda scheme, labels, tld, path: f"{scheme}://{'.'.join(labels)}.{tld}{path}",
        st.sampled_from(["http", "https", "HTTPS", "ftp"]),
        _hosts,
        st.sampled_from(["cn", "com", "localhost", "c0", "CN", "1"]),
        st.text("/aZ0._~-:?#%@ ", max_size=12),
    ),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_webhooks, min_size=1, max_size=20))
def test_a_plain_webhook_url_is_accepted_unchanged(urls: list[str]) -> None:
    for url, plain in zip(urls, _plain(Channel.webhook, urls), strict=True):
        if plain:
            for private in (False, True):
                assert _accepted(partial(check_webhook_url, allow_private=private), url) == url
