"""Pydantic shapes of the finance API: money in integer fen, rates in basis points."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from huiqi.core.bounds import Int64
from huiqi.finance.models import Collateral, ProductKind, ProviderKind

SizeClass = Literal["large", "medium", "small", "micro"]
SME_CLASSES: tuple[SizeClass, ...] = ("medium", "small", "micro")
Action = Literal["accept", "approve", "decline", "disburse", "withdraw"]


class Basis(BaseModel):
    """A legal basis: document number and article."""

    model_config = ConfigDict(extra="forbid")

    doc_number: str = Field(min_length=1, max_length=100)
    article: str = Field(min_length=1, max_length=50)


class ProductIn(BaseModel):
    """A product a bank or guarantee agency publishes."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    kind: ProductKind
    provider_kind: ProviderKind = ProviderKind.bank
    description: str = Field(default="", max_length=4000)
    amount_min_fen: int = Field(gt=0, le=10**14)
    amount_max_fen: int = Field(gt=0, le=10**14)
    term_min_months: int = Field(ge=1, le=360)
    term_max_months: int = Field(ge=1, le=360)
    rate_base: Literal["lpr_1y", "lpr_5y"] | None = None
    spread_bp: int | None = Field(default=None, ge=-1000, le=3000)
    guarantee_fee_bp: int | None = Field(default=None, ge=0, le=1000)
    collateral: list[Collateral] = Field(min_length=1)
    size_classes: list[SizeClass] = Field(default_factory=lambda: list(SME_CLASSES))
    industry_prefixes: list[str] = Field(default_factory=list, max_length=50)
    region_prefixes: list[str] = Field(default_factory=list, max_length=50)
    required_fields: list[str] = Field(default_factory=list, max_length=40)
    conditions_yaml: str = Field(default="", max_length=20000)
    legal_basis: list[Basis] = Field(default_factory=list, max_length=10)
    decision_days: int | None = Field(default=None, ge=1, le=60)
    valid_from: date | None = None
    valid_to: date | None = None

    @model_validator(mode="after")
    def _consistent(self) -> ProductIn:
        if self.amount_min_fen > self.amount_max_fen:
            raise ValueError("amount_min_fen is above amount_max_fen / 额度下限高于上限")
        if self.term_min_months > self.term_max_months:
            raise ValueError("term_min_months is above term_max_months / 期限下限高于上限")
        if (self.rate_base is None) != (self.spread_bp is None):
            raise ValueError(
                "rate_base and spread_bp go together (rate = LPR + spread) / 利率基准与加点须同时填写"
            )
        if self.provider_kind == ProviderKind.bank and self.rate_base is None:
            raise ValueError(
                "a bank loan needs rate_base and spread_bp / 银行贷款须填写利率(LPR+加点)"
            )
        if self.kind == ProductKind.guarantee and self.guarantee_fee_bp is None:
            raise ValueError("a guarantee product needs guarantee_fee_bp / 担保产品须填写担保费率")
        if self.valid_from and self.valid_to and self.valid_to < self.valid_from:
            raise ValueError("valid_to is before valid_from / 有效期结束早于开始")
        return self


class ProductOut(BaseModel):
    """A published product with today's rate and the guarantee-fee check."""

    id: int
    institution: str
    provider_kind: str
    name: str
    kind: str
    description: str
    amount_min_fen: int
    amount_max_fen: int
    term_min_months: int
    term_max_months: int
    rate_base: str | None
    spread_bp: int | None
    lpr_bp: int | None
    rate_bp: int | None
    guarantee_fee_bp: int | None
    fee_over_cap: bool
    collateral: list[str]
    size_classes: list[str]
    industry_prefixes: list[str]
    region_prefixes: list[str]
    required_fields: list[str]
    conditions_yaml: str
    legal_basis: list[dict[str, str]]
    decision_days: int
    valid_from: date
    valid_to: date | None
    status: str
    family_id: int | None = None
    version: int = 1


class NeedIn(BaseModel):
    """A financing need an enterprise posts."""

    model_config = ConfigDict(extra="forbid")

    amount_fen: int = Field(gt=0, le=10**14)
    term_months: int = Field(ge=1, le=360)
    purpose: str = Field(min_length=2, max_length=1000)
    collateral: list[Collateral] = Field(default_factory=list)
    deadline: date | None = None
    first_loan: bool | None = None
    source_rule_id: str | None = Field(default=None, max_length=100)


class NeedOut(BaseModel):
    """A posted need (the bank view leaves out who posted it)."""

    id: int
    credit_code: str | None
    amount_fen: int
    term_months: int
    purpose: str
    collateral: list[str]
    deadline: date | None
    first_loan: bool | None
    source_rule_id: str | None
    region_code: str | None
    industry_code: str | None
    size_class: str | None
    status: str
    created_at: datetime


class ReasonOut(BaseModel):
    """One reason, in Chinese and English; ok is None for neutral remarks."""

    zh: str
    en: str
    ok: bool | None


class MatchOut(BaseModel):
    """One ranked product for a need."""

    rank: int
    product_id: int
    product_name: str
    institution: str
    kind: str
    eligibility: str
    applicable: bool
    rate_bp: int | None
    lpr_bp: int | None
    guarantee_fee_bp: int | None
    cost_bp: int | None
    fee_over_cap: bool
    reasons: list[ReasonOut]
    fit: list[ReasonOut]
    blockers: list[ReasonOut]
    missing: list[str]


class UnevaluableOut(BaseModel):
    """A product left out of the matches because it could not be evaluated."""

    product_id: int
    product_name: str
    reason: str


class MatchesOut(BaseModel):
    """Matches of a need."""

    need_id: int
    evaluation_date: date
    matches: list[MatchOut]
    unevaluable: list[UnevaluableOut]


class ApplyIn(BaseModel):
    """Apply to one or several products in one step, sharing the chosen profile fields."""

    model_config = ConfigDict(extra="forbid")

    product_ids: list[Int64] = Field(min_length=1, max_length=10)
    fields: list[str] = Field(default_factory=list, max_length=60)


class ApplyOutcomeOut(BaseModel):
    """What happened for one product of a one-step application."""

    product_id: int
    outcome: Literal["created", "existing", "refused"]
    application_id: int | None
    reasons: list[ReasonOut]


class TransitionIn(BaseModel):
    """A step of an application."""

    model_config = ConfigDict(extra="forbid")

    action: Action
    reason: str | None = Field(default=None, max_length=2000)
    amount_fen: int | None = Field(default=None, gt=0, le=10**14)
    rate_bp: int | None = Field(default=None, ge=0, le=5000)


class InviteIn(BaseModel):
    """The lender's product an open need's enterprise is invited to."""

    model_config = ConfigDict(extra="forbid")

    product_id: Int64 = Field(gt=0)


class RevokeIn(BaseModel):
    """Fields whose sharing stops; empty means all."""

    model_config = ConfigDict(extra="forbid")

    fields: list[str] = Field(default_factory=list, max_length=60)


class EventOut(BaseModel):
    """A recorded step."""

    at: datetime
    on: date
    kind: str
    from_status: str | None
    to_status: str | None
    actor_role: str | None
    note: str
    due_on: date | None
    detail: dict[str, Any]


class SharedFieldOut(BaseModel):
    """A profile field as the lender may see it."""

    field: str
    zh: str
    en: str
    shared: bool
    value: Any


class ApplicationOut(BaseModel):
    """An application with its history; shared fields appear only for the addressed lender."""

    id: int
    need_id: int
    product_id: int
    product_name: str
    institution: str
    credit_code: str
    status: str
    amount_fen: int
    term_months: int
    eligibility: str
    lpr_bp: int | None
    rate_bp: int | None
    guarantee_fee_bp: int | None
    submitted_on: date
    due_on: date | None
    decided_on: date | None
    decline_reason: str | None
    approved_amount_fen: int | None
    approved_rate_bp: int | None
    disbursed_amount_fen: int | None
    disbursed_on: date | None
    consented_fields: list[str]
    events: list[EventOut]
    shared: list[SharedFieldOut] | None = None
