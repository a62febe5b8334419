"""Matching pages (/matching/…, /rules/…) and JSON API (/api/v1/matching/…, /api/v1/rules/…)."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from huiqi.accounts.models import Role, User
from huiqi.core import clock
from huiqi.core.money import format_fen
from huiqi.matching import review, service, workflow
from huiqi.matching.models import RuleVersion
from huiqi.web import forms
from huiqi.web.deps import (
    CurrentUser,
    OfficerUser,
    SessionDep,
    ensure_enterprise_access,
    page_user,
    reading_session,
    render,
)
from huiqi.web.kept import kept_page, remembered_page

router = APIRouter()
CODE_RE = re.compile(r"^[0-9A-Z]{18}$")
MINE_TEMPLATE = "matching/mine.html"
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
    return forms.day(on, "on", ("评估日期", "evaluation date"))


def _article_link(
    session: Session, doc_number: str, article_no: int
) -> tuple[str, list[tuple[str, str]]] | None:
    """The policy page URL of an article and its interpretations (title, URL), when the library
    holds the document; kept until the library changes (an interpretation moves its stamp)."""
    from huiqi.policy import cache, interpretation
    from huiqi.policy.service import find_article

    def make() -> tuple[str, list[tuple[str, str]]] | None:
        ref = find_article(session, doc_number, article_no)
        if ref is None:
            return None
        return ref.url, [
            (i.title, f"/policy/{ref.policy_id}#interp-{i.id}")
            for i in interpretation.for_article(session, ref.policy_id, ref.number)
        ]

    key = (doc_number, article_no, cache.fresh_library_stamp(session))
    found: tuple[str, list[tuple[str, str]]] | None = cache.links.get_or_make(key, make)
    return found


def _article_url(session: Session, doc_number: str, article_no: int | None) -> str | None:
    """Policy page URL anchored at the article, when the policy library holds the document."""
    found = _article_link(session, doc_number, article_no) if article_no is not None else None
    return found[0] if found else None


@router.get("/matching/mine")
async def my_policies_page(request: Request) -> Response:
    """我的政策: what the enterprise gets, what needs its data, and what is within reach.

    The page is kept per user and stamp (huiqi.web.kept): while both are remembered a reload
    is answered on the event loop (an aged one is read again in the background); otherwise the
    user and what the stamp is made of are read in one trip to a worker thread, and nothing is
    rendered when none of it changed.
    """
    page = remembered_page(
        request,
        MINE_TEMPLATE,
        admits=_has_enterprise,
        stamp_key=_mine_key,
        read_stamp=_read_mine_stamp,
    )
    if page is not None:
        return page
    return await run_in_threadpool(_my_policies_page, request)


def _has_enterprise(user: User) -> bool:
    """An enterprise user bound to an enterprise: the one whose 我的政策 page is kept."""
    return user.role == Role.enterprise and bool(user.credit_code)


def _mine_key(user: User) -> tuple[str, str]:
    return "mine", user.credit_code or ""


def _read_mine_stamp(session: Session, user: User) -> tuple[Any, ...] | None:
    return _mine_stamp(session, user.credit_code or "")


def _my_policies_page(request: Request) -> Response:
    with reading_session() as session:
        user = page_user(request, session)
        if user.role != Role.enterprise or not user.credit_code:
            raise HTTPException(status_code=404, detail="not found")
        code = user.credit_code
        stamp = _mine_stamp(session, code)
        if stamp is None:  # no such enterprise: the usual answer, nothing kept
            return _policies(request, session, user, code)
        return kept_page(
            request,
            MINE_TEMPLATE,
            _mine_key(user),
            stamp,
            lambda: _policies_context(session, user, code),
        )


def _mine_stamp(session: Session, code: str) -> tuple[Any, ...] | None:
    """Everything the 我的政策 page of an enterprise is made from, or None without the enterprise.

    The published rule versions, the day they are evaluated on and the enterprise's figures
    decide the explanations; the library stamp decides the legal-basis links; the open calls
    (of every published rule: each rule's call does not depend on which rules are shown) decide
    the apply links.
    """
    from huiqi.enterprise import repository as ent_repo
    from huiqi.funds.service import open_calls_by_rule
    from huiqi.policy import cache

    row = ent_repo.current_mapping(session, code)
    if row is None:
        return None
    # the columns service.published_versions orders by, without loading each rule's source
    versions = session.execute(
        select(RuleVersion.rule_id, RuleVersion.id, RuleVersion.hash)
        .where(RuleVersion.status == "published")
        .order_by(RuleVersion.rule_id)
    ).all()
    calls = open_calls_by_rule(session, [v.rule_id for v in versions])
    return (
        tuple((v.id, v.hash) for v in versions),
        clock.today(),
        repr(sorted(row.items())),
        cache.fresh_library_stamp(session),
        tuple(sorted((rule, c.id, c.title, repr(c.closes_at)) for rule, c in calls.items())),
    )


@router.get("/matching/enterprise/{credit_code}")
def enterprise_policies_page(
    request: Request,
    credit_code: str,
    user: CurrentUser,
    session: SessionDep,
) -> Response:
    """The 我的政策 view of one enterprise (the enterprise itself, officers)."""
    code = credit_code.upper()
    if not CODE_RE.match(code):
        raise HTTPException(status_code=404, detail="not found")
    ensure_enterprise_access(session, user, code)
    return _policies(request, session, user, code)


def _policies(request: Request, session: Session, user: User, code: str) -> Response:
    return render(request, MINE_TEMPLATE, **_policies_context(session, user, code))


def _policies_context(session: Session, user: User, code: str) -> dict[str, Any]:
    """What the 我的政策 template shows of an enterprise."""
    mine = service.my_policies(session, code)
    links: dict[str, str] = {}
    explained: dict[str, list[tuple[str, str]]] = {}
    for version, _exp in mine.eligible + mine.to_confirm + mine.near_misses:
        basis = mine.rules[version.rule_id].doc.legal_basis
        if not basis or basis[0].article_no is None:
            continue
        found = _article_link(session, basis[0].doc_number, basis[0].article_no)
        if found is None:
            continue
        links[version.rule_id], explained[version.rule_id] = found
    from huiqi.funds.service import open_calls_by_rule
    from huiqi.funds.timeline import beijing_text

    calls = open_calls_by_rule(session, [v.rule_id for v, _exp in mine.eligible + mine.to_confirm])
    return {
        "code": code,
        "mine": mine,
        "format_fen": format_fen,
        "links": links,
        "explained": explained,
        "calls": calls,
        "bj": beijing_text,
        "own": user.role == Role.enterprise,
    }


@router.get("/rules")
def rules_page(request: Request, user: OfficerUser, session: SessionDep) -> Response:
    """Published rules with their legal basis, and the latest matching run's progress."""
    return render(
        request,
        "rules/list.html",
        versions=service.published_versions(session),
        run=service.latest_run(session),
    )


@router.get("/rules/run-status")
def run_status_fragment(request: Request, user: OfficerUser, session: SessionDep) -> Response:
    """The latest matching run's progress (an htmx fragment polled while the run goes on)."""
    return render(request, "rules/_run_status.html", run=service.latest_run(session))


@router.get("/rules/editor")
def editor_page(request: Request, user: OfficerUser) -> Response:
    """Rule editor: YAML, validation, scenario run and sandbox counts before publishing."""
    return render(
        request, "rules/editor.html", text=NEW_RULE, scenarios="", report=None, published=None
    )


@router.post("/rules/editor")
def editor_submit(
    request: Request,
    user: OfficerUser,
    session: SessionDep,
    text: str = Form(...),
    scenarios: str = Form(""),
    action: str = Form("check"),
    on: str = Form(""),
    note: str = Form(""),
) -> Response:
    """Check a draft (validation, scenarios, sandbox counts); submit it when asked and valid.

    A submitted version is published at once, or waits for a second officer of the department
    (auto_grant rules, moves to another department); only the rule's department may submit.
    """
    report = service.sandbox(session, text, _day(on), scenarios or None)
    published = None
    submitted = None
    status = 200
    if action == "publish" and not report.errors and report.rule is not None:
        if report.scenarios and not all(s.ok for s in report.scenarios):
            report.errors.append("scenario tests fail: fix them before publishing")
        else:
            try:
                outcome = workflow.submit(session, report.rule, user, note)
            except (workflow.RuleAccessError, workflow.WorkflowError) as exc:
                # the editor is shown again with the refusal and its own status (403 or 409)
                report.errors.append(str(exc))
                status = exc.status
            else:
                if outcome.published:
                    published = outcome.version
                else:
                    submitted = outcome.version
    if report.errors and status == 200:
        status = 422
    return render(
        request,
        "rules/editor.html",
        status_code=status,
        text=text,
        scenarios=scenarios,
        report=report,
        published=published,
        submitted=submitted,
        format_fen=format_fen,
    )


@router.get("/rules/review")
def review_list_page(request: Request, user: OfficerUser, session: SessionDep) -> Response:
    """Rule versions waiting for the review of a second officer of their department."""
    waiting = workflow.pending_reviews(session, user)
    return render(request, "rules/review_list.html", waiting=waiting)


def _review_context(session: Session, version: RuleVersion, user: User) -> dict[str, Any]:
    """A rule version beside the articles it cites, its assumptions and its parameters' sources."""
    rule = service.rule_of_version(version)
    articles = []
    for b in rule.doc.legal_basis:
        held = review.article_text(session, b.doc_number, b.article)
        articles.append((b, held))
    params = [
        (p, [(start, end, value, src) for start, end, value, src in p.periods])
        for p in sorted(rule.params.values(), key=lambda p: p.id)
    ]
    current = workflow.published_version(session, version.rule_id)
    return {
        "version": version,
        "rule": rule,
        "articles": articles,
        "params": params,
        "current": current,
        "can_decide": version.status == workflow.REVIEW
        and workflow.may_act(session, user, version.department)
        and user.username != version.submitted_by,
        "can_withdraw": version.status == "published"
        and workflow.may_act(session, user, version.department),
        "show_value": review.show_value,
    }


@router.get("/rules/versions/{version_id}")
def version_page(
    request: Request,
    version_id: int,
    user: OfficerUser,
    session: SessionDep,
) -> Response:
    """The review page of one rule version."""
    version = session.get(RuleVersion, version_id)
    if version is None:
        raise HTTPException(status_code=404, detail="not found")
    return render(request, "rules/review.html", **_review_context(session, version, user))


@router.get("/rules/{rule_id}/review")
def rule_review_page(
    request: Request,
    rule_id: str,
    user: OfficerUser,
    session: SessionDep,
) -> Response:
    """The review page of a rule's version in force."""
    version = workflow.published_version(session, rule_id)
    if version is None:
        raise HTTPException(status_code=404, detail="not found")
    return RedirectResponse(f"/rules/versions/{version.id}", status_code=303)


@router.post("/rules/versions/{version_id}/decide")
def decide_version(
    request: Request,
    version_id: int,
    user: OfficerUser,
    session: SessionDep,
    decision: str = Form(...),
    note: str = Form(""),
) -> Response:
    """Approve (record the review and publish) or reject a waiting version."""
    if decision == "approve":
        workflow.approve(session, version_id, user, note)
    elif decision == "reject":
        workflow.reject(session, version_id, user, note)
    else:
        raise HTTPException(status_code=422, detail="decision must be approve or reject")
    return RedirectResponse(f"/rules/versions/{version_id}", status_code=303)


@router.post("/rules/{rule_id}/withdraw")
def withdraw_rule(
    request: Request,
    rule_id: str,
    user: OfficerUser,
    session: SessionDep,
    reason: str = Form(""),
) -> Response:
    """Withdraw a published rule (its department or an administrator, with a reason)."""
    version = workflow.withdraw(session, rule_id, user, reason)
    return RedirectResponse(f"/rules/versions/{version.id}", status_code=303)


@router.get("/rules/{rule_id}")
def rule_page(
    request: Request,
    rule_id: str,
    user: OfficerUser,
    session: SessionDep,
    on: str | None = None,
) -> Response:
    """A rule: its legal basis linked to the article, conditions, and who fits it."""
    report = service.reverse_query(session, rule_id, _day(on), region_prefix=user.region_prefix)
    version = next(v for v in service.published_versions(session) if v.rule_id == rule_id)
    rule = service.published_rule(session, rule_id)
    links = [(b, _article_url(session, b.doc_number, b.article_no)) for b in rule.doc.legal_basis]
    return render(
        request, "rules/rule.html", version=version, rule=rule, report=report, links=links
    )


@router.get("/api/v1/matching/explain/{credit_code}/{rule_id}")
def api_explain(
    credit_code: str,
    rule_id: str,
    user: CurrentUser,
    session: SessionDep,
    on: str | None = None,
) -> JSONResponse:
    """result (eligible | ineligible | unknown), reasons, missing, near_miss for one enterprise × rule."""
    code = credit_code.upper()
    ensure_enterprise_access(session, user, code)
    exp = service.explain(session, code, rule_id, _day(on))
    return JSONResponse(exp.to_json())


@router.get("/api/v1/rules/{rule_id}/enterprises")
def api_reverse(
    rule_id: str,
    user: OfficerUser,
    session: SessionDep,
    on: str | None = None,
) -> JSONResponse:
    """Eligible and unknown enterprises of a rule, with counts by region, industry and size class."""
    r = service.reverse_query(session, rule_id, _day(on), region_prefix=user.region_prefix)

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
    user: OfficerUser,
    session: SessionDep,
    on: str | None = None,
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
def matching_home(user: CurrentUser) -> Response:
    """Send each role to its matching page."""
    target = "/matching/mine" if user.role == Role.enterprise else "/rules"
    return RedirectResponse(target, status_code=303)
