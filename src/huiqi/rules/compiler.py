"""Rules from YAML to checked objects: names resolved, types and units checked, dated parameters covered, unreachable conditions refused."""

from __future__ import annotations

import ast
import hashlib
import json
from dataclasses import dataclass, field
from datetime import date, timedelta
from fractions import Fraction
from typing import Any

from pydantic import ValidationError

from huiqi.rules.catalogue import Catalogue, FieldDef
from huiqi.rules.formula import Formula, FormulaError, compile_formula
from huiqi.rules.schema import DerivedDoc, ParameterDoc, ParamSource, RuleDoc, Text
from huiqi.rules.source import Located, Path_, RuleError, RuleValidationError, pydantic_errors
from huiqi.rules.values import (
    PARAM_UNITS,
    RelDate,
    ValueProblem,
    VType,
    normalise_code,
    parse_scalar,
)

OP_ALIASES = {
    "=": "=",
    "==": "=",
    "!=": "!=",
    "≠": "!=",
    "<": "<",
    "<=": "<=",
    "≤": "<=",
    ">": ">",
    ">=": ">=",
    "≥": ">=",
    "in": "in",
    "not in": "not_in",
    "not_in": "not_in",
    "prefix": "prefix",
}
ORDER_OPS = ("<", "<=", ">", ">=")
MAX_ATOMS = 31  # two bits per condition fit a signed 64-bit integer


@dataclass(frozen=True)
class Parameter:
    """A dated parameter: one value per effective period, each with its source."""

    id: str
    title: Text
    unit: str
    vtype: VType
    periods: tuple[tuple[date, date | None, Any, ParamSource], ...]

    def value_on(self, on: date) -> Any:
        """The value in force on `on`; None when no period covers it."""
        for start, end, value, _src in self.periods:
            if start <= on and (end is None or on <= end):
                return value
        return None

    def source_on(self, on: date) -> ParamSource | None:
        """The source (legal, setting or estimate) of the value in force on `on`."""
        for start, end, _value, src in self.periods:
            if start <= on and (end is None or on <= end):
                return src
        return None

    def kinds(self) -> set[str]:
        """The kinds of source of its periods (legal, setting, estimate)."""
        return {src.kind for _s, _e, _v, src in self.periods}

    def estimated_within(self, start: date, end: date | None) -> date | None:
        """The start of the first estimated period overlapping [start, end], or None."""
        for p_start, p_end, _v, src in sorted(self.periods, key=lambda p: p[0]):
            if src.kind != "estimate":
                continue
            if (p_end is None or p_end >= start) and (end is None or p_start <= end):
                return max(p_start, start)
        return None

    def first_gap(self, start: date, end: date | None) -> date | None:
        """The first date in [start, end] no period covers (None when fully covered)."""
        cursor = start
        for p_start, p_end, _v, _s in sorted(self.periods, key=lambda p: p[0]):
            if p_end is not None and p_end < cursor:
                continue
            if p_start > cursor:
                return cursor
            if p_end is None:
                return None
            cursor = p_end + timedelta(days=1)
            if end is not None and cursor > end:
                return None
        return cursor


@dataclass(frozen=True)
class Operand:
    """What an atomic condition reads: a field, a derived value or a certification."""

    name: str
    kind: str  # field | ratio | years_since | cert
    vtype: VType
    columns: tuple[str, ...]
    label_zh: str
    label_en: str
    fdef: FieldDef | None = None


@dataclass
class AtomNode:
    """An atomic comparison in a rule."""

    id: str
    line: int | None
    operand: Operand
    op: str
    value: Any = None
    param: str | None = None
    label: Text | None = None


@dataclass
class GroupNode:
    """all / any / not over child nodes."""

    kind: str
    children: list[Node]
    line: int | None


Node = AtomNode | GroupNode


@dataclass
class Rule:
    """A checked rule, ready to be compiled into a plan for any evaluation date."""

    doc: RuleDoc
    file: str
    source: str
    hash: str
    tree: Node
    atoms: list[AtomNode]
    params: dict[str, Parameter]
    formula: Formula | None = None
    cap: Any = None
    cap_param: str | None = None
    formula_names: dict[str, Operand | Parameter] = field(default_factory=dict)

    @property
    def id(self) -> str:
        """The rule id."""
        return self.doc.id

    def in_force(self, on: date) -> bool:
        """Whether `on` falls in the rule's validity window."""
        return self.doc.valid_from <= on and (self.doc.valid_to is None or on <= self.doc.valid_to)

    def columns(self) -> list[str]:
        """Every base column the rule reads, sorted (conditions and formula)."""
        cols = {c for a in self.atoms for c in a.operand.columns}
        for ref in self.formula_names.values():
            if isinstance(ref, Operand):
                cols.update(ref.columns)
        return sorted(cols)


@dataclass
class Namespace:
    """Names a rule can use: catalogue fields, derived values, parameters."""

    catalogue: Catalogue
    derived: dict[str, DerivedDoc]
    params: dict[str, Parameter]

    def operand(self, name: str) -> Operand | None:
        """Resolve a field or derived name."""
        f = self.catalogue.get(name)
        if f is not None:
            if f.kind in ("int",):
                vt = VType("int", f.unit or "count")
            elif f.kind in ("enum", "code"):
                vt = VType("str")
            else:
                vt = VType(f.kind)
            return Operand(name, "field", vt, (name,), f.label_zh, f.label_en, f)
        d = self.derived.get(name)
        if d is None:
            return None
        if d.kind == "ratio":
            assert d.numerator and d.denominator
            return Operand(
                name, "ratio", VType("ratio"), (d.numerator, d.denominator), d.title.zh, d.title.en
            )
        assert d.field
        return Operand(
            name, "years_since", VType("int", "years"), (d.field,), d.title.zh, d.title.en
        )


def rule_hash(located: Located) -> str:
    """A stable content hash of the parsed rule (formatting and comments do not count)."""
    blob = json.dumps(located.data, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


def build_parameter(
    doc: ParameterDoc, located: Located, path: Path_, errors: list[RuleError]
) -> Parameter | None:
    """Check a parameter's values against its unit and its periods for overlap."""
    vtype = PARAM_UNITS[doc.unit]
    periods = []
    ok = True
    for i, p in enumerate(doc.values):
        try:
            if isinstance(p.value, list):
                value: Any = tuple(parse_scalar(vtype, v) for v in p.value)
            else:
                value = parse_scalar(vtype, p.value)
                if isinstance(value, RelDate):
                    raise ValueProblem("a parameter date must be a calendar date")
        except ValueProblem as exc:
            errors.append(
                located.error((*path, "values", i, "value"), f"parameter {doc.id}: {exc}")
            )
            ok = False
            continue
        periods.append((p.from_, p.to, value, p.source))
    ordered = sorted(periods, key=lambda p: p[0])
    for a, b in zip(ordered, ordered[1:], strict=False):
        if a[1] is None or a[1] >= b[0]:
            errors.append(
                located.error(
                    (*path, "values"),
                    f"parameter {doc.id}: periods starting {a[0]} and {b[0]} overlap",
                )
            )
            ok = False
    if not ok:
        return None
    return Parameter(doc.id, doc.title, doc.unit, vtype, tuple(periods))


def check_derived(doc: DerivedDoc, catalogue: Catalogue) -> str | None:
    """Why a derived declaration is wrong, or None."""
    if doc.kind == "ratio":
        for part in (doc.numerator, doc.denominator):
            f = catalogue.get(part or "")
            if f is None:
                return f"derived {doc.id}: unknown field {part!r}"
            if f.kind not in ("money", "int"):
                return f"derived {doc.id}: {part} is {f.kind}, a ratio needs numbers"
        num, den = catalogue.get(doc.numerator or ""), catalogue.get(doc.denominator or "")
        assert num and den
        if (num.kind, num.unit) != (den.kind, den.unit):
            return f"derived {doc.id}: numerator and denominator have different units"
        return None
    f = catalogue.get(doc.field or "")
    if f is None:
        return f"derived {doc.id}: unknown field {doc.field!r}"
    if f.kind != "date":
        return f"derived {doc.id}: years_since needs a date field, {doc.field} is {f.kind}"
    return None


class RuleCompiler:
    """Turns one rule's YAML into a Rule, collecting every error with its line."""

    def __init__(self, located: Located, ns: Namespace) -> None:
        self.loc = located
        self.ns = ns
        self.errors: list[RuleError] = []
        self.atoms: list[AtomNode] = []
        self.used_ids: set[str] = set()

    def err(self, path: Path_, reason: str) -> None:
        """Record an error at `path`."""
        self.errors.append(self.loc.error(path, reason))

    def node(self, raw: Any, path: Path_) -> Node | None:
        """Parse a condition node."""
        line = self.loc.line(path)
        if not isinstance(raw, dict) or not raw:
            self.err(
                path,
                "a condition must be a mapping: all / any / not, or field/cert with op and value",
            )
            return None
        groups = [k for k in ("all", "any", "not") if k in raw]
        if groups:
            if len(raw) != 1:
                self.err(
                    path, f"'{groups[0]}' must be the only key of its mapping, found {sorted(raw)}"
                )
                return None
            kind = groups[0]
            body = raw[kind]
            if kind == "not":
                child = self.node(body, (*path, kind))
                return GroupNode("not", [child], line) if child else None
            if not isinstance(body, list) or not body:
                self.err((*path, kind), f"'{kind}' needs a non-empty list of conditions")
                return None
            children = [self.node(c, (*path, kind, i)) for i, c in enumerate(body)]
            if any(c is None for c in children):
                return None
            return GroupNode(kind, [c for c in children if c is not None], line)
        return self.atom(raw, path)

    def _atom_id(self, wanted: Any, base: str, path: Path_) -> str:
        if wanted is not None:
            ident = str(wanted)
            if ident in self.used_ids:
                self.err((*path, "id"), f"condition id {ident!r} is used twice")
            self.used_ids.add(ident)
            return ident
        ident, n = base, 2
        while ident in self.used_ids:
            ident, n = f"{base}_{n}", n + 1
        self.used_ids.add(ident)
        return ident

    def atom(self, raw: dict[str, Any], path: Path_) -> AtomNode | None:
        """Parse and type-check an atomic condition."""
        line = self.loc.line(path)
        label = None
        if "label" in raw:
            try:
                label = Text.model_validate(raw["label"])
            except ValidationError:
                self.err((*path, "label"), "label needs zh and en")
        if "cert" in raw:
            extra = set(raw) - {"cert", "op", "id", "label"}
            if extra:
                self.err(path, f"unknown key(s) {sorted(extra)} in a certification condition")
                return None
            kind = raw["cert"]
            if kind not in self.ns.catalogue.cert_kinds:
                self.err(
                    (*path, "cert"),
                    f"unknown certification {kind!r}; known: {self.ns.catalogue.cert_kinds}",
                )
                return None
            if raw.get("op", "valid_on") != "valid_on":
                self.err((*path, "op"), "a certification condition only supports op: valid_on")
                return None
            zh, en = self.ns.catalogue.cert_label(kind)
            operand = Operand(
                f"cert_{kind}",
                "cert",
                VType("date"),
                (f"cert_{kind}_from", f"cert_{kind}_to"),
                zh,
                en,
            )
            node = AtomNode(
                self._atom_id(raw.get("id"), f"cert_{kind}", path),
                line,
                operand,
                "valid_on",
                label=label,
            )
            self.atoms.append(node)
            return node
        extra = set(raw) - {"field", "op", "value", "param", "id", "label"}
        if extra:
            self.err(
                path,
                f"unknown key(s) {sorted(extra)}; an atomic condition has field, op, value or param, id, label",
            )
            return None
        if "field" not in raw:
            self.err(path, "an atomic condition needs 'field' (or 'cert'), or use all / any / not")
            return None
        name = raw["field"]
        found = self.ns.operand(str(name))
        if found is None:
            self.err(
                (*path, "field"),
                f"unknown field {name!r} (not in the field catalogue or derived values)",
            )
            return None
        operand = found
        op_raw = raw.get("op")
        op = OP_ALIASES.get(str(op_raw)) if op_raw is not None else None
        if op is None:
            self.err(
                (*path, "op"), f"unknown operator {op_raw!r}; use one of {sorted(set(OP_ALIASES))}"
            )
            return None
        vt = operand.vtype
        fdef = operand.fdef
        if op in ORDER_OPS and vt.kind in ("str", "bool"):
            self.err(
                (*path, "op"), f"{op} does not apply to {name} ({fdef.kind if fdef else vt.kind})"
            )
            return None
        if op == "prefix" and not (fdef and fdef.kind == "code"):
            self.err(
                (*path, "op"),
                f"prefix applies to code fields (region_code, industry_code), not {name}",
            )
            return None
        if (
            op in ("in", "not_in")
            and vt.kind in ("ratio", "date", "bool")
            or (op in ("in", "not_in") and operand.kind == "years_since")
        ):
            self.err((*path, "op"), f"{op} does not apply to {name}; use comparisons")
            return None
        if op == "prefix" and "param" in raw:
            self.err((*path, "param"), "prefix takes literal codes")
            return None
        if ("value" in raw) == ("param" in raw):
            self.err(path, "give exactly one of 'value' or 'param'")
            return None
        node = AtomNode(
            self._atom_id(raw.get("id"), str(name), path), line, operand, op, label=label
        )
        if "param" in raw:
            pname = str(raw["param"])
            param = self.ns.params.get(pname)
            if param is None:
                self.err((*path, "param"), f"unknown parameter {pname!r}")
                return None
            if param.vtype != vt and not (
                vt.kind == "int" and param.vtype.kind == "int" and vt.unit == param.vtype.unit
            ):
                self.err(
                    (*path, "param"),
                    f"unit mismatch: {name} is {vt.describe()} but parameter {pname} is {param.vtype.describe()}",
                )
                return None
            node.param = pname
        else:
            node.value = self.literal(raw["value"], operand, op, (*path, "value"))
            if node.value is None:
                return None
        self.atoms.append(node)
        return node

    def literal(self, raw: Any, operand: Operand, op: str, path: Path_) -> Any:
        """Parse the literal of a condition against the operand's type."""
        vt = operand.vtype
        allowed = operand.fdef.values if operand.fdef and operand.fdef.kind == "enum" else None
        if operand.fdef is not None and operand.fdef.kind == "code":
            # Codes compare as ASCII text: a full-width ６２ would otherwise match nothing.
            raw = (
                [normalise_code(x) if isinstance(x, str) else x for x in raw]
                if isinstance(raw, list)
                else (normalise_code(raw) if isinstance(raw, str) else raw)
            )
        try:
            if op == "prefix":
                items = raw if isinstance(raw, list) else [raw]
                if not items:
                    raise ValueProblem("prefix needs at least one code")
                return tuple(self.prefix(str(x), operand) for x in items)
            if op in ("in", "not_in"):
                if not isinstance(raw, list) or not raw:
                    raise ValueProblem(f"{op} needs a non-empty list")
                return tuple(dict.fromkeys(parse_scalar(vt, x, allowed) for x in raw))
            if isinstance(raw, list):
                raise ValueProblem(f"{op} compares with one value, got a list (use in)")
            value = parse_scalar(vt, raw, allowed)
            if isinstance(value, RelDate) and op not in ORDER_OPS + ("=", "!="):
                raise ValueProblem("relative dates only compare with = ≠ < ≤ > ≥")
            return value
        except ValueProblem as exc:
            self.err(path, f"{operand.name}: {exc}")
            return None

    def prefix(self, code: str, operand: Operand) -> str:
        """Check a hierarchy prefix for region (digits) or industry (section letter or digits)."""
        h = operand.fdef.hierarchy if operand.fdef else None
        code = normalise_code(code)
        if not code.isascii():
            raise ValueProblem(f"code prefix {code!r} must be written in ASCII digits or letters")
        if h == "region":
            if not (code.isdigit() and len(code) in (2, 4, 6)):
                raise ValueProblem(f"region prefix {code!r} must be 2, 4 or 6 digits (GB/T 2260)")
        elif h == "industry":
            if not (
                (len(code) == 1 and "A" <= code <= "T") or (code.isdigit() and 2 <= len(code) <= 4)
            ):
                raise ValueProblem(
                    f"industry prefix {code!r} must be a GB/T 4754 section letter A–T or 2–4 digits"
                )
        return code

    def formula(
        self, doc: RuleDoc
    ) -> tuple[Formula | None, dict[str, Operand | Parameter], Any, str | None]:
        """Check the benefit formula and cap."""
        if doc.benefit is None:
            return None, {}, None, None
        kinds: dict[str, str] = {}
        refs: dict[str, Operand | Parameter] = {}
        for name in self.ns.catalogue.fields:
            op = self.ns.operand(name)
            if op and op.vtype.kind in ("money", "int"):
                kinds[name] = "money" if op.vtype.kind == "money" else "num"
                refs[name] = op
        for name in self.ns.derived:
            op = self.ns.operand(name)
            if op:
                kinds[name], refs[name] = "num", op
        for name, p in self.ns.params.items():
            if p.vtype.kind in ("money", "ratio", "int"):
                kinds[name] = "money" if p.vtype.kind == "money" else "num"
                refs[name] = p
        try:
            f = compile_formula(doc.benefit.formula, kinds)
        except FormulaError as exc:
            self.err(("benefit", "formula"), str(exc))
            return None, {}, None, None
        cap, cap_param = None, None
        raw_cap = doc.benefit.cap
        if isinstance(raw_cap, dict) and set(raw_cap) == {"param"}:
            cap_p = self.ns.params.get(str(raw_cap["param"]))
            if cap_p is None or cap_p.vtype.kind != "money":
                self.err(
                    ("benefit", "cap"),
                    f"cap parameter {raw_cap['param']!r} must exist and be money",
                )
            else:
                cap_param = cap_p.id
        elif raw_cap is not None:
            try:
                cap = parse_scalar(VType("money"), raw_cap)
            except ValueProblem as exc:
                self.err(("benefit", "cap"), f"cap: {exc}")
        names = {n: refs[n] for n in f.names}
        return f, names, cap, cap_param


def _bounds(atom: AtomNode, negate: bool) -> tuple[str, Any] | None:
    """(op, comparable value) for the unreachable check, after pushing a negation in."""
    if atom.param is not None or atom.operand.kind == "cert":
        return None
    value = atom.value
    op = atom.op
    if negate:
        flip = {
            "<": ">=",
            "<=": ">",
            ">": "<=",
            ">=": "<",
            "=": "!=",
            "!=": "=",
            "in": "not_in",
            "not_in": "in",
        }
        if op not in flip:
            return None
        op = flip[op]
    if isinstance(value, RelDate):
        # Relative dates share one base, so comparing them on any fixed day keeps their order.
        value = value.resolve(date(2001, 3, 15))
    return op, value


def find_unreachable(node: Node) -> list[tuple[AtomNode, AtomNode, str]]:
    """Pairs of atoms under one `all` whose conjunction no value can satisfy."""
    found: list[tuple[AtomNode, AtomNode, str]] = []

    def collect(n: Node, negate: bool, out: list[tuple[AtomNode, tuple[str, Any]]]) -> None:
        if isinstance(n, AtomNode):
            b = _bounds(n, negate)
            if b is not None:
                out.append((n, b))
        elif n.kind == "not":
            child = n.children[0]
            if isinstance(child, AtomNode):
                collect(child, not negate, out)
            elif child.kind == ("any" if not negate else "all"):
                for c in child.children:
                    collect(c, not negate, out)
        elif (n.kind == "all" and not negate) or (n.kind == "any" and negate):
            for c in n.children:
                collect(c, negate, out)

    def visit(n: Node) -> None:
        if isinstance(n, AtomNode):
            return
        if n.kind == "all":
            items: list[tuple[AtomNode, tuple[str, Any]]] = []
            collect(n, False, items)
            by_name: dict[str, list[tuple[AtomNode, tuple[str, Any]]]] = {}
            for a, b in items:
                by_name.setdefault(a.operand.name, []).append((a, b))
            for group in by_name.values():
                for i, (a1, b1) in enumerate(group):
                    for a2, b2 in group[i + 1 :]:
                        why = _conflict(b1, b2, a1.operand)
                        if why:
                            found.append((a1, a2, why))
        for c in n.children:
            visit(c)

    visit(node)
    return found


def _satisfiable_pair(b1: tuple[str, Any], b2: tuple[str, Any], discrete: bool) -> bool:
    """Whether some value satisfies both constraints (finite candidate check)."""
    values = []
    for _op, v in (b1, b2):
        for x in v if isinstance(v, tuple) else (v,):
            values.append(x)
    candidates: list[Any] = list(values)
    for v in values:
        if isinstance(v, int) and not isinstance(v, bool):
            candidates += [v - 1, v + 1]
        elif isinstance(v, Fraction):
            candidates += [v - Fraction(1, 10**9), v + Fraction(1, 10**9)]
        elif isinstance(v, date):
            candidates += [v - timedelta(days=1), v + timedelta(days=1)]
        elif isinstance(v, str):
            candidates.append(v + "\x00unlikely")
    nums = [v for v in values if isinstance(v, Fraction | int) and not isinstance(v, bool)]
    if len(nums) >= 2 and not discrete:
        s = sorted(nums)
        candidates += [(Fraction(a) + Fraction(b)) / 2 for a, b in zip(s, s[1:], strict=False)]
    return any(_holds(b1, c) and _holds(b2, c) for c in candidates)


def _holds(b: tuple[str, Any], x: Any) -> bool:
    op, v = b
    try:
        if op == "in":
            return x in v
        if op == "not_in":
            return x not in v
        if op == "prefix":
            return isinstance(x, str) and any(x.startswith(p) for p in v)
        if op == "=":
            return bool(x == v)
        if op == "!=":
            return bool(x != v)
        return bool({"<": x < v, "<=": x <= v, ">": x > v, ">=": x >= v}[op])
    except TypeError:
        return False


def _conflict(b1: tuple[str, Any], b2: tuple[str, Any], operand: Operand) -> str | None:
    """A reason when two constraints on one operand cannot hold together."""
    if "prefix" in (b1[0], b2[0]):
        if b1[0] == b2[0] == "prefix":
            ok = any(p.startswith(q) or q.startswith(p) for p in b1[1] for q in b2[1])
            return None if ok else "no code starts with both prefixes"
        other = b2 if b1[0] == "prefix" else b1
        pre = b1 if b1[0] == "prefix" else b2
        if other[0] in ("in", "="):
            vals = other[1] if isinstance(other[1], tuple) else (other[1],)
            if not any(str(v).startswith(p) for v in vals for p in pre[1]):
                return "none of the listed codes has the required prefix"
        return None
    discrete = operand.vtype.kind in ("int", "money", "date")
    if _satisfiable_pair(b1, b2, discrete):
        return None
    return "no value satisfies both"


def _describe(atom: AtomNode) -> str:
    v = atom.value
    if isinstance(v, tuple):
        v = list(v)
    return f"{atom.operand.name} {atom.op} {v}"


def _literal_amounts(text: str) -> list[str]:
    """Money written as a literal in a formula (yuan(8000), wan(2) …), zero excepted."""
    out = []
    for node in ast.walk(ast.parse(text.strip(), mode="eval")):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("yuan", "wan", "fen")
            and any(isinstance(a, ast.Constant) and a.value != 0 for a in node.args)
        ):
            out.append(ast.get_source_segment(text.strip(), node) or node.func.id)
    return out


def _auto_grant_problems(
    located: Located,
    doc: RuleDoc,
    formula: Formula,
    fnames: dict[str, Operand | Parameter],
    cap: Any,
    cap_param: str | None,
    params: dict[str, Parameter],
) -> list[RuleError]:
    """Why an auto_grant amount is not computed from recorded data and sourced values only.

    A payment without application must follow from the registry's records and figures whose
    source is a legal text or a recorded operator setting: an estimate, a literal amount or a
    formula that reads no recorded value would pay money on an assumption.
    """
    at = ("benefit", "formula")
    problems = []
    if not any(isinstance(r, Operand) for r in fnames.values()):
        problems.append(
            located.error(
                at,
                "an auto_grant benefit must be computed from recorded data: the formula reads "
                "no enterprise field",
            )
        )
    for lit in _literal_amounts(formula.text):
        problems.append(
            located.error(
                at,
                f"an auto_grant formula cannot contain the literal amount {lit}: declare a "
                "parameter with its legal source",
            )
        )
    if cap is not None:
        problems.append(
            located.error(
                ("benefit", "cap"),
                "an auto_grant cap must be a parameter with its source, not a literal amount",
            )
        )
    used = [n for n, r in fnames.items() if isinstance(r, Parameter)]
    for pname in [*used, *([cap_param] if cap_param else [])]:
        since = params[pname].estimated_within(doc.valid_from, doc.valid_to)
        if since is not None:
            problems.append(
                located.error(
                    ("benefit",),
                    f"parameter {pname} is an estimate from {since}: an estimate is never used "
                    "in an auto_grant amount",
                )
            )
    return problems


def compile_rule(
    located: Located,
    catalogue: Catalogue,
    library_derived: dict[str, DerivedDoc],
    library_params: dict[str, Parameter],
    source: str = "",
) -> Rule:
    """Validate a parsed rule document against the catalogue and library; raise RuleValidationError."""
    errors: list[RuleError] = []
    if not isinstance(located.data, dict):
        raise RuleValidationError(
            [located.error((), "a rule file must be a mapping (id, title, conditions, …)")]
        )
    try:
        doc = RuleDoc.model_validate(located.data)
    except ValidationError as exc:
        raise RuleValidationError(pydantic_errors(located, exc)) from None
    derived = dict(library_derived)
    for i, d in enumerate(doc.derived):
        if d.id in derived or catalogue.get(d.id):
            errors.append(
                located.error(("derived", i, "id"), f"derived value {d.id!r} already exists")
            )
            continue
        why = check_derived(d, catalogue)
        if why:
            errors.append(located.error(("derived", i), why))
            continue
        derived[d.id] = d
    params = dict(library_params)
    for i, p in enumerate(doc.parameters):
        if p.id in params:
            errors.append(
                located.error(
                    ("parameters", i, "id"), f"parameter {p.id!r} already exists in the library"
                )
            )
            continue
        built = build_parameter(p, located, ("parameters", i), errors)
        if built:
            params[p.id] = built
    ns = Namespace(catalogue, derived, params)
    rc = RuleCompiler(located, ns)
    tree = rc.node(doc.conditions, ("conditions",))
    formula, fnames, cap, cap_param = rc.formula(doc)
    errors += rc.errors
    if len(rc.atoms) > MAX_ATOMS:
        errors.append(
            located.error(("conditions",), f"a rule may have at most {MAX_ATOMS} atomic conditions")
        )
    if tree is not None:
        for a1, a2, why in find_unreachable(tree):
            errors.append(
                RuleError(
                    located.file,
                    a2.line,
                    f"unreachable condition: {_describe(a1)} (line {a1.line}) and {_describe(a2)}: {why}",
                )
            )
    used_params = {a.param for a in rc.atoms if a.param} | {
        n for n, r in fnames.items() if isinstance(r, Parameter)
    }
    if cap_param:
        used_params.add(cap_param)
    for pname in sorted(used_params):
        gap = params[pname].first_gap(doc.valid_from, doc.valid_to)
        if gap is not None:
            line = next((a.line for a in rc.atoms if a.param == pname), located.line(("benefit",)))
            errors.append(
                RuleError(
                    located.file,
                    line,
                    f"parameter {pname} has no value for {gap} (inside the rule's validity window)",
                )
            )
    if doc.mode == "auto_grant" and formula is not None:
        errors += _auto_grant_problems(located, doc, formula, fnames, cap, cap_param, params)
    if errors:
        raise RuleValidationError(errors)
    assert tree is not None
    return Rule(
        doc=doc,
        file=located.file,
        source=source,
        hash=rule_hash(located),
        tree=tree,
        atoms=rc.atoms,
        params={k: v for k, v in params.items() if k in used_params},
        formula=formula,
        cap=cap,
        cap_param=cap_param,
        formula_names=fnames,
    )
