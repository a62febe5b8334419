"""Registry services: provenance, history as of a date, the change hook, catalogue, CLI, schema."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest
from sqlalchemy import inspect
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from huiqi import events
from huiqi.cli.main import app as cli
from huiqi.core import clock
from huiqi.core.codes import make_credit_code
from huiqi.core.money import FEN_PER_WAN
from huiqi.enterprise import service
from huiqi.enterprise.catalogue import CatalogueError, catalogue, load_catalogue
from huiqi.enterprise.models import enterprise_current
from huiqi.events import EnterpriseChanged

CODE = make_credit_code("9", "1", "620503", "MA7TJH01")
CONTRACT = [
    "credit_code", "name", "region_code", "industry_code", "founded_on", "registered_capital",
    "ownership_type", "figures_year", "employees", "revenue", "total_assets", "rd_expense",
    "taxable_income", "export_revenue", "tax_credit_rating", "cert_high_tech_from", "cert_high_tech_to",
    "cert_tech_sme_from", "cert_tech_sme_to", "cert_innovative_sme_from", "cert_innovative_sme_to",
    "cert_srdi_sme_from", "cert_srdi_sme_to", "cert_little_giant_from", "cert_little_giant_to",
    "graduate_hires", "graduate_insurance_paid", "srdi_score", "size_class", "above_scale",
    "revenue_prior_year", "individual_business",
]  # fmt: skip


def test_frame_has_exactly_the_contract_columns(db_session: Session) -> None:
    service.apply_changes(
        db_session,
        CODE,
        {"name": "天水麦积示例", "industry_code": "3311"},
        source="市场监管",
        as_of=date(2024, 1, 1),
    )
    frame = service.current_frame(db_session)
    assert frame.columns == CONTRACT
    assert frame.schema["revenue"] == pl.Int64 and frame.schema["founded_on"] == pl.Date
    assert frame.schema["above_scale"] == pl.Boolean
    row = frame.row(0, named=True)
    assert row["employees"] is None and row["size_class"] is None  # unknown stays NULL, never 0
    assert set(c.name for c in enterprise_current.columns) == {"id", *CONTRACT}


def test_change_returns_codes_and_notifies_listeners(db_session: Session) -> None:
    seen: list[set[str]] = []

    def listener(_session: Session, event: EnterpriseChanged) -> None:
        seen.append(set(event.codes))

    events.subscribe(EnterpriseChanged, listener)
    try:
        first = service.apply_changes(
            db_session, CODE, {"employees": 50}, source="人社", as_of=date(2024, 12, 31), year=2024
        )
        same = service.apply_changes(
            db_session, CODE, {"employees": 50}, source="人社", as_of=date(2025, 1, 5), year=2024
        )
    finally:
        events.unsubscribe(EnterpriseChanged, listener)
    assert first == {CODE} and same == set()
    assert seen == [{CODE}]


def test_state_as_of_a_date_is_rebuilt_from_history(db_session: Session) -> None:
    service.apply_changes(
        db_session, CODE, {"industry_code": "3311"}, source="统计", as_of=date(2024, 1, 1)
    )
    service.apply_changes(
        db_session,
        CODE,
        {"employees": 120, "revenue": 5000 * FEN_PER_WAN},
        source="税务",
        as_of=date(2024, 12, 31),
        year=2024,
    )
    db_session.flush()
    today = clock.today()
    before = service.current_frame(db_session, as_of=today)
    assert before["size_class"].item() == "small"
    service.apply_changes(
        db_session, CODE, {"employees": 400}, source="人社", as_of=today, year=2024
    )
    assert service.current_frame(db_session)["size_class"].item() == "medium"
    # a moment before the change: the old value and class
    from sqlalchemy import select

    from huiqi.enterprise.models import EnterpriseValue

    rows = db_session.execute(
        select(EnterpriseValue.value, EnterpriseValue.source, EnterpriseValue.superseded_at)
        .where(EnterpriseValue.field == "employees")
        .order_by(EnterpriseValue.id)
    ).all()
    assert [(r.value, r.source) for r in rows] == [("120", "税务"), ("400", "人社")]
    assert rows[0].superseded_at is not None and rows[1].superseded_at is None
    assert service.current_frame(db_session, as_of=today - timedelta(days=1)).height == 0
    assert service.current_frame(db_session, as_of=today)["employees"].item() == 400


def test_graduate_hires_count_only_qualifying(db_session: Session) -> None:
    service.apply_changes(
        db_session, CODE, {"name": "x"}, source="市场监管", as_of=date(2024, 1, 1)
    )
    hires = [
        {"person_ref": "a", "graduated_on": date(2023, 6, 30), "hired_on": date(2024, 3, 1), "contract_months": 36, "social_insurance": True},
        {"person_ref": "b", "graduated_on": date(2020, 6, 30), "hired_on": date(2024, 3, 1), "contract_months": 36, "social_insurance": True},
        {"person_ref": "c", "graduated_on": date(2023, 6, 30), "hired_on": date(2024, 4, 1), "contract_months": 6, "social_insurance": True},
        {"person_ref": "d", "graduated_on": date(2023, 6, 30), "hired_on": date(2024, 5, 1), "contract_months": 12, "social_insurance": False},
    ]  # fmt: skip
    assert service.add_graduate_hires(
        db_session, CODE, hires, source="人社", as_of=date(2024, 12, 31)
    ) == {CODE}
    assert service.current_frame(db_session)["graduate_hires"].item() == 1


def test_catalogue_is_validated() -> None:
    cat = catalogue()
    assert all(f.zh and f.en and f.source in cat.sources for f in cat.fields.values())
    with pytest.raises(CatalogueError, match="source"):
        load_catalogue(
            "sources: [税务]\nfields:\n  - {name: x, type: int, zh: 甲, en: X, kind: profile, source: 外星}\n"
        )
    with pytest.raises(CatalogueError, match="type"):
        load_catalogue(
            "sources: [税务]\nfields:\n  - {name: x, type: float, zh: 甲, en: X, kind: profile, source: 税务}\n"
        )


def test_schema_matches_models(engine: Engine) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    import huiqi.models
    from huiqi.core.db import Base

    assert huiqi.models.enterprise_models
    with engine.connect() as conn:
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata
        )
        tables = set(inspect(conn).get_table_names())
    assert not [d for d in diff if "enterprise" in str(d)]
    assert {"enterprise", "enterprise_value", "enterprise_current", "enterprise_import"} <= tables


runner = CliRunner()


def test_cli_classify_json_and_errors() -> None:
    result = runner.invoke(
        cli,
        [
            "enterprise",
            "classify",
            "--industry",
            "3311",
            "--employees",
            "120",
            "--revenue",
            "5000",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert set(body) >= {"size", "group", "reasons", "missing"} and body["size"] == "small"
    under = runner.invoke(
        cli,
        [
            "enterprise",
            "classify",
            "--industry",
            "3311",
            "--employees",
            "300",
            "--revenue",
            "1999.99",
            "--json",
        ],
    )
    assert json.loads(under.stdout)["size"] == "small"
    at = runner.invoke(
        cli,
        [
            "enterprise",
            "classify",
            "--industry",
            "3311",
            "--employees",
            "300",
            "--revenue",
            "2000",
            "--json",
        ],
    )
    assert json.loads(at.stdout)["size"] == "medium"
    text = runner.invoke(
        cli,
        ["enterprise", "classify", "--industry", "3311", "--employees", "120", "--revenue", "5000"],
    )
    assert text.exit_code == 0 and "小型" in text.stdout and "中型下限" in text.stdout
    bad = runner.invoke(cli, ["enterprise", "classify", "--industry", "9999", "--employees", "5"])
    assert bad.exit_code == 2 and "无此小类" in bad.output and "Traceback" not in bad.output
    money = runner.invoke(cli, ["enterprise", "classify", "--industry", "3311", "--revenue", "abc"])
    assert money.exit_code == 2 and "万元" in money.output


def test_cli_template_and_population_file(tmp_path: Path) -> None:
    out = tmp_path / "t.xlsx"
    assert runner.invoke(cli, ["enterprise", "template", "--out", str(out)]).exit_code == 0
    assert out.stat().st_size > 0
    from huiqi.enterprise.cli import app as enterprise_cli
    from huiqi.enterprise.population import generate

    pop = tmp_path / "pop.csv"
    import typer

    demo = typer.Typer()
    demo.command("population")(
        __import__("huiqi.enterprise.cli", fromlist=["population"]).population
    )
    demo.command("noop")(lambda: None)
    result = runner.invoke(demo, ["population", "--size", "50", "--seed", "9", "--out", str(pop)])
    assert result.exit_code == 0, result.output
    first = pop.read_text(encoding="utf-8-sig").splitlines()
    assert len(first) == 51 and first[1].split(",")[0] == generate(50, 9)[0]["credit_code"]
    assert enterprise_cli is not None


def test_population_is_deterministic_and_codes_match_regions() -> None:
    from huiqi.core.codes import region_matches_division, validate_credit_code
    from huiqi.enterprise.population import generate

    a, b = generate(400, 5), generate(400, 5)
    assert a == b and a != generate(400, 6)
    for row in a:
        code = validate_credit_code(row["credit_code"])
        assert region_matches_division(row["region_code"], code[2:8]), row
    assert len({r["credit_code"] for r in a}) == 400


@pytest.mark.parametrize("size", [300, 3000])
def test_demo_showcase_firm_is_a_lanzhou_manufacturer_with_graduate_hires(size: int) -> None:
    from huiqi.core.codes import industry_classes
    from huiqi.enterprise.population import generate, showcase_code, stage_showcase

    rows = generate(size, 2020)
    i = stage_showcase(rows)
    assert i is not None and showcase_code(size, 2020) == rows[i]["credit_code"]
    row = rows[i]
    manufacturing = {c.code for c in industry_classes() if c.section == "C"}
    assert row["region_code"].startswith("6201") and row["industry_code"] in manufacturing
    assert int(row["graduate_hires"]) > 0
    # R&D expense not yet exchanged (the firm may report it), revenue just under the 规上 line
    assert row["rd_expense"] == "" and 1800 < float(row["revenue"]) < 2000
    assert row["founded_on"] <= "2018-04-12"


def test_listeners_run_in_priority_order(db_session: Session) -> None:
    calls: list[str] = []

    def late(_session: Session, _event: EnterpriseChanged) -> None:
        calls.append("late")

    def early(_session: Session, _event: EnterpriseChanged) -> None:
        calls.append("early")

    events.subscribe(EnterpriseChanged, late, priority=500)
    events.subscribe(EnterpriseChanged, early, priority=1)
    try:
        service.enterprise_changed(db_session, {CODE})
    finally:
        events.unsubscribe(EnterpriseChanged, late)
        events.unsubscribe(EnterpriseChanged, early)
    assert calls == ["early", "late"]


def test_a_later_graduate_count_does_not_hide_the_last_accounts(db_session: Session) -> None:
    service.apply_changes(
        db_session, CODE, {"industry_code": "3311"}, source="统计", as_of=date(2024, 1, 1)
    )
    service.apply_changes(
        db_session,
        CODE,
        {"employees": 120, "revenue": 5000 * FEN_PER_WAN},
        source="税务",
        as_of=date(2025, 3, 31),
        year=2024,
    )
    service.apply_changes(
        db_session, CODE, {"graduate_hires": 2}, source="人社", as_of=date(2025, 9, 1), year=2025
    )
    frame = service.current_frame(db_session)
    assert frame["figures_year"].item() == 2024
    assert frame["employees"].item() == 120 and frame["size_class"].item() == "small"
    # Without any size figures the latest year of any yearly value is used.
    other = make_credit_code("9", "1", "620503", "MA7TJH02")
    service.apply_changes(
        db_session, other, {"graduate_hires": 1}, source="人社", as_of=date(2025, 9, 1), year=2025
    )
    row = service.current_frame(db_session, credit_codes=[other])
    assert row["figures_year"].item() == 2025 and row["graduate_hires"].item() == 1
