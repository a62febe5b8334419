"""After start-up the server exempts its long-lived objects from the garbage collector."""

from __future__ import annotations

import gc

import pytest

from huiqi.policy import search
from huiqi.web.app import settle


def test_start_up_warms_the_segmenter_then_freezes_what_it_made(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    steps: list[str] = []
    monkeypatch.setattr(search, "warm", lambda: steps.append("warm"))
    monkeypatch.setattr(gc, "collect", lambda *_args: steps.append("collect") or 0)
    monkeypatch.setattr(gc, "freeze", lambda: steps.append("freeze"))
    settle()
    # garbage is collected first, so none of it is kept for the life of the process
    assert steps == ["warm", "collect", "freeze"]
