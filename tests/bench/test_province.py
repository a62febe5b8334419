"""The counting of `python -m bench province`: sink lines to keys, keys to a delivery verdict,
and the comparison of an import's state with a clean import's."""

from __future__ import annotations

from collections import Counter

from bench.bench_province import count_delivery, digest, received_keys, state_differences

SMS = "2026-01-05 10:00:00,001 huiqi.notify SMS to 139***0001 [{key}]: 【惠企】您可能符合 详情:x\n"


def test_sms_log_lines_give_the_keys_and_a_line_cut_by_the_kill_is_not_counted() -> None:
    lines = [
        "dispatcher w-1 running; Ctrl-C to stop\n",
        SMS.format(key="a" * 32),
        SMS.format(key="hq-" + "b" * 32),
        SMS.format(key="a" * 32),
        "2026-01-05 10:00:01 huiqi.notify dispatched: sent={'sms': 3}\n",
        SMS.format(key="c" * 32).rstrip("\n"),  # SIGKILL came while this line was written
    ]
    assert received_keys(lines, "sms") == Counter({"a" * 32: 2, "hq-" + "b" * 32: 1})


def test_webhook_key_file_lines_are_keys() -> None:
    assert received_keys(["k1\n", "k2\n", "k1\n", "\n", "k3"], "webhook") == Counter(
        {"k1": 2, "k2": 1}
    )


def test_a_clean_drain_passes() -> None:
    expected = {"k1", "k2", "k3"}
    got = count_delivery(
        expected,
        {"k1": "sent", "k2": "sent", "k3": "sent", "other": "pending"},
        Counter({"k1": 1, "k2": 1, "k3": 1}),
        in_flight=set(),
        retried=set(),
    )
    assert got.ok and (got.lost, got.duplicated, got.unknown) == (0, 0, 0)


def test_duplicates_pass_only_within_the_in_flight_batch() -> None:
    expected = {"k1", "k2", "k3", "k4"}
    statuses = dict.fromkeys(expected, "sent")
    twice = Counter({"k1": 2, "k2": 2, "k3": 1, "k4": 1})
    within = count_delivery(expected, statuses, twice, in_flight={"k1", "k2"}, retried=set())
    assert within.ok and within.duplicated == 2 and within.outside == 0
    # a failed send retried may arrive twice as well
    retried = count_delivery(expected, statuses, twice, in_flight={"k1"}, retried={"k2"})
    assert retried.ok
    outside = count_delivery(expected, statuses, twice, in_flight={"k1"}, retried=set())
    assert not outside.ok and outside.outside == 1
    thrice = count_delivery(
        expected, statuses, twice + Counter({"k1": 1}), in_flight={"k1", "k2"}, retried=set()
    )
    assert not thrice.ok and thrice.most == 3


def test_a_lost_an_unsent_and_an_unknown_key_each_fail() -> None:
    expected = {"k1", "k2"}
    sent = {"k1": "sent", "k2": "sent"}
    lost = count_delivery(expected, sent, Counter({"k1": 1}), set(), set())
    assert not lost.ok and lost.lost == 1
    unsent = count_delivery(
        expected, {"k1": "sent", "k2": "dead"}, Counter({"k1": 1, "k2": 1}), set(), set()
    )
    assert not unsent.ok and unsent.not_sent == 1
    unknown = count_delivery(expected, sent, Counter({"k1": 1, "k2": 1, "zz": 1}), set(), set())
    assert not unknown.ok and unknown.unknown == 1
    # the import's own rows in the same sink are neither judged nor unknown
    others = count_delivery(
        expected, {**sent, "hq-1": "sent"}, Counter({"k1": 1, "k2": 1, "hq-1": 2}), set(), set()
    )
    assert others.ok
    assert not count_delivery(set(), {}, Counter(), set(), set()).ok  # nothing queued


def test_state_digests_ignore_order_and_name_what_differs() -> None:
    rows = [("91620102MA0000001X", "revenue", 2024, "100"), ("91620102MA0000002X", "x", 0, None)]
    assert digest(rows) == digest(list(reversed(rows)))
    assert digest(rows)[0] == 2
    reference = {"enterprises": digest([("a",), ("b",)]), "values": digest(rows)}
    assert state_differences(reference, dict(reference)) == []
    changed = {"enterprises": digest([("a",)]), "values": digest([rows[0], (*rows[1][:3], "7")])}
    assert state_differences(reference, changed) == [
        "enterprises: 1 rows where a clean import has 2",
        "values: 2 rows (other content) where a clean import has 2",
    ]
