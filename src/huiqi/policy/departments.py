"""Registry of department names: canonical short names, official names and aliases."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

import yaml

# Province abbreviations as they open document numbers (甘工信发 → 甘肃) and full names.
PROVINCES: dict[str, str] = {
    "京": "北京市", "津": "天津市", "冀": "河北省", "晋": "山西省", "蒙": "内蒙古自治区",
    "辽": "辽宁省", "吉": "吉林省", "黑": "黑龙江省", "沪": "上海市", "苏": "江苏省",
    "浙": "浙江省", "皖": "安徽省", "闽": "福建省", "赣": "江西省", "鲁": "山东省",
    "豫": "河南省", "鄂": "湖北省", "湘": "湖南省", "粤": "广东省", "桂": "广西壮族自治区",
    "琼": "海南省", "渝": "重庆市", "川": "四川省", "贵": "贵州省", "黔": "贵州省",
    "云": "云南省", "滇": "云南省", "藏": "西藏自治区", "陕": "陕西省", "甘": "甘肃省",
    "陇": "甘肃省", "青": "青海省", "宁": "宁夏回族自治区", "新": "新疆维吾尔自治区",
}  # fmt: skip
_PROVINCE_NAMES = sorted({name for name in PROVINCES.values()}, key=len, reverse=True)


@dataclass(frozen=True)
class Department:
    """One registered department."""

    code: str
    name: str
    full_name: str
    aliases: tuple[str, ...] = ()
    doc_prefixes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Resolved:
    """A department name as written in a document and what the registry made of it."""

    as_written: str
    name: str
    code: str | None
    full_name: str | None

    @property
    def known(self) -> bool:
        """Whether the registry recognised the name."""
        return self.code is not None


@dataclass
class Registry:
    """Canonical department names with their aliases for one province."""

    province: str
    province_short: str
    departments: list[Department]
    _by_alias: dict[str, Department] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for dept in self.departments:
            for alias in (dept.name, dept.full_name, *dept.aliases):
                self._by_alias.setdefault(_clean(alias), dept)

    def with_aliases(self, aliases: dict[str, str]) -> Registry:
        """A copy that also knows officer-mapped aliases (alias → department code)."""
        extra = Registry(self.province, self.province_short, list(self.departments))
        for alias, code in aliases.items():
            dept = extra.by_code(code)
            if dept is not None:
                extra._by_alias[_clean(alias)] = dept
        return extra

    def by_code(self, code: str) -> Department | None:
        """Return the department with this code, if any."""
        return next((d for d in self.departments if d.code == code), None)

    def lookup(self, name: str) -> Department | None:
        """Find a department by any of its names (exact after whitespace clean-up)."""
        return self._by_alias.get(_clean(name))

    def resolve(self, name: str, *, province: str | None = None) -> Resolved:
        """Map a name as written onto the registry; unknown names are kept as written.

        A document of another province speaks of its own 省工信厅, so only names that carry no
        province or this registry's province are resolved when ``province`` is someone else's.
        """
        written = _clean(name)
        if province and province != self.province:
            if not written.startswith((self.province, self.province_short)):
                return Resolved(written, written, None, None)
        dept = self.lookup(written)
        if dept is None and written.startswith(self.province):
            dept = self.lookup("省" + written[len(self.province) :])
        if dept is None:
            return Resolved(written, written, None, None)
        return Resolved(written, dept.name, dept.code, dept.full_name)

    def issuer_for_prefix(self, doc_number: str) -> Department | None:
        """The issuing department a document number's prefix names (甘工信发〔…〕 → 省工信厅)."""
        best: tuple[int, Department] | None = None
        for dept in self.departments:
            for prefix in dept.doc_prefixes:
                if doc_number.startswith(prefix) and (best is None or len(prefix) > best[0]):
                    best = (len(prefix), dept)
        return best[1] if best else None


def _clean(name: str) -> str:
    return re.sub(r"\s+", "", name).strip("、,;:。 ")


def province_of(*texts: str | None) -> str | None:
    """Guess the province a document belongs to from its number, issuer or title."""
    for text in texts:
        if not text:
            continue
        for full in _PROVINCE_NAMES:
            if text.startswith(full) or text.startswith(full[:2]):
                return full
    for text in texts:
        if text and text[0] in PROVINCES and re.match(r"^.{1,8}[〔\[]\d{4}[〕\]]", text):
            return PROVINCES[text[0]]
    return None


@lru_cache(maxsize=1)
def default_registry() -> Registry:
    """Load the packaged registry (src/huiqi/policy/data/departments.yaml)."""
    raw = yaml.safe_load(
        resources.files("huiqi.policy").joinpath("data/departments.yaml").read_text("utf-8")
    )
    departments = [
        Department(
            code=item["code"],
            name=item["name"],
            full_name=item["full_name"],
            aliases=tuple(item.get("aliases") or ()),
            doc_prefixes=tuple(item.get("doc_prefixes") or ()),
        )
        for item in raw["departments"]
    ]
    return Registry(raw["province"], raw["province_short"], departments)
