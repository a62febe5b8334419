"""Benefit amount formulas: a small arithmetic language evaluated exactly and rounded to the fen."""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any

from huiqi.core.money import FEN_PER_WAN, FEN_PER_YUAN

_UNIT_FUNCS = {"fen": 1, "yuan": FEN_PER_YUAN, "wan": FEN_PER_WAN}


class FormulaError(ValueError):
    """The formula is not well formed or mixes units."""


@dataclass(frozen=True)
class Formula:
    """A checked formula: its text, the names it reads and a closure computing it."""

    text: str
    names: tuple[str, ...]
    fn: Callable[[Mapping[str, Fraction | None]], Fraction]


def round_fen(x: Fraction) -> int:
    """Round half away from zero to whole fen."""
    sign = -1 if x < 0 else 1
    return sign * int((abs(x) + Fraction(1, 2)) // 1)


# No measure multiplies by more than this; larger constants would overflow stored amounts.
MAX_CONSTANT = 10**12


def compile_formula(text: str, kinds: Mapping[str, str]) -> Formula:
    """Parse and type-check `text`; `kinds` maps each usable name to 'money' or 'num'."""
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise FormulaError(f"formula syntax error: {exc.msg}") from None
    used: list[str] = []

    def build(node: ast.AST) -> tuple[str, Callable[[Mapping[str, Any]], Fraction]]:
        if isinstance(node, ast.Expression):
            return build(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            if isinstance(node.value, bool):
                raise FormulaError("true/false cannot be used in an amount")
            segment = ast.get_source_segment(text.strip(), node) or repr(node.value)
            value = Fraction(Decimal(segment.replace("_", "")))
            if abs(value) > MAX_CONSTANT:
                raise FormulaError(
                    f"number {segment} is out of range: formula constants are at most {MAX_CONSTANT:,}"
                )
            return "num", lambda _env: value
        if isinstance(node, ast.Name):
            if node.id not in kinds:
                raise FormulaError(f"unknown name {node.id!r} in formula")
            if node.id not in used:
                used.append(node.id)
            name = node.id

            def read(env: Mapping[str, Any]) -> Fraction:
                v = env[name]
                if v is None:
                    raise _Missing(name)
                return Fraction(v)

            return kinds[name], read
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            kind, f = build(node.operand)
            return kind, lambda env: -f(env)
        if isinstance(node, ast.BinOp):
            lk, lf = build(node.left)
            rk, rf = build(node.right)
            if isinstance(node.op, ast.Add | ast.Sub):
                if lk != rk:
                    raise FormulaError("cannot add or subtract money and a plain number")
                if isinstance(node.op, ast.Add):
                    return lk, lambda env: lf(env) + rf(env)
                return lk, lambda env: lf(env) - rf(env)
            if isinstance(node.op, ast.Mult):
                if lk == rk == "money":
                    raise FormulaError("cannot multiply money by money")
                kind = "money" if "money" in (lk, rk) else "num"
                return kind, lambda env: lf(env) * rf(env)
            if isinstance(node.op, ast.Div):
                if rk == "money" and lk == "num":
                    raise FormulaError("cannot divide a plain number by money")
                kind = "num" if lk == rk else "money"

                def div(env: Mapping[str, Any]) -> Fraction:
                    d = rf(env)
                    if d == 0:
                        raise _Undefined("division by zero")
                    return lf(env) / d

                return kind, div
            raise FormulaError("only + - * / min() max() are allowed")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
            fname = node.func.id
            if fname in ("min", "max") and len(node.args) >= 2:
                parts = [build(a) for a in node.args]
                if len({k for k, _ in parts}) != 1:
                    raise FormulaError(
                        f"{fname}() arguments must all be money or all plain numbers"
                    )
                fns = [f for _, f in parts]
                pick = min if fname == "min" else max
                return parts[0][0], lambda env: pick(f(env) for f in fns)
            if fname in _UNIT_FUNCS and len(node.args) == 1:
                kind, f = build(node.args[0])
                if kind != "num":
                    raise FormulaError(f"{fname}() takes a plain number")
                factor = _UNIT_FUNCS[fname]
                return "money", lambda env: f(env) * factor
            raise FormulaError(f"unknown function {fname}() (use min, max, yuan, wan, fen)")
        raise FormulaError(f"not allowed in a formula: {ast.dump(node)[:40]}")

    kind, fn = build(tree)
    if kind != "money":
        raise FormulaError(
            "the formula must give money (multiply by a money parameter or use yuan())"
        )
    return Formula(text, tuple(used), fn)


class _Missing(Exception):
    def __init__(self, name: str) -> None:
        self.name = name


class _Undefined(Exception):
    pass


def evaluate(formula: Formula, env: Mapping[str, Any]) -> tuple[int | None, list[str]]:
    """Amount in fen and the names that were missing (amount None when any is missing)."""
    missing = [n for n in formula.names if env.get(n) is None]
    if missing:
        return None, missing
    try:
        return round_fen(formula.fn(env)), []
    except _Missing as exc:
        return None, [exc.name]
    except _Undefined:
        return None, []
