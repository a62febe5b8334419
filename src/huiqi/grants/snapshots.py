"""Grant snapshots: what an amount was computed from, stored so it can be recomputed."""

from __future__ import annotations

import functools
import hashlib
import json
from datetime import date
from decimal import Decimal
from fractions import Fraction
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from huiqi.grants.models import Grant
from huiqi.grants.schemas import GrantError


def encode_value(value: Any) -> Any:
    """A JSON form of an input value that decodes back to the same Python value."""
    if isinstance(value, date):
        return {"date": value.isoformat()}
    if isinstance(value, Fraction):
        return {"fraction": f"{value.numerator}/{value.denominator}"}
    if isinstance(value, Decimal):
        return {"decimal": str(value)}
    return value


def decode_value(value: Any) -> Any:
    """Inverse of encode_value."""
    if isinstance(value, dict):
        if "date" in value:
            return date.fromisoformat(value["date"])
        if "fraction" in value:
            return Fraction(value["fraction"])
        if "decimal" in value:
            return Decimal(value["decimal"])
    return value


def inputs_hash(inputs: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of the encoded inputs."""
    canonical = json.dumps(inputs, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


@functools.lru_cache(maxsize=1024)
def rule_of(source: str, rule_id: str, version: int) -> Any:
    """The checked rule of a stored version (parsed once: a version never changes)."""
    from huiqi.matching.service import base_library

    return base_library().parse_rule(source, f"{rule_id} v{version}")


def build_snapshot(
    rule: Any, row: dict[str, Any], on: date, provenance: dict[str, str]
) -> dict[str, Any]:
    """What the amount was computed from: the date, the inputs the rule reads, the parameters."""
    from huiqi.rules.compiler import Parameter

    params = {
        name: encode_value(ref.value_on(on))
        for name, ref in rule.formula_names.items()
        if isinstance(ref, Parameter)
    }
    return {
        "on": on.isoformat(),
        "inputs": {col: encode_value(row.get(col)) for col in rule.columns()},
        "parameters": params,
        "formula": rule.formula.text if rule.formula is not None else None,
        "as_of": provenance,
    }


def recompute(session: Session, grant: Grant) -> int | None:
    """The amount computed again from the grant's snapshot and its rule version."""
    from huiqi.matching.models import RuleVersion
    from huiqi.rules.evaluate import amount

    version = session.scalar(
        select(RuleVersion).where(
            RuleVersion.rule_id == grant.rule_id, RuleVersion.version == grant.rule_version
        )
    )
    if version is None:
        raise GrantError(f"rule {grant.rule_id} v{grant.rule_version} is not stored")
    rule = rule_of(version.source, version.rule_id, version.version)
    inputs = {k: decode_value(v) for k, v in grant.snapshot["inputs"].items()}
    return amount(rule, inputs, date.fromisoformat(grant.snapshot["on"]))[0]
