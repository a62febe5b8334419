"""The fields a rule may read: the field-contract columns of the enterprise attribute catalogue."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

from huiqi.enterprise.catalogue import Catalogue as EnterpriseCatalogue
from huiqi.enterprise.catalogue import catalogue as enterprise_catalogue

# Code columns whose values form a hierarchy a rule can match by prefix.
HIERARCHIES = {"region_code": "region", "industry_code": "industry"}
_CERT_SUFFIXES_ZH = ("认定日期", "入库日期")


@dataclass(frozen=True)
class FieldDef:
    """One column of the enterprise current frame as the rules see it."""

    name: str
    kind: str  # str | enum | code | int | money | date | bool
    label_zh: str
    label_en: str
    unit: str | None = None
    values: dict[str, tuple[str, str]] = field(default_factory=dict)
    hierarchy: str | None = None


@dataclass(frozen=True)
class Catalogue:
    """The field table plus the certification kinds derivable from cert_<kind>_from/_to pairs."""

    fields: dict[str, FieldDef]

    def get(self, name: str) -> FieldDef | None:
        """The field called `name`, or None."""
        return self.fields.get(name)

    @property
    def cert_kinds(self) -> list[str]:
        """Certification kinds: every X with both cert_X_from and cert_X_to date fields."""
        kinds = []
        for name in self.fields:
            if name.startswith("cert_") and name.endswith("_from"):
                kind = name[len("cert_") : -len("_from")]
                if f"cert_{kind}_to" in self.fields:
                    kinds.append(kind)
        return kinds

    def cert_label(self, kind: str) -> tuple[str, str]:
        """Chinese and English name of a certification kind, from its _from field label."""
        f = self.get(f"cert_{kind}_from")
        if f is None:
            return kind, kind
        zh = f.label_zh
        for suffix in _CERT_SUFFIXES_ZH:
            zh = zh.removesuffix(suffix)
        return zh, f.label_en.removesuffix(" from")


def from_enterprise(source: EnterpriseCatalogue) -> Catalogue:
    """Rule view of the enterprise catalogue: its contract fields with kinds, units and labels."""
    out: dict[str, FieldDef] = {}
    for f in source.contract:
        kind = f.type
        if f.name in HIERARCHIES:
            kind = "code"
        unit = None
        if f.type == "int":
            unit = f.unit or ("year" if f.name.endswith("_year") else "count")
        out[f.name] = FieldDef(
            name=f.name,
            kind=kind,
            label_zh=f.zh,
            label_en=f.en,
            unit=unit,
            values={k: (v, k) for k, v in f.values.items()},
            hierarchy=HIERARCHIES.get(f.name),
        )
    return Catalogue(out)


@lru_cache(maxsize=1)
def default_catalogue() -> Catalogue:
    """The catalogue the rules are checked against (the packaged enterprise catalogue)."""
    return from_enterprise(enterprise_catalogue())
