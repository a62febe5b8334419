"""The password policy on the command line: creating users and setting passwords."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from huiqi.cli.main import app
from tests.test_cli import cli_env  # noqa: F401  (fixture)

runner = CliRunner()


def test_user_create_and_set_password_apply_the_policy(cli_env: Path) -> None:  # noqa: F811
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    weak = runner.invoke(
        app, ["user", "create", "ruth", "--role", "admin", "--password", "1234567890"]
    )
    assert weak.exit_code != 0 and "最常见" in weak.output and "Traceback" not in weak.output
    ok = runner.invoke(
        app, ["user", "create", "ruth", "--role", "admin", "--password", "Gansu-Policy-Desk-7"]
    )
    assert ok.exit_code == 0, ok.output
    again = runner.invoke(app, ["user", "set-password", "ruth"], input="ruth-2026-password\n")
    assert again.exit_code != 0 and "不能包含用户名" in again.output
    changed = runner.invoke(app, ["user", "set-password", "ruth"], input="Yellow-River-Bridge-9\n")
    assert changed.exit_code == 0, changed.output
    assert "password of ruth changed" in changed.output
    nobody = runner.invoke(app, ["user", "set-password", "nobody"], input="Yellow-River-Bridge-9\n")
    assert nobody.exit_code != 0 and "nobody" in nobody.output
