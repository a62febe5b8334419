"""A plan: rules resolved for one evaluation date into shared primitive tests (the common input of all three engines)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import date
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from typing import Any

from huiqi.rules.compiler import AtomNode, GroupNode, Node, Rule
from huiqi.rules.values import RelDate, sub_months

INDUSTRIES_CSV = Path(__file__).resolve().parents[1] / "core" / "data" / "industries.csv"

# Outcome codes shared by every engine and by stored results.
F, T, U = 0, 1, 2
RESULT_NAMES = {T: "eligible", F: "ineligible", U: "unknown"}
OUTCOME_NAMES = {T: "true", F: "false", U: "unknown"}


@dataclass(frozen=True)
class Prim:
    """A primitive test on base columns with constants resolved for the evaluation date.

    kind: cmp (col op const) · in (const tuple; op in/not_in) · prefix (const tuple) ·
    ratio (a/b op p/q; undefined when b ≤ 0 → false) · cert (from ≤ d ≤ to) · between (lo < col ≤ hi; op between/not_between).
    """

    kind: str
    cols: tuple[str, ...]
    op: str
    const: Any


Tree = tuple[Any, ...]  # ("atom", i) | ("all", children) | ("any", children) | ("not", child)


@dataclass
class PlanRule:
    """One rule inside a plan: its tree over atom indices and the primitive behind each atom."""

    rule: Rule
    in_force: bool
    tree: Tree
    atom_prims: list[int]
    resolved: list[Any]
    negated: list[bool]


@dataclass
class Plan:
    """Rules resolved on one date with their primitives deduplicated across rules."""

    on: date
    prims: list[Prim]
    rules: list[PlanRule]

    def columns(self) -> list[str]:
        """Every base column the plan reads."""
        return sorted({c for p in self.prims for c in p.cols})

    def index(self, rule_id: str) -> int:
        """Position of a rule in the plan."""
        for i, r in enumerate(self.rules):
            if r.rule.id == rule_id:
                return i
        raise KeyError(rule_id)


@lru_cache(maxsize=1)
def _section_divisions() -> dict[str, tuple[str, ...]]:
    """GB/T 4754-2017 section letter → its two-digit divisions."""
    out: dict[str, list[str]] = {}
    with INDUSTRIES_CSV.open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            if row["level"] == "division":
                out.setdefault(row["section"], []).append(row["code"])
    return {k: tuple(sorted(v)) for k, v in out.items()}


def expand_prefixes(codes: tuple[str, ...]) -> tuple[str, ...]:
    """Replace industry section letters by their division prefixes."""
    out: list[str] = []
    for c in codes:
        out += _section_divisions().get(c, ()) if c.isalpha() else [c]
    return tuple(sorted(set(out)))


def _resolve(value: Any, on: date) -> Any:
    return value.resolve(on) if isinstance(value, RelDate) else value


def atom_prim(atom: AtomNode, rule: Rule, on: date) -> tuple[Prim, Any]:
    """The primitive for an atom on date `on`, and the resolved comparison value."""
    op = atom.operand
    if op.kind == "cert":
        return Prim("cert", op.columns, "valid_on", on), on
    if atom.param is not None:
        value = rule.params[atom.param].value_on(on)
        if value is None:
            raise ValueError(f"parameter {atom.param} has no value on {on}")
    else:
        value = _resolve(atom.value, on)
    if op.kind == "ratio":
        frac = Fraction(value)
        return Prim("ratio", op.columns, atom.op, (frac.numerator, frac.denominator)), value
    if op.kind == "years_since":
        n = int(value)
        at_least = sub_months(on, 12 * n)  # founded on or before → at least n completed years
        at_least_next = sub_months(on, 12 * (n + 1))
        col = op.columns
        prim = {
            ">=": Prim("cmp", col, "<=", at_least),
            ">": Prim("cmp", col, "<=", at_least_next),
            "<": Prim("cmp", col, ">", at_least),
            "<=": Prim("cmp", col, ">", at_least_next),
            "=": Prim("between", col, "between", (at_least_next, at_least)),
            "!=": Prim("between", col, "not_between", (at_least_next, at_least)),
        }[atom.op]
        return prim, n
    if atom.op in ("in", "not_in"):
        return Prim("in", op.columns, atom.op, tuple(sorted(set(value)))), value
    if atom.op == "prefix":
        return Prim("prefix", op.columns, "prefix", expand_prefixes(tuple(value))), value
    return Prim("cmp", op.columns, atom.op, value), value


def _tree(node: Node, index: dict[int, int]) -> Tree:
    if isinstance(node, AtomNode):
        return ("atom", index[id(node)])
    assert isinstance(node, GroupNode)
    if node.kind == "not":
        return ("not", _tree(node.children[0], index))
    return (node.kind, tuple(_tree(c, index) for c in node.children))


def _negations(tree: Tree, n: int) -> list[bool]:
    """Which atoms sit under an odd number of `not`s (their requirement is the opposite test)."""
    out = [False] * n

    def walk(t: Tree, neg: bool) -> None:
        if t[0] == "atom":
            out[t[1]] = neg
        elif t[0] == "not":
            walk(t[1], not neg)
        else:
            for c in t[1]:
                walk(c, neg)

    walk(tree, False)
    return out


def compile_plan(rules: list[Rule], on: date) -> Plan:
    """Resolve rules for evaluation date `on`, sharing identical primitives across rules."""
    prims: list[Prim] = []
    seen: dict[Prim, int] = {}
    out: list[PlanRule] = []
    for rule in rules:
        index = {id(a): i for i, a in enumerate(rule.atoms)}
        atom_prims, resolved = [], []
        in_force = rule.in_force(on)
        for atom in rule.atoms:
            if in_force:
                prim, value = atom_prim(atom, rule, on)
            else:
                prim, value = Prim("cmp", atom.operand.columns[:1], "never", None), None
            if prim not in seen:
                seen[prim] = len(prims)
                prims.append(prim)
            atom_prims.append(seen[prim])
            resolved.append(value)
        tree = _tree(rule.tree, index)
        out.append(
            PlanRule(rule, in_force, tree, atom_prims, resolved, _negations(tree, len(rule.atoms)))
        )
    return Plan(on, prims, out)
