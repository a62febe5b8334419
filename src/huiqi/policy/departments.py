"""Registry of department names: canonical short names, official names and aliases.

Three layers, chosen by the document's jurisdiction: the home province's own registry (Gansu,
complete, with officer-mapped aliases), the central bodies (国务院组成部门、直属机构、办事机构 …
with the short names State Council documents use), and every other province's departments by the
common naming pattern (省发展改革委 → 广东省发展和改革委员会). Central and vertical bodies are
dated: a renamed or merged body (银监会/保监会 → 银保监会 2018 → 国家金融监督管理总局 2023)
resolves to the one in place on the document's date, with a note when the name is out of date.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

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


def province_short(full: str) -> str:
    """广东省 → 广东, 广西壮族自治区 → 广西, 北京市 → 北京."""
    for suffix in ("壮族自治区", "回族自治区", "维吾尔自治区", "自治区", "省", "市"):
        if full.endswith(suffix):
            return full[: -len(suffix)]
    return full


@dataclass(frozen=True)
class Department:
    """One registered department."""

    code: str
    name: str
    full_name: str
    aliases: tuple[str, ...] = ()
    doc_prefixes: tuple[str, ...] = ()
    valid_from: dt.date | None = None
    valid_to: dt.date | None = None
    successor: str | None = None

    def valid_on(self, on: dt.date | None) -> bool:
        """Whether the body existed on this date (always, when the date is unknown)."""
        if on is None:
            return True
        return (self.valid_from is None or self.valid_from <= on) and (
            self.valid_to is None or on < self.valid_to
        )


@dataclass(frozen=True)
class Resolved:
    """A department name as written in a document and what the registry made of it."""

    as_written: str
    name: str
    code: str | None
    full_name: str | None
    note: str | None = None

    @property
    def known(self) -> bool:
        """Whether the registry recognised the name."""
        return self.code is not None


class Directory:
    """A set of departments looked up by any of their names, several per name when dated."""

    def __init__(self, departments: list[Department]) -> None:
        self.departments = departments
        self._by_alias: dict[str, list[Department]] = {}
        self._by_code = {d.code: d for d in departments}
        for dept in departments:
            for alias in dict.fromkeys((dept.name, dept.full_name, *dept.aliases)):
                self._by_alias.setdefault(_clean(alias), []).append(dept)

    def by_code(self, code: str) -> Department | None:
        """The department with this code."""
        return self._by_code.get(code)

    def find(self, name: str, on: dt.date | None = None) -> tuple[Department, str | None] | None:
        """The body this name means on a date, with a note when the name was out of date then."""
        found = self._by_alias.get(_clean(name))
        if not found:
            return None
        current = [d for d in found if d.valid_on(on)]
        if current:
            return current[0], None
        dept = found[0]
        if on is not None and dept.valid_to is not None and on >= dept.valid_to:
            successor = self._current_successor(dept, on)
            if successor is not None:
                return successor, (
                    f"{name} no longer existed on {on.isoformat()} "
                    f"(replaced by {successor.full_name}); resolved to its successor"
                )
        return dept, (f"{name} did not exist on {on.isoformat()}" if on is not None else None)

    def _current_successor(self, dept: Department, on: dt.date) -> Department | None:
        seen: set[str] = set()
        while dept.successor and dept.successor not in seen:
            seen.add(dept.successor)
            nxt = self._by_code.get(dept.successor)
            if nxt is None:
                return None
            if nxt.valid_on(on):
                return nxt
            dept = nxt
        return None


def _date(value: Any) -> dt.date | None:
    if value is None or isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value))


def _department(
    item: dict[str, Any], fill: dict[str, str] | None = None, prefix: str = ""
) -> Department:
    def sub(text: str) -> str:
        return text.format(**fill) if fill else text

    valid = item.get("valid") or [None, None]
    successor = item.get("successor")
    return Department(
        code=f"{prefix}{item['code']}",
        name=sub(item["name"]),
        full_name=sub(item["full_name"]),
        aliases=tuple(sub(a) for a in item.get("aliases") or ()),
        doc_prefixes=tuple(item.get("doc_prefixes") or ()),
        valid_from=_date(valid[0]),
        valid_to=_date(valid[1]),
        successor=f"{prefix}{successor}" if successor else None,
    )


def _load(name: str) -> list[dict[str, Any]]:
    raw = yaml.safe_load(
        resources.files("huiqi.policy").joinpath(f"data/{name}").read_text("utf-8")
    )
    return list(raw["departments"])


@lru_cache(maxsize=1)
def central_directory() -> Directory:
    """The central bodies (src/huiqi/policy/data/departments_central.yaml)."""
    return Directory(
        [_department(item, prefix="cn-") for item in _load("departments_central.yaml")]
    )


@lru_cache(maxsize=64)
def province_directory(province: str) -> Directory:
    """Any province's departments by the naming pattern (departments_province.yaml)."""
    short = province_short(province)
    fill = {"p": province, "s": short}
    return Directory(
        [_department(item, fill, prefix=f"{short}-") for item in _load("departments_province.yaml")]
    )


@lru_cache(maxsize=64)
def city_directory(city: str) -> Directory:
    """A city's departments by the same pattern: 市发展改革委 → 兰州市发展和改革委员会, and a
    province's 厅 is a city's 局 (省财政厅 → 市财政局 → 兰州市财政局)."""

    def city_form(name: str) -> str:
        name = "市" + name[1:] if name.startswith("省") else name
        return name[:-1] + "局" if name.endswith("厅") else name

    departments = []
    for item in _load("departments_province.yaml"):
        if "{s}" in item["name"] or "{s}" in item["full_name"]:
            continue
        city_item = dict(item)
        city_item["name"] = city_form(item["name"])
        city_item["full_name"] = city_form(item["full_name"])
        city_item["aliases"] = [city_form(a) for a in item.get("aliases") or ()]
        departments.append(_department(city_item, {"p": city, "s": city}, prefix=f"{city}-"))
    return Directory(departments)


_CENTRAL_PREFIX = re.compile(r"^(国家|国务院|中国|中华|中央|全国|最高)")
_CITY_GOV = re.compile(r"^([\u4e00-\u9fff]{1,8}?[市县区州盟旗])(政府|人民政府)$")


@dataclass
class Registry:
    """Canonical department names with their aliases for one (home) province, plus jurisdiction.

    ``resolve`` reads a name as the document's jurisdiction means it: a central document's
    发展改革委 is 国家发展和改革委员会, a Guangdong document's 省科技厅 is 广东省科学技术厅, a
    Gansu document's names come from Gansu's registry; officer-mapped aliases always win.
    """

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
        """Return the department with this code, if any (home, central or patterned)."""
        dept = next((d for d in self.departments if d.code == code), None)
        if dept is not None:
            return dept
        if code.startswith("cn-"):
            return central_directory().by_code(code)
        short, _, _ = code.partition("-")
        province = next((p for p in _PROVINCE_NAMES if province_short(p) == short), None)
        return province_directory(province).by_code(code) if province else None

    def lookup(self, name: str) -> Department | None:
        """Find a home department by any of its names (exact after whitespace clean-up)."""
        return self._by_alias.get(_clean(name))

    def resolve(
        self,
        name: str,
        *,
        province: str | None = None,
        level: str | None = None,
        on: dt.date | None = None,
        city: str | None = None,
    ) -> Resolved:
        """Map a name as written onto the registry; unknown names are kept as written.

        ``province`` is the document's province (None for a central document or when unknown),
        ``level`` "central", "provincial" or "municipal", ``on`` the document's date.
        """
        written = _clean(name)
        mapped = self._by_alias.get(written)
        if (
            mapped is not None
            and (
                province in (None, self.province)
                or written.startswith((self.province, self.province_short))
            )
            and level != "central"
        ):
            return Resolved(written, mapped.name, mapped.code, mapped.full_name)
        if (
            level != "central"
            and province in (None, self.province)
            and written.startswith(self.province)
        ):
            home = self.lookup("省" + written[len(self.province) :])
            if home is not None:
                return Resolved(written, home.name, home.code, home.full_name)
        # A name that carries its own province is read in that province.
        named_province = next((p for p in _PROVINCE_NAMES if written.startswith(p)), None)
        target = named_province or province
        local = written[len(named_province) :] if named_province else written
        if named_province and not local.startswith(("省", "中共")):
            local = "省" + local
        order: list[str]
        if level == "central" or _CENTRAL_PREFIX.match(written):
            order = ["central", "province"]
        else:
            order = ["province", "central"]
        for layer in order:
            if layer == "central":
                found = central_directory().find(written, on)
            elif target and target != self.province:
                found = province_directory(target).find(local, on)
            elif target == self.province:
                found = province_directory(target).find(local, on) if named_province else None
            else:
                found = None
            if found is not None:
                dept, note = found
                shown = dept.name if layer == "central" else written
                return Resolved(written, shown, dept.code, dept.full_name, note)
        if city and written.startswith("市"):
            found = city_directory(city).find(written, on)
            if found is not None:
                return Resolved(written, written, found[0].code, found[0].full_name, found[1])
        if m := _CITY_GOV.match(written):
            return Resolved(written, written, f"{m.group(1)}-gov", f"{m.group(1)}人民政府")
        if target and target != self.province and written.startswith("省"):
            return Resolved(written, written, None, target + written[1:])
        return Resolved(written, written, None, None)

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


def province_named_in(text: str | None) -> str | None:
    """The first province named anywhere in a text (数字广东建设… → 广东省)."""
    if not text:
        return None
    best: tuple[int, str] | None = None
    for full in _PROVINCE_NAMES:
        for name in (full, province_short(full)):
            at = text.find(name)
            if at >= 0 and (best is None or at < best[0]):
                best = (at, full)
    return best[1] if best else None


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
