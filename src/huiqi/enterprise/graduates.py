"""Recent-graduate hire records in bulk (the `graduates` import template).

One row per hire: the enterprise's credit code, a person reference, graduation and hire dates,
contract length and whether social insurance is paid. A record is identified by (enterprise,
person reference, hire date): importing the same file again changes nothing, a corrected record
replaces the stored one, and the qualifying count of every affected year (seed art. (二十二):
hired within 2 years of leaving school, contract ≥ 1 year, social insurance paid) is recomputed
and stored as the yearly ``graduate_hires`` value with source ``computed`` — through the registry's
batch upsert, so its history, enterprise_current and re-matching follow as for any other value.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from huiqi.core.db import utcnow
from huiqi.enterprise import repository as repo
from huiqi.enterprise.catalogue import ValueProblem, catalogue
from huiqi.enterprise.models import GraduateHire
from huiqi.enterprise.service import COMPUTED, Incoming, qualifies_as_graduate_hire, upsert

DEFAULT_SOURCE = "人社"
MAX_CONTRACT_MONTHS = 600  # 50 years: longer is a typing error, not a contract
PERSON_REF_MAX = 64
# a 15- or 18-character resident ID number (GB 11643): personal data the registry must not hold
ID_CARD = re.compile(r"\d{15}|\d{17}[\dXx]")

# (key, Chinese header, English header, description, example) in template order
COLUMNS: tuple[tuple[str, str, str, str, str], ...] = (
    ("credit_code", "统一社会信用代码", "credit_code",
     "用人单位的统一社会信用代码（须已在企业库中）/ employer's credit code (must be registered)",
     "91620102MA72H8K3X0"),
    ("person_ref", "人员编号", "person_ref",
     "单位内的人员编号或其摘要，同一人各次导入保持一致；不要填写身份证号原文"
     " / staff number or a digest of it, stable across imports; never the ID-card number",
     "E2024-0017"),
    ("graduated_on", "毕业（离校）日期", "graduated_on", "日期 YYYY-MM-DD / date left school",
     "2023-06-30"),
    ("hired_on", "入职日期", "hired_on", "日期 YYYY-MM-DD，不得晚于今天 / hire date",
     "2024-03-01"),
    ("contract_months", "劳动合同期限（月）", "contract_months",
     f"整数 1–{MAX_CONTRACT_MONTHS} / whole months", "36"),
    ("social_insurance", "已缴纳社会保险", "social_insurance", "是/否 / yes or no", "是"),
    ("source", "数据来源", "source",
     f"可选，默认{DEFAULT_SOURCE} / optional, defaults to {DEFAULT_SOURCE}", ""),
    ("as_of", "数据日期", "as_of", "可选，数据截至日期 YYYY-MM-DD / optional as-of date",
     "2025-03-31"),
)  # fmt: skip
REQUIRED = ("credit_code", "person_ref", "graduated_on", "hired_on", "contract_months",
            "social_insurance")  # fmt: skip
# headers that only a graduates file has: their presence selects this template
MARKERS = frozenset({"person_ref", "graduated_on", "hired_on", "contract_months"})


def aliases() -> dict[str, str]:
    """Header text (as written in the template, either language) → column key."""
    out: dict[str, str] = {}
    for key, zh, en, _desc, _ex in COLUMNS:
        out[zh] = key
        out[en] = key
    out.update({"毕业日期": "graduated_on", "离校日期": "graduated_on", "信用代码": "credit_code"})
    out.update({"合同期限（月）": "contract_months", "社会保险": "social_insurance"})
    return out


@dataclass
class Hire:
    """One validated hire row (``row`` is its line in the file, for the error report)."""

    row: int
    credit_code: str
    person_ref: str
    graduated_on: date
    hired_on: date
    contract_months: int
    social_insurance: bool
    source: str
    as_of: date

    def key(self) -> tuple[str, date]:
        """The record's identity within one enterprise."""
        return (self.person_ref, self.hired_on)


def parse_fields(raw: dict[str, str], today: date) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Typed values of one row and its problems as (column key, reason)."""
    cat = catalogue()
    problems: list[tuple[str, str]] = []
    values: dict[str, Any] = {}
    for key in REQUIRED[1:]:
        if not raw.get(key):
            problems.append((key, "必填 / required"))
    ref = raw.get("person_ref", "")
    if ref:
        if len(ref) > PERSON_REF_MAX:
            problems.append(("person_ref", f"超过 {PERSON_REF_MAX} 个字符 / too long"))
        elif ID_CARD.fullmatch(ref):
            problems.append(
                ("person_ref", "疑似身份证号，请改用人员编号 / looks like an ID-card number")
            )
        else:
            values["person_ref"] = ref
    parsers = {
        "graduated_on": cat["founded_on"],
        "hired_on": cat["founded_on"],
        "as_of": cat["founded_on"],
        "contract_months": cat["employees"],
        "social_insurance": cat["consent_email"],
    }
    for key, f in parsers.items():
        text = raw.get(key)
        if not text:
            continue
        try:
            value = f.parse(text)
        except ValueProblem as exc:
            problems.append((key, str(exc)))
            continue
        if isinstance(value, date) and value > today:
            problems.append((key, "日期晚于今天 / date is in the future"))
        elif key == "contract_months" and not 1 <= value <= MAX_CONTRACT_MONTHS:
            problems.append(
                (key, f"应为 1–{MAX_CONTRACT_MONTHS} 个月 / must be 1–{MAX_CONTRACT_MONTHS}")
            )
        else:
            values[key] = value
    return values, problems


@dataclass
class Stored:
    """A hire record as stored: its id and the fields a re-import compares."""

    id: int
    graduated_on: date
    hired_on: date
    contract_months: int
    social_insurance: bool
    source: str
    as_of: date


def write(
    session: Session, hires: list[Hire], *, recorded_by: str | None = None
) -> tuple[dict[int, str], list[tuple[int, str, str]]]:
    """Apply one batch of hire rows in the caller's transaction.

    Returns (row → inserted / updated / unchanged, rejected rows as (row, column key, reason));
    a row whose enterprise is not in the registry is rejected.
    """
    ids = repo.ids_for_codes(session, list(dict.fromkeys(h.credit_code for h in hires)))
    rejected = [
        (
            h.row,
            "credit_code",
            "企业库中无此企业，请先导入企业信息 / enterprise not in the registry",
        )
        for h in hires
        if h.credit_code not in ids
    ]
    hires = [h for h in hires if h.credit_code in ids]
    stored: dict[int, dict[tuple[str, date], Stored]] = defaultdict(dict)
    t = GraduateHire
    for part in repo.chunks(sorted(set(ids.values()))):
        for r in session.execute(
            select(t.id, t.enterprise_id, t.person_ref, t.graduated_on, t.hired_on,
                   t.contract_months, t.social_insurance, t.source, t.as_of)
            .where(t.enterprise_id.in_(part))
        ):  # fmt: skip
            stored[r.enterprise_id][(r.person_ref, r.hired_on)] = Stored(
                r.id, r.graduated_on, r.hired_on, r.contract_months, r.social_insurance,
                r.source, r.as_of,
            )  # fmt: skip
    now = utcnow()
    outcome: dict[int, str] = {}
    new_rows: list[dict[str, Any]] = []
    touched: set[tuple[int, int]] = set()  # (enterprise id, hire year) whose count may change
    for h in hires:
        eid = ids[h.credit_code]
        old = stored[eid].get(h.key())
        fields = {
            "graduated_on": h.graduated_on,
            "contract_months": h.contract_months,
            "social_insurance": h.social_insurance,
            "source": h.source,
        }
        if old is not None and all(getattr(old, k) == v for k, v in fields.items()):
            outcome[h.row] = "unchanged"
            continue
        if old is None:
            new_rows.append(
                {"enterprise_id": eid, "person_ref": h.person_ref, "hired_on": h.hired_on,
                 "as_of": h.as_of, "recorded_at": now, **fields}
            )  # fmt: skip
            outcome[h.row] = "inserted"
        else:
            session.execute(
                update(GraduateHire)
                .where(GraduateHire.id == old.id)
                .values(as_of=h.as_of, recorded_at=now, **fields)
            )
            outcome[h.row] = "updated"
        stored[eid][h.key()] = Stored(
            old.id if old else -1, h.graduated_on, h.hired_on, h.contract_months,
            h.social_insurance, h.source, h.as_of,
        )  # fmt: skip
        touched.add((eid, h.hired_on.year))
    if new_rows:
        session.execute(insert(GraduateHire), new_rows)
    _recount(session, ids, stored, touched, recorded_by)
    return outcome, rejected


def _recount(
    session: Session,
    ids: dict[str, int],
    stored: dict[int, dict[tuple[str, date], Stored]],
    touched: set[tuple[int, int]],
    recorded_by: str | None,
) -> None:
    """Store the qualifying count of every touched (enterprise, year) through the batch upsert."""
    if not touched:
        return
    code_of = {eid: code for code, eid in ids.items()}
    items: dict[int, Incoming] = {}
    for eid, year in sorted(touched):
        of_year = [s for s in stored[eid].values() if s.hired_on.year == year]
        count = sum(
            qualifies_as_graduate_hire(
                s.graduated_on, s.hired_on, s.contract_months, s.social_insurance
            )
            for s in of_year
        )
        item = items.setdefault(eid, Incoming(code_of[eid]))
        item.values[("graduate_hires", year)] = (count, COMPUTED, max(s.as_of for s in of_year))
    upsert(session, list(items.values()), recorded_by=recorded_by)
