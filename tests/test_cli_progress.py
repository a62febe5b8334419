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
