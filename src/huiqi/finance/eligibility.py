"""Product eligibility in the rules engine's language, rates from dated parameters.

A product's eligibility is one rule of the rules engine: its structured limits (size classes,
industry and region prefixes) become atomic conditions, and the lender's own conditions — YAML
text in the rule language — are placed beside them under one `all`. The rule is checked by the
engine's compiler and evaluated by its single-enterprise evaluator; nothing here evaluates
conditions itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from fractions import Fraction
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml
from pydantic import ValidationError

from huiqi.core.errors import Invalid
from huiqi.rules.catalogue import default_catalogue
from huiqi.rules.compiler import Parameter, Rule, build_parameter
from huiqi.rules.evaluate import Evaluator, Explanation
from huiqi.rules.library import Library, load_base
from huiqi.rules.plan import compile_plan
from huiqi.rules.schema import ParameterFile
from huiqi.rules.source import RuleError, RuleValidationError, load_yaml, pydantic_errors

RATE_BASES = ("lpr_1y", "lpr_5y")
CONDITIONS_FILE = "<准入条件 conditions>"
KIND_BASIS = {
    "credit_loan": "(十三)",
    "tax_bank": "(十三)",
    "ip_pledge": "(十三)",
    "receivables": "(十三)",
    "supply_chain": "(十三)",
    "guarantee": "(十八)",
    "startup_guarantee_loan": "(十八)",
    "other": "(十九)",
}


class ProductRuleError(Invalid):
    """A product's eligibility could not be written as a rule; `problems` says where and why."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class NotEvaluable(ValueError):
    """A product cannot be evaluated on a date (rule refused, or a parameter has no value)."""


@dataclass(frozen=True)
class FinanceParams:
    """The rule library (with the finance parameters added) used to check and evaluate products."""

    library: Library

    def param(self, name: str) -> Parameter | None:
        """A dated parameter by name."""
        return self.library.params.get(name)

    def bp_on(self, name: str, on: date) -> int | None:
        """A ratio parameter's value on a date in basis points (None when it has none)."""
        p = self.param(name)
        value = None if p is None else p.value_on(on)
        if value is None:
            return None
        bp = Fraction(value) * 10000
        if bp.denominator != 1:
            raise NotEvaluable(f"parameter {name} is finer than one basis point on {on}")
        return int(bp)

    def count_on(self, name: str, on: date) -> int:
        """A whole-number parameter on a date; a missing value is a configuration error."""
        p = self.param(name)
        value = None if p is None else p.value_on(on)
        if not isinstance(value, int):
            raise NotEvaluable(f"parameter {name} has no value on {on}")
        return value

    def fee_cap_bp(self, on: date) -> int | None:
        """Guarantee-fee ceiling of seed article (十八) on a date, in basis points."""
        return self.bp_on("guarantee_fee_rate_max", on)


def load_params(text: str, file: str, library: Library) -> FinanceParams:
    """Add the parameters of a finance parameter file to a rule library."""
    located = load_yaml(text, file)
    try:
        pfile = ParameterFile.model_validate(located.data)
    except ValidationError as exc:
        raise RuleValidationError(pydantic_errors(located, exc)) from None
    errors: list[RuleError] = []
    params = dict(library.params)
    for i, doc in enumerate(pfile.parameters):
        if doc.id in params:
            errors.append(located.error(("parameters", i, "id"), f"{doc.id} is declared twice"))
            continue
        built = build_parameter(doc, located, ("parameters", i), errors)
        if built is not None:
            params[doc.id] = built
    if errors:
        raise RuleValidationError(errors)
    merged = Library(
        catalogue=library.catalogue,
        derived=dict(library.derived),
        params=params,
        root=library.root,
    )
    return FinanceParams(merged)


@lru_cache(maxsize=1)
def default_params() -> FinanceParams:
    """The packaged rule library plus src/huiqi/finance/data/parameters.yaml."""
    text = resources.files("huiqi.finance").joinpath("data/parameters.yaml").read_text("utf-8")
    return load_params(text, "finance/data/parameters.yaml", load_base())


@dataclass(frozen=True)
class ProductTerms:
    """What the eligibility rule of a product is built from."""

    rule_id: str
    name: str
    institution: str
    kind: str
    size_classes: Sequence[str]
    industry_prefixes: Sequence[str]
    region_prefixes: Sequence[str]
    conditions_yaml: str
    legal_basis: Sequence[Mapping[str, str]]
    valid_from: date
    valid_to: date | None


def _flow(value: Any) -> str:
    """One YAML flow value, quoted safely."""
    return yaml.safe_dump(value, allow_unicode=True, default_flow_style=True, width=10_000).strip()


def rule_text(terms: ProductTerms) -> tuple[str, int]:
    """The product's rule as YAML text, and the line where the lender's conditions start."""
    basis = list(terms.legal_basis) or [
        {"doc_number": "甘工信发〔2020〕351号", "article": KIND_BASIS.get(terms.kind, "(十九)")}
    ]
    head = {
        "id": terms.rule_id,
        "title": {"zh": terms.name, "en": terms.name},
        "legal_basis": [dict(b) for b in basis],
        "department": terms.institution,
        "mode": "apply",
        "valid_from": terms.valid_from.isoformat(),
    }
    if terms.valid_to is not None:
        head["valid_to"] = terms.valid_to.isoformat()
    lines = yaml.safe_dump(head, allow_unicode=True, sort_keys=False, width=10_000).splitlines()
    lines += ["conditions:", "  all:"]
    if terms.size_classes:
        lines.append(
            f"    - {{field: size_class, op: in, value: {_flow(list(terms.size_classes))}, id: size_class}}"
        )
    if terms.region_prefixes:
        lines.append(
            f"    - {{field: region_code, op: prefix, value: {_flow([str(x) for x in terms.region_prefixes])}, id: region}}"
        )
    if terms.industry_prefixes:
        lines.append(
            f"    - {{field: industry_code, op: prefix, value: {_flow([str(x) for x in terms.industry_prefixes])}, id: industry}}"
        )
    start = len(lines) + 1
    custom = terms.conditions_yaml.strip("\n")
    if custom.strip():
        try:
            shape = yaml.safe_load(custom)
        except yaml.YAMLError:
            shape = None
        if isinstance(shape, list):
            lines.append("    - all:")
            start += 1
            lines += [f"        {line}" for line in custom.splitlines()]
        else:
            lines.append("    -")
            start += 1
            lines += [f"      {line}" for line in custom.splitlines()]
    return "\n".join(lines) + "\n", start


def compile_product(terms: ProductTerms, params: FinanceParams | None = None) -> Rule:
    """Check a product's eligibility with the rules engine; raise ProductRuleError with reasons."""
    params = params or default_params()
    if not (terms.size_classes or terms.region_prefixes or terms.industry_prefixes) and not (
        terms.conditions_yaml.strip()
    ):
        raise ProductRuleError(
            [
                "准入条件为空:至少选择适用的企业规模 / eligibility is empty: choose the size classes served"
            ]
        )
    text, start = rule_text(terms)
    custom_lines = len(terms.conditions_yaml.strip("\n").splitlines())
    try:
        return params.library.parse_rule(text, CONDITIONS_FILE)
    except RuleValidationError as exc:
        problems = []
        for err in exc.errors:
            if err.line is not None and start <= err.line < start + custom_lines:
                problems.append(
                    f"准入条件第 {err.line - start + 1} 行 / line {err.line - start + 1}: {err.reason}"
                )
            else:
                problems.append(err.reason)
        raise ProductRuleError(problems) from None
    except yaml.YAMLError as exc:
        raise ProductRuleError(
            [f"准入条件不是有效的 YAML / conditions are not valid YAML: {exc}"]
        ) from None


def enterprise_row(values: Mapping[str, Any] | None) -> dict[str, Any]:
    """The catalogue fields of an enterprise's current row (unknown when there is no row)."""
    if values is None:
        return {}
    cat = default_catalogue()
    return {k: v for k, v in values.items() if cat.get(k) is not None}


def explain(rule: Rule, row: Mapping[str, Any], on: date) -> Explanation:
    """Evaluate one product rule for one enterprise with the engine's single-enterprise evaluator."""
    try:
        plan = compile_plan([rule], on)
    except (ValueError, KeyError) as exc:
        raise NotEvaluable(str(exc)) from None
    return Evaluator(plan).explain(row, rule.id)
