"""Matching pages (/matching/…, /rules/…) and JSON API (/api/v1/matching/…, /api/v1/rules/…)."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from huiqi.accounts.models import Role, User
from huiqi.core import clock
from huiqi.core.money import format_fen
from huiqi.matching import service
from huiqi.web.deps import (
    current_user,
    ensure_enterprise_access,
    get_session,
    render,
    require_roles,
)

router = APIRouter()
officer = require_roles(Role.officer, Role.admin)
CODE_RE = re.compile(r"^[0-9A-Z]{18}$")
NEW_RULE = """\
id: draft-rule
title: {zh: 新规则, en: new rule}
description: {zh: 假设:……, en: "Assumptions: …"}
legal_basis:
  - {doc_number: 甘工信发〔2020〕351号, article: (二十二)}
department: 省工信厅
mode: push
valid_from: 2024-01-01
conditions:
  all:
    - {field: region_code, op: prefix, value: ["62"]}
    - {field: size_class, op: in, value: [small, micro]}
"""


def _day(on: str | None) -> date:
    if not on:
        return clock.today()
    try:
        return date.fromisoformat(on)
    except ValueError:
        raise HTTPException(status_code=422, detail="on must be YYYY-MM-DD") from None


def _article_link(session: Session, doc_number: str, article_no: int | None) -> str | None:
    """Policy page URL anchored at the article, when the policy library holds the document."""
    if article_no is None:
        return None
    from huiqi.policy.service import find_article

    ref = find_article(session, doc_number, article_no)
    return ref.url if ref else None


@router.get("/matching/mine")
def my_policies_page(
    request: Request, user: User = Depends(current_user), session: Session = Depends(get_session)
) -> Response:
    """我的政策: what the enterprise gets, what needs its data, and what is within reach."""
    if user.role != Role.enterprise or not user.credit_code:
        raise HTTPException(status_code=404, detail="not found")
    return _policies(request, session, user, user.credit_code)


@router.get("/matching/enterprise/{credit_code}")
def enterprise_policies_page(
    request: Request,
    credit_code: str,
    user: User = Depends(current_user),
    session: Session = Depends(get_session),
) -> Response:
    """The 我的政策 view of one enterprise (the enterprise itself, officers)."""
    code = credit_code.upper()
    if not CODE_RE.match(code):
        raise HTTPException(status_code=404, detail="not found")
    ensure_enterprise_access(user, code)
    return _policies(request, session, user, code)


def _policies(request: Request, session: Session, user: User, code: str) -> Response:
    mine = service.my_policies(session, code)
    links: dict[str, str] = {}
    for version, _exp in mine.eligible + mine.to_confirm + mine.near_misses:
        basis = service.published_rule(session, version.rule_id).doc.legal_basis
        url = _article_link(session, basis[0].doc_number, basis[0].article_no) if basis else None
        if url:
            links[version.rule_id] = url
    return render(
        request,
        "matching/mine.html",
        code=code,
        mine=mine,
        format_fen=format_fen,
        links=links,
        own=user.role == Role.enterprise,
    )


@router.get("/rules")
def rules_page(
    request: Request, user: User = Depends(officer), session: Session = Depends(get_session)
) -> Response:
    """Published rules with their legal basis, and the latest matching run's progress."""
    return render(
        request,
        "rules/list.html",
        versions=service.published_versions(session),
        run=service.latest_run(session),
    )


@router.get("/rules/run-status")
def run_status_fragment(
    request: Request, user: User = Depends(officer), session: Session = Depends(get_session)
) -> Response:
    """The latest matching run's progress (an htmx fragment polled while the run goes on)."""
    return render(request, "rules/_run_status.html", run=service.latest_run(session))


@router.get("/rules/editor")
def editor_page(request: Request, user: User = Depends(officer)) -> Response:
    """Rule editor: YAML, validation, scenario run and sandbox counts before publishing."""
    return render(
        request, "rules/editor.html", text=NEW_RULE, scenarios="", report=None, published=None
    )


@router.post("/rules/editor")
def editor_submit(
    request: Request,
    text: str = Form(...),
    scenarios: str = Form(""),
    action: str = Form("check"),
    on: str = Form(""),
    user: User = Depends(officer),
    session: Session = Depends(get_session),
) -> Response:
    """Check a draft (validation, scenarios, sandbox counts); publish when asked and valid."""
    report = service.sandbox(session, text, _day(on), scenarios or None)
    published = None
    if action == "publish" and not report.errors and report.rule is not None:
        if report.scenarios and not all(s.ok for s in report.scenarios):
            report.errors.append("scenario tests fail: fix them before publishing")
        else:
            version, _changed = service.publish_rule(session, report.rule, created_by=user.username)
            # the grant ledger records who published the version its recomputations follow
            service.rematch_rule(session, version.rule_id, actor=user.username)
            published = version
    status = 422 if report.errors else 200
    return render(
        request,
        "rules/editor.html",
        status_code=status,
        text=text,
        scenarios=scenarios,
        report=report,
        published=published,
        format_fen=format_fen,
    )


@router.get("/rules/{rule_id}")
def rule_page(
    request: Request,
    rule_id: str,
    on: str | None = None,
    user: User = Depends(officer),
    session: Session = Depends(get_session),
) -> Response:
    """A rule: its legal basis linked to the article, conditions, and who fits it."""
    report = service.reverse_query(session, rule_id, _day(on))
    version = next(v for v in service.published_versions(session) if v.rule_id == rule_id)
    rule = service.published_rule(session, rule_id)
    links = [(b, _article_link(session, b.doc_number, b.article_no)) for b in rule.doc.legal_basis]
    return render(
        request, "rules/rule.html", version=version, rule=rule, report=report, links=links
    )


@router.get("/api/v1/matching/explain/{credit_code}/{rule_id}")
def api_explain(
    credit_code: str,
    rule_id: str,
    on: str | None = None,
    user: User = Depends(current_user),
    session: Session = Depends(get_session),
) -> JSONResponse:
    """result (eligible | ineligible | unknown), reasons, missing, near_miss for one enterprise × rule."""
    code = credit_code.upper()
    ensure_enterprise_access(user, code)
    exp = service.explain(session, code, rule_id, _day(on))
    return JSONResponse(exp.to_json())


@router.get("/api/v1/rules/{rule_id}/enterprises")
def api_reverse(
    rule_id: str,
    on: str | None = None,
    user: User = Depends(officer),
    session: Session = Depends(get_session),
) -> JSONResponse:
    """Eligible and unknown enterprises of a rule, with counts by region, industry and size class."""
    r = service.reverse_query(session, rule_id, _day(on))

    def rows(items: list[tuple[Any, str, int]]) -> list[dict[str, Any]]:
        return [{"group": g, "result": res, "count": n} for g, res, n in items]

    return JSONResponse(
        {
            "rule_id": r.rule_id,
            "evaluation_date": r.on.isoformat(),
            "totals": r.totals,
            "by_region": rows(r.by_region),
            "by_industry": rows(r.by_industry),
            "by_size": rows(r.by_size),
            "eligible": r.eligible,
            "unknown": r.unknown,
        }
    )


@router.post("/api/v1/rules/sandbox")
async def api_sandbox(
    request: Request,
    on: str | None = None,
    user: User = Depends(officer),
    session: Session = Depends(get_session),
) -> JSONResponse:
    """Draft rule YAML in the body: validation errors, or counts and benefit exposure."""
    text = (await request.body()).decode("utf-8", errors="replace")
    report = service.sandbox(session, text, _day(on))
    if report.errors:
        return JSONResponse({"errors": report.errors}, status_code=422)
    return JSONResponse(
        {
            "totals": report.totals,
            "exposure_fen": report.exposure_fen,
            "exposure_unknown": report.exposure_unknown,
        }
    )


@router.get("/matching")
def matching_home(user: User = Depends(current_user)) -> Response:
    """Send each role to its matching page."""
    target = "/matching/mine" if user.role == Role.enterprise else "/rules"
    return RedirectResponse(target, status_code=303)
