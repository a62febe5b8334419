"""Vectorised engine: a whole population at once, each shared primitive computed once, Kleene logic on packed bitmasks."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import polars as pl

from huiqi.rules.plan import Plan, Prim, Tree

_EPOCH = date(1970, 1, 1).toordinal()
_INT64_SAFE = 2**62


def _days(d: date) -> int:
    return d.toordinal() - _EPOCH


def pack(mask: np.ndarray) -> np.ndarray:
    """Bool vector → little-endian bits in uint64 words (padding bits are 0)."""
    packed = np.packbits(mask, bitorder="little")
    pad = (-len(packed)) % 8
    if pad:
        packed = np.concatenate([packed, np.zeros(pad, dtype=np.uint8)])
    return packed.view(np.uint64)


def unpack(words: np.ndarray, n: int) -> np.ndarray:
    """uint64 words → uint8 0/1 vector of length n."""
    return np.unpackbits(words.view(np.uint8), count=n, bitorder="little")


_NUM_OPS = {
    "=": np.equal,
    "!=": np.not_equal,
    "<": np.less,
    "<=": np.less_equal,
    ">": np.greater,
    ">=": np.greater_equal,
}


class Columns:
    """Column access with null masks computed once per column."""

    def __init__(self, frame: pl.DataFrame) -> None:
        self.frame = frame
        self.n = frame.height
        self._values: dict[str, np.ndarray] = {}
        self._known: dict[str, np.ndarray] = {}
        self._known_bits: dict[str, np.ndarray] = {}

    def series(self, name: str) -> pl.Series:
        """The polars column; absent columns read as all-unknown."""
        if name in self.frame.columns:
            return self.frame.get_column(name)
        return pl.Series(name, [None] * self.n)

    def known(self, name: str) -> np.ndarray:
        """Bool vector: value present."""
        if name not in self._known:
            self._known[name] = self.series(name).is_not_null().to_numpy()
        return self._known[name]

    def known_bits(self, name: str) -> np.ndarray:
        """Packed known mask."""
        if name not in self._known_bits:
            self._known_bits[name] = pack(self.known(name))
        return self._known_bits[name]

    def values(self, name: str) -> np.ndarray:
        """Numeric view with nulls filled (dates as days since 1970, booleans as bool)."""
        if name not in self._values:
            s = self.series(name)
            if s.dtype == pl.Date:
                arr = s.cast(pl.Int32).fill_null(0).to_numpy()
            elif s.dtype == pl.Boolean:
                arr = s.fill_null(False).to_numpy()
            elif s.dtype == pl.Null:
                arr = np.zeros(self.n, dtype=np.int64)
            else:
                arr = s.fill_null(0).to_numpy()
            self._values[name] = arr
        return self._values[name]


def _const(value: Any) -> Any:
    return _days(value) if isinstance(value, date) else value


def _is_text(cols: Columns, name: str) -> bool:
    return cols.series(name).dtype in (pl.Utf8, pl.Categorical, pl.Enum)


def prim_bits(p: Prim, cols: Columns) -> tuple[np.ndarray, np.ndarray]:
    """Packed (true, false) masks of one primitive; rows where neither is set are unknown."""
    n = cols.n
    if p.op == "never":
        return pack(np.zeros(n, dtype=bool)), pack(np.ones(n, dtype=bool))
    if p.kind == "ratio":
        a_name, b_name = p.cols
        a, b = cols.values(a_name), cols.values(b_name)
        num, den = p.const
        known = cols.known_bits(a_name) & cols.known_bits(b_name)
        big = max(int(np.abs(a).max(initial=0)) * den, int(np.abs(b).max(initial=0)) * abs(num))
        if big >= _INT64_SAFE:
            # Beyond 64 bits the cross-multiplication runs on Python integers, still exact.
            lhs, rhs = a.astype(object) * den, b.astype(object) * num
        else:
            lhs, rhs = a * den, b * num
        hit = pack((b > 0) & _NUM_OPS[p.op](lhs, rhs).astype(bool))
        return hit & known, known & ~hit
    if p.kind == "cert":
        start, end = p.cols
        d = _days(p.const)
        k1, k2 = cols.known_bits(start), cols.known_bits(end)
        c1 = pack(cols.values(start) <= d)
        c2 = pack(cols.values(end) >= d)
        t = (c1 & k1) & (c2 & k2)
        f = (k1 & ~c1) | (k2 & ~c2)
        return t, f
    name = p.cols[0]
    known = cols.known_bits(name)
    if _is_text(cols, name):
        s = cols.series(name)
        if p.kind == "prefix":
            expr = pl.lit(False)
            for pre in p.const:
                expr = expr | pl.col(name).str.starts_with(pre)
            hit_s = s.to_frame().select(expr.fill_null(False)).to_series()
        elif p.kind == "in":
            hit_s = s.is_in(list(p.const)).fill_null(False)
            if p.op == "not_in":
                hit_s = ~hit_s
        elif p.op in ("=", "!="):
            hit_s = (s == p.const).fill_null(False)
            if p.op == "!=":
                hit_s = ~hit_s
        else:
            raise ValueError(f"{p.op} on text column {name}")
        hit = pack(hit_s.fill_null(False).to_numpy())
        return hit & known, known & ~hit
    v = cols.values(name)
    if p.kind == "in":
        mask = np.isin(v, [_const(x) for x in p.const])
        if p.op == "not_in":
            mask = ~mask
    elif p.kind == "between":
        lo, hi = _const(p.const[0]), _const(p.const[1])
        mask = (v > lo) & (v <= hi)
        if p.op == "not_between":
            mask = ~mask
    elif p.kind == "cmp":
        mask = _NUM_OPS[p.op](v, _const(p.const))
    else:
        raise ValueError(f"{p.kind} on numeric column {name}")
    hit = pack(mask)
    return hit & known, known & ~hit


def _combine(
    tree: Tree, atom_t: list[np.ndarray], atom_f: list[np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    kind = tree[0]
    if kind == "atom":
        return atom_t[tree[1]], atom_f[tree[1]]
    if kind == "not":
        t, f = _combine(tree[1], atom_t, atom_f)
        return f, t
    parts = [_combine(c, atom_t, atom_f) for c in tree[1]]
    t = parts[0][0].copy()
    f = parts[0][1].copy()
    if kind == "all":
        for pt, pf in parts[1:]:
            np.bitwise_and(t, pt, out=t)
            np.bitwise_or(f, pf, out=f)
    else:
        for pt, pf in parts[1:]:
            np.bitwise_or(t, pt, out=t)
            np.bitwise_and(f, pf, out=f)
    return t, f


@dataclass
class BatchResult:
    """Packed outcomes: per primitive and per rule, a true mask and a false mask (unknown = neither)."""

    plan: Plan
    n: int
    prim_t: np.ndarray
    prim_f: np.ndarray
    rule_t: np.ndarray
    rule_f: np.ndarray

    def codes(self, r: int) -> np.ndarray:
        """Result code per row for rule r: 1 eligible, 0 ineligible, 2 unknown (int8)."""
        t = unpack(self.rule_t[r], self.n)
        u = unpack(~(self.rule_t[r] | self.rule_f[r]), self.n)
        return (t + 2 * u).astype(np.int8)

    def counts(self, r: int) -> dict[str, int]:
        """Eligible / ineligible / unknown counts for rule r."""
        t = int(np.bitwise_count(self.rule_t[r]).sum())
        f = int(np.bitwise_count(self.rule_f[r]).sum())
        return {"eligible": t, "ineligible": f, "unknown": self.n - t - f}

    def rows(self, r: int, code: int) -> np.ndarray:
        """Row positions with the given result code for rule r."""
        return np.flatnonzero(self.codes(r) == code)

    def atom_codes(self, r: int) -> np.ndarray:
        """Per-condition codes of rule r as an (n, atoms) uint8 matrix (0 false, 1 true, 2 unknown)."""
        pr = self.plan.rules[r]
        out = np.empty((self.n, len(pr.atom_prims)), dtype=np.uint8)
        for j, pi in enumerate(pr.atom_prims):
            t = unpack(self.prim_t[pi], self.n)
            u = unpack(~(self.prim_t[pi] | self.prim_f[pi]), self.n)
            out[:, j] = t + 2 * u
        return out

    def condition_codes(self, r: int) -> np.ndarray:
        """Per-condition outcomes of rule r packed two bits per condition (condition j at bits 2j, 2j+1)."""
        pr = self.plan.rules[r]
        k = len(pr.atom_prims)
        dtype: Any = np.uint16 if k <= 8 else np.uint32 if k <= 16 else np.uint64
        acc: Any = np.zeros(self.n, dtype=dtype)
        for j, pi in enumerate(pr.atom_prims):
            t = unpack(self.prim_t[pi], self.n).astype(dtype)
            u = unpack(~(self.prim_t[pi] | self.prim_f[pi]), self.n).astype(dtype)
            acc |= (t | (u << dtype(1))) << dtype(2 * j)
        return acc

    def condition_code_matrix(self, chunk: int = 1 << 14) -> np.ndarray:
        """Per-condition outcomes of every (rule, enterprise) pair: (rules, n) array, two bits per condition.

        Condition j of a rule sits at bits 2j, 2j+1 (as in condition_codes). Works in row chunks:
        each primitive is unpacked once per chunk into four pre-shifted byte planes, and a rule's
        pair codes are OR-ed together byte by byte, four conditions per byte.
        """
        k_max = max((len(pr.atom_prims) for pr in self.plan.rules), default=1)
        nbytes = 1 if k_max <= 4 else 2 if k_max <= 8 else 4 if k_max <= 16 else 8
        dtype: Any = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}[nbytes]
        out = np.zeros((len(self.plan.rules), self.n), dtype=dtype)
        out_bytes = out.view(np.uint8).reshape(len(self.plan.rules), self.n, nbytes)
        planes = np.empty((4, len(self.plan.prims), chunk), dtype=np.uint8)
        acc = np.empty(chunk, dtype=np.uint8)
        for start in range(0, self.n, chunk):
            stop = min(start + chunk, self.n)
            m = stop - start
            w0, w1 = start // 64, (stop + 63) // 64
            for i in range(len(self.plan.prims)):
                t = self.prim_t[i, w0:w1]
                u = ~(t | self.prim_f[i, w0:w1])
                tb = np.unpackbits(t.view(np.uint8), count=m, bitorder="little")
                ub = np.unpackbits(u.view(np.uint8), count=m, bitorder="little")
                np.left_shift(ub, 1, out=ub)
                np.bitwise_or(tb, ub, out=planes[0, i, :m])
                for s in (1, 2, 3):
                    np.left_shift(planes[0, i, :m], 2 * s, out=planes[s, i, :m])
            for r, pr in enumerate(self.plan.rules):
                atoms = pr.atom_prims
                for b in range(0, len(atoms), 4):
                    group = atoms[b : b + 4]
                    np.copyto(acc[:m], planes[0, group[0], :m])
                    for s, pi in enumerate(group[1:], start=1):
                        np.bitwise_or(acc[:m], planes[s, pi, :m], out=acc[:m])
                    out_bytes[r, start:stop, b // 4] = acc[:m]
        return out


def run_batch(plan: Plan, frame: pl.DataFrame) -> BatchResult:
    """Evaluate every rule of the plan over every row of the frame."""
    cols = Columns(frame)
    n = frame.height
    words = (n + 63) // 64
    prim_t = np.empty((len(plan.prims), words), dtype=np.uint64)
    prim_f = np.empty((len(plan.prims), words), dtype=np.uint64)
    for i, p in enumerate(plan.prims):
        prim_t[i], prim_f[i] = prim_bits(p, cols)
    rule_t = np.empty((len(plan.rules), words), dtype=np.uint64)
    rule_f = np.empty((len(plan.rules), words), dtype=np.uint64)
    for r, pr in enumerate(plan.rules):
        at = [prim_t[i] for i in pr.atom_prims]
        af = [prim_f[i] for i in pr.atom_prims]
        rule_t[r], rule_f[r] = _combine(pr.tree, at, af)
    return BatchResult(plan, n, prim_t, prim_f, rule_t, rule_f)


def pack_codes(codes: list[int]) -> int:
    """Two bits per condition into one integer (condition j at bits 2j, 2j+1)."""
    out = 0
    for j, c in enumerate(codes):
        out |= c << (2 * j)
    return out


def unpack_codes(value: int, k: int) -> list[int]:
    """Inverse of pack_codes for k conditions."""
    return [(value >> (2 * j)) & 3 for j in range(k)]
