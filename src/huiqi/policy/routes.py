"""Policy library pages (/policy/…) and JSON API (/api/v1/policy/…)."""

from __future__ import annotations

import datetime as dt
import functools
import re
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, HTTPException, Query, Request, UploadFile
from fastapi.responses import JSONResponse, RedirectResponse
from markupsafe import Markup
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from huiqi.accounts.models import Role, User
from huiqi.accounts.service import audit
from huiqi.core.bounds import INT64_MAX, MAX_PAGE, Int64
from huiqi.policy import cache, export, interpretation, repository, search, service
from huiqi.policy.departments import default_registry
from huiqi.policy.ingest import MAX_BYTES, IngestError, SourceText
from huiqi.policy.models import STATUS_LABELS, Policy, PolicyArticle, PolicyStatus
from huiqi.policy.paging import API_DEFAULT_LIMIT, API_MAX_LIMIT, Pager
from huiqi.policy.review import source_lines
from huiqi.policy.schemas import ParsedDocument
from huiqi.policy.search import highlight
from huiqi.policy.topics import topic_labels
from huiqi.policy.worker import limits_from_settings, parse_upload
from huiqi.web import forms, renew
from huiqi.web.deps import (
    KeptHtml,
    OfficerUser,
    OptionalUser,
    SessionDep,
    Viewer,
    is_anonymous,
    kept_response,
    optional_user,
    reading_session,
    render,
    render_kept,
    render_public,
    templates,
)
from huiqi.web.i18n import pick, request_lang
from huiqi.web.kept import pages as user_pages
from huiqi.web.kept import remembered_user

router = APIRouter()
ACCEPT = ".txt,.html,.htm,.docx,.pdf"


def _is_staff(user: User | None) -> bool:
    return user is not None and user.role in (Role.officer, Role.admin)


def _visible_policy(session: Session, policy_id: Int64, user: User | None) -> Policy:
    """A policy the visitor may see: drafts only for officers and administrators."""
    policy = repository.get_policy(session, policy_id)
    if policy is None or (policy.status == PolicyStatus.draft and not _is_staff(user)):
        raise HTTPException(status_code=404, detail="no such policy")
    return policy


def _parse_day(raw: str | None) -> dt.date | None:
    if not raw:
        return None
    return forms.day(raw, "date", ("日期", "date"))


def mark_quantities(text: str, quantities: list[dict[str, Any]]) -> Markup:
    """Escape article text and highlight its quantitative commitments."""
    return highlight(text, {q["text"] for q in quantities}, css_class="qty")


def _upload_limit(request: Request) -> int:
    return min(MAX_BYTES, request.app.state.settings.max_upload_bytes)


async def _parse_upload(
    request: Request,
    session: Session | None,
    data: bytes,
    name: str,
    task_level: str | None = None,
) -> tuple[SourceText, ParsedDocument]:
    """Read and parse an upload in a bounded worker process, off the event loop."""
    aliases = repository.department_aliases(session) if session is not None else {}
    return await parse_upload(
        data,
        name,
        max_bytes=_upload_limit(request),
        limits=limits_from_settings(request.app.state.settings),
        aliases=aliases,
        task_level=task_level,
    )


async def _read_upload(request: Request, upload: UploadFile) -> tuple[bytes, str]:
    """The uploaded bytes, refusing more than the limit without reading it all."""
    limit = _upload_limit(request)
    name = upload.filename or "upload"
    data = await upload.read(limit + 1)
    if len(data) > limit:
        raise IngestError(name, f"the file is too large (more than {limit:,} bytes)")
    return data, name


def _policy_json(policy: Policy) -> dict[str, Any]:
    return {
        "id": policy.id,
        "title": policy.title,
        "doc_number": policy.doc_number,
        "issuer": policy.issuer,
        "status": policy.status,
        "issued_on": policy.issued_on.isoformat() if policy.issued_on else None,
        "published_on": policy.published_on.isoformat() if policy.published_on else None,
        "valid_from": policy.valid_from.isoformat() if policy.valid_from else None,
        "valid_to": policy.valid_to.isoformat() if policy.valid_to else None,
        "url": f"/policy/{policy.id}",
    }


def _article_json(article: PolicyArticle) -> dict[str, Any]:
    return {
        "id": article.id,
        "number": article.number,
        "label": article.label,
        "title": article.title,
        "text": article.text,
        "departments": article.departments,
        "implementers": article.implementers,
        "quantities": article.quantities,
        "topics": article.topic_list,
        "corrected": article.corrected,
        "url": f"/policy/{article.policy_id}#art-{article.number}",
    }


# -- public pages ---------------------------------------------------------------------------------


@router.get("/policy", include_in_schema=False)
def policy_list_page(
    request: Request,
    session: SessionDep,
    user: OptionalUser,
    q: str = "",
    department: str = "",
    topic: str = "",
    status: str = "published",
    valid_on: str = "",
    page: Annotated[int, Query(ge=1, le=MAX_PAGE, title="页码 / Page")] = 1,
) -> Response:
    """List and search policies (public: published only), a page at a time."""
    if not _is_staff(user) or status not in {s.value for s in PolicyStatus} | {"any"}:
        status = "published"
    day = _parse_day(valid_on)
    status_filter = None if status == "any" else status
    params = [
        ("q", q),
        ("department", department),
        ("topic", topic),
        ("status", "" if status == "published" else status),
        ("valid_on", valid_on),
    ]
    hits: list[search.SearchHit] = []
    policies: list[Policy] = []
    if q.strip():
        ranked = search.ranked_hits(
            session,
            q,
            department=department or None,
            topic=topic or None,
            status=status_filter,
            valid_on=day,
        )
        pager = Pager.build(page, len(ranked), "/policy", params)
        hits = ranked[pager.offset : pager.offset + pager.size]
    else:
        total = repository.count_policies(session, status=status_filter, valid_on=day)
        pager = Pager.build(page, total, "/policy", params)
        policies = repository.list_policies(
            session, status=status_filter, valid_on=day, limit=pager.size, offset=pager.offset
        )
    return render(
        request,
        "policy/list.html",
        q=q,
        department=department,
        topic=topic,
        status=status,
        valid_on=valid_on,
        hits=hits,
        policies=policies,
        pager=pager,
        topics=topic_labels(),
        departments=default_registry().departments,
        status_labels=STATUS_LABELS,
        staff=_is_staff(user),
    )


@router.get("/policy/upload", include_in_schema=False)
def upload_page(request: Request, user: OfficerUser) -> Response:
    """The officer's upload form."""
    return render(
        request, "policy/upload.html", error=None, accept=ACCEPT, limit=_upload_limit(request)
    )


@router.post("/policy/upload", include_in_schema=False)
async def upload_submit(
    request: Request,
    file: Annotated[UploadFile, File()],
    session: SessionDep,
    user: OfficerUser,
) -> Response:
    """Import an uploaded file as a draft (or a new version) and open its review page."""
    try:
        data, name = await _read_upload(request, file)
        source, document = await _parse_upload(request, session, data, name)
        result = service.import_parsed(session, document, source, user_id=user.id)
    except (IngestError, service.PolicyError) as exc:
        return render(
            request,
            "policy/upload.html",
            status_code=400,
            error=exc.localized(request_lang(request)),
            accept=ACCEPT,
            limit=_upload_limit(request),
        )
    return RedirectResponse(
        f"/policy/{result.policy.id}/review?outcome={result.outcome}", status_code=303
    )


@router.get("/policy/department/{name}", include_in_schema=False)
def department_page(
    request: Request,
    name: str,
    session: SessionDep,
    unmapped: bool = False,
    code: str | None = Query(default=None, max_length=32),
) -> Response:
    """Everything a department must do across published policies.

    ``unmapped`` lists the tasks of a name as written that the registry could not resolve;
    ``code`` names the department exactly (another province's or a central one).
    """
    registry = service.registry_for(session)
    dept = registry.by_code(code) if code else None if unmapped else registry.lookup(name)
    rows = service.department_task_rows(session, name, unmapped=unmapped, code=code)
    return render(
        request,
        "policy/department.html",
        dept_name=dept.name if dept else name.strip(),
        dept=dept,
        rows=rows,
    )


def _not_modified(request: Request, tag: str, last_modified: str | None = None) -> Response | None:
    """A 304 when the client's copy is current (If-None-Match), else None."""
    if cache.matches(request.headers.get("if-none-match"), tag):
        return Response(status_code=304, headers=_validators(tag, last_modified))
    return None


def _validators(tag: str, last_modified: str | None) -> dict[str, str]:
    """ETag and Last-Modified; the client must ask again each time (the answer is cheap)."""
    headers = {"ETag": tag, "Cache-Control": "private, no-cache"}
    if last_modified:
        headers["Last-Modified"] = _http_date(last_modified)
    return headers


@functools.lru_cache(maxsize=1024)
def _http_date(iso: str) -> str:
    from email.utils import format_datetime

    moment = dt.datetime.fromisoformat(iso)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return format_datetime(moment.astimezone(dt.UTC), usegmt=True)


def _stamp_or_404(session: Session, policy_id: Int64, user: User | None) -> tuple[str, str, int]:
    """The cache stamp of a policy the visitor may see (drafts only for officers)."""
    stamp = cache.policy_stamp(session, policy_id)
    if stamp is None or (stamp[0] == PolicyStatus.draft and not _is_staff(user)):
        raise HTTPException(status_code=404, detail="no such policy")
    return stamp


@router.get("/policy/{policy_id}", include_in_schema=False)
async def policy_page(request: Request, policy_id: Int64) -> Response:
    """A policy with its sections, articles, departments and highlighted numbers.

    The article part is rendered once per version stamp and language (huiqi.policy.cache);
    the page around it (navigation, CSRF token) belongs to the visitor, so the ETag covers
    both and a browser revalidating its own copy gets a 304. Visitors who are not logged in
    all see the same page: while its stamp is fresh it is answered from memory, on the event
    loop, without a query or a template. So is a logged-in user's page, kept per user
    (huiqi.web.kept), while the user behind the cookie is remembered too.
    """
    if is_anonymous(request):
        stamp, renew_stamp = cache.stamps.lookup(("policy", policy_id))
        lang = request_lang(request)
        kept = cache.public_pages.peek(("policy", policy_id, stamp, lang)) if stamp else None
        if stamp is not None and kept is not None:
            if renew_stamp:  # answered from the kept page; the stamp is read meanwhile
                renew.later(("policy", policy_id), _read_policy_stamp, policy_id)
            return _public_policy(request, policy_id, stamp, lang, kept)
    else:
        user = remembered_user(request)
        stamp = cache.stamps.get(("policy", policy_id)) if user is not None else None
        if user is not None and stamp is not None:
            viewer = Viewer.of(user)
            lang = request_lang(request)
            # kept only once this viewer was shown the policy at this stamp (drafts: staff)
            kept = user_pages.peek(_user_page_key(policy_id, viewer, stamp, lang))
            if kept is not None:
                request.state.viewer = viewer
                return _users_policy(request, policy_id, stamp, lang, viewer, kept)
    return await run_in_threadpool(_policy_page, request, policy_id)


def _read_policy_stamp(policy_id: int) -> None:
    """Read a policy's stamp again (in the background); a policy gone has its stamp forgotten."""
    with reading_session() as session:
        if cache.policy_stamp(session, policy_id) is None:
            cache.stamps.forget(("policy", policy_id))


def _user_page_key(
    policy_id: int, viewer: Viewer, stamp: tuple[str, str, int], lang: str
) -> tuple[object, ...]:
    """A logged-in user's policy page in the per-user page cache."""
    return ("policy/detail.html", policy_id, viewer, stamp, lang)


def _users_policy(
    request: Request,
    policy_id: int,
    stamp: tuple[str, str, int],
    lang: str,
    viewer: Viewer,
    html: KeptHtml,
) -> Response:
    """A logged-in user's kept policy page, or 304 when their copy is current."""
    staff = viewer.role in (Role.officer, Role.admin)
    nonce = request.state.csrf_nonce
    tag = cache.etag("policy", policy_id, stamp, lang, staff, viewer.id, nonce)
    unchanged = _not_modified(request, tag, stamp[1])
    if unchanged is not None:
        return unchanged
    return kept_response(request, html, _validators(tag, stamp[1]))


def _public_policy(
    request: Request, policy_id: int, stamp: tuple[str, str, int], lang: str, html: KeptHtml
) -> Response:
    """The kept anonymous page of a policy, or 304 when the visitor's copy is current."""
    tag = cache.etag("policy", policy_id, stamp, lang, False, None, request.state.csrf_nonce)
    unchanged = _not_modified(request, tag, stamp[1])
    if unchanged is not None:
        return unchanged
    return kept_response(request, html, _validators(tag, stamp[1]))


def _policy_page(request: Request, policy_id: int) -> Response:
    """The policy page read from the database (a visitor's first view, or a logged-in user)."""
    with reading_session() as session:
        user = optional_user(request, session)
        stamp = _stamp_or_404(session, policy_id, user)
        lang = request_lang(request)
        staff = _is_staff(user)

        def make() -> tuple[str, Markup]:
            policy = _visible_policy(session, policy_id, user)
            body = Markup(
                templates.get_template("policy/detail_body.html").render(
                    policy=policy,
                    mark=mark_quantities,
                    topics=topic_labels(),
                    status_labels=STATUS_LABELS,
                    staff=staff,
                    t=lambda zh, en: pick(lang, zh, en),
                )
            )
            return policy.title, body

        title, body = cache.pages.get_or_make(("detail", policy_id, stamp, lang, staff), make)
    if user is None:  # never a draft: _stamp_or_404 refused it
        html = cache.public_pages.get_or_make(
            ("policy", policy_id, stamp, lang),
            lambda: render_public(request, "policy/detail.html", title=title, body=body),
        )
        return _public_policy(request, policy_id, stamp, lang, html)
    viewer: Viewer = request.state.viewer  # optional_user put it there
    page = user_pages.get_or_make(
        _user_page_key(policy_id, viewer, stamp, lang),
        lambda: render_kept(request, "policy/detail.html", title=title, body=body),
    )
    return _users_policy(request, policy_id, stamp, lang, viewer, page)


@router.get("/policy/{policy_id}/tasks.{fmt}", include_in_schema=False)
def policy_tasks_file(
    policy_id: Int64,
    fmt: str,
    session: SessionDep,
    user: OptionalUser,
) -> Response:
    """Download the task breakdown as XLSX, CSV or JSON (made once per version stamp)."""
    if fmt not in ("xlsx", "csv", "json"):
        raise HTTPException(status_code=404, detail="use .xlsx, .csv or .json")
    stamp = _stamp_or_404(session, policy_id, user)

    def make() -> tuple[bytes, str]:
        policy = _visible_policy(session, policy_id, user)
        rows = service.task_rows(session, policy)
        if fmt == "xlsx":
            return (
                export.to_xlsx(rows, title=policy.title),
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            )
        if fmt == "csv":
            return export.to_csv(rows), "text/csv; charset=utf-8"
        return export.to_json(rows), "application/json"

    body, media = cache.tasks.get_or_make(("file", policy_id, stamp, fmt), make)
    return Response(
        body,
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="policy-{policy_id}-tasks.{fmt}"'},
    )


# -- officer review -------------------------------------------------------------------------------


def _review(
    request: Request,
    session: Session,
    policy: Policy,
    *,
    outcome: str = "",
    status_code: int = 200,
    status_error: str | None = None,
    article_errors: dict[int, str] | None = None,
    drafts: dict[int, dict[str, str]] | None = None,
) -> Response:
    """The review page; on a refused correction it keeps what the officer typed, beside the reason."""
    version = policy.current_version
    unknown = repository.unknown_department_names(session, policy.id)
    return render(
        request,
        "policy/review.html",
        status_code=status_code,
        policy=policy,
        version=version,
        outcome=outcome,
        mark=mark_quantities,
        status_labels=STATUS_LABELS,
        registry=default_registry(),
        unknown=unknown,
        map_ids={name: f"map-{i}" for i, name in enumerate(unknown, start=1)},
        source=source_lines(
            version.source_text if version else "", ((a.number, a.label) for a in policy.articles)
        ),
        quantity_texts={q["text"] for a in policy.articles for q in a.quantities},
        status_error=status_error,
        article_errors=article_errors or {},
        drafts=drafts or {},
    )


@router.get("/policy/{policy_id}/review", include_in_schema=False)
def review_page(
    request: Request,
    policy_id: Int64,
    session: SessionDep,
    user: OfficerUser,
    outcome: str = "",
) -> Response:
    """The source text beside the parsed structure, with correction forms and publication controls."""
    return _review(request, session, _visible_policy(session, policy_id, user), outcome=outcome)


@router.post("/policy/{policy_id}/articles/{article_id}", include_in_schema=False)
def correct_article_submit(
    request: Request,
    policy_id: Int64,
    article_id: Int64,
    session: SessionDep,
    user: OfficerUser,
    title: Annotated[str, Form()] = "",
    text: Annotated[str, Form()] = "",
    departments: Annotated[str, Form()] = "",
    implementers: Annotated[str, Form()] = "",
) -> Response:
    """Save an officer's correction of one article."""
    policy = _visible_policy(session, policy_id, user)
    article = session.get(PolicyArticle, article_id)
    if article is None or article.policy_id != policy.id:
        raise HTTPException(status_code=404, detail="no such article")
    split = re.compile(r"[、,，;；\n]+")
    try:
        service.correct_article(
            session,
            article,
            title=title,
            text=text,
            departments=[d for d in split.split(departments) if d.strip()],
            implementers=[i.strip() for i in split.split(implementers) if i.strip()],
        )
    except service.PolicyError as exc:
        session.rollback()
        typed = {
            "title": title,
            "text": text,
            "departments": departments,
            "implementers": implementers,
        }
        return _review(
            request,
            session,
            _visible_policy(session, policy_id, user),
            status_code=422,
            article_errors={article_id: exc.localized(request_lang(request))},
            drafts={article_id: typed},
        )
    return RedirectResponse(f"/policy/{policy.id}/review#art-{article.number}", status_code=303)


def _interpretations_page(
    request: Request,
    policy: Policy,
    *,
    status_code: int = 200,
    error: interpretation.InterpretationError | None = None,
    typed: dict[str, str] | None = None,
) -> Response:
    """The officer's page of a policy's 解读, with the form (keeping what was typed on an error)."""
    return render(
        request,
        "policy/interpretations.html",
        status_code=status_code,
        policy=policy,
        articles=interpretation.article_choices(policy),
        error=error.localized(request_lang(request)) if error else None,
        error_field=error.field if error else None,
        typed=typed or {},
    )


@router.get("/policy/{policy_id}/interpretations", include_in_schema=False)
def interpretations_page(
    request: Request,
    policy_id: Int64,
    session: SessionDep,
    user: OfficerUser,
) -> Response:
    """A policy's 解读: those attached, and a form to attach a text or link to it or an article."""
    return _interpretations_page(request, _visible_policy(session, policy_id, user))


@router.post("/policy/{policy_id}/interpretations", include_in_schema=False)
def interpretation_submit(
    request: Request,
    policy_id: Int64,
    session: SessionDep,
    user: OfficerUser,
    title: Annotated[str, Form(title="标题 / Title")] = "",
    article: Annotated[str, Form(title="条款 / Article")] = "",
    body: Annotated[str, Form(title="解读内容 / Text")] = "",
    url: Annotated[str, Form(title="解读原文链接 / Link")] = "",
    how_to_claim: Annotated[str, Form(title="如何享受 / How to claim")] = "",
) -> Response:
    """Attach an interpretation; the policy page shows it at once (its cache stamp moves)."""
    policy = _visible_policy(session, policy_id, user)
    typed = {
        "title": title,
        "article": article,
        "body": body,
        "url": url,
        "how_to_claim": how_to_claim,
    }
    try:
        number = int(article) if article.strip() else None
    except ValueError:
        number = -1  # no article has it: refused below with the field named
    try:
        item = interpretation.add(
            session,
            policy,
            article_number=number,
            title=title,
            body=body,
            url=url,
            how_to_claim=how_to_claim,
            user_id=user.id,
        )
    except interpretation.InterpretationError as exc:
        session.rollback()
        return _interpretations_page(
            request,
            _visible_policy(session, policy_id, user),
            status_code=422,
            error=exc,
            typed=typed,
        )
    audit(
        session,
        "policy.interpretation_added",
        user=user,
        actor=user,
        policy_id=policy.id,
        article_number=number,
        title=item.title,
    )
    anchor = f"#interp-{item.id}"
    return RedirectResponse(f"/policy/{policy.id}{anchor}", status_code=303)


@router.post(
    "/policy/{policy_id}/interpretations/{interpretation_id}/delete", include_in_schema=False
)
def interpretation_delete(
    policy_id: Int64,
    interpretation_id: Int64,
    session: SessionDep,
    user: OfficerUser,
) -> Response:
    """Take an interpretation off the policy."""
    policy = _visible_policy(session, policy_id, user)
    interpretation.remove(session, policy, interpretation_id)
    audit(
        session,
        "policy.interpretation_removed",
        user=user,
        actor=user,
        policy_id=policy.id,
    )
    return RedirectResponse(f"/policy/{policy.id}/interpretations", status_code=303)


@router.post("/policy/{policy_id}/status", include_in_schema=False)
def status_submit(
    request: Request,
    policy_id: Int64,
    status: Annotated[str, Form()],
    session: SessionDep,
    user: OfficerUser,
    valid_from: Annotated[str, Form()] = "",
    valid_to: Annotated[str, Form()] = "",
) -> Response:
    """Publish, repeal or return a policy to draft, and set its validity dates."""
    policy = _visible_policy(session, policy_id, user)
    try:
        service.set_validity(session, policy, _parse_day(valid_from), _parse_day(valid_to))
        service.set_status(session, policy, status)
    except service.PolicyError as exc:
        session.rollback()
        return _review(
            request,
            session,
            _visible_policy(session, policy_id, user),
            status_code=422,
            status_error=exc.localized(request_lang(request)),
        )
    return RedirectResponse(f"/policy/{policy.id}", status_code=303)


@router.post("/policy/departments/map", include_in_schema=False)
def map_department_submit(
    alias: Annotated[str, Form()],
    code: Annotated[str, Form()],
    session: SessionDep,
    user: OfficerUser,
    back: Annotated[str, Form()] = "/policy",
) -> Response:
    """Map a department name the registry lacked onto a registered department."""
    service.map_department(session, alias.strip(), code.strip(), user_id=user.id)
    target = back if back.startswith("/") and not back.startswith("//") else "/policy"
    return RedirectResponse(target, status_code=303)


# -- JSON API -------------------------------------------------------------------------------------


ApiLimit = Annotated[
    int,
    Query(
        ge=1, le=API_MAX_LIMIT, title="每页条数 / Rows per page", description="Rows per response."
    ),
]
ApiOffset = Annotated[
    int, Query(ge=0, le=INT64_MAX, title="跳过条数 / Rows to skip", description="Rows to skip.")
]


@router.get("/api/v1/policy/policies", tags=["policy"])
def api_list(
    session: SessionDep,
    user: OptionalUser,
    status: str = "published",
    valid_on: str | None = None,
    limit: ApiLimit = API_DEFAULT_LIMIT,
    offset: ApiOffset = 0,
) -> dict[str, Any]:
    """Policies, newest first, a page at a time (drafts and repealed ones for officers only)."""
    if not _is_staff(user):
        status = "published"
    status_filter = None if status == "any" else status
    day = _parse_day(valid_on)
    policies = repository.list_policies(
        session, status=status_filter, valid_on=day, limit=limit, offset=offset
    )
    return {
        "total": repository.count_policies(session, status=status_filter, valid_on=day),
        "limit": limit,
        "offset": offset,
        "items": [_policy_json(p) for p in policies],
    }


@router.get("/api/v1/policy/policies/{policy_id}", tags=["policy"])
def api_detail(
    policy_id: Int64,
    session: SessionDep,
    user: OptionalUser,
) -> dict[str, Any]:
    """A policy with its sections and articles."""
    policy = _visible_policy(session, policy_id, user)
    data = _policy_json(policy)
    data["warnings"] = policy.warnings
    data["cited_documents"] = policy.cited_documents
    data["sections"] = [
        {
            "number": s.number,
            "label": s.label,
            "title": s.title,
            "articles": [_article_json(a) for a in s.articles],
        }
        for s in policy.sections
    ]
    data["versions"] = [
        {"number": v.number, "created_at": v.created_at.isoformat(), "changes": v.changes}
        for v in policy.versions
    ]
    data["interpretations"] = [
        {
            "id": i.id,
            "article_number": i.article_number,
            "title": i.title,
            "body": i.body,
            "url": i.url,
            "how_to_claim": i.how_to_claim,
            "page": f"/policy/{policy.id}#interp-{i.id}",
        }
        for i in policy.interpretations
    ]
    return data


@router.get("/api/v1/policy/search", tags=["policy"])
async def api_search(
    request: Request,
    q: str,
    department: str | None = None,
    topic: str | None = None,
    valid_on: str | None = None,
    limit: ApiLimit = API_DEFAULT_LIMIT,
    offset: ApiOffset = 0,
) -> Response:
    """Search published policies, a page at a time; snippets carry <mark> around the query words.

    Answers are cached until the library changes (huiqi.policy.cache) and carry an ETag; while
    the library's stamp is fresh a repeated search is answered from memory on the event loop.
    """
    day = _parse_day(valid_on)
    asked = ("search", q, department, topic, day, limit, offset)
    stamp, renew_stamp = cache.stamps.lookup("library")
    kept = cache.searches.peek((*asked, stamp)) if stamp else None
    if kept is not None:
        if renew_stamp:  # answered from memory; the library's stamp is read meanwhile
            renew.later("library", _read_library_stamp)
        return _search_answer(request, (*asked, stamp), kept)
    return await run_in_threadpool(_search, request, asked)


def _read_library_stamp() -> None:
    """Read the library's stamp again (in the background)."""
    with reading_session() as session:
        cache.library_stamp(session)


def _search_answer(request: Request, key: tuple[Any, ...], body: bytes) -> Response:
    tag = cache.etag(*key)
    unchanged = _not_modified(request, tag)
    if unchanged is not None:
        return unchanged
    return Response(body, media_type="application/json", headers=_validators(tag, None))


def _search(request: Request, asked: tuple[Any, ...]) -> Response:
    """Run a search (or find its answer for the library's current stamp) in the database."""
    _kind, q, department, topic, day, limit, offset = asked
    with reading_session() as session:
        key = (*asked, cache.library_stamp(session))

        def make() -> bytes:
            hits, total = search.search_page(
                session,
                q,
                department=department,
                topic=topic,
                valid_on=day,
                limit=limit,
                offset=offset,
            )
            items = [
                {
                    "policy_id": h.policy_id,
                    "policy_title": h.policy_title,
                    "doc_number": h.doc_number,
                    "article_number": h.article_number,
                    "article_label": h.article_label,
                    "article_title": h.article_title,
                    "snippet_html": str(h.snippet_html),
                    "url": h.url,
                }
                for h in hits
            ]
            answer = {"total": total, "limit": limit, "offset": offset, "items": items}
            return bytes(JSONResponse(answer).body)

        body = cache.searches.get_or_make(key, make)
    return _search_answer(request, key, body)


@router.get("/api/v1/policy/policies/{policy_id}/tasks", tags=["policy"])
def api_tasks(
    policy_id: Int64,
    session: SessionDep,
    user: OptionalUser,
) -> list[dict[str, Any]]:
    """The task breakdown of one policy (cached by the policy's stamp)."""
    return _task_rows(session, policy_id, user)


def _task_rows(session: Session, policy_id: Int64, user: User | None) -> list[dict[str, Any]]:
    """The task breakdown rows of a visible policy, made once per version stamp."""
    stamp = _stamp_or_404(session, policy_id, user)
    return cache.tasks.get_or_make(
        ("tasks", policy_id, stamp),
        lambda: export.to_dicts(
            service.task_rows(session, _visible_policy(session, policy_id, user))
        ),
    )


@router.get("/api/v1/policy/departments/{name}/tasks", tags=["policy"])
def api_department_tasks(
    name: str, session: SessionDep, unmapped: bool = False
) -> list[dict[str, Any]]:
    """Everything one department must do across published policies (see the department page)."""
    return export.to_dicts(service.department_task_rows(session, name, unmapped=unmapped))


@router.post("/api/v1/policy/parse", tags=["policy"])
async def api_parse(
    request: Request,
    file: Annotated[UploadFile, File()],
    user: OfficerUser,
    task_level: Annotated[
        str | None,
        Query(
            pattern=r"^(一、|\(一\)|1\.|\(1\)|①|第X章|第X条|leaves)$",
            description='which numbering level carries the tasks ("(一)", "1.", "leaves" …); '
            "by default the level carrying the responsibility notes",
        ),
    ] = None,
) -> Response:
    """Parse an uploaded file and return its structure; nothing is stored."""
    data, name = await _read_upload(request, file)
    _, document = await _parse_upload(request, None, data, name, task_level)
    return JSONResponse(document.model_dump(mode="json"))


@router.post("/api/v1/policy/import", tags=["policy"])
async def api_import(
    request: Request,
    file: Annotated[UploadFile, File()],
    session: SessionDep,
    user: OfficerUser,
    publish: Annotated[bool, Form()] = False,
) -> Response:
    """Import an uploaded file: a new policy, a new version, or unchanged."""
    data, name = await _read_upload(request, file)
    source, document = await _parse_upload(request, session, data, name)
    result = service.import_parsed(session, document, source, publish=publish, user_id=user.id)
    body = _policy_json(result.policy) | {
        "outcome": result.outcome,
        "version": result.version.number,
        "warnings": result.warnings,
        "diff": result.version.diff,
    }
    return JSONResponse(body, status_code=201 if result.outcome == "created" else 200)
