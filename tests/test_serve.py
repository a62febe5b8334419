"""`huiqi serve`: worker processes need PostgreSQL; SQLite says why it stays at one."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from huiqi.cli.main import app
from huiqi.core.config import get_settings

runner = CliRunner()


def test_sqlite_refuses_several_workers(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HUIQI_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("HUIQI_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    result = runner.invoke(app, ["serve", "--workers", "2"])
    get_settings.cache_clear()
    assert result.exit_code == 2
    assert "one write lock" in result.output and "PostgreSQL" in result.output


def test_serve_documents_workers() -> None:
    result = runner.invoke(app, ["serve", "--help"])
    assert result.exit_code == 0 and "--workers" in result.output
