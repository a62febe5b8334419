"""The FastAPI application factory."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from sqlalchemy import text
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

import huiqi
from huiqi.core.config import Settings, get_settings
from huiqi.core.db import configure, make_engine, session_factory
from huiqi.web.csrf import CSRF_COOKIE, CsrfAndSizeMiddleware
from huiqi.web.deps import LoginRequired, render
from huiqi.web.i18n import LANG_COOKIE, request_lang
from huiqi.web.transaction import CommitBeforeResponse

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
}


def _routers() -> list[APIRouter]:
    """Every domain's router."""
    from huiqi.accounts.routes import router as accounts_router
    from huiqi.enterprise.routes import router as enterprise_router
    from huiqi.finance.routes import router as finance_router
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
    ]


def _wants_json(request: Request) -> bool:
    """API paths and JSON clients get JSON errors; browsers get pages."""
    return (
        request.url.path.startswith("/api/")
        or "application/json" in request.headers.get("accept", "").split(",")[0]
    )


def create_app(settings: Settings | None = None, *, configure_db: bool = True) -> FastAPI:
    """Build the web application for the given (or process-wide) settings.

    Tests pass configure_db=False after installing a session factory bound to their transaction.
    """
    settings = settings or get_settings()
    settings.check_safe()
    if configure_db:
        configure(make_engine(settings.effective_database_url))

    app = FastAPI(
        title="huiqi 惠企 API",
        version=huiqi.__version__,
        description="惠企政策精准推送与免申即享平台 / SME policy matching and no-application benefits.",
        openapi_url="/api/v1/openapi.json",
        docs_url="/api/v1/docs",
        redoc_url=None,
    )
    app.state.settings = settings
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    for router in _routers():
        # The OpenAPI document describes the JSON API only; pages are for browsers.
        for route in router.routes:
            if isinstance(route, APIRoute) and not route.path.startswith("/api/"):
                route.include_in_schema = False
        app.include_router(router)

    @app.middleware("http")
    async def per_request(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        """Give every browser a CSRF nonce, remember a language switch, set safe headers."""
        nonce = request.cookies.get(CSRF_COOKIE)
        fresh = nonce is None
        request.state.csrf_nonce = nonce or secrets.token_urlsafe(24)
        response = await call_next(request)
        if fresh:
            response.set_cookie(
                CSRF_COOKIE,
                request.state.csrf_nonce,
                httponly=True,
                secure=settings.cookie_secure,
                samesite="lax",
            )
        if "lang" in request.query_params:
            response.set_cookie(
                LANG_COOKIE, request_lang(request), samesite="lax", max_age=365 * 86400
            )
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        return response

    app.add_middleware(CommitBeforeResponse)
    app.add_middleware(
        CsrfAndSizeMiddleware,
        secret_key=settings.secret_key,
        max_body=settings.max_upload_bytes,
    )

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

    @app.exception_handler(RequestValidationError)
    async def invalid_input(request: Request, exc: RequestValidationError) -> Response:
        if _wants_json(request):
            return JSONResponse({"detail": exc.errors()}, status_code=422)
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'][1:])}: {e['msg']}" for e in exc.errors()
        )
        return error_page(request, 422, problems)

    @app.exception_handler(Exception)
    async def server_error(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s", request.url.path)
        return error_page(request, 500)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> JSONResponse:
        """Liveness and database reachability."""
        try:
            with session_factory()() as session:
                session.execute(text("SELECT 1"))
            return JSONResponse({"status": "ok", "database": "ok", "version": huiqi.__version__})
        except Exception as exc:  # report, don't crash, when the database is down
            return JSONResponse(
                {"status": "error", "database": type(exc).__name__}, status_code=503
            )

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
