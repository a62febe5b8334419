"""Single-enterprise evaluation (dict in): three-valued results, reasons in Chinese and English, missing data, near misses, amounts."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from fractions import Fraction
from typing import Any

from huiqi.rules.catalogue import Catalogue, default_catalogue
from huiqi.rules.compiler import AtomNode, Operand, Parameter, Rule
from huiqi.rules.formula import evaluate as eval_formula
from huiqi.rules.plan import (
    OUTCOME_NAMES,
    RESULT_NAMES,
    F,
    Plan,
    PlanRule,
    Prim,
    T,
    Tree,
    U,
    compile_plan,
)
from huiqi.rules.values import (
    RelDate,
    ValueProblem,
    VType,
    fmt_value,
    parse_money,
    sub_months,
    years_between,
)

_CMP = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}
NEG = {
    ">=": "<",
    ">": "<=",
    "<": ">=",
    "<=": ">",
    "=": "!=",
    "!=": "=",
    "in": "not_in",
    "not_in": "in",
}
OP_SYMBOL = {">=": "≥", ">": ">", "<=": "≤", "<": "<", "=": "=", "!=": "≠"}


def eval_prim(p: Prim, row: Mapping[str, Any]) -> int:
    """Outcome (F, T or U) of one primitive for one row; None means unknown."""
    if p.kind == "cmp":
        if p.op == "never":
            return F
        v = row.get(p.cols[0])
        if v is None:
            return U
        return T if _CMP[p.op](v, p.const) else F
    if p.kind == "in":
        v = row.get(p.cols[0])
        if v is None:
            return U
        hit = v in p.const
        return T if hit == (p.op == "in") else F
    if p.kind == "prefix":
        v = row.get(p.cols[0])
        if v is None:
            return U
        return T if any(str(v).startswith(x) for x in p.const) else F
    if p.kind == "ratio":
        a, b = row.get(p.cols[0]), row.get(p.cols[1])
        if a is None or b is None:
            return U
        if b <= 0:
            return F
        num, den = p.const
        return T if _CMP[p.op](a * den, num * b) else F
    if p.kind == "cert":
        start, end = row.get(p.cols[0]), row.get(p.cols[1])
        first = U if start is None else (T if start <= p.const else F)
        second = U if end is None else (T if end >= p.const else F)
        return kleene_all((first, second))
    if p.kind == "between":
        v = row.get(p.cols[0])
        if v is None:
            return U
        lo, hi = p.const
        inside = lo < v <= hi
        return T if inside == (p.op == "between") else F
    raise ValueError(f"unknown primitive {p.kind}")


def kleene_all(outcomes: Any) -> int:
    """Kleene conjunction."""
    seen_u = False
    for o in outcomes:
        if o == F:
            return F
        if o == U:
            seen_u = True
    return U if seen_u else T


def kleene_any(outcomes: Any) -> int:
    """Kleene disjunction."""
    seen_u = False
    for o in outcomes:
        if o == T:
            return T
        if o == U:
            seen_u = True
    return U if seen_u else F


def eval_tree(tree: Tree, atoms: list[int]) -> int:
    """Evaluate a rule tree over the outcomes of its atoms."""
    kind = tree[0]
    if kind == "atom":
        return atoms[tree[1]]
    if kind == "not":
        o = eval_tree(tree[1], atoms)
        return U if o == U else (F if o == T else T)
    if kind == "all":
        return kleene_all(eval_tree(c, atoms) for c in tree[1])
    return kleene_any(eval_tree(c, atoms) for c in tree[1])


def normalize_row(raw: Mapping[str, Any], catalogue: Catalogue | None = None) -> dict[str, Any]:
    """Typed row from loose input (ISO date text, '300万元' money text); unknown names are refused."""
    cat = catalogue or default_catalogue()
    out: dict[str, Any] = {}
    for name, value in raw.items():
        f = cat.get(name)
        if f is None:
            raise ValueProblem(f"unknown field {name!r}")
        if value is None:
            out[name] = None
            continue
        try:
            if f.kind == "money":
                out[name] = (
                    value
                    if isinstance(value, int) and not isinstance(value, bool)
                    else parse_money(value)
                )
            elif f.kind == "int":
                if isinstance(value, bool) or not isinstance(value, int):
                    raise ValueProblem(f"expected a whole number, got {value!r}")
                out[name] = value
            elif f.kind == "date":
                out[name] = value if isinstance(value, date) else date.fromisoformat(str(value))
            elif f.kind == "bool":
                if not isinstance(value, bool):
                    raise ValueProblem(f"expected true or false, got {value!r}")
                out[name] = value
            else:
                out[name] = str(value)
        except (ValueError, TypeError) as exc:
            raise ValueProblem(f"{name}: {exc}") from None
    return out


@dataclass
class ConditionResult:
    """One atomic condition for one enterprise; outcome says whether what the rule requires holds."""

    id: str
    outcome: str
    reason_zh: str
    reason_en: str
    missing: list[str] = field(default_factory=list)


@dataclass
class Change:
    """One change that would help a rule's conditions hold."""

    condition: str
    field: str
    kind: str  # increase | decrease | set | change | wait | obtain | supply
    text_zh: str
    text_en: str
    gap: float = 0.0
    edits: dict[str, Any] | None = None


@dataclass
class NearMiss:
    """The smallest set of changes found that would make an ineligible result eligible."""

    changes: list[Change]
    amount_fen: int | None = None

    @property
    def distance(self) -> tuple[int, float]:
        """(number of changes, summed relative gap) — smaller is nearer."""
        return len(self.changes), sum(c.gap for c in self.changes)

    def is_near(self, max_changes: int = 2, max_gap: float = 0.25) -> bool:
        """Few numeric changes, each small relative to the threshold."""
        return (
            len(self.changes) <= max_changes
            and all(c.kind in ("increase", "decrease", "wait") for c in self.changes)
            and all(c.gap <= max_gap for c in self.changes)
        )


@dataclass
class Explanation:
    """Everything about one enterprise × one rule."""

    rule_id: str
    result: str
    on: date
    conditions: list[ConditionResult]
    missing: list[str]
    failing: list[str]
    amount_fen: int | None = None
    amount_missing: list[str] = field(default_factory=list)
    near_miss: NearMiss | None = None
    in_force: bool = True

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form (the `huiqi match explain --json` shape)."""
        return {
            "rule_id": self.rule_id,
            "evaluation_date": self.on.isoformat(),
            "result": self.result,
            "in_force": self.in_force,
            "amount_fen": self.amount_fen,
            "reasons": [
                {
                    "condition": c.id,
                    "outcome": c.outcome,
                    "zh": c.reason_zh,
                    "en": c.reason_en,
                    "missing": c.missing,
                }
                for c in self.conditions
            ],
            "failing": self.failing,
            "missing": self.missing,
            "near_miss": None
            if self.near_miss is None
            else {
                "changes": [
                    {
                        "condition": c.condition,
                        "field": c.field,
                        "kind": c.kind,
                        "zh": c.text_zh,
                        "en": c.text_en,
                    }
                    for c in self.near_miss.changes
                ],
                "amount_fen": self.near_miss.amount_fen,
            },
        }


def operand_value(operand: Operand, row: Mapping[str, Any], on: date) -> Any:
    """The enterprise's value of a field, derived value or certification window."""
    if operand.kind == "field":
        return row.get(operand.name)
    if operand.kind == "ratio":
        a, b = row.get(operand.columns[0]), row.get(operand.columns[1])
        if a is None or b is None or b <= 0:
            return None
        return Fraction(a, b)
    if operand.kind == "years_since":
        start = row.get(operand.columns[0])
        return None if start is None else years_between(start, on)
    return (row.get(operand.columns[0]), row.get(operand.columns[1]))


def _labels(atom: AtomNode) -> tuple[str, str]:
    if atom.label is not None:
        return atom.label.zh, atom.label.en
    return atom.operand.label_zh, atom.operand.label_en


def _shown(atom: AtomNode, value: Any) -> tuple[str, str]:
    labels = atom.operand.fdef.values if atom.operand.fdef else None
    if isinstance(value, RelDate):
        return value.describe()
    return fmt_value(atom.operand.vtype, value, labels)


_REQUIRED_CACHE: dict[tuple[int, Any, date], tuple[str, str]] = {}


def _required(atom: AtomNode, resolved: Any, on: date) -> tuple[str, str]:
    """The required value as shown in reasons (memoised: thresholds repeat across enterprises)."""
    key = (id(atom), resolved if not isinstance(resolved, list) else tuple(resolved), on)
    hit = _REQUIRED_CACHE.get(key)
    if hit is None:
        if len(_REQUIRED_CACHE) > 50_000:
            _REQUIRED_CACHE.clear()
        hit = _REQUIRED_CACHE[key] = _required_text(atom, resolved, on)
    return hit


def _required_text(atom: AtomNode, resolved: Any, on: date) -> tuple[str, str]:
    if isinstance(atom.value, RelDate):
        zh, en = atom.value.describe()
        d = atom.value.resolve(on).isoformat()
        return f"{d}({zh})", f"{d} ({en})"
    return _shown(atom, resolved)


def render_reason(
    atom: AtomNode,
    resolved: Any,
    row: Mapping[str, Any],
    outcome: int,
    missing: list[str],
    on: date,
    catalogue: Catalogue,
    negated: bool = False,
) -> tuple[str, str]:
    """Chinese and English reason for one atom's outcome, worded as the requirement the rule makes.

    An atom under `not` is rendered as the opposite test with the opposite outcome, so the reason
    always says whether what the rule requires holds.
    """
    zh_l, en_l = _labels(atom)
    operand = atom.operand
    op = atom.op
    if negated:
        op = NEG.get(op, "not_" + op)
        outcome = {T: F, F: T, U: U}[outcome]
    if operand.kind == "cert":
        start, end = operand_value(operand, row, on)
        if outcome == U:
            return (
                f"缺少{zh_l}证书有效期数据,无法判断评估日 {on} 是否有效",
                f"{en_l} certificate dates unknown: cannot tell whether valid on {on}",
            )
        span_zh = f"{start or '?'} 至 {end or '?'}"
        if negated:
            held = outcome == F
            zh = f"{zh_l}证书有效期 {span_zh},评估日{'有效' if held else '无有效证书'}"
            en = f"{en_l} certificate {start or '?'} to {end or '?'}: {'valid' if held else 'none valid'} on {on}"
            return (
                (zh + ",不符合要求", en + ", which excludes it")
                if held
                else (zh + ",符合要求", en + ", as required")
            )
        if outcome == T:
            return (
                f"{zh_l}证书有效期 {span_zh},评估日 {on} 有效",
                f"{en_l} certificate {start} to {end}, valid on {on}",
            )
        return (
            f"{zh_l}证书有效期 {span_zh},评估日 {on} 不在有效期内",
            f"{en_l} certificate {start or '?'} to {end or '?'}, not valid on {on}",
        )
    if outcome == U:
        names_zh = "、".join(catalogue.get(m).label_zh if catalogue.get(m) else m for m in missing)  # type: ignore[union-attr]
        names_en = ", ".join(catalogue.get(m).label_en if catalogue.get(m) else m for m in missing)  # type: ignore[union-attr]
        req_zh, req_en = _required(atom, resolved, on)
        if op in ("in", "not_in", "prefix", "not_prefix"):
            return f"缺少{names_zh}数据,无法判断{zh_l}", f"{names_en} unknown: cannot decide {en_l}"
        sym = OP_SYMBOL[op]
        return (
            f"缺少{names_zh}数据,无法判断{zh_l}是否 {sym} {req_zh}",
            f"{names_en} unknown: cannot tell whether {en_l} {sym} {req_en}",
        )
    actual = operand_value(operand, row, on)
    if operand.kind == "ratio" and actual is None:
        den = catalogue.get(operand.columns[1])
        dz = den.label_zh if den else operand.columns[1]
        de = den.label_en if den else operand.columns[1]
        return (
            f"{dz}不大于 0,{zh_l}无法计算,不满足",
            f"{de} is not above zero, so {en_l} is undefined: not met",
        )
    act_zh, act_en = _shown(atom, actual)
    if op in ("in", "not_in", "prefix", "not_prefix"):
        req_zh, req_en = _shown(atom, list(resolved) if isinstance(resolved, tuple) else resolved)
        if op == "not_prefix":
            if outcome == T:
                return (
                    f"{zh_l} {act_zh},不属于 {req_zh} 范围",
                    f"{en_l} {act_en} is outside {req_en}",
                )
            return (
                f"{zh_l} {act_zh},属于被排除的 {req_zh} 范围",
                f"{en_l} {act_en} is within the excluded {req_en}",
            )
        if op == "prefix":
            if outcome == T:
                return f"{zh_l} {act_zh},属于 {req_zh} 范围", f"{en_l} {act_en} is within {req_en}"
            return (
                f"{zh_l} {act_zh},不属于 {req_zh} 范围",
                f"{en_l} {act_en} is not within {req_en}",
            )
        inside = (outcome == T) == (op == "in")
        if inside:
            return f"{zh_l} {act_zh},属于 {req_zh}", f"{en_l} {act_en} is one of {req_en}"
        return f"{zh_l} {act_zh},不属于 {req_zh}", f"{en_l} {act_en} is not one of {req_en}"
    req_zh, req_en = _required(atom, resolved, on)
    sym = OP_SYMBOL[op]
    if outcome == T:
        return f"{zh_l} {act_zh},满足 {sym} {req_zh}", f"{en_l} {act_en}, meets {sym} {req_en}"
    if op in (">=", ">"):
        if operand.vtype.kind == "date":
            return (
                f"{zh_l} {act_zh},早于要求的 {req_zh}",
                f"{en_l} {act_en}, earlier than the required {req_en}",
            )
        return (
            f"{zh_l} {act_zh},低于要求的 {req_zh}",
            f"{en_l} {act_en}, below the required {req_en}",
        )
    if op in ("<=", "<"):
        if operand.vtype.kind == "date":
            return (
                f"{zh_l} {act_zh},晚于要求的 {req_zh}",
                f"{en_l} {act_en}, later than the required {req_en}",
            )
        return f"{zh_l} {act_zh},超过上限 {req_zh}", f"{en_l} {act_en}, above the limit {req_en}"
    if op == "=":
        return f"{zh_l} {act_zh},不是要求的 {req_zh}", f"{en_l} {act_en}, not the required {req_en}"
    return f"{zh_l} 为 {act_zh},不符合 ≠ {req_zh}", f"{en_l} is {act_en}, which is excluded"


def _missing_cols(prim: Prim, row: Mapping[str, Any]) -> list[str]:
    if prim.op == "never":
        return []
    return [c for c in prim.cols if row.get(c) is None]


def deciding_missing(tree: Tree, outcomes: list[int], atom_missing: list[list[str]]) -> list[str]:
    """Missing fields of the unknown branches that keep the result unknown."""
    out: list[str] = []

    def walk(t: Tree) -> int:
        kind = t[0]
        if kind == "atom":
            if outcomes[t[1]] == U:
                out.extend(atom_missing[t[1]])
            return outcomes[t[1]]
        if kind == "not":
            return walk(t[1])
        results = [eval_tree(c, outcomes) for c in t[1]]
        node = kleene_all(results) if kind == "all" else kleene_any(results)
        if node == U:
            for c, r in zip(t[1], results, strict=True):
                if r == U:
                    walk(c)
        return node

    if eval_tree(tree, outcomes) == U:
        walk(tree)
    return list(dict.fromkeys(out))


def failing_atoms(tree: Tree, outcomes: list[int]) -> list[int]:
    """Atoms that make a false result false (the false children of false `all` nodes, all children of false `any`)."""
    out: list[int] = []

    def walk(t: Tree, want: int) -> None:
        kind = t[0]
        if kind == "atom":
            if outcomes[t[1]] == want:
                out.append(t[1])
            return
        if kind == "not":
            walk(t[1], T if want == F else F)
            return
        for c in t[1]:
            if eval_tree(c, outcomes) == want:
                walk(c, want)

    if eval_tree(tree, outcomes) == F:
        walk(tree, F)
    return list(dict.fromkeys(out))


class Evaluator:
    """Evaluates a plan for single enterprises; identical primitives are computed once per row."""

    def __init__(self, plan: Plan, catalogue: Catalogue | None = None) -> None:
        self.plan = plan
        self.catalogue = catalogue or default_catalogue()

    def prim_outcomes(self, row: Mapping[str, Any]) -> list[int]:
        """Outcome of every primitive in the plan."""
        return [eval_prim(p, row) for p in self.plan.prims]

    def results(self, row: Mapping[str, Any]) -> list[int]:
        """Result code of every rule in the plan for one row."""
        prim = self.prim_outcomes(row)
        return [eval_tree(pr.tree, [prim[i] for i in pr.atom_prims]) for pr in self.plan.rules]

    def explain_all(self, row: Mapping[str, Any], near_miss: bool = True) -> list[Explanation]:
        """Explanation of every rule for one row (primitives shared); near misses optional."""
        prim = self.prim_outcomes(row)
        return [self._explain(pr, row, prim, near_miss=near_miss) for pr in self.plan.rules]

    def explain(self, row: Mapping[str, Any], rule_id: str) -> Explanation:
        """Full explanation of one rule for one row."""
        pr = self.plan.rules[self.plan.index(rule_id)]
        outcomes = [eval_prim(self.plan.prims[i], row) for i in pr.atom_prims]
        return self._explain(pr, row, None, outcomes)

    def _explain(
        self,
        pr: PlanRule,
        row: Mapping[str, Any],
        prim: list[int] | None,
        outcomes: list[int] | None = None,
        near_miss: bool = True,
    ) -> Explanation:
        on = self.plan.on
        rule = pr.rule
        if outcomes is None:
            assert prim is not None
            outcomes = [prim[i] for i in pr.atom_prims]
        if not pr.in_force:
            window = f"{rule.doc.valid_from} – {rule.doc.valid_to or ''}"
            conds = [
                ConditionResult(
                    "in_force",
                    "false",
                    f"政策有效期 {window},评估日 {on} 不在有效期内",
                    f"The rule applies {window}; {on} is outside it",
                )
            ]
            return Explanation(rule.id, "ineligible", on, conds, [], ["in_force"], in_force=False)
        atom_missing = [_missing_cols(self.plan.prims[i], row) for i in pr.atom_prims]
        conds = []
        for j, atom in enumerate(rule.atoms):
            neg = pr.negated[j]
            zh, en = render_reason(
                atom, pr.resolved[j], row, outcomes[j], atom_missing[j], on, self.catalogue, neg
            )
            met = {T: F, F: T, U: U}[outcomes[j]] if neg else outcomes[j]
            conds.append(ConditionResult(atom.id, OUTCOME_NAMES[met], zh, en, atom_missing[j]))
        result = eval_tree(pr.tree, outcomes)
        missing = deciding_missing(pr.tree, outcomes, atom_missing)
        failing = [rule.atoms[j].id for j in failing_atoms(pr.tree, outcomes)]
        exp = Explanation(rule.id, RESULT_NAMES[result], on, conds, missing, failing)
        if rule.formula is not None and result == T:
            exp.amount_fen, exp.amount_missing = amount(rule, row, on)
        if result == F and near_miss:
            changes = minimal_changes(pr, outcomes, row, on, self.catalogue)
            if changes is not None:
                nm = NearMiss(changes)
                if rule.formula is not None:
                    edited = dict(row)
                    for c in changes:
                        edited.update(c.edits or {})
                    nm.amount_fen = amount(rule, edited, on)[0]
                exp.near_miss = nm
        return exp


def amount(rule: Rule, row: Mapping[str, Any], on: date) -> tuple[int | None, list[str]]:
    """Benefit amount in fen for a row (None with the missing names when inputs are unknown)."""
    assert rule.formula is not None
    env: dict[str, Any] = {}
    for name, ref in rule.formula_names.items():
        if isinstance(ref, Parameter):
            env[name] = ref.value_on(on)
        else:
            env[name] = operand_value(ref, row, on)
    fen, missing = eval_formula(rule.formula, env)
    if fen is None:
        return None, missing
    cap = rule.cap if rule.cap_param is None else rule.params[rule.cap_param].value_on(on)
    if cap is not None:
        fen = min(fen, cap)
    return max(fen, 0), []


def _gap(current: Any, required: Any) -> float:
    """Relative distance to the threshold; only ranks alternatives, so a float is enough."""
    try:
        cur, req = float(current), float(required)
    except (TypeError, ValueError):
        return 0.0
    return abs(req - cur) / max(abs(req), 1.0)


def atom_change(
    pr: PlanRule,
    j: int,
    want: int,
    outcome: int,
    row: Mapping[str, Any],
    on: date,
    catalogue: Catalogue,
) -> Change:
    """The change that would move atom j to the wanted outcome."""
    atom = pr.rule.atoms[j]
    operand = atom.operand
    zh_l, en_l = _labels(atom)
    if outcome == U:
        missing = [c for c in operand.columns if row.get(c) is None]
        names_zh = "、".join(catalogue.get(m).label_zh if catalogue.get(m) else m for m in missing)  # type: ignore[union-attr]
        names_en = ", ".join(catalogue.get(m).label_en if catalogue.get(m) else m for m in missing)  # type: ignore[union-attr]
        return Change(
            atom.id,
            operand.name,
            "supply",
            f"补充{names_zh}数据",
            f"supply {names_en}",
            1.0,
        )
    if operand.kind == "cert":
        if want == T:
            return Change(
                atom.id,
                operand.name,
                "obtain",
                f"取得有效的{zh_l}认定",
                f"hold a valid {en_l} certificate",
                1.0,
            )
        return Change(
            atom.id,
            operand.name,
            "change",
            f"{zh_l}认定不在有效期",
            f"no valid {en_l} certificate",
            1.0,
        )
    op = atom.op if want == T else NEG.get(atom.op, atom.op)
    resolved = pr.resolved[j]
    current = operand_value(operand, row, on)
    cur_zh, cur_en = _shown(atom, current)
    if op in ("in", "not_in", "prefix") or (want == F and atom.op == "prefix"):
        req_zh, req_en = _shown(atom, list(resolved))
        if op == "in" or (op == "prefix" and want == T):
            return Change(
                atom.id,
                operand.name,
                "set",
                f"{zh_l}需属于 {req_zh}(现为 {cur_zh})",
                f"{en_l} must be one of {req_en} (now {cur_en})",
                1.0,
            )
        return Change(
            atom.id,
            operand.name,
            "change",
            f"{zh_l}需不属于 {req_zh}(现为 {cur_zh})",
            f"{en_l} must not be one of {req_en} (now {cur_en})",
            1.0,
        )
    if operand.kind == "ratio" and current is None:
        return Change(
            atom.id,
            operand.name,
            "change",
            f"{zh_l}无法计算:{operand.columns[1]} 需大于 0",
            f"{en_l} undefined: {operand.columns[1]} must be above zero",
            1.0,
        )
    if operand.kind == "years_since" or isinstance(atom.value, RelDate):
        return _wait_change(atom, op, resolved, row, on)
    if operand.vtype.kind in ("int", "money", "ratio") and op in (">=", ">", "<=", "<"):
        step = (
            Fraction(0)
            if op in (">=", "<=")
            else (Fraction(1) if operand.vtype.kind != "ratio" else Fraction(1, 10000))
        )
        target = Fraction(resolved) + (step if op == ">" else -step if op == "<" else 0)
        kind = "increase" if op in (">=", ">") else "decrease"
        edits: dict[str, Any] = {}
        if operand.kind == "ratio":
            a_col, b_col = operand.columns
            b = row[b_col]
            need = target * b
            edits[a_col] = math.ceil(need) if kind == "increase" else math.floor(need)
            a_label = catalogue.get(a_col)
            a_zh, a_en = (
                fmt_value(VType("money"), edits[a_col])
                if a_label and a_label.kind == "money"
                else (str(edits[a_col]),) * 2
            )
            req_zh, req_en = _shown(atom, target)
            return Change(
                atom.id,
                operand.name,
                kind,
                f"{zh_l} {cur_zh} → {req_zh}({a_label.label_zh if a_label else a_col}需{'达到' if kind == 'increase' else '降至'} {a_zh})",
                f"{en_l} {cur_en} → {req_en} ({a_label.label_en if a_label else a_col} {'at least' if kind == 'increase' else 'at most'} {a_en})",
                _gap(current, target),
                edits,
            )
        value = int(target)
        edits[operand.name] = value
        req_zh, req_en = _shown(atom, value)
        return Change(
            atom.id,
            operand.name,
            kind,
            f"{zh_l} {cur_zh} → {req_zh}",
            f"{en_l} {cur_en} → {req_en}",
            _gap(current, value),
            edits,
        )
    req_zh, req_en = _shown(atom, resolved)
    if op == "=":
        return Change(
            atom.id,
            operand.name,
            "set",
            f"{zh_l}需为 {req_zh}(现为 {cur_zh})",
            f"{en_l} must be {req_en} (now {cur_en})",
            1.0,
            {operand.name: resolved} if operand.kind == "field" else None,
        )
    return Change(
        atom.id,
        operand.name,
        "change",
        f"{zh_l}需满足 {OP_SYMBOL.get(op, op)} {req_zh}(现为 {cur_zh})",
        f"{en_l} must be {OP_SYMBOL.get(op, op)} {req_en} (now {cur_en})",
        1.0,
    )


def _wait_change(
    atom: AtomNode, op: str, resolved: Any, row: Mapping[str, Any], on: date
) -> Change:
    """Conditions on age: only time changes them; say from when they would hold."""
    operand = atom.operand
    zh_l, en_l = _labels(atom)
    start = row.get(operand.columns[0])
    if operand.kind == "years_since" and op in (">=", ">") and start is not None:
        years = int(resolved) + (1 if op == ">" else 0)
        when = _add_months(start, 12 * years)
        return Change(
            atom.id,
            operand.name,
            "wait",
            f"{zh_l}将于 {when} 满 {years} 年",
            f"{en_l} reaches {years} years on {when}",
            _gap(years_between(start, on), years),
        )
    if isinstance(atom.value, RelDate) and op in ("<=", "<") and start is not None:
        rel = atom.value
        months = rel.years * 12 + rel.months
        when = _add_months(start, months) + timedelta(days=rel.days + (1 if op == "<" else 0))
        return Change(
            atom.id,
            operand.name,
            "wait",
            f"自 {when} 起满足{zh_l}要求",
            f"the {en_l} condition holds from {when}",
            0.1,
        )
    return Change(
        atom.id,
        operand.name,
        "change",
        f"{zh_l}不满足要求",
        f"{en_l} does not qualify",
        1.0,
    )


def _add_months(d: date, months: int) -> date:
    return sub_months(d, -months)


def minimal_changes(
    pr: PlanRule, outcomes: list[int], row: Mapping[str, Any], on: date, catalogue: Catalogue
) -> list[Change] | None:
    """Smallest set of atom changes that makes the rule's tree true."""
    cache: dict[tuple[int, int], Change] = {}

    def change(j: int, want: int) -> Change:
        key = (j, want)
        if key not in cache:
            cache[key] = atom_change(pr, j, want, outcomes[j], row, on, catalogue)
        return cache[key]

    def cost(cs: list[Change]) -> tuple[int, int, float]:
        hard = sum(1 for c in cs if c.kind not in ("increase", "decrease", "wait", "supply"))
        return hard, len(cs), sum(c.gap for c in cs)

    def need(t: Tree, want: int) -> list[Change]:
        kind = t[0]
        if kind == "atom":
            j = t[1]
            return [] if outcomes[j] == want else [change(j, want)]
        if kind == "not":
            return need(t[1], F if want == T else T)
        conj = (kind == "all") == (want == T)
        options = [need(c, want) for c in t[1]]
        if conj:
            merged: list[Change] = []
            for o in options:
                merged += [c for c in o if c not in merged]
            return merged
        return min(options, key=cost)

    changes = need(pr.tree, T)
    return changes or None


def explain_rule(
    rule: Rule, row: Mapping[str, Any], on: date, catalogue: Catalogue | None = None
) -> Explanation:
    """Explain one rule for one row on date `on` (convenience for requests and tests)."""
    plan = compile_plan([rule], on)
    return Evaluator(plan, catalogue).explain(row, rule.id)
