"""`huiqi demo load` shows each step with a progress bar and the time it took."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from huiqi.cli import main


def test_every_step_gets_a_finished_progress_line(monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    monkeypatch.setattr(main, "console", Console(file=out, width=100, force_terminal=False))
    with main._step_progress() as step:
        step("政策库 / policy library")
        step("企业库 / enterprise registry")
    text = out.getvalue()
    assert "政策库 / policy library" in text and "企业库 / enterprise registry" in text
    assert text.count("✓") == 2


def test_a_step_over_its_time_budget_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    monkeypatch.setattr(main, "console", Console(file=out, width=200, force_terminal=False))
    moments = iter([0.0, 3.0, 3.0, 20.0])
    with main._step_progress(clock=lambda: next(moments)) as step:
        step("政策库 / policy library", 5)
        step("规则与匹配 / matching", 10)
    lines = [line for line in out.getvalue().splitlines() if "✓" in line]
    assert "超出时间预算" not in lines[-2] and "政策库" in lines[-2]
    assert "超出时间预算 10 秒" in lines[-1] and "over its 10 s budget" in lines[-1]


def test_the_demo_budgets_fit_a_fresh_start_in_90_seconds() -> None:
    from huiqi.demo import STEP_BUDGETS

    # the migrations (about 7 s) and the server start (about 10 s) come on top of the demo
    assert sum(STEP_BUDGETS.values()) + 7 + 10 <= 90
