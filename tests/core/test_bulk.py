"""Set-based writes: insert_ignoring stores each key once, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import Table, event, select, text
from sqlalchemy.orm import Session

from huiqi.core.bulk import JsonText, insert_ignoring, insert_rows, one_of
from huiqi.core.db import ANALYSE_FROM, has_writes, refresh_statistics, utcnow
from huiqi.notify.models import Notification

TABLE: Table = Notification.__table__  # type: ignore[assignment]


def _row(key: str, **extra: Any) -> dict[str, Any]:
    return {
        "credit_code": "91620102MA72H8K3X0",
        "topic": "policy_match",
        "subject": f"主题 {key}",
        "body": "正文\n第二行\t含制表符 \\ 反斜杠",
        "link": "/notify/inbox",
        "dedupe_key": key,
        "deadline": date(2025, 7, 1),
        "created_at": utcnow(),
        "covers": ["rule-a", "rule-b"],
        **extra,
    }


def _stored(s: Session) -> dict[str, tuple[Any, ...]]:
    rows = s.execute(
        select(
            Notification.dedupe_key,
            Notification.id,
            Notification.body,
            Notification.deadline,
            Notification.covers,
        )
    )
    return {r[0]: tuple(r[1:]) for r in rows}


def test_insert_ignoring_stores_each_key_once_and_returns_the_new_ids(db_session: Session) -> None:
    got = insert_ignoring(
        db_session, TABLE, [_row("k1"), _row("k2")], ["dedupe_key"], returning=("id", "dedupe_key")
    )
    assert sorted(k for _, k in got) == ["k1", "k2"]
    first = _stored(db_session)
    assert {k: v[0] for k, v in first.items()} == {k: int(i) for i, k in got}
    assert first["k1"][1:] == (
        "正文\n第二行\t含制表符 \\ 反斜杠",
        date(2025, 7, 1),
        ["rule-a", "rule-b"],
    )

    # in the same transaction: an existing key and a repeated one are skipped, the rest stored
    again = insert_ignoring(
        db_session,
        TABLE,
        [_row("k2", subject="changed"), _row("k3", covers=None), _row("k3")],
        ["dedupe_key"],
        returning=("id", "dedupe_key"),
    )
    assert [k for _, k in again] == ["k3"]
    stored = _stored(db_session)
    assert set(stored) == {"k1", "k2", "k3"}
    assert stored["k2"] == first["k2"]
    assert db_session.scalar(
        select(Notification.subject).where(Notification.dedupe_key == "k2")
    ) == ("主题 k2")

    # nothing new: nothing returned; without returning columns: nothing to return
    assert insert_ignoring(db_session, TABLE, [_row("k1")], ["dedupe_key"], ("id",)) == []
    assert insert_ignoring(db_session, TABLE, [_row("k4"), _row("k1")], ["dedupe_key"]) == []
    assert set(_stored(db_session)) == {"k1", "k2", "k3", "k4"}


def test_insert_ignoring_after_a_rolled_back_attempt(db_session: Session) -> None:
    outer = db_session.begin_nested()
    insert_ignoring(db_session, TABLE, [_row("gone")], ["dedupe_key"])
    outer.rollback()
    assert _stored(db_session) == {}
    got = insert_ignoring(db_session, TABLE, [_row("gone"), _row("kept")], ["dedupe_key"], ("id",))
    assert len(got) == 2
    assert set(_stored(db_session)) == {"gone", "kept"}


def test_statistics_are_refreshed_only_for_tables_whose_rows_doubled(db_session: Session) -> None:
    """A bulk job asks after every batch; only the tables it grew twofold are analysed."""
    if db_session.get_bind().dialect.name != "postgresql":
        assert refresh_statistics(db_session) == []  # SQLite keeps no statistics to refresh
        return
    # Other tables' counts can arrive late (a backend sends its statistics at most once a
    # second), so only the table this test grows is asserted on.
    refresh_statistics(db_session)  # whatever the migrations and fixtures grew
    assert "notify_notification" not in refresh_statistics(db_session)  # nothing grew since

    def seen() -> float:
        return float(
            db_session.scalar(
                text("SELECT reltuples FROM pg_class WHERE relname = 'notify_notification'")
            )
        )

    rows = max(2 * int(seen()), ANALYSE_FROM) + 1
    insert_ignoring(db_session, TABLE, [_row(f"s{i}") for i in range(rows)], ["dedupe_key"])
    assert "notify_notification" in refresh_statistics(db_session)
    assert seen() >= rows
    insert_ignoring(db_session, TABLE, [_row(f"t{i}") for i in range(rows // 2)], ["dedupe_key"])
    # grown by half: the statistics still serve
    assert "notify_notification" not in refresh_statistics(db_session)


def test_bulk_writes_count_as_writes_so_a_request_commits_them(db_session: Session) -> None:
    """COPY and driver SQL pass by the ORM; a request that wrote only through them still commits."""

    db_session.execute(select(Notification.id)).all()
    assert not has_writes(db_session)
    insert_ignoring(db_session, TABLE, [_row("w1")], ["dedupe_key"], returning=("id",))
    assert has_writes(db_session)
    db_session.rollback()
    assert not has_writes(db_session)
    row = _row("w2")
    insert_rows(db_session, TABLE, list(row), [tuple(row.values())])
    assert has_writes(db_session)


def test_one_of_binds_any_number_of_values_as_one_parameter(db_session: Session) -> None:
    """Past 50 values (where psycopg stops keeping its parse of a statement) text and numbers
    alike match in one statement with one bound parameter; none matches nothing."""
    got = insert_ignoring(
        db_session,
        TABLE,
        [_row(f"m{i:03d}") for i in range(120)],
        ["dedupe_key"],
        returning=("id", "dedupe_key"),
    )
    ids = {str(key): int(nid) for nid, key in got}
    wanted = [f"m{i:03d}" for i in range(0, 120, 2)]
    seen: list[Any] = []

    def capture(*args: Any) -> None:
        seen.append(args[3])  # the statement's parameters

    bind = db_session.connection()
    event.listen(bind, "before_cursor_execute", capture)
    try:
        keys = db_session.scalars(
            select(Notification.dedupe_key).where(
                one_of(db_session, Notification.dedupe_key, [*wanted, "absent"])
            )
        ).all()
        found = db_session.scalars(
            select(Notification.id).where(
                one_of(db_session, Notification.id, [ids[k] for k in wanted])
            )
        ).all()
        none = db_session.scalars(
            select(Notification.id).where(one_of(db_session, Notification.id, []))
        ).all()
    finally:
        event.remove(bind, "before_cursor_execute", capture)
    assert sorted(keys) == wanted
    assert sorted(found) == sorted(ids[k] for k in wanted)
    assert none == []
    assert len(seen) == 3 and all(len(params) == 1 for params in seen)


def test_pre_encoded_json_is_stored_as_it_is(db_session: Session) -> None:
    """A JsonText value reaches its JSON column as the JSON it holds, by either bulk writer."""
    insert_ignoring(
        db_session, TABLE, [_row("j1", covers=JsonText('["r-1", "r-2"]'))], ["dedupe_key"]
    )
    row = _row("j2", covers=JsonText("[]"))
    insert_rows(db_session, TABLE, list(row), [tuple(row.values())])
    stored = _stored(db_session)
    assert stored["j1"][3] == ["r-1", "r-2"] and stored["j2"][3] == []
