"""A live huiqi server and headless Chromium for the browser tests (Playwright + Debian's chromium)."""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def require_chromium() -> None:
    """Skip (or fail, when CI demands browsers) without Debian's chromium."""
    if not Path(CHROMIUM).exists():
        message = "browser tests need Debian's chromium (apt-get install chromium)"
        if os.environ.get("HUIQI_REQUIRE_BROWSER"):
            pytest.fail(message)
        pytest.skip(message)


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# Demo databases already built in this test process, by population (see demo_database).
_DEMO_DATABASES: dict[int, Path] = {}


def demo_database(near: Path, population: int) -> Path:
    """A migrated SQLite file with the demo loaded, built once per test process (xdist worker)
    and population beside `near`; the modules that serve the demo each work on a copy."""
    built = _DEMO_DATABASES.get(population)
    if built is not None:
        return built
    from huiqi import demo
    from huiqi.core import db, migrate

    built = near.parent / f"demo-{population}" / "huiqi.db"
    url = f"sqlite:///{built}"
    migrate.upgrade(url)
    engine = db.make_engine(url)
    db.configure(engine)
    with db.session_scope() as session:
        demo.load_all(session, population=population)
    engine.dispose()
    _DEMO_DATABASES[population] = built
    return built


def copy_demo(data_dir: Path, population: int) -> None:
    """Give `data_dir` its own copy of the demo database (SQLite's online backup, so it is whole)."""
    source = demo_database(data_dir, population)
    data_dir.mkdir(parents=True, exist_ok=True)
    with (
        closing(sqlite3.connect(source)) as src,
        closing(sqlite3.connect(data_dir / "huiqi.db")) as dst,
    ):
        src.backup(dst)


def demo_app(data_dir: Path, secret_key: str, population: int = 200) -> tuple[Any, Any]:
    """The platform in process on its own copy of the demo (a small population): (app, engine)."""
    from huiqi.core import db, migrate
    from huiqi.core.config import Settings
    from huiqi.web.app import create_app

    settings = Settings(env="test", data_dir=data_dir, secret_key=secret_key)
    copy_demo(data_dir, population)
    migrate.upgrade(settings.effective_database_url)
    engine = db.make_engine(settings.effective_database_url)
    db.configure(engine)
    return create_app(settings, configure_db=False), engine


@contextmanager
def live_server(
    data_dir: Path,
    setup: Callable[[Session], Any] | None = None,
    *,
    demo_population: int | None = None,
) -> Iterator[str]:
    """Migrate a fresh SQLite file (or start from a copy of the demo with that population), run
    `setup` in one transaction, serve it; yield the base URL."""
    require_chromium()
    import uvicorn

    from huiqi.core import db, migrate
    from huiqi.core.config import Settings
    from huiqi.web.app import create_app

    settings = Settings(env="test", data_dir=data_dir, secret_key="browser-test-secret-0123456789")
    if demo_population is not None:
        copy_demo(data_dir, demo_population)
    migrate.upgrade(settings.effective_database_url)
    db.configure(db.make_engine(settings.effective_database_url))
    if setup is not None:
        with db.session_scope() as session:
            setup(session)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def watch_csp(browser: Any) -> list[str]:
    """Make every page of the browser report Content-Security-Policy violations to the list."""
    violations: list[str] = []

    def watch(page: Any) -> Any:
        def note(message: Any) -> None:
            if "Content Security Policy" in message.text:
                violations.append(f"{page.url}: {message.text}")

        page.on("console", note)
        return page

    plain_context, plain_page = browser.new_context, browser.new_page

    def new_context(*args: Any, **kwargs: Any) -> Any:
        context = plain_context(*args, **kwargs)
        context.on("page", watch)
        return context

    def new_page(*args: Any, **kwargs: Any) -> Any:
        return watch(plain_page(*args, **kwargs))

    # Tests check isinstance(browser, Browser), so the real object keeps its type.
    browser.new_context, browser.new_page = new_context, new_page
    return violations


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium browser driven by Playwright; a CSP violation on any page fails."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        violations = watch_csp(browser)
        try:
            yield browser
        finally:
            browser.close()
    assert not violations, "CSP violations:\n" + "\n".join(violations)
