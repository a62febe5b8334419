"""What the finance pages and API share: labels, template helpers, JSON shapes, form fields."""

from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from fastapi import Depends, Request
from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.responses import Response

from huiqi.accounts.models import Role, User
from huiqi.core.clock import today
from huiqi.core.money import MoneyError, format_fen, to_fen
from huiqi.finance import eligibility as elig
from huiqi.finance import service as svc
from huiqi.finance.models import (
    COLLATERAL_LABELS,
    KIND_LABELS,
    STATUS_LABELS,
    Application,
    Need,
    Product,
)
from huiqi.finance.schemas import (
    ApplicationOut,
    EventOut,
    MatchesOut,
    MatchOut,
    NeedOut,
    ProductOut,
    ReasonOut,
    SharedFieldOut,
    UnevaluableOut,
)
from huiqi.web.deps import render, require_roles

# Who may open the finance pages and calls besides the single-role ones of huiqi.web.deps.
FinanceUser = Annotated[
    User, Depends(require_roles(Role.enterprise, Role.bank, Role.officer, Role.admin))
]
PartyUser = Annotated[User, Depends(require_roles(Role.enterprise, Role.bank))]
NeedReader = Annotated[User, Depends(require_roles(Role.enterprise, Role.officer, Role.admin))]

SIZE_LABELS = {
    "large": ("大型", "large"),
    "medium": ("中型", "medium"),
    "small": ("小型", "small"),
    "micro": ("微型", "micro"),
}
RESULT_LABELS = {
    "eligible": ("符合条件", "Eligible"),
    "unknown": ("待补充数据", "Needs data"),
    "ineligible": ("不符合", "Not eligible"),
}


def _helpers() -> dict[str, Any]:
    """Labels and formatters the finance templates share."""
    return {
        "wan": lambda fen: format_fen(fen, "wan"),
        "yuan": format_fen,
        "pct": svc.pct,
        "share": _share,
        "bpd": _bpd,
        "wan_num": lambda fen: f"{(Decimal(fen) / 1_000_000).normalize():f}",
        "KIND_LABELS": KIND_LABELS,
        "STATUS_LABELS": STATUS_LABELS,
        "COLLATERAL_LABELS": COLLATERAL_LABELS,
        "SIZE_LABELS": SIZE_LABELS,
        "RESULT_LABELS": RESULT_LABELS,
        "today": today(),
    }


def _share(value: Decimal | None) -> str:
    """A ratio as a percentage with one decimal: 0.5 → '50.0%'."""
    return "—" if value is None else f"{(value * 100).quantize(Decimal('0.1'))}%"


def _bpd(value: Decimal | None) -> str:
    """A Decimal number of basis points as a percentage: 345.5 → '3.46%'."""
    return "—" if value is None else f"{(value / 100).quantize(Decimal('0.01'))}%"


def page(request: Request, name: str, status_code: int = 200, **context: Any) -> Response:
    """A finance template rendered with the shared helpers."""
    return render(request, name, status_code=status_code, **_helpers(), **context)


# ------------------------------------------------------------------------------- JSON shapes


def product_out(product: Product, on: date | None = None) -> ProductOut:
    """A product with today's rate and the article (十八) flag."""
    on = on or today()
    try:
        lpr, rate = svc.rate_on(product, on)
    except elig.NotEvaluable:
        lpr, rate = None, None
    return ProductOut(
        id=product.id,
        institution=product.institution,
        provider_kind=product.provider_kind,
        name=product.name,
        kind=product.kind,
        description=product.description,
        amount_min_fen=product.amount_min_fen,
        amount_max_fen=product.amount_max_fen,
        term_min_months=product.term_min_months,
        term_max_months=product.term_max_months,
        rate_base=product.rate_base,
        spread_bp=product.spread_bp,
        lpr_bp=lpr,
        rate_bp=rate,
        guarantee_fee_bp=product.guarantee_fee_bp,
        fee_over_cap=svc.fee_over_cap(product.guarantee_fee_bp, on),
        collateral=list(product.collateral or []),
        size_classes=list(product.size_classes or []),
        industry_prefixes=list(product.industry_prefixes or []),
        region_prefixes=list(product.region_prefixes or []),
        required_fields=list(product.required_fields or []),
        conditions_yaml=product.conditions_yaml,
        legal_basis=list(product.legal_basis or []),
        decision_days=product.decision_days,
        valid_from=product.valid_from,
        valid_to=product.valid_to,
        status=product.status,
        family_id=product.family_id,
        version=product.version,
    )


def need_out(need: Need, *, shown: svc.NeedCell | None = None) -> NeedOut:
    """A need; lenders get it without the enterprise's identity, its codes generalised (shown)."""
    return NeedOut(
        id=need.id,
        credit_code=None if shown is not None else need.credit_code,
        amount_fen=need.amount_fen,
        term_months=need.term_months,
        purpose=need.purpose,
        collateral=list(need.collateral or []),
        deadline=need.deadline,
        first_loan=need.first_loan,
        source_rule_id=need.source_rule_id,
        region_code=need.region_code if shown is None else shown.region_code,
        industry_code=need.industry_code if shown is None else shown.industry_code,
        size_class=need.size_class if shown is None else shown.size_class,
        status=need.status,
        created_at=need.created_at,
    )


def reasons_out(items: list[svc.Reason]) -> list[ReasonOut]:
    """Reasons in their JSON shape."""
    return [ReasonOut(zh=r.zh, en=r.en, ok=r.ok) for r in items]


def matches_out(need: Need, result: svc.MatchResult) -> MatchesOut:
    """Ranked matches of a need."""
    return MatchesOut(
        need_id=need.id,
        evaluation_date=result.on,
        matches=[
            MatchOut(
                rank=i + 1,
                product_id=m.product.id,
                product_name=m.product.name,
                institution=m.product.institution,
                kind=m.product.kind,
                eligibility=m.eligibility,
                applicable=m.applicable,
                rate_bp=m.rate_bp,
                lpr_bp=m.lpr_bp,
                guarantee_fee_bp=m.fee_bp,
                cost_bp=m.cost_bp,
                fee_over_cap=m.fee_over_cap,
                reasons=reasons_out(m.reasons()),
                fit=reasons_out(m.fit),
                blockers=reasons_out(m.blockers),
                missing=list(m.explanation.missing),
            )
            for i, m in enumerate(result.matches)
        ],
        unevaluable=[
            UnevaluableOut(product_id=u.product.id, product_name=u.product.name, reason=u.reason)
            for u in result.unevaluable
        ],
    )


def application_out(
    session: Session, user: User, app: Application, *, with_shared: bool = True
) -> ApplicationOut:
    """An application; the addressed lender also gets the consented fields (recorded)."""
    shared = None
    if with_shared and user.role == Role.bank:
        shared = [
            SharedFieldOut(
                field=f.name, zh=f.zh, en=f.en, shared=f.shared, value=_jsonable(f.value)
            )
            for f in svc.shared_view(session, user, app)
        ]
    return ApplicationOut(
        id=app.id,
        need_id=app.need_id,
        product_id=app.product_id,
        product_name=app.product.name,
        institution=app.institution,
        credit_code=app.credit_code,
        status=app.status,
        amount_fen=app.amount_fen,
        term_months=app.term_months,
        eligibility=app.eligibility,
        lpr_bp=app.lpr_bp,
        rate_bp=app.rate_bp,
        guarantee_fee_bp=app.guarantee_fee_bp,
        submitted_on=app.submitted_on,
        due_on=app.due_on,
        decided_on=app.decided_on,
        decline_reason=app.decline_reason,
        approved_amount_fen=app.approved_amount_fen,
        approved_rate_bp=app.approved_rate_bp,
        disbursed_amount_fen=app.disbursed_amount_fen,
        disbursed_on=app.disbursed_on,
        consented_fields=[c.field for c in svc.active_consents(session, app)],
        events=[
            EventOut(
                at=e.at,
                on=e.on,
                kind=e.kind,
                from_status=e.from_status,
                to_status=e.to_status,
                actor_role=e.actor_role,
                note=e.note,
                due_on=e.due_on,
                detail=e.detail or {},
            )
            for e in svc.events_of(session, app)
        ],
        shared=shared,
    )


def _jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date) else value


API = "/api/v1/finance"


def form_bp(raw: str, label: str) -> int | None:
    """A percentage typed in a form ('0.45') as basis points; empty means none."""
    text = raw.strip().rstrip("%")
    if not text:
        return None
    try:
        value = Decimal(text) * 100
    except InvalidOperation:
        raise ValueError(f"{label}:不是数字 {raw!r}") from None
    if value != value.to_integral_value():
        raise ValueError(f"{label}:最小单位为 0.01%")
    return int(value)


def form_fen(raw: str, label: str) -> int:
    """An amount typed in 万元 as fen; ValueError naming the field."""
    text = raw.strip()
    if not text:
        raise ValueError(f"{label}:请填写金额(万元)")
    try:
        return to_fen(text, "wan")
    except MoneyError:
        raise ValueError(f"{label}:须为以万元计的数字(如 50 或 12.5),不是 {text!r}") from None


def form_int(raw: str, label: str) -> int | None:
    """A whole number typed in a form; empty means none."""
    text = raw.strip()
    if not text:
        return None
    if not text.lstrip("-").isdigit():
        raise ValueError(f"{label}:应为整数")
    return int(text)


def form_list(raw: str) -> list[str]:
    """Items typed in a form, separated by commas (either width) or spaces."""
    return [x for x in raw.replace(",", ",").replace(" ", ",").split(",") if x.strip()]


def validation_messages(exc: ValidationError) -> list[str]:
    """A pydantic error as lines naming each field."""
    return [
        f"{'.'.join(str(p) for p in e['loc']) or '表单'}: {e['msg'].removeprefix('Value error, ')}"
        for e in exc.errors()
    ]
