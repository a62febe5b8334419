"""Shared fixtures: migrated databases (SQLite always, PostgreSQL when enabled), per-test
rollback, a web client bound to the test transaction, and log-in helpers."""

from __future__ import annotations

import atexit
import gc
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

from huiqi.core import migrate, security
from huiqi.core.config import Settings
from huiqi.core.db import install_session_factory, make_engine

REPO = Path(__file__).resolve().parents[1]

# Process-wide keys for code that reads get_settings(), so no test writes key files into the
# working tree's data folder (tests of key generation unset these themselves).
os.environ.setdefault("HUIQI_SECRET_KEY", "test-secret-key-" + uuid.uuid4().hex)
os.environ.setdefault("HUIQI_LEDGER_KEY", "test-ledger-key-" + uuid.uuid4().hex)
PG_ENV = "HUIQI_TEST_POSTGRES_URL"
TEST_PASSWORD = "correct-horse-battery"


TEST_DATA = REPO / "tests" / "data"

# The cycle collector runs on net allocations, and every run of the older generations rescans all
# that the suite keeps alive (the collected tests, the ORM, the apps): at the default thresholds
# that was a fifth of the CPU time of the database and web tests. Reference counting still frees
# each test's objects at once; only cycles wait a little longer.
gc.set_threshold(50_000, 20, 100)
# The interpreter's last cycle collection at exit walks every object the run still holds (about a
# second for each worker); the process ends there, so they are left to the operating system.
atexit.register(gc.freeze)

# Argon2 at its minimal parameters: the tests hash many passwords and check the log-in logic,
# not the cost of the hash. Production keeps the library defaults.
security.use_password_hasher(PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))


def seed_path() -> Path:
    """The seed policy document, as packaged with the application (甘工信发〔2020〕351号)."""
    return REPO / "src" / "huiqi" / "policy" / "data" / "samples" / "gansu-gongxinfa-2020-351.txt"


@pytest.fixture(scope="session", autouse=True)
def wired() -> None:
    """Domain event handlers subscribed, as the web app and the command line do."""
    from huiqi.wiring import install

    install()


@pytest.fixture(scope="session")
def sqlite_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """A file SQLite database migrated to the heads once for the whole run."""
    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
    migrate.upgrade(url)
    engine = make_engine(url, connect_args={"check_same_thread": False})
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def postgres_engine() -> Iterator[Engine]:
    """A fresh PostgreSQL database built by the migrations, when HUIQI_TEST_POSTGRES_URL is set.

    Each run creates its own database beside the configured one (and drops it after), so
    parallel runs never see each other's tables.
    """
    url = os.environ.get(PG_ENV)
    if not url:
        pytest.skip(f"PostgreSQL tests are off: set {PG_ENV} (CI sets it) to run them")
    from sqlalchemy.engine import make_url

    base = make_url(url)
    name = f"{base.database or 'huiqi_test'}_{uuid.uuid4().hex[:8]}"
    admin = make_engine(base.render_as_string(hide_password=False), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # pragma: no cover - only when the server is unreachable
        admin.dispose()
        pytest.fail(f"PostgreSQL at {PG_ENV}={url} is unreachable: {exc}")
    test_url = base.set(database=name).render_as_string(hide_password=False)
    migrate.upgrade(test_url)
    engine = make_engine(test_url)
    yield engine
    engine.dispose()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request: pytest.FixtureRequest) -> Engine:
    """The migrated database of each backend; PostgreSQL skips when not enabled."""
    return request.getfixturevalue(f"{request.param}_engine")  # type: ignore[no-any-return]


@pytest.fixture
def connection(engine: Engine) -> Iterator[Connection]:
    """A connection inside an outer transaction that is rolled back after the test."""
    conn = engine.connect()
    outer = conn.begin()
    yield conn
    if outer.is_active:
        outer.rollback()
    conn.close()


@pytest.fixture
def session_maker(connection: Connection) -> sessionmaker[Session]:
    """Sessions joined to the test transaction: their commits become savepoints."""
    factory = sessionmaker(
        bind=connection, expire_on_commit=False, join_transaction_mode="create_savepoint"
    )
    install_session_factory(factory)
    return factory


@pytest.fixture
def db_session(session_maker: sessionmaker[Session]) -> Iterator[Session]:
    """A session whose work disappears after the test."""
    session = session_maker()
    yield session
    session.close()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Test settings (a real secret key, secure cookies, small limits)."""
    return Settings(
        env="test",
        data_dir=tmp_path,
        secret_key="test-secret-key-" + uuid.uuid4().hex,
        max_upload_mb=2,
        login_max_failures=5,
    )


class RenewalsSettled:
    """ASGI wrapper: a request is over only once the background renewals it started are.

    The test's sessions share one connection (the rolled-back test transaction), so a renewal
    still reading in its thread would use it at the same time as the test's next step, or after
    the test has rolled it back. A client waits for the whole app call, so it waits for them too.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        from huiqi.web import renew

        try:
            await self.app(scope, receive, send)
        finally:
            if scope["type"] == "http":
                await renew.drain(60)


@pytest.fixture
def app(settings: Settings, session_maker: sessionmaker[Session]):  # type: ignore[no-untyped-def]
    """The web app using the test transaction; its renewals end with the request that started them."""
    from huiqi.web.app import create_app

    web = create_app(settings, configure_db=False)
    web.add_middleware(RenewalsSettled)
    return web


@pytest.fixture
def client(app) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    """A browser-like client over HTTPS (so Secure cookies flow)."""
    with TestClient(app, base_url="https://testserver", raise_server_exceptions=False) as c:
        yield c


def csrf_from(client: TestClient, path: str = "/login") -> str:
    """Open a page and read the CSRF token from its meta tag."""
    from bs4 import BeautifulSoup

    page = client.get(path)
    meta = BeautifulSoup(page.text, "lxml").find("meta", attrs={"name": "csrf-token"})
    assert meta is not None, f"no csrf meta on {path}"
    return str(meta["content"])


@pytest.fixture
def make_user(db_session: Session) -> Callable[..., object]:
    """Create a user with a role and binding; returns the User."""
    from huiqi.accounts import service

    def make(username: str, role: str, **binding: str) -> object:
        user = service.create_user(
            db_session, username=username, password=TEST_PASSWORD, role=role, **binding
        )
        db_session.commit()
        return user

    return make


DEFAULT_BINDINGS = {
    "admin": {},
    "officer": {"department": "甘肃省工业和信息化厅"},
    "enterprise": {"credit_code": "91620102MA72H8K3X0"},
    "bank": {"institution": "甘肃银行股份有限公司"},
}


@pytest.fixture
def login_as(client: TestClient, make_user: Callable[..., object]) -> Callable[..., object]:
    """Log the client in as a fresh user of a role (optionally with a binding); returns the User."""

    def login(role: str, username: str | None = None, **binding: str) -> object:
        name = username or f"{role}-{uuid.uuid4().hex[:6]}"
        user = make_user(name, role, **(binding or DEFAULT_BINDINGS[role]))
        token = csrf_from(client)
        response = client.post(
            "/login",
            data={"username": name, "password": TEST_PASSWORD, "csrf_token": token},
            follow_redirects=False,
        )
        assert response.status_code == 303, response.text
        return user

    return login


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Modules that drive a browser or are marked slow run first, each module's tests together:
    the many short tests then fill in around them on the other workers, and no long module is
    left to finish alone at the end."""

    def module(item: pytest.Item) -> str:
        return item.nodeid.split("::")[0]

    heavy = {
        module(i) for i in items if i.get_closest_marker("browser") or i.get_closest_marker("slow")
    }
    items.sort(key=lambda item: module(item) not in heavy)


def pytest_report_header(config: pytest.Config) -> str:
    """Say up front whether the PostgreSQL half of the suite runs."""
    if os.environ.get(PG_ENV):
        return f"PostgreSQL tests: on ({PG_ENV} is set)"
    return f"PostgreSQL tests: skipped — set {PG_ENV} to run them (CI does)"
