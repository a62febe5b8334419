"""Values recorded compactly (one pack per new enterprise) read the same as per-field value rows."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from huiqi.core.codes import make_credit_code
from huiqi.core.db import utcnow
from huiqi.enterprise import repository as repo
from huiqi.enterprise import service
from huiqi.enterprise.importer import run_import
from huiqi.enterprise.models import EnterpriseValue, EnterpriseValuePack
from huiqi.enterprise.population import generate, write_file

TODAY = date(2025, 6, 30)
FIELDS = ["name", "region_code", "employees", "revenue", "cert_high_tech_from", "graduate_hires"]


def _moment(value: datetime) -> datetime:
    """Timestamps compared as instants (SQLite hands them back without their zone)."""
    return value.replace(tzinfo=None)


def _answers(s: Session, code: str) -> dict[str, Any]:
    """What every reader of values with provenance says about one enterprise (ids left out)."""
    ent = repo.get_by_code(s, code)
    assert ent is not None
    eid = ent.id
    current, history = service.profile_values(s, code)
    years = sorted({y for _c, _f, y, _v, _a, _s in repo.live_values(s, [code])})
    return {
        "current_values": sorted(r[2:] for r in repo.current_values(s, [eid])),
        "values_at_now": sorted(r[2:] for r in repo.values_at(s, utcnow()) if r[0] == eid),
        "values_before": sorted(
            r[2:] for r in repo.values_at(s, datetime(2000, 1, 1)) if r[0] == eid
        ),
        "history": [
            (v.field, v.year, v.value, v.source, v.as_of, v.recorded_by, _moment(v.recorded_at))
            + (None if v.superseded_at is None else _moment(v.superseded_at),)
            for v in repo.value_history(s, eid)
        ],
        "live": sorted(r[1:] for r in repo.live_values(s, [code])),
        "live_all_profile": sorted(
            r[1:] for r in repo.live_values(s, None, FIELDS, year=0) if r[0] == code
        ),
        "sources": sorted(repo.value_sources(s, code, iter(FIELDS))),
        "sources_many": sorted(repo.value_sources_many(s, [code], FIELDS)[code]),
        "latest_elsewhere": [
            repo.latest_value_not_from(s, code, f, years or [0], "self-reported") for f in FIELDS
        ],
        "profile_current": [(v.field.name, v.year, v.shown, v.source, v.as_of) for v in current],
        "profile_history": [(v.field.name, v.year, v.shown, v.source, v.as_of) for v in history],
        "frame": service.current_frame(s, credit_codes=[code]).drop("credit_code").to_dicts(),
        "frame_as_of": service.current_frame(s, as_of=TODAY, credit_codes=[code])
        .drop("credit_code")
        .to_dicts(),
    }


def _forms(s: Session, code: str) -> tuple[int, int]:
    """(pack rows, value rows) of one enterprise."""
    ent = repo.get_by_code(s, code)
    assert ent is not None
    packs = s.scalar(
        select(func.count())
        .select_from(EnterpriseValuePack)
        .where(EnterpriseValuePack.enterprise_id == ent.id)
    )
    rows = s.scalar(
        select(func.count())
        .select_from(EnterpriseValue)
        .where(EnterpriseValue.enterprise_id == ent.id)
    )
    return packs or 0, rows or 0


def _twins(tmp_path: Path) -> tuple[Path, str, str]:
    """A generated file with two enterprises of identical values (a quote and newline in the
    name), only their credit codes differ."""
    rows = generate(6, seed=11)
    twin = dict(rows[0])
    rows[0]["name"] = twin["name"] = '兰州"天陇"\\油料 合作社'
    twin["credit_code"] = make_credit_code("9", "1", twin["region_code"], "MA7TW000")
    rows.append(twin)
    src = tmp_path / "twins.csv"
    write_file(rows, src)
    return src, rows[0]["credit_code"], twin["credit_code"]


def test_readers_answer_the_same_for_a_pack_and_for_value_rows(
    session_maker: sessionmaker[Session], tmp_path: Path
) -> None:
    src, packed, rows = _twins(tmp_path)
    report = run_import(session_maker, src, today=TODAY)
    assert report.counts()["inserted"] == 7
    with session_maker() as s:
        ent = repo.get_by_code(s, rows)
        assert ent is not None
        repo.unpack(s, [ent.id], utcnow())
        s.commit()
    with session_maker() as s:
        assert _forms(s, packed)[0] == 1 and _forms(s, packed)[1] == 0
        assert _forms(s, rows)[0] == 0 and _forms(s, rows)[1] > 5
        compact, by_rows = _answers(s, packed), _answers(s, rows)
    assert compact["history"] and compact["sources"] and compact["frame"]
    assert compact["values_before"] == []
    assert {v[3] for v in compact["history"]} >= {"市场监管", "税务"}
    assert compact["frame"][0]["name"] == '兰州"天陇"\\油料 合作社'
    assert compact == by_rows
    assert compact["sources_many"] == compact["sources"]
    # one read for many enterprises, each stored in its own form, answers as one read each
    with session_maker() as s:
        both = repo.value_sources_many(s, [rows, packed, "91620102MA7NONE000"], iter(FIELDS))
    assert set(both) == {packed, rows}
    assert sorted(both[packed]) == sorted(both[rows]) == compact["sources"]

    # the same change to both: the pack becomes value rows, the replaced value is history
    change = {("employees", 2024): (321, "self-reported", TODAY), ("srdi_score", 0): (88, "self-reported", TODAY)}  # fmt: skip
    with session_maker() as s:
        outcome = service.upsert(
            s,
            [service.Incoming(packed, dict(change)), service.Incoming(rows, dict(change))],
            recorded_by="企业用户",
        )
        s.commit()
    assert outcome == {packed: "updated", rows: "updated"}
    with session_maker() as s:
        assert _forms(s, packed)[0] == 0
        after, after_rows = _answers(s, packed), _answers(s, rows)
    assert after == after_rows
    superseded = [h for h in after["history"] if h[7] is not None]
    assert [(h[0], h[1]) for h in superseded] == [("employees", 2024)]
    assert after["frame"][0]["employees"] == 321
    assert after["frame_as_of"] == compact["frame_as_of"]  # as the registry stood on TODAY


def test_reimport_leaves_packs_alone_and_counts_every_value(
    session_maker: sessionmaker[Session], tmp_path: Path
) -> None:
    rows = generate(40, seed=3)
    src = tmp_path / "pop.csv"
    write_file(rows, src)
    run_import(session_maker, src, today=TODAY, batch_size=15)
    with session_maker() as s:
        packs = s.scalar(select(func.count()).select_from(EnterpriseValuePack))
        assert s.scalar(select(func.count()).select_from(EnterpriseValue)) == 0
        before = repo.value_count(s), service.current_frame(s)
    again = run_import(session_maker, src, today=TODAY, batch_size=15)
    assert again.counts()["unchanged"] == 40
    with session_maker() as s:
        assert s.scalar(select(func.count()).select_from(EnterpriseValuePack)) == packs == 40
        assert (
            repo.value_count(s)
            == before[0]
            == sum(
                1
                for r in rows
                for k, v in r.items()
                if v and k not in ("credit_code", "year", "as_of")
            )
        )
        assert service.current_frame(s).equals(before[1])
    # one row changed in the file: only that enterprise turns into value rows
    rows[5]["employees"] = str(int(rows[5]["employees"] or 0) + 7)
    write_file(rows, src)
    assert run_import(session_maker, src, today=TODAY).counts()["updated"] == 1
    with session_maker() as s:
        assert s.scalar(select(func.count()).select_from(EnterpriseValuePack)) == 39
        assert repo.value_count(s) == before[0] + 1
        frame = service.current_frame(s).filter(pl.col("credit_code") == rows[5]["credit_code"])
        assert frame["employees"].item() == int(rows[5]["employees"])


def test_pack_entries_are_json_whatever_the_text(monkeypatch: Any) -> None:
    import json

    texts = ["plain", '引"号', "back\\slash", "line\nbreak", "tab\tand\x01", "é/ü", ""]
    values = pl.DataFrame(
        {
            "enterprise_id": [1] * len(texts) + [2, 2],
            "field": ["name"] * len(texts) + ["employees", "revenue"],
            "year": [0] * len(texts) + [2024, 2024],
            "value": [*texts, "12", "300"],
            "source": ["市场监管"] * len(texts) + ["人社", "税务"],
            "as_of": [date(2025, 3, 31)] * (len(texts) + 1) + [date(2024, 12, 31)],
        }
    )
    written: dict[str, pl.DataFrame] = {}
    monkeypatch.setattr(repo, "insert_frame", lambda _s, t, _c, frame: written.update(p=frame))
    repo.add_packs(None, values, recorded_at=utcnow(), recorded_by=None)  # type: ignore[arg-type]
    packs = written["p"].sort("enterprise_id")
    assert packs["source"].to_list() == ["市场监管", "人社"]
    assert [json.loads(e) for e in packs["entries"]] == [
        [["name", "0", t] for t in texts],
        [["employees", "2024", "12"], ["revenue", "2024", "300", "税务", "2024-12-31"]],
    ]
