"""A realistic, deterministic demo population of Gansu enterprises.

Rows follow the import template (so a generated file imports like a real one): valid credit codes
whose division code is the enterprise's county (兰州新区 firms carry their host county's code), an
industry mix, log-normal head counts and revenue that reach every size class, founding dates,
certifications with validity periods, graduate hires, contacts with consent, and some gaps.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import numpy as np
from sqlalchemy.orm import Session

from huiqi.core import clock
from huiqi.core.codes import (
    CREDIT_ALPHABET,
    gansu_counties,
    industry_classes,
    make_credit_code,
    regions,
)
from huiqi.core.export import SafeCsvWriter, append_row
from huiqi.enterprise.graduates import Hire, contribution_fen
from huiqi.enterprise.graduates import write as write_hires
from huiqi.enterprise.importer import ImportReport, RowContext, columns, map_headers, validate_row
from huiqi.enterprise.service import apply_changes, upsert

FIGURES_YEAR = 2024
AS_OF = date(2025, 3, 31)

# Share of enterprises per 市州 (roughly their share of registered market entities).
PREFECTURE_WEIGHT = {
    "620100": 0.29, "620200": 0.03, "620300": 0.03, "620400": 0.06, "620500": 0.09,
    "620600": 0.06, "620700": 0.06, "620800": 0.06, "620900": 0.07, "621000": 0.07,
    "621100": 0.05, "621200": 0.05, "622900": 0.05, "623000": 0.02, "620190": 0.01,
}  # fmt: skip
SHORT = {
    "620100": "兰州", "620200": "嘉峪关", "620300": "金昌", "620400": "白银", "620500": "天水",
    "620600": "武威", "620700": "张掖", "620800": "平凉", "620900": "酒泉", "621000": "庆阳",
    "621100": "定西", "621200": "陇南", "622900": "临夏", "623000": "甘南", "620190": "兰州新区",
}  # fmt: skip
# Industry mix by GB/T 4754 section (manufacturing-heavy, as in the seed policy's target firms).
SECTION_WEIGHT = {
    "A": 0.08, "B": 0.03, "C": 0.28, "D": 0.02, "E": 0.08, "F": 0.20, "G": 0.05, "H": 0.06,
    "I": 0.06, "K": 0.03, "L": 0.06, "M": 0.03, "O": 0.02,
}  # fmt: skip
OWNERSHIP = (
    ["private", "state", "collective", "foreign", "hmt", "other"],
    [0.82, 0.06, 0.03, 0.03, 0.02, 0.04],
)
RATING = (["A", "B", "M", "C", "D", ""], [0.22, 0.45, 0.14, 0.06, 0.03, 0.10])
BRAND = list("恒达瑞丰泰华鑫盛兴隆宏远金源博通嘉和永安中科陇原祁连丝路敦煌飞天黄河")
SUFFIX = ["有限公司", "有限责任公司", "股份有限公司"]
# certification: (probability, years of validity)
CERTS = {
    "high_tech": (0.05, 3),
    "tech_sme": (0.09, 1),
    "innovative_sme": (0.05, 3),
    "srdi_sme": (0.025, 3),
    "little_giant": (0.004, 3),
}


def _regions_by_prefecture() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {p: [] for p in PREFECTURE_WEIGHT}
    for county in gansu_counties():
        if county.parent in out:
            out[county.parent].append(county.code)
    out["620200"] = ["620200"]  # 嘉峪关 has no county-level divisions
    out["620190"] = ["620190"]
    return {p: sorted(c) for p, c in out.items()}


def _wan(fen_like: float) -> str:
    return f"{fen_like:.2f}"


def generate(size: int, seed: int = 2020) -> list[dict[str, str]]:
    """``size`` enterprises as import-template rows (values as text); same seed, same rows."""
    rng = np.random.default_rng(seed)
    by_pref = _regions_by_prefecture()
    prefs = list(PREFECTURE_WEIGHT)
    pw = np.array([PREFECTURE_WEIGHT[p] for p in prefs])
    pref_idx = rng.choice(len(prefs), size=size, p=pw / pw.sum())

    classes = [c for c in industry_classes() if c.section in SECTION_WEIGHT]
    by_section: dict[str, list[str]] = {}
    for c in classes:
        by_section.setdefault(c.section, []).append(c.code)
    sections = list(SECTION_WEIGHT)
    sw = np.array([SECTION_WEIGHT[s] for s in sections])
    sec_idx = rng.choice(len(sections), size=size, p=sw / sw.sum())
    class_pick = rng.random(size)

    # Log-normal head count; a small share of anchors from a larger distribution so that the large
    # class exists in any population of a few hundred or more.
    employees = np.exp(rng.normal(np.log(14), 1.45, size))
    anchors = rng.random(size) < 0.006
    employees[anchors] = np.exp(rng.normal(np.log(2500), 0.5, anchors.sum()))
    employees = np.maximum(1, np.round(employees)).astype(int)
    per_head_wan = np.exp(rng.normal(np.log(45), 0.9, size))
    per_head_wan[anchors] = np.exp(rng.normal(np.log(120), 0.3, anchors.sum()))
    revenue = employees * per_head_wan
    assets = revenue * np.exp(rng.normal(0.0, 0.6, size))
    assets[anchors] = np.maximum(assets[anchors], 130000)  # anchors also clear asset ceilings
    capital = np.exp(rng.normal(np.log(300), 1.2, size))
    days = (date(FIGURES_YEAR, 12, 31) - date(1985, 1, 1)).days
    founded = (rng.beta(2.2, 1.3, size) * days).astype(int)
    own_idx = rng.choice(len(OWNERSHIP[0]), size=size, p=OWNERSHIP[1])
    rate_idx = rng.choice(len(RATING[0]), size=size, p=RATING[1])
    gaps = rng.random((size, 6))
    cert_draw = rng.random((size, len(CERTS)))
    cert_start = rng.integers(0, 3 * 365, size=(size, len(CERTS)))
    grads = rng.poisson(np.minimum(employees, 400) * 0.02)
    contact = rng.random((size, 4))
    brand = rng.integers(0, len(BRAND), size=(size, 2))
    suffix = rng.integers(0, len(SUFFIX), size)
    org = rng.integers(0, len(CREDIT_ALPHABET), size=(size, 6))
    county_pick = rng.random(size)

    rows: list[dict[str, str]] = []
    used: set[str] = set()
    for i in range(size):
        pref = prefs[pref_idx[i]]
        counties = by_pref[pref]
        region = counties[int(county_pick[i] * len(counties))]
        division = regions()[region].hosts[i % 2] if region == "620190" else region
        section = sections[sec_idx[i]]
        pool = by_section[section]
        industry = pool[int(class_pick[i] * len(pool))]
        entity_type = "3" if section == "A" and i % 3 == 0 else "1"
        body = "MA" + "".join(CREDIT_ALPHABET[k] for k in org[i])
        code = make_credit_code("9", entity_type, division, body)
        bump = 0
        while code in used:  # astronomically rare, but codes must be unique
            bump += 1
            code = make_credit_code(
                "9", entity_type, division, f"MB{(i * 7919 + bump) % 10**6:06d}"
            )
        used.add(code)
        b = BRAND[brand[i, 0]] + BRAND[brand[i, 1]]
        trade = _trade_word(industry)
        name = (
            f"{SHORT[pref]}{b}{trade}专业合作社"
            if entity_type == "3"
            else f"{SHORT[pref]}{b}{trade}{SUFFIX[suffix[i]]}"
        )
        row = {
            "credit_code": code,
            "name": name,
            "region_code": region,
            "industry_code": "" if gaps[i, 0] < 0.02 else industry,
            "founded_on": (date(1985, 1, 1) + timedelta(days=int(founded[i]))).isoformat(),
            "registered_capital": _wan(capital[i]),
            "ownership_type": OWNERSHIP[0][own_idx[i]],
            "tax_credit_rating": RATING[0][rate_idx[i]],
            "year": str(FIGURES_YEAR),
            "employees": "" if gaps[i, 1] < 0.05 else str(employees[i]),
            "revenue": "" if gaps[i, 2] < 0.05 else _wan(revenue[i]),
            "total_assets": "" if gaps[i, 3] < 0.15 else _wan(assets[i]),
            "rd_expense": "" if gaps[i, 4] < 0.45 else _wan(revenue[i] * 0.03 * gaps[i, 4]),
            "taxable_income": ""
            if gaps[i, 5] < 0.25
            else _wan(revenue[i] * (gaps[i, 5] - 0.35) * 0.2),
            "export_revenue": _wan(revenue[i] * 0.2) if gaps[i, 5] > 0.93 else "",
            "graduate_hires": str(grads[i]) if gaps[i, 1] > 0.4 else "",
            "as_of": AS_OF.isoformat(),
        }
        founded_on = date.fromisoformat(row["founded_on"])
        for j, (cert, (prob, years)) in enumerate(CERTS.items()):
            if cert_draw[i, j] < prob * (2.5 if section in "CIM" else 0.6):
                start = max(founded_on, date(FIGURES_YEAR - 2, 1, 1)) + timedelta(
                    days=int(cert_start[i, j]) % 700
                )
                start = min(start, AS_OF)
                row[f"cert_{cert}_from"] = start.isoformat()
                row[f"cert_{cert}_to"] = (start + timedelta(days=365 * years - 1)).isoformat()
        if contact[i, 0] < 0.6:
            row["contact_phone"] = f"1{3 + int(contact[i, 1] * 7)}{int(contact[i, 2] * 1e9):09d}"
            row["consent_phone"] = "是" if contact[i, 3] < 0.7 else "否"
        if contact[i, 1] < 0.4:
            row["contact_email"] = f"contact{i}@{code[-6:].lower()}.example.cn"
            row["consent_email"] = "是" if contact[i, 2] < 0.8 else "否"
        if contact[i, 2] < 0.05:
            row["contact_webhook"] = f"https://hooks.example.cn/{code}"
            row["consent_webhook"] = "是"
        rows.append(row)
    _add_contributions(rows, seed)
    return rows


def _add_contributions(rows: list[dict[str, str]], seed: int) -> None:
    """The employer's recorded contributions for each enterprise's graduate hires, in yuan.

    The 人社 feed reports them with the head counts: the same totals the hire records of
    `demo_hires` add up to, left empty where those records have no contributions yet.
    """
    paid: dict[str, int] = {}
    unrecorded: set[str] = set()
    for hire in demo_hires(rows, seed):
        fen = contribution_fen(
            hire.insured_months, hire.pension_fen, hire.medical_fen, hire.unemployment_fen
        )
        if fen is None:
            unrecorded.add(hire.credit_code)
        else:
            paid[hire.credit_code] = paid.get(hire.credit_code, 0) + fen
    for row in rows:
        code = row["credit_code"]
        if code in paid and code not in unrecorded:
            row["graduate_insurance_paid"] = f"{paid[code] // 100}.{paid[code] % 100:02d}"


def _trade_word(industry: str) -> str:
    """A short trade word for a company name from the industry class name."""
    from huiqi.core.codes import industry_name

    name = industry_name(industry)
    for cut in ("制造", "加工", "批发", "零售", "服务", "种植", "饲养", "开采", "建筑", "运输"):
        if cut in name:
            return name[: name.index(cut) + len(cut)][-6:]
    return name[-4:]


def _headers() -> list[tuple[str, str]]:
    return [(key, zh) for key, zh, _en in columns()]


def write_file(rows: list[dict[str, str]], out: Path) -> None:
    """Write rows as an import file (.csv or .xlsx) with the template's Chinese headers."""
    cols = _headers()
    suffix = out.suffix.lower()
    out.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".csv":
        with out.open("w", encoding="utf-8-sig", newline="") as fh:
            writer = SafeCsvWriter(fh)
            writer.writerow([zh for _k, zh in cols])
            for row in rows:
                writer.writerow([row.get(k, "") for k, _zh in cols])
        return
    if suffix == ".xlsx":
        from openpyxl import Workbook

        book = Workbook(write_only=True)
        sheet = book.create_sheet("企业信息")
        append_row(sheet, [zh for _k, zh in cols])
        for row in rows:
            append_row(sheet, [row.get(k, "") for k, _zh in cols])
        book.save(out)
        return
    raise ValueError(f"{out}: output must be .csv or .xlsx")


def load_rows(
    session: Session, rows: list[dict[str, str]], today: date | None = None
) -> ImportReport:
    """Validate and upsert generated rows in the caller's transaction (no commit)."""
    cols = _headers()
    mapping = map_headers([zh for _k, zh in cols])
    ctx = RowContext(mapping, {k: zh for k, zh in cols}, None, today or clock.today())
    report = ImportReport()
    items = []
    for number, row in enumerate(rows, start=2):
        report.rows += 1
        item, issues = validate_row(ctx, number, [row.get(k, "") for k, _zh in cols])
        if issues or item is None:
            report.rejected += 1
            report.first_errors.extend(issues[:1])
        else:
            items.append(item)
    for start in range(0, len(items), 1000):
        for result in upsert(session, items[start : start + 1000]).values():
            setattr(report, result, getattr(report, result) + 1)
    return report


# Employer contribution rates on the monthly base (Gansu, 2024): basic pension 16%, basic medical
# 6.5%, unemployment 0.5% — only the employer's share, which is what the subsidy repays.
DEMO_RATES = {"pension": (16, 100), "medical": (65, 1000), "unemployment": (5, 1000)}


def demo_hires(rows: list[dict[str, str]], seed: int = 2020) -> list[Hire]:
    """Hire records behind each demo enterprise's graduate count, most with contribution records.

    Every hire qualifies (left school within 2 years, 3-year contract, insured); the employer's
    contributions cover the months from the hire to the data date (at most 12). About one
    enterprise in twelve has no contribution records yet, so its subsidy shows as "to confirm".
    """
    rng = np.random.default_rng(seed + 22)
    out: list[Hire] = []
    for i, row in enumerate(rows):
        count = int(row.get("graduate_hires") or 0)
        if count <= 0:
            continue
        recorded = rng.random() >= 1 / 12
        for j in range(count):
            hired = date(FIGURES_YEAR, 1, 1) + timedelta(days=int(rng.integers(0, 366)))
            hired = min(hired, date(FIGURES_YEAR, 12, 31))
            left = date(FIGURES_YEAR - int(rng.integers(0, 2)), 6, 30)
            months = min(12, (AS_OF.year - hired.year) * 12 + AS_OF.month - hired.month)
            base_fen = int(rng.integers(4_200, 7_500)) * 100  # monthly contribution base
            paid = {k: base_fen * months * num // den for k, (num, den) in DEMO_RATES.items()}
            out.append(
                Hire(
                    row=i + 1,
                    credit_code=row["credit_code"],
                    person_ref=f"G{FIGURES_YEAR}-{i:05d}-{j:02d}",
                    graduated_on=min(left, hired),
                    hired_on=hired,
                    contract_months=36,
                    social_insurance=True,
                    source="人社",
                    as_of=AS_OF,
                    insured_months=months if recorded else None,
                    pension_fen=paid["pension"] if recorded else None,
                    medical_fen=paid["medical"] if recorded else None,
                    unemployment_fen=paid["unemployment"] if recorded else None,
                )
            )
    return out


# The showcase firm: a Lanzhou manufacturer of 46 staff with graduate hires, recognised as an
# innovative SME and evaluated for the SRDI pool, whose R&D expense the tax exchange has not
# brought yet (so the SRDI invitation waits for a figure it may report itself) and whose revenue
# is just under the 规模以上 line (so the upgrade support is a near miss). Its high-tech
# certificate dates are not on record either, so the science-funding call under (二十三) asks it
# to confirm them.
SHOWCASE_FIGURES = {
    "employees": "46",
    "revenue": "1846.30",
    "total_assets": "1620.00",
    "taxable_income": "96.40",
    "rd_expense": "",
    "cert_innovative_sme_from": "2024-06-18",
    "cert_innovative_sme_to": "2027-06-17",
    "cert_high_tech_from": "",
    "cert_high_tech_to": "",
}
SHOWCASE_SCORE = {"srdi_score": 72}
SHOWCASE_PRIOR = {"revenue": 15_852_000_00}  # fen: 1585.20 万元


def stage_showcase(rows: list[dict[str, str]]) -> int | None:
    """Make the first Lanzhou manufacturer with graduate hires the showcase firm; its row index."""
    manufacturing = {c.code for c in industry_classes() if c.section == "C"}
    for i, row in enumerate(rows):
        if (
            row["region_code"].startswith("6201")
            and row["industry_code"] in manufacturing
            and int(row.get("graduate_hires") or 0) > 0
            and not row["credit_code"].startswith("92")
        ):
            row.update(SHOWCASE_FIGURES)
            row["founded_on"] = min(row["founded_on"], f"{FIGURES_YEAR - 6}-04-12")
            return i
    return None


def showcase_code(size: int, seed: int = 2020) -> str | None:
    """The credit code of the showcase firm of the demo population of this size and seed."""
    rows = generate(size, seed)
    i = stage_showcase(rows)
    return None if i is None else rows[i]["credit_code"]


def recent_quarter_end(today: date) -> date:
    """The last day of the quarter before the one `today` falls in."""
    first = date(today.year, 3 * ((today.month - 1) // 3) + 1, 1)
    return first - timedelta(days=1)


def load_demo(
    session: Session, size: int = 3000, seed: int = 2020, today: date | None = None
) -> ImportReport:
    """Load the demo population and its graduate hire records (idempotent; the caller commits).

    Two in three enterprises' figures were exchanged last quarter; the rest still date from
    the annual collection, so the grant review shows both fresh and stale data.
    """
    from huiqi.core.clock import today as today_cn

    recent = recent_quarter_end(today or today_cn()).isoformat()
    rows = generate(size, seed)
    for i, row in enumerate(rows):
        if i % 3:
            row["as_of"] = recent
    showcase = stage_showcase(rows)
    report = load_rows(session, rows)
    if showcase is not None:
        row = rows[showcase]
        as_of = date.fromisoformat(row["as_of"])
        code = row["credit_code"]
        # the 工信 evaluation score and the year before's revenue from the tax bureau
        apply_changes(session, code, SHOWCASE_SCORE, source="工信", as_of=as_of, year=FIGURES_YEAR)
        apply_changes(
            session, code, SHOWCASE_PRIOR, source="税务", as_of=as_of, year=FIGURES_YEAR - 1
        )
    for part in range(0, len(hires := demo_hires(rows, seed)), 2000):
        write_hires(session, hires[part : part + 2000], recorded_by="demo")
    return report
