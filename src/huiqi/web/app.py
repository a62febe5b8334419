"""The FastAPI application factory."""

from __future__ import annotations

import gc
import logging
import math
import secrets
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio.to_thread
from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from fastapi.routing import APIRoute
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import ASGIApp
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

import huiqi
from huiqi.core.config import Settings, get_settings
from huiqi.core.db import DatabaseBusy, configure, engine_options, make_engine, read_session
from huiqi.core.errors import DomainError
from huiqi.policy.cache import STALE_GRACE_SECONDS
from huiqi.web import renew
from huiqi.web.admission import Admission
from huiqi.web.assets import StaticAssets
from huiqi.web.content_types import ApiContentTypes
from huiqi.web.csrf import CSRF_COOKIE, CsrfAndSizeMiddleware
from huiqi.web.deps import LoginRequired, render, templates
from huiqi.web.errors import domain_error_response, validation_error_response
from huiqi.web.headers import SecurityHeadersMiddleware
from huiqi.web.i18n import LANG_COOKIE
from huiqi.web.kept import stamps as kept_stamps
from huiqi.web.routing import RouteTable, flat_routes
from huiqi.web.sessions import users as session_users
from huiqi.web.shell import RequestShell
from huiqi.web.transaction import CommitBeforeResponse
from huiqi.wiring import install as install_wiring

log = logging.getLogger("huiqi.web")
STATIC_DIR = Path(__file__).parent / "static"

ERROR_TEXT = {
    400: ("请求有误", "Bad request"),
    401: ("请先登录", "Please log in"),
    403: ("无权访问", "Access denied"),
    404: ("页面不存在", "Page not found"),
    405: ("不支持的请求方式", "Method not allowed"),
    409: ("与记录不一致,已拒绝", "Refused: does not match the record"),
    413: ("上传内容过大", "Upload too large"),
    422: ("提交的数据有误", "Invalid input"),
    429: ("尝试过于频繁", "Too many attempts"),
    500: ("服务器内部错误", "Internal server error"),
    503: ("系统繁忙,请稍后重试", "Busy, please try again shortly"),
}
RETRY_AFTER_SECONDS = "2"


def _is_overload(exc: Exception) -> bool:
    """A database that is busy (pool empty, SQLite write lock taken), not broken."""
    if isinstance(exc, DatabaseBusy | PoolTimeout):
        return True
    if isinstance(exc, OperationalError):
        text_ = str(exc.orig)
        return "database is locked" in text_ or "database is busy" in text_
    return False


class HealthProbe:
    """Whether the database answers, asked at most once every `interval` seconds.

    Load balancers ask /healthz often and from several places; one `SELECT 1` per interval
    tells them as much as one per call, without taking a connection from the pages each time.
    Once an answer is `interval` seconds old the database is asked again in the background
    (huiqi.web.renew) and callers get the previous answer meanwhile; an answer older than
    `interval` + STALE_GRACE_SECONDS (the database not answering) is not given: the caller
    waits for its own.
    """

    def __init__(self, interval: float) -> None:
        """Ask the database again once an answer is `interval` seconds old (0: every time, waited for)."""
        self.interval = interval
        self._asked = -math.inf
        self._answered = -math.inf
        self._error: str | None = None

    async def database_error(self) -> str | None:
        """None when the database answered, else the name of the error it gave."""
        now = time.monotonic()
        if self.interval <= 0 or now - self._answered >= self.interval + STALE_GRACE_SECONDS:
            self._asked = now
            self._keep(await anyio.to_thread.run_sync(self._ask))
        elif now - self._asked >= self.interval:
            self._asked = now  # callers meanwhile use the previous answer
            renew.later("healthz", self._ask_and_keep)
        return self._error

    def _keep(self, error: str | None) -> None:
        self._error = error
        self._answered = time.monotonic()

    def _ask_and_keep(self) -> None:
        self._keep(self._ask())

    @staticmethod
    def _ask() -> str | None:
        try:
            with read_session() as session:
                session.execute(text("SELECT 1"))
        except Exception as exc:  # report, don't crash, when the database is down
            return type(exc).__name__
        return None


def settle() -> None:
    """Load the word segmenter's dictionary, then exempt what start-up made from the collector.

    The code, the routes, the templates and the dictionary live as long as the process; left
    to the cyclic garbage collector, each of its full passes walked them all again — a pause
    of about 100 ms of the event loop every two seconds under load. Frozen, a pass takes 2 ms.
    """
    from huiqi.policy.search import warm

    warm()
    gc.collect()
    gc.freeze()


def _routers() -> list[APIRouter]:
    """Every domain's router."""
    from huiqi.accounts.routes import router as accounts_router
    from huiqi.enterprise.routes import router as enterprise_router
    from huiqi.finance.routes import router as finance_router
    from huiqi.funds.api_routes import router as funds_api_router
    from huiqi.funds.officer_routes import router as funds_officer_router
    from huiqi.funds.routes import router as funds_router
    from huiqi.grants.routes import router as grants_router
    from huiqi.matching.routes import router as matching_router
    from huiqi.notify.routes import router as notify_router
    from huiqi.policy.routes import router as policy_router
    from huiqi.web.pages import router as pages_router

    return [
        pages_router,
        accounts_router,
        policy_router,
        enterprise_router,
        matching_router,
        notify_router,
        grants_router,
        finance_router,
        funds_router,
        funds_api_router,
        funds_officer_router,
    ]


def _wants_json(request: Request) -> bool:
    """API paths and JSON clients get JSON errors; browsers get pages."""
    return (
        request.url.path.startswith("/api/")
        or "application/json" in request.headers.get("accept", "").split(",")[0]
    )


class HuiqiApp(FastAPI):
    """The FastAPI application whose outermost layer adds the security headers.

    It wraps even Starlette's server-error middleware, so a 500 page carries them too.
    """

    security_hsts: bool = False

    def build_middleware_stack(self) -> ASGIApp:
        """The usual stack inside the security-headers middleware."""
        return SecurityHeadersMiddleware(super().build_middleware_stack(), hsts=self.security_hsts)


DOCS_PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<title>huiqi 惠企 API 文档 / API docs</title>
<link rel="stylesheet" href="/static/vendor/swagger-ui/swagger-ui.css">
<script src="/static/vendor/swagger-ui/swagger-ui-bundle.js" defer></script>
<script src="/static/js/api-docs.js" defer></script>
</head><body><div id="swagger-ui" data-openapi-url="/api/v1/openapi.json"></div></body></html>
"""


def create_app(settings: Settings | None = None, *, configure_db: bool = True) -> FastAPI:
    """Build the web application for the given (or process-wide) settings.

    Tests pass configure_db=False after installing a session factory bound to their transaction.
    """
    settings = settings or get_settings()
    settings.check_safe()
    install_wiring()
    if configure_db:
        configure(make_engine(settings.effective_database_url, **engine_options(settings)))

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        """Size the threadpool to the connection pool; record API-token use in batches."""
        # A worker thread without a connection would only wait for one, so there are as
        # many threads as connections; beyond that requests queue on the event loop.
        limiter = anyio.to_thread.current_default_thread_limiter()
        limiter.total_tokens = settings.db_pool_size + settings.db_max_overflow
        flusher = None
        if configure_db:
            from huiqi.accounts.usage import start_flusher

            flusher = start_flusher(settings.token_usage_flush_seconds)
        if settings.env != "test":
            # The word segmenter loads its dictionary on first use; do it now, beside start-up.
            threading.Thread(target=settle, name="warm-search", daemon=True).start()
        yield
        await renew.drain(settings.shutdown_timeout_seconds)
        if flusher is not None:
            thread, stop = flusher
            stop.set()
            await anyio.to_thread.run_sync(thread.join, 5.0)

    app = HuiqiApp(
        lifespan=lifespan,
        title="huiqi 惠企 API",
        version=huiqi.__version__,
        description="惠企政策精准推送与免申即享平台 / SME policy matching and no-application benefits.",
        openapi_url="/api/v1/openapi.json",
        # The docs page below loads Swagger UI from the vendored copy, not from a public CDN.
        docs_url=None,
        redoc_url=None,
    )
    app.security_hsts = settings.cookie_secure
    app.state.settings = settings
    from huiqi.policy import cache as policy_cache

    policy_cache.stamps.ttl = settings.page_stamp_seconds
    session_users.ttl = settings.session_cache_seconds
    kept_stamps.ttl = settings.page_stamp_seconds

    probe = HealthProbe(settings.page_stamp_seconds)

    # first in the routing table: load balancers ask it most often
    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> JSONResponse:
        """Liveness and database reachability (the database is asked at most once per interval)."""
        error = await probe.database_error()
        if error is None:
            return JSONResponse({"status": "ok", "database": "ok", "version": huiqi.__version__})
        return JSONResponse({"status": "error", "database": error}, status_code=503)

    assets = StaticAssets(STATIC_DIR)
    app.mount("/static", assets, name="static")
    templates.env.globals["static_url"] = assets.url
    api_routes: list[APIRoute] = []
    routers = _routers()
    for router in routers:
        # The OpenAPI document describes the JSON API only; pages are for browsers.
        for route in router.routes:
            if isinstance(route, APIRoute) and not route.path.startswith("/api/"):
                route.include_in_schema = False
            elif isinstance(route, APIRoute):
                api_routes.append(route)
        app.include_router(router)
    # In front of the included routers: the same routes, found by their first path segment.
    first = next(i for i, r in enumerate(app.router.routes) if getattr(r, "original_router", None))
    app.router.routes.insert(first, RouteTable(flat_routes(routers)))

    # The last added runs first. Bodies are read (and checked) before a request queues for a
    # working slot, so a client that sends its body slowly holds only its own connection.
    app.add_middleware(RequestShell, cookie_secure=settings.cookie_secure)
    app.add_middleware(CommitBeforeResponse)
    app.add_middleware(
        Admission,
        limit=settings.db_pool_size + settings.db_max_overflow,
        timeout=settings.queue_timeout_seconds,
        max_waiting=settings.queue_max_waiting,
        retry_after=int(RETRY_AFTER_SECONDS),
    )
    app.add_middleware(
        CsrfAndSizeMiddleware,
        secret_key=settings.secret_key,
        max_body=settings.max_upload_bytes,
    )
    app.add_middleware(ApiContentTypes, routes=api_routes)
    if settings.trusted_proxies:
        # Only these peers may say who the client is; anyone else's X-Forwarded-For is ignored.
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=list(settings.trusted_proxies))

    def error_page(request: Request, status: int, detail: str | None = None) -> Response:
        zh, en = ERROR_TEXT.get(status, ERROR_TEXT[500])
        if _wants_json(request):
            return JSONResponse({"detail": detail or en}, status_code=status)
        if not hasattr(request.state, "csrf_nonce"):
            request.state.csrf_nonce = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(24)
        return render(
            request, "error.html", status_code=status, status=status, zh=zh, en=en, detail=detail
        )

    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, exc: LoginRequired) -> Response:
        if _wants_json(request):
            return JSONResponse(
                {"detail": "authentication required"},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        from urllib.parse import quote

        return RedirectResponse(f"/login?next={quote(target)}", status_code=303)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        detail = exc.detail if isinstance(exc.detail, str) else None
        response = error_page(request, exc.status_code, detail)
        for key, value in (exc.headers or {}).items():
            response.headers[key] = value
        return response

    @app.exception_handler(DomainError)
    async def domain_error(request: Request, exc: DomainError) -> Response:
        return domain_error_response(request, exc, _wants_json(request), error_page)

    @app.exception_handler(RequestValidationError)
    async def invalid_input(request: Request, exc: RequestValidationError) -> Response:
        return validation_error_response(request, exc, _wants_json(request), error_page)

    def busy(request: Request, exc: Exception) -> Response:
        log.warning("overloaded on %s: %s", request.url.path, exc)
        # the overload page must not ask the busy database who the visitor is
        request.state.viewer = getattr(request.state, "viewer", None)
        response = error_page(request, 503)
        response.headers["Retry-After"] = RETRY_AFTER_SECONDS
        return response

    for overload in (DatabaseBusy, PoolTimeout, OperationalError):

        @app.exception_handler(overload)
        async def overloaded(request: Request, exc: Exception) -> Response:
            if _is_overload(exc):
                return busy(request, exc)
            log.exception("database error on %s", request.url.path)
            return error_page(request, 500)

    @app.exception_handler(Exception)
    async def server_error(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s", request.url.path)
        return error_page(request, 500)

    @app.get("/api/v1/docs", include_in_schema=False)
    def api_docs() -> HTMLResponse:
        """The interactive API documentation (Swagger UI, vendored)."""
        return HTMLResponse(DOCS_PAGE)

    @app.get("/lang/{code}", include_in_schema=False)
    def switch_lang(code: str, next: str = "/") -> Response:
        """Switch the interface language and return to the page."""
        target = next if next.startswith("/") and not next.startswith("//") else "/"
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            LANG_COOKIE, code if code in ("zh", "en") else "zh", samesite="lax", max_age=365 * 86400
        )
        return response

    return app
