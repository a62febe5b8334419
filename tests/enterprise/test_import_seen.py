"""The compact record of credit codes taken by a file's rows: a dict's answers, and duplicates
across batches reported with the row that first gave the code."""

from __future__ import annotations

import random
from datetime import date

import pytest

from huiqi.core.codes import make_credit_code
from huiqi.enterprise.importer import RowContext, columns, map_headers
from huiqi.enterprise.importer.columnar import validate_batch
from huiqi.enterprise.importer.seen import SeenCodes
from huiqi.enterprise.population import generate

HEADER = [zh for _key, zh, _en in columns()]
KEYS = [key for key, _zh, _en in columns()]


def test_seen_codes_answer_as_a_dict_across_many_settles() -> None:
    rng = random.Random(5)
    pool = [make_credit_code("9", "1", "620102", f"MC{n:06d}") for n in range(3000)]
    seen, model, settled = SeenCodes(), dict[str, int](), dict[str, int]()
    for row in range(2, 6000):
        code = rng.choice(pool)
        if rng.random() < 0.5:
            # the batch path: look the code up among the settled ones, then claim it
            before = int(seen.settled([code])[0])
            assert before == settled.get(code, 0)
            assert (not before and seen.claim(code, row)) == (code not in model)
        else:
            assert seen.get(code) == model.get(code)
            if code not in model:
                seen[code] = row
        model.setdefault(code, row)
        if rng.random() < 0.02:
            seen.settle()
            settled = dict(model)
            assert len(seen._runs) <= 12  # merged as they grow, never one per batch
    seen.settle()
    assert len(seen) == len(model)
    assert seen.settled(pool).tolist() == [model.get(c, 0) for c in pool]
    assert all(seen.get(c) == model.get(c) for c in pool)
    assert seen.get("not a credit code") is None


def test_seen_codes_take_only_normalised_codes() -> None:
    with pytest.raises(ValueError, match="credit code"):
        SeenCodes()["91620102MA72H8K3X9-extra"] = 2


def test_duplicates_across_batches_are_reported_with_the_first_row() -> None:
    mapping = map_headers(HEADER)
    ctx = RowContext(mapping, {k: HEADER[i] for i, k in mapping.items()}, None, date(2025, 6, 30))
    rows = [[str(r.get(k, "") or "") for k in KEYS] for r in generate(40, seed=3)]
    numbered = [(n + 2, cells) for n, cells in enumerate(rows)]
    numbered += [(45, list(rows[1])), (46, list(rows[30])), (47, list(rows[30]))]
    reasons: dict[int, str] = {}
    for start in range(0, len(numbered), 10):  # batches of ten: each repeat is in a later one
        for issues in validate_batch(ctx, numbered[start : start + 10]).rejected:
            reasons.update({i.row: i.reason for i in issues if "重复" in i.reason})
    assert reasons == {
        45: "与第 3 行信用代码重复 / duplicate of row 3",
        46: "与第 32 行信用代码重复 / duplicate of row 32",
        47: "与第 32 行信用代码重复 / duplicate of row 32",
    }
