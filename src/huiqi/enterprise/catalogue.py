"""The attribute catalogue (catalogue.yaml): field declarations, value parsing and storage encoding."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from functools import cache
from importlib import resources
from typing import Any

import yaml

from huiqi.core.errors import Invalid
from huiqi.core.money import FEN_PER_WAN, MoneyError, to_fen

TYPES = {"str", "int", "money", "date", "bool", "enum"}
KINDS = {"key", "profile", "yearly", "derived"}
_TRUE = {"1", "true", "yes", "y", "是", "同意", "t"}
_FALSE = {"0", "false", "no", "n", "否", "不同意", "f"}


class CatalogueError(Invalid):
    """The catalogue file is malformed."""


class ValueProblem(ValueError):
    """A value does not fit its field (the message is the per-row reason)."""


@dataclass(frozen=True)
class Field:
    """One declared attribute."""

    name: str
    type: str
    zh: str
    en: str
    kind: str
    source: str
    unit: str | None = None
    import_unit: str | None = None
    header_zh: str | None = None
    header_en: str | None = None
    values: dict[str, str] = field(default_factory=dict)
    contract: bool = False
    self_report: bool = False
    note: str | None = None

    @property
    def headers(self) -> tuple[str, str]:
        """(Chinese, English) headers of the import template."""
        return (self.header_zh or self.zh, self.header_en or self.name)

    def parse(self, raw: str) -> Any:
        """Read an import cell (already stripped, non-empty) into the stored Python value."""
        try:
            return _PARSERS[self.type](self, raw)
        except (ValueError, InvalidOperation, MoneyError) as exc:
            if isinstance(exc, ValueProblem):
                raise
            raise ValueProblem(
                f"无法读取为{_TYPE_ZH[self.type]} / not a valid {self.type}: {exc}"
            ) from None


_TYPE_ZH = {
    "str": "文本",
    "int": "整数",
    "money": "金额",
    "date": "日期",
    "bool": "是/否",
    "enum": "代码",
}


def _parse_int(f: Field, raw: str) -> int:
    number = Decimal(raw.replace(",", ""))
    if number != number.to_integral_value():
        raise ValueProblem("应为整数 / must be a whole number")
    return int(number)


def _parse_money(f: Field, raw: str) -> int:
    return to_fen(raw, f.import_unit or "yuan")


def _parse_date(f: Field, raw: str) -> date:
    text = raw.strip().replace("/", "-").replace(".", "-")
    if " " in text:
        text = text.split(" ", 1)[0]  # spreadsheet datetimes: keep the day
    parts = text.split("-")
    if len(parts) == 3 and all(p.isdigit() for p in parts):
        return date(int(parts[0]), int(parts[1]), int(parts[2]))
    if len(text) == 8 and text.isdigit():
        return date(int(text[:4]), int(text[4:6]), int(text[6:]))
    raise ValueProblem("日期格式应为 YYYY-MM-DD / date must be YYYY-MM-DD")


def _parse_bool(f: Field, raw: str) -> bool:
    low = raw.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise ValueProblem("应为 是/否 / must be yes or no")


def _parse_enum(f: Field, raw: str) -> str:
    text = raw.strip()
    for key, label in f.values.items():
        if text.lower() == key.lower() or text == label:
            return key
    allowed = ", ".join(f"{k}({v})" for k, v in f.values.items())
    raise ValueProblem(f"取值应为 {allowed} / must be one of {', '.join(f.values)}")


_PARSERS = {
    "str": lambda f, raw: raw.strip(),
    "int": _parse_int,
    "money": _parse_money,
    "date": _parse_date,
    "bool": _parse_bool,
    "enum": _parse_enum,
}


def encode(value: Any) -> str:
    """Canonical text of a stored value (used for history rows and change detection)."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def decode(f: Field, text: str | None) -> Any:
    """Inverse of encode for a field."""
    if text is None:
        return None
    if f.type in {"int", "money"}:
        return int(text)
    if f.type == "date":
        return date.fromisoformat(text)
    if f.type == "bool":
        return text == "1"
    return text


def display(f: Field, value: Any) -> str:
    """Human form of a stored value (money in 万元, enums by label)."""
    if value is None:
        return "—"
    if f.type == "money":
        return f"{(Decimal(value) / FEN_PER_WAN).normalize():f} 万元"
    if f.type == "bool":
        return "是" if value else "否"
    if f.type == "enum":
        return f.values.get(str(value), str(value))
    return encode(value)


@dataclass(frozen=True)
class Catalogue:
    """All declared fields, by name, in file order."""

    fields: dict[str, Field]
    sources: tuple[str, ...]

    def of_kind(self, *kinds: str) -> list[Field]:
        """Fields of the given kinds, in file order."""
        return [f for f in self.fields.values() if f.kind in kinds]

    @property
    def contract(self) -> list[Field]:
        """The field-contract columns of the current frame, in file order."""
        return [f for f in self.fields.values() if f.contract]

    @property
    def stored(self) -> list[Field]:
        """Fields stored as values with history (profile and yearly)."""
        return self.of_kind("profile", "yearly")

    def __getitem__(self, name: str) -> Field:
        return self.fields[name]


def _validate(data: Any) -> Catalogue:
    if not isinstance(data, dict) or "fields" not in data:
        raise CatalogueError("catalogue needs a top-level `fields` list")
    sources = tuple(data.get("sources", ()))
    out: dict[str, Field] = {}
    for i, raw in enumerate(data["fields"]):
        where = f"field #{i + 1} ({raw.get('name', '?')})"
        for key in ("name", "type", "zh", "en", "kind", "source"):
            if not raw.get(key):
                raise CatalogueError(f"{where}: missing `{key}`")
        if raw["type"] not in TYPES:
            raise CatalogueError(f"{where}: type must be one of {sorted(TYPES)}")
        if raw["kind"] not in KINDS:
            raise CatalogueError(f"{where}: kind must be one of {sorted(KINDS)}")
        if raw["source"] not in sources:
            raise CatalogueError(f"{where}: source {raw['source']!r} is not in `sources`")
        if raw["type"] == "enum" and not raw.get("values"):
            raise CatalogueError(f"{where}: enum needs `values`")
        if raw["name"] in out:
            raise CatalogueError(f"{where}: duplicate name")
        values = {str(k): str(v) for k, v in (raw.get("values") or {}).items()}
        out[raw["name"]] = Field(**{**raw, "values": values})
    return Catalogue(out, sources)


def load_catalogue(text: str) -> Catalogue:
    """Parse and validate catalogue YAML text."""
    return _validate(yaml.safe_load(text))


@cache
def catalogue() -> Catalogue:
    """The packaged catalogue."""
    text = resources.files("huiqi.enterprise").joinpath("catalogue.yaml").read_text("utf-8")
    return load_catalogue(text)


def label_of(name: str, lang: str = "zh") -> str:
    """The display name of a field as forms label it (the name itself when none is declared)."""
    f = catalogue().fields.get(name)
    if f is None:
        return name
    return f.en if lang == "en" else f.zh


@cache
def _field_pattern() -> re.Pattern[str]:
    names = sorted(catalogue().fields, key=len, reverse=True)
    return re.compile(
        r"(?<![A-Za-z0-9_])(" + "|".join(map(re.escape, names)) + r")(?![A-Za-z0-9_])"
    )


def name_fields(text: str, lang: str = "zh") -> str:
    """Text with the field names it mentions (in a formula, a list) replaced by their display names."""
    return _field_pattern().sub(lambda m: label_of(m.group(1), lang), text)
