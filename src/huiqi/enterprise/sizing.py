"""Statutory SME size classes (工信部联企业〔2011〕300号) from dated parameters in data/size_standard.yaml.

``classify`` answers large / medium / small / micro, the industry group it used and, for every bound,
whether it was met. A missing input makes the answer ``unknown`` only when the missing value could
change the class: the classification is piecewise constant between the thresholds, so every possible
value of the missing indicators is covered by trying one value per threshold interval.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import Any

import polars as pl
import yaml

from huiqi.core import clock
from huiqi.core.codes import CodeError, industries, validate_industry
from huiqi.core.errors import Invalid
from huiqi.core.money import FEN_PER_WAN

SIZES = ("large", "medium", "small", "micro")
UNKNOWN = "unknown"
INDICATORS = ("employees", "revenue", "total_assets")
_LABEL_ZH = {"employees": "从业人员", "revenue": "营业收入", "total_assets": "资产总额"}
_UNIT_ZH = {"employees": "人", "revenue": "万元", "total_assets": "万元"}
_SIZE_ZH = {"large": "大型", "medium": "中型", "small": "小型", "micro": "微型", UNKNOWN: "未知"}


@dataclass(frozen=True)
class Group:
    """One industry group of the standard with its bounds (staff in persons, money in fen)."""

    key: str
    zh: str
    en: str
    match: dict[str, Any]
    sme_ceiling: dict[str, int]
    medium: dict[str, int]
    small: dict[str, int]

    @property
    def indicators(self) -> tuple[str, ...]:
        """Indicators this group's bounds read, in a stable order."""
        used = set(self.sme_ceiling) | set(self.medium) | set(self.small)
        return tuple(name for name in INDICATORS if name in used)


@dataclass(frozen=True)
class StandardVersion:
    """The thresholds in force from valid_from until valid_to (exclusive)."""

    id: str
    valid_from: date
    valid_to: date | None
    basis: str
    groups: dict[str, Group]


@dataclass(frozen=True)
class AboveScaleRule:
    """规模以上工业企业 threshold in force for a period."""

    valid_from: date
    valid_to: date | None
    group: str
    revenue_fen: int
    basis: str


@dataclass
class SizeResult:
    """Outcome of a classification; ``missing`` is non-empty exactly when size is unknown."""

    size: str
    group: str | None
    group_zh: str | None
    reasons: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    above_scale: bool | None = None
    basis: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form used by the CLI and the API."""
        return {
            "size": self.size,
            "group": self.group,
            "group_zh": self.group_zh,
            "reasons": self.reasons,
            "missing": self.missing,
            "above_scale": self.above_scale,
            "basis": self.basis,
        }


def _bounds(raw: dict[str, Any]) -> dict[str, int]:
    # Staff stays in persons; money bounds are stored in 万元 and compared in fen.
    return {
        k: int(v) if k == "employees" else int(Decimal(str(v)) * FEN_PER_WAN)
        for k, v in raw.items()
    }


@cache
def _load() -> tuple[tuple[StandardVersion, ...], tuple[AboveScaleRule, ...]]:
    text = (
        resources.files("huiqi.enterprise").joinpath("data/size_standard.yaml").read_text("utf-8")
    )
    data = yaml.safe_load(text)
    versions = []
    for v in data["versions"]:
        groups = {
            key: Group(
                key=key,
                zh=g["zh"],
                en=g["en"],
                match=g["match"],
                sme_ceiling=_bounds(g["sme_ceiling"]),
                medium=_bounds(g["medium"]),
                small=_bounds(g["small"]),
            )
            for key, g in v["groups"].items()
        }
        versions.append(
            StandardVersion(v["id"], v["valid_from"], v["valid_to"], v["basis"], groups)
        )
    rules = tuple(
        AboveScaleRule(
            r["valid_from"], r["valid_to"], r["group"], int(r["revenue"]) * FEN_PER_WAN, r["basis"]
        )
        for r in data["above_scale"]
    )
    return tuple(versions), rules


def standard_on(on: date) -> StandardVersion | None:
    """The version of the standard in force on a date, or None before the first one."""
    for version in _load()[0]:
        if version.valid_from <= on and (version.valid_to is None or on < version.valid_to):
            return version
    return None


def _above_scale_rule(on: date) -> AboveScaleRule | None:
    for rule in _load()[1]:
        if rule.valid_from <= on and (rule.valid_to is None or on < rule.valid_to):
            return rule
    return None


def group_for(industry_code: str, version: StandardVersion) -> Group:
    """The industry group of a four-digit GB/T 4754-2017 class under a version of the standard."""
    row = industries()[industry_code]
    keys = {
        "classes": industry_code,
        "groups": industry_code[:3],
        "divisions": industry_code[:2],
        "sections": row.section,
    }
    for level in ("classes", "groups", "divisions", "sections"):
        for group in version.groups.values():
            if keys[level] in group.match.get(level, ()):
                return group
    return next(g for g in version.groups.values() if g.match.get("default"))


def _size_of(group: Group, values: dict[str, int]) -> str:
    if all(values[k] >= bound for k, bound in group.sme_ceiling.items()):
        return "large"
    if all(values[k] >= bound for k, bound in group.medium.items()):
        return "medium"
    if all(values[k] >= bound for k, bound in group.small.items()):
        return "small"
    return "micro"


def _candidates(group: Group, name: str) -> list[int]:
    # One representative per interval between thresholds: below the lowest, then each bound itself.
    bounds = {b[name] for b in (group.sme_ceiling, group.medium, group.small) if name in b}
    return [0, *sorted(bounds)]


def _fmt(name: str, value: int) -> str:
    if name == "employees":
        return f"{value}{_UNIT_ZH[name]}"
    wan = (Decimal(value) / FEN_PER_WAN).normalize()
    return f"{wan:f}{_UNIT_ZH[name]}"


def _reasons(group: Group, known: dict[str, int | None]) -> list[str]:
    lines = []
    for tier, label_zh, label_en, bounds, op in (
        ("ceiling", "中小微企业上限", "SME ceiling", group.sme_ceiling, "<"),
        ("medium", "中型下限", "medium lower bound", group.medium, "≥"),
        ("small", "小型下限", "small lower bound", group.small, "≥"),
    ):
        for name, bound in bounds.items():
            value = known.get(name)
            label = _LABEL_ZH[name]
            if value is None:
                lines.append(
                    f"{label}未知，无法比较{label_zh} {_fmt(name, bound)} / {name} unknown ({label_en})"
                )
                continue
            met = value < bound if tier == "ceiling" else value >= bound
            mark = "满足" if met else "不满足"
            lines.append(
                f"{label} {_fmt(name, value)} {op} {_fmt(name, bound)}（{label_zh}）：{mark}"
                f" / {name} {op} {label_en}: {'met' if met else 'not met'}"
            )
    return lines


def classify(
    industry_code: str | None,
    employees: int | None,
    revenue_fen: int | None = None,
    assets_fen: int | None = None,
    on: date | None = None,
) -> SizeResult:
    """Size class of an enterprise from one year's figures under the standard in force on ``on``.

    Raises CodeError for an industry code that is not a GB/T 4754-2017 class and Invalid for a
    negative input; a missing input (None) gives ``unknown`` when it could change the answer.
    """
    on = on or clock.today()
    for name, value in (
        ("employees", employees),
        ("revenue", revenue_fen),
        ("total_assets", assets_fen),
    ):
        if value is not None and value < 0:
            raise Invalid(
                f"{_LABEL_ZH[name]}不能为负数", f"{name} must not be negative", field=name
            )
    version = standard_on(on)
    if version is None:
        return SizeResult(
            UNKNOWN,
            None,
            None,
            reasons=[f"{on} 时无在用的划型标准 / no size standard in force on {on}"],
            missing=["standard"],
        )
    if industry_code is None or not str(industry_code).strip():
        return SizeResult(
            UNKNOWN,
            None,
            None,
            reasons=["行业代码未知，无法确定适用行业 / industry unknown"],
            missing=["industry_code"],
            basis=version.basis,
        )
    code = validate_industry(str(industry_code))
    group = group_for(code, version)
    known: dict[str, int | None] = {
        "employees": employees,
        "revenue": revenue_fen,
        "total_assets": assets_fen,
    }
    absent = [name for name in group.indicators if known[name] is None]
    options: list[list[int]] = []
    for name in group.indicators:
        value = known[name]
        options.append(_candidates(group, name) if value is None else [value])
    outcomes = {
        _size_of(group, dict(zip(group.indicators, combo, strict=True)))
        for combo in itertools.product(*options)
    }
    reasons = [
        f"适用行业：{group.zh}（{code}）/ industry group: {group.en}",
        *_reasons(group, known),
    ]
    if len(outcomes) == 1:
        size = outcomes.pop()
        missing: list[str] = []
        if absent:
            reasons.append(
                f"缺少{'、'.join(_LABEL_ZH[n] for n in absent)}，但其取值不影响结果"
                f" / {', '.join(absent)} missing but cannot change the class"
            )
    else:
        size = UNKNOWN
        missing = absent
        reasons.append(
            f"缺少{'、'.join(_LABEL_ZH[n] for n in absent)}，可能为"
            f"{'、'.join(_SIZE_ZH[s] for s in SIZES if s in outcomes)} / missing input, could be "
            + ", ".join(s for s in SIZES if s in outcomes)
        )
    if size != UNKNOWN:
        reasons.append(f"结论：{_SIZE_ZH[size]}企业 / result: {size}")
    return SizeResult(
        size=size,
        group=group.key,
        group_zh=group.zh,
        reasons=reasons,
        missing=missing,
        above_scale=above_scale(code, revenue_fen, on),
        basis=version.basis,
    )


@cache
def _group_by_code(industry_code: str, version_id: str) -> Group:
    version = next(v for v in _load()[0] if v.id == version_id)
    return group_for(industry_code, version)


def _known_class(industry_code: str | None) -> str | None:
    code = (industry_code or "").strip()
    row = industries().get(code)
    return code if row is not None and row.level == "class" else None


def above_scale(
    industry_code: str | None, revenue_fen: int | None, on: date | None = None
) -> bool | None:
    """规模以上工业企业: industrial and revenue ≥ the threshold; None when industry or (for industry) revenue is unknown."""
    on = on or clock.today()
    rule = _above_scale_rule(on)
    version = standard_on(on)
    code = _known_class(industry_code)
    if rule is None or version is None or code is None:
        return None
    if _group_by_code(code, version.id).key != rule.group:
        return False
    if revenue_fen is None:
        return None
    return revenue_fen >= rule.revenue_fen


def size_class(
    industry_code: str | None,
    employees: int | None,
    revenue_fen: int | None,
    assets_fen: int | None,
    on: date | None = None,
) -> str | None:
    """The size class as the field contract stores it: None for unknown or unusable input.

    Bulk paths call this per enterprise, so complete inputs skip the explanation-building path.
    """
    on = on or clock.today()
    version = standard_on(on)
    code = _known_class(industry_code)
    if version is None or code is None:
        return None
    group = _group_by_code(code, version.id)
    known = {"employees": employees, "revenue": revenue_fen, "total_assets": assets_fen}
    values = {name: known[name] for name in group.indicators}
    if all(v is not None and v >= 0 for v in values.values()):
        return _size_of(group, values)  # type: ignore[arg-type]
    try:
        result = classify(code, employees, revenue_fen, assets_fen, on)
    except (CodeError, ValueError):
        return None
    return None if result.size == UNKNOWN else result.size


def _size_open(group: Group, known: dict[str, int | None]) -> str | None:
    """``size_class`` for figures with a gap: the class if every possible value of the group's
    missing figures gives the same class, else None (also for any negative figure); no
    explanation is built."""
    if any(v is not None and v < 0 for v in known.values()):
        return None
    options = [
        [v] if (v := known[k]) is not None else _candidates(group, k) for k in group.indicators
    ]
    outcomes = {
        _size_of(group, dict(zip(group.indicators, combo, strict=True)))
        for combo in itertools.product(*options)
    }
    return outcomes.pop() if len(outcomes) == 1 else None


def classify_rows(
    rows: list[tuple[str | None, int | None, int | None, int | None]], on: date
) -> list[tuple[str | None, bool | None]]:
    """(size_class, above_scale) of many (industry, employees, revenue fen, assets fen) at once.

    Same answers as ``size_class`` and ``above_scale`` row by row; the standard, the 规模以上
    rule and each industry's group are looked up once per batch instead of once per row.
    """
    version = standard_on(on)
    rule = _above_scale_rule(on)
    groups: dict[str, Group | None] = {}
    out: list[tuple[str | None, bool | None]] = []
    for industry, employees, revenue, assets in rows:
        key = industry or ""
        if key not in groups:
            code = _known_class(industry)
            groups[key] = _group_by_code(code, version.id) if code is not None and version else None
        group = groups[key]
        if group is None:
            out.append((None, None))
            continue
        known = {"employees": employees, "revenue": revenue, "total_assets": assets}
        values = {name: known[name] for name in group.indicators}
        if all(v is not None and v >= 0 for v in values.values()):
            size: str | None = _size_of(group, values)  # type: ignore[arg-type]
        else:
            size = _size_open(group, known)
        if rule is None:
            scale: bool | None = None
        elif group.key != rule.group:
            scale = False
        else:
            scale = None if revenue is None else revenue >= rule.revenue_fen
        out.append((size, scale))
    return out


_TIERS = (("large", "sme_ceiling"), ("medium", "medium"), ("small", "small"))


def _size_expr(figure: Callable[[str], pl.Expr]) -> pl.Expr:
    """``_size_of`` as a vector expression: each row's group bounds are columns ``{tier}_{figure}``
    (null: no bound), compared with the figures ``figure`` gives."""
    size: pl.Expr = pl.lit("micro")
    for name, tier in reversed(_TIERS):
        meets = pl.all_horizontal(
            [
                (figure(k) >= pl.col(f"{tier}_{k}")) | pl.col(f"{tier}_{k}").is_null()
                for k in INDICATORS
            ]
        )
        size = pl.when(meets).then(pl.lit(name)).otherwise(size)
    return size


def classify_frame(frame: pl.DataFrame, on: date) -> pl.DataFrame:
    """size_class and above_scale columns for a frame of industry_code, employees, revenue and
    total_assets (fen): the answers of ``classify_rows``, compared as vectors.

    Each row is joined with its industry group's bounds. A row with a figure missing gets the
    class ``_size_open`` gives: every bound is a lower bound, so a class can only rise with a
    figure, and every value the missing figures could take gives the same class exactly when
    their least (0) and their greatest candidate (the highest bound) do.
    """
    version = standard_on(on)
    rule = _above_scale_rule(on)
    groups: dict[str, Group] = {}
    of_industry: dict[str, str] = {}
    for industry in frame["industry_code"].drop_nulls().unique().to_list():
        code = _known_class(industry)
        if code is None or version is None:
            continue
        group = _group_by_code(code, version.id)
        groups[group.key] = group
        of_industry[industry] = group.key
    table = pl.DataFrame(
        [
            {
                "_group": g.key,
                "_rule": rule is not None and g.key == rule.group,
                **{
                    f"{tier}_{k}": getattr(g, tier).get(k)
                    for _name, tier in _TIERS
                    for k in INDICATORS
                },
                **{f"uses_{k}": k in g.indicators for k in INDICATORS},
                **{f"most_{k}": max(_candidates(g, k)) for k in INDICATORS},
            }
            for g in groups.values()
        ],
        schema={
            "_group": pl.Utf8,
            "_rule": pl.Boolean,
            **{f"{tier}_{k}": pl.Int64 for _name, tier in _TIERS for k in INDICATORS},
            **{f"uses_{k}": pl.Boolean for k in INDICATORS},
            **{f"most_{k}": pl.Int64 for k in INDICATORS},
        },
    )
    least = _size_expr(lambda k: pl.col(k).fill_null(0))
    most = _size_expr(lambda k: pl.col(k).fill_null(pl.col(f"most_{k}")))
    complete = pl.all_horizontal(
        [~pl.col(f"uses_{k}") | (pl.col(k).is_not_null() & (pl.col(k) >= 0)) for k in INDICATORS]
    )
    negative = pl.any_horizontal([pl.col(k) < 0 for k in INDICATORS]).fill_null(False)
    known = pl.col("_group").is_not_null()
    scale = (
        pl.lit(None, pl.Boolean)
        if rule is None
        else pl.when(known & pl.col("_rule"))
        .then(pl.col("revenue") >= rule.revenue_fen)
        .when(known)
        .then(pl.lit(False))
    )
    return (
        frame.select(
            *INDICATORS,
            pl.col("industry_code")
            .replace_strict(of_industry, default=None, return_dtype=pl.Utf8)
            .alias("_group"),
        )
        .join(table, on="_group", how="left", maintain_order="left")
        .select(
            pl.when(known & complete)
            .then(least)
            .when(known & ~negative & (least == most))
            .then(least)
            .alias("size_class"),
            scale.alias("above_scale"),
        )
    )
