"""The kept-answers map: made once however many ask at once, never stuck on a failed maker."""

from __future__ import annotations

import threading

import pytest

from huiqi.core.lru import Lru


def test_callers_asking_while_a_value_is_made_wait_for_it() -> None:
    lru: Lru[str] = Lru(4)
    started = threading.Event()
    release = threading.Event()
    made: list[int] = []

    def make() -> str:
        made.append(1)
        started.set()
        release.wait(5)
        return "answer"

    answers: list[str] = []
    first = threading.Thread(target=lambda: answers.append(lru.get_or_make("k", make)))
    first.start()
    assert started.wait(5)
    others = [
        threading.Thread(target=lambda: answers.append(lru.get_or_make("k", make)))
        for _ in range(4)
    ]
    for thread in others:
        thread.start()
    release.set()
    for thread in [first, *others]:
        thread.join(10)
    assert answers == ["answer"] * 5 and made == [1]


def test_a_failed_maker_lets_the_next_caller_make_it() -> None:
    lru: Lru[str] = Lru(4)

    def broken() -> str:
        raise RuntimeError("database went away")

    with pytest.raises(RuntimeError):
        lru.get_or_make("k", broken)
    assert lru.get_or_make("k", lambda: "second try") == "second try"
    assert lru.get_or_make("k", broken) == "second try"  # kept now


def test_a_kept_none_is_not_made_again() -> None:
    lru: Lru[str | None] = Lru(4)
    made: list[int] = []

    def nothing() -> None:
        made.append(1)

    assert lru.get_or_make("k", nothing) is None
    assert lru.get_or_make("k", nothing) is None
    assert made == [1]


def test_the_least_recently_used_entry_goes_first() -> None:
    lru: Lru[int] = Lru(2)
    lru.put("a", 1)
    lru.put("b", 2)
    assert lru.get_or_make("a", lambda: 0) == 1  # "a" is now the most recent
    lru.put("c", 3)
    assert lru.peek("b") is None and lru.peek("a") == 1 and lru.peek("c") == 3
