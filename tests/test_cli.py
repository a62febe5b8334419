"""The command line: help, migrations, users, demo data, and clear errors."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from huiqi.cli.main import app
from huiqi.core.config import get_settings

runner = CliRunner()


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("HUIQI_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("HUIQI_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    from huiqi.core import db

    monkeypatch.setattr(db, "_engine", None)
    monkeypatch.setattr(db, "_factory", None)
    return tmp_path


def _enterprise_count(data_dir: Path) -> int:
    """How many enterprises the CLI's SQLite database holds."""
    with sqlite3.connect(data_dir / "huiqi.db") as conn:
        return int(conn.execute("SELECT count(*) FROM enterprise").fetchone()[0])


def test_help_explains_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("serve", "db", "user", "demo"):
        assert command in result.output
    for sub in (["db", "--help"], ["user", "create", "--help"], ["demo", "load", "--help"]):
        assert runner.invoke(app, sub).exit_code == 0


def test_upgrade_create_user_and_demo(cli_env: Path) -> None:
    result = runner.invoke(app, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert "数据库结构已更新" in result.output
    assert "已是最新" in runner.invoke(app, ["db", "upgrade"]).output
    assert (cli_env / "huiqi.db").exists()
    assert runner.invoke(app, ["db", "current"]).exit_code == 0
    result = runner.invoke(
        app,
        [
            "user",
            "create",
            "olga",
            "--role",
            "officer",
            "--department",
            "甘肃省财政厅",
            "--password",
            "a-strong-password",
        ],
    )
    assert result.exit_code == 0, result.output
    dup = runner.invoke(
        app, ["user", "create", "olga", "--role", "admin", "--password", "a-strong-password"]
    )
    assert dup.exit_code == 2 and "taken" in dup.output
    # A small population: the command's wiring is under test here, not the generator's speed.
    demo = runner.invoke(app, ["demo", "load", "--size", "50"])
    assert demo.exit_code == 0, demo.output
    assert "huiqi-admin-2020" in demo.output
    assert "officer-hr" in demo.output and "officer-hr2" in demo.output  # four-eyes pair
    loaded = _enterprise_count(cli_env)
    assert loaded >= 50
    again = runner.invoke(app, ["demo", "load", "--size", "50"])
    assert again.exit_code == 0, again.output
    assert _enterprise_count(cli_env) == loaded  # loading again adds nothing
    listing = runner.invoke(app, ["user", "list"])
    assert "olga" in listing.output and "enterprise" in listing.output


def test_user_create_refuses_bad_binding(cli_env: Path) -> None:
    runner.invoke(app, ["db", "upgrade"])
    result = runner.invoke(
        app, ["user", "create", "pat", "--role", "enterprise", "--password", "a-strong-password"]
    )
    assert result.exit_code == 2
    assert "credit" in result.output
    assert "Traceback" not in result.output


def test_malformed_setting_stops_with_its_name(
    cli_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HUIQI_MAX_UPLOAD_MB", "lots")
    get_settings.cache_clear()
    result = runner.invoke(app, ["db", "upgrade"])
    assert result.exit_code == 2
    assert "HUIQI_MAX_UPLOAD_MB" in result.output
    get_settings.cache_clear()


def test_serve_refuses_default_key_in_production(
    cli_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HUIQI_ENV", "production")
    monkeypatch.delenv("HUIQI_SECRET_KEY", raising=False)
    get_settings.cache_clear()
    result = runner.invoke(app, ["serve"])
    assert result.exit_code == 2
    assert "HUIQI_SECRET_KEY" in result.output
    get_settings.cache_clear()


def test_user_scope_sets_region_and_assignments(cli_env: Path) -> None:
    runner.invoke(app, ["db", "upgrade"])
    created = runner.invoke(
        app,
        ["user", "create", "county", "--role", "officer", "--department", "甘肃省财政厅"]
        + ["--password", "a-strong-password"],
    )
    assert created.exit_code == 0, created.output
    result = runner.invoke(
        app,
        ["user", "scope", "county", "--region-prefix", "620102", "--assign", "grant:42"]
        + ["--assign", "rule:gs351-23-above-scale-upgrade"],
    )
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())  # rich wraps long lines
    assert "region 620102" in said
    assert "grant:42, rule:gs351-23-above-scale-upgrade" in said
    result = runner.invoke(app, ["user", "scope", "county", "--province", "--unassign", "grant:42"])
    said = " ".join(result.output.split())
    assert "whole province" in said and "grant:42" not in said
    bad = runner.invoke(app, ["user", "scope", "county", "--region-prefix", "兰州"])
    assert bad.exit_code == 2 and "2–12 digits" in " ".join(bad.output.split())
    assert "Traceback" not in bad.output
    odd = runner.invoke(app, ["user", "scope", "county", "--assign", "grant42"])
    assert odd.exit_code == 2 and "KIND:REF" in " ".join(odd.output.split())


def test_demo_load_reports_a_failing_step_in_one_line(
    cli_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from huiqi.core.errors import Invalid
    from huiqi.finance import demo as finance_demo

    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0

    def broken(session: object) -> None:
        raise Invalid("融资产品「惠企贷」的期限无效", "product 惠企贷: the term is not valid")

    monkeypatch.setattr(finance_demo, "load_demo", broken)
    result = runner.invoke(app, ["demo", "load", "--size", "20"])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if "error:" in line]
    assert len(lines) == 1
    assert "融资产品 / financing products" in lines[0]
    assert "融资产品「惠企贷」的期限无效" in lines[0] and "the term is not valid" in lines[0]
    # the steps before it were rolled back with it
    assert _enterprise_count(cli_env) == 0


def test_demo_load_on_an_unmigrated_database_says_what_to_run(cli_env: Path) -> None:
    result = runner.invoke(app, ["demo", "load", "--size", "20"])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "huiqi db upgrade" in result.output
