"""Recent-graduate hire records in bulk (the `graduates` import template).

One row per hire: the enterprise's credit code, a person reference, graduation and hire dates,
contract length and whether social insurance is paid. A record is identified by (enterprise,
person reference, hire date): importing the same file again changes nothing, a corrected record
replaces the stored one, and the qualifying count of every affected year (seed art. (二十二):
hired within 2 years of leaving school, contract ≥ 1 year, social insurance paid) is recomputed
and stored as the yearly ``graduate_hires`` value with source ``computed`` — through the registry's
batch upsert, so its history, enterprise_current and re-matching follow as for any other value.

A record may carry the employer's contributions for the graduate (财社〔2017〕164号 第七条: the
subsidy is what the employer actually paid into basic pension, basic medical and unemployment
insurance for at most one year, never the graduate's own share): the months covered (1–12 from the
hire) and the three amounts. The yearly ``graduate_insurance_paid`` value is their sum over the
year's qualifying hires; when any qualifying hire lacks contribution records the value is left
empty (the amount is to be confirmed), never estimated.
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
from huiqi.core.money import MoneyError, to_fen
from huiqi.enterprise import repository as repo
from huiqi.enterprise.catalogue import ValueProblem, catalogue
from huiqi.enterprise.models import GraduateHire
from huiqi.enterprise.service import COMPUTED, Incoming, qualifies_as_graduate_hire, upsert

DEFAULT_SOURCE = "人社"
MAX_CONTRACT_MONTHS = 600  # 50 years: longer is a typing error, not a contract
# 财社〔2017〕164号 第七条(二): the graduate subsidy covers at most one year of contributions
MAX_SUBSIDY_MONTHS = 12
CONTRIBUTIONS = ("pension", "medical", "unemployment")
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
    ("insured_months", "补贴期缴费月数", "insured_months",
     f"可选，入职起单位缴费的月数，整数 1–{MAX_SUBSIDY_MONTHS}（最长1年）"
     f" / optional: months of employer contributions from the hire, 1–{MAX_SUBSIDY_MONTHS}", "12"),
    ("pension", "单位缴纳基本养老保险费（元）", "pension_yuan",
     "可选，上述月份单位缴纳部分，不含个人缴纳 / employer's share for those months", "8,640.00"),
    ("medical", "单位缴纳基本医疗保险费（元）", "medical_yuan",
     "可选，上述月份单位缴纳部分，不含个人缴纳 / employer's share for those months", "3,240.00"),
    ("unemployment", "单位缴纳失业保险费（元）", "unemployment_yuan",
     "可选，上述月份单位缴纳部分，不含个人缴纳 / employer's share for those months", "270.00"),
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
    insured_months: int | None = None
    pension_fen: int | None = None
    medical_fen: int | None = None
    unemployment_fen: int | None = None

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
    _parse_contributions(raw, values, problems)
    return values, problems


def _parse_contributions(
    raw: dict[str, str], values: dict[str, Any], problems: list[tuple[str, str]]
) -> None:
    """The months and three employer amounts: all given together or none at all."""
    keys = ("insured_months", *CONTRIBUTIONS)
    given = [k for k in keys if raw.get(k)]
    if not given:
        return
    for key in keys:
        if not raw.get(key):
            problems.append(
                (key, "缴费月数与三项单位缴费须一并填写 / months and all three amounts go together")
            )
    text = raw.get("insured_months", "")
    if text:
        try:
            months = int(text)
        except ValueError:
            problems.append(("insured_months", "应为整数 / must be a whole number"))
        else:
            if not 1 <= months <= MAX_SUBSIDY_MONTHS:
                problems.append(
                    (
                        "insured_months",
                        f"应为 1–{MAX_SUBSIDY_MONTHS} 个月（补贴最长1年）"
                        f" / must be 1–{MAX_SUBSIDY_MONTHS} (the subsidy covers one year at most)",
                    )
                )
            else:
                values["insured_months"] = months
    for key in CONTRIBUTIONS:
        text = raw.get(key, "")
        if not text:
            continue
        try:
            fen = to_fen(text, "yuan")
        except MoneyError as exc:
            problems.append((key, str(exc)))
            continue
        if fen < 0:
            problems.append((key, "不能为负数 / cannot be negative"))
        else:
            values[f"{key}_fen"] = fen


def contribution_fen(
    months: int | None, pension: int | None, medical: int | None, unemployment: int | None
) -> int | None:
    """The employer's recorded contributions of one hire (None when not recorded)."""
    if months is None or pension is None or medical is None or unemployment is None:
        return None
    return pension + medical + unemployment


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
    insured_months: int | None = None
    pension_fen: int | None = None
    medical_fen: int | None = None
    unemployment_fen: int | None = None

    def paid_fen(self) -> int | None:
        """The recorded employer contributions (None when missing)."""
        return contribution_fen(
            self.insured_months, self.pension_fen, self.medical_fen, self.unemployment_fen
        )


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
                   t.contract_months, t.social_insurance, t.source, t.as_of,
                   t.insured_months, t.pension_fen, t.medical_fen, t.unemployment_fen)
            .where(t.enterprise_id.in_(part))
        ):  # fmt: skip
            stored[r.enterprise_id][(r.person_ref, r.hired_on)] = Stored(
                r.id, r.graduated_on, r.hired_on, r.contract_months, r.social_insurance,
                r.source, r.as_of, r.insured_months, r.pension_fen, r.medical_fen,
                r.unemployment_fen,
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
            "insured_months": h.insured_months,
            "pension_fen": h.pension_fen,
            "medical_fen": h.medical_fen,
            "unemployment_fen": h.unemployment_fen,
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
            h.social_insurance, h.source, h.as_of, h.insured_months, h.pension_fen,
            h.medical_fen, h.unemployment_fen,
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
    """Store the qualifying count and contributions of every touched (enterprise, year).

    The contributions total is withdrawn (its current value superseded) when a qualifying hire
    of that year has no contribution record, so no earlier total stands in for the unknown one.
    """
    if not touched:
        return
    code_of = {eid: code for code, eid in ids.items()}
    items: dict[int, Incoming] = {}
    unknown: set[tuple[int, int]] = set()
    for eid, year in sorted(touched):
        of_year = [s for s in stored[eid].values() if s.hired_on.year == year]
        qualifying = [
            s
            for s in of_year
            if qualifies_as_graduate_hire(
                s.graduated_on, s.hired_on, s.contract_months, s.social_insurance
            )
        ]
        as_of = max(s.as_of for s in of_year)
        item = items.setdefault(eid, Incoming(code_of[eid]))
        item.values[("graduate_hires", year)] = (len(qualifying), COMPUTED, as_of)
        paid = [s.paid_fen() for s in qualifying]
        if any(p is None for p in paid):
            unknown.add((eid, year))
        else:
            item.values[("graduate_insurance_paid", year)] = (
                sum(p for p in paid if p is not None),
                COMPUTED,
                as_of,
            )
    if unknown:
        now = utcnow()
        stale: list[int] = []
        retire: dict[int, set[tuple[str, int]]] = {}
        for vid, eid, fname, year, _value, _source in repo.current_values(
            session, sorted({e for e, _y in unknown})
        ):
            if fname == "graduate_insurance_paid" and (eid, year) in unknown:
                if vid is None:  # packed: becomes value rows, this one superseded
                    retire.setdefault(eid, set()).add((fname, year))
                else:
                    stale.append(vid)
        repo.unpack(session, sorted(retire), now, retire)
        repo.supersede(session, stale, now)
    upsert(session, list(items.values()), recorded_by=recorded_by)
