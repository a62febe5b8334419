"""Grant services (免申即享), one module per step; this module gathers their public names.

- scope: who may review which grants
- risk: review thresholds, provenance and risk flags
- snapshots: what an amount was computed from, and recomputing it
- creation: grants created, recomputed or held from matching's results
- bank: enterprises' receiving accounts
- review: batch approval and rejection, confirming changes
- disbursement: four-eyes payment files, telling the enterprise
- queries: lists, totals and the public notice
- awards: awards of calls for applications, clawbacks, risk signals for other reviewers
- the ledger lives in huiqi.grants.ledger

Every function takes the session first and never commits."""

from __future__ import annotations

from huiqi.grants.award_text import AWARD_KIND
from huiqi.grants.awards import (
    clawbacks_fen,
    enterprise_risk_flags,
    grant_for_award,
    record_clawback,
)
from huiqi.grants.bank import bank_account, set_bank_account
from huiqi.grants.creation import check_inputs, grants_from_results, on_results_changed
from huiqi.grants.disbursement import (
    APPROVING_EVENTS,
    DISBURSEMENT_HEADERS,
    approvers,
    batch_in_scope,
    batch_problems,
    batches,
    check_ledger_before_payment,
    create_disbursement,
    disbursable,
    disbursement_csv,
    disbursement_rows,
    disbursement_xlsx,
    grant_message,
    split_four_eyes,
    yuan_text,
)
from huiqi.grants.ledger import ledger, verify_ledger
from huiqi.grants.queries import NoticeRow, grants, public_notice, totals_by_status
from huiqi.grants.review import ReviewReport, acknowledge_change, review
from huiqi.grants.risk import (
    HOLD_FLAGS,
    RISK_FILE,
    SIZE_INPUTS,
    RiskSettings,
    assess_risk,
    flag,
    provenance,
    risk_settings,
    set_flags,
    used_fields,
)
from huiqi.grants.scope import (
    Departments,
    Scope,
    can_review,
    department_key,
    in_scope,
    region_of,
    review_scope,
    scoped,
)
from huiqi.grants.snapshots import (
    build_snapshot,
    decode_value,
    encode_value,
    inputs_hash,
    recompute,
    rule_of,
)

__all__ = [
    "Departments",
    "can_review",
    "region_of",
    "APPROVING_EVENTS",
    "AWARD_KIND",
    "DISBURSEMENT_HEADERS",
    "HOLD_FLAGS",
    "NoticeRow",
    "RISK_FILE",
    "ReviewReport",
    "RiskSettings",
    "SIZE_INPUTS",
    "Scope",
    "acknowledge_change",
    "approvers",
    "assess_risk",
    "bank_account",
    "batch_in_scope",
    "batch_problems",
    "batches",
    "build_snapshot",
    "check_inputs",
    "clawbacks_fen",
    "check_ledger_before_payment",
    "create_disbursement",
    "decode_value",
    "department_key",
    "disbursable",
    "disbursement_csv",
    "disbursement_rows",
    "disbursement_xlsx",
    "encode_value",
    "enterprise_risk_flags",
    "flag",
    "grant_for_award",
    "grant_message",
    "grants",
    "grants_from_results",
    "in_scope",
    "inputs_hash",
    "ledger",
    "on_results_changed",
    "provenance",
    "public_notice",
    "recompute",
    "record_clawback",
    "review",
    "review_scope",
    "risk_settings",
    "rule_of",
    "scoped",
    "set_bank_account",
    "set_flags",
    "split_four_eyes",
    "totals_by_status",
    "used_fields",
    "verify_ledger",
    "yuan_text",
]
