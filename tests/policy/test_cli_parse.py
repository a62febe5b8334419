"""`huiqi policy parse` — no database needed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from huiqi import events
from huiqi.cli.main import app
from tests.policy.conftest import FIXTURES, REFERENCE, SEED

runner = CliRunner()


def test_parse_json_shape() -> None:
    result = runner.invoke(app, ["policy", "parse", str(SEED), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["title"] == "关于进一步健全支持中小企业发展制度的实施意见"
    assert data["doc_number"] == "甘工信发〔2020〕351号"
    assert data["issued_on"] == "2020-12-18"
    assert data["published_on"] == "2021-04-27"
    assert isinstance(data["warnings"], list) and data["warnings"]
    assert [s["number"] for s in data["sections"]] == [1, 2, 3, 4, 5, 6, 7]
    article = data["sections"][1]["articles"][3]
    assert article["number"] == 10 and article["label"] == "(十)"
    assert article["title"] == "严格执行政府采购支持中小企业政策机制"
    assert article["departments"] == ["省财政厅"]
    assert article["implementers"] == ["各市州政府", "兰州新区管委会"]
    assert article["quantities"][0] == {
        "text": "30%以上",
        "value": 30,
        "value_max": None,
        "unit": "%",
        "op": ">=",
        "kind": "percent",
        "sentence": article["quantities"][0]["sentence"],
    }
    a18 = data["sections"][2]["articles"][7]
    assert a18["quantities"][0]["value"] == 1.5 and a18["quantities"][0]["op"] == "<="
    a36 = data["sections"][5]["articles"][2]
    assert a36["quantities"][0]["op"] == "range"
    assert (a36["quantities"][0]["value"], a36["quantities"][0]["value_max"]) == (10, 15)


def test_parse_regulation_without_chapters_has_section_zero() -> None:
    result = runner.invoke(
        app, ["policy", "parse", str(REFERENCE / "sme-payment-regulation-2020.txt"), "--json"]
    )
    data = json.loads(result.stdout)
    assert [s["number"] for s in data["sections"]] == [0]
    assert data["sections"][0]["articles"][0]["label"] == "第一条"
    assert data["issued_on"] is None


def test_parse_table_output() -> None:
    result = runner.invoke(app, ["policy", "parse", str(FIXTURES / "seed.docx")])
    assert result.exit_code == 0
    assert "省通信管理局" in result.stdout


def test_parse_bad_file_is_a_clear_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    result = runner.invoke(app, ["policy", "parse", str(empty), "--json"])
    assert result.exit_code == 2
    assert "empty.txt: the file is empty" in result.output
    assert "Traceback" not in result.output
    result = runner.invoke(app, ["policy", "parse", str(tmp_path / "missing.pdf")])
    assert result.exit_code == 2 and "cannot read the file" in result.output


def test_parse_subscribes_no_handler_and_the_other_policy_commands_do(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`parse` opens no database, so it skips the domain handlers and their imports."""
    # a fresh process has no handler subscribed: only the command line's own wiring counts
    monkeypatch.setattr(events.bus, "handlers", {})
    result = runner.invoke(app, ["policy", "parse", str(SEED), "--json"])
    assert result.exit_code == 0, result.output
    assert events.bus.handlers == {}
    result = runner.invoke(app, ["policy", "tasks", "--help"])
    assert result.exit_code == 0, result.output
    assert events.bus.subscribed(events.ResultsChanged)
    monkeypatch.setattr(events.bus, "handlers", {})
    assert runner.invoke(app, ["db", "--help"]).exit_code == 0
    assert events.bus.subscribed(events.EnterpriseChanged)
