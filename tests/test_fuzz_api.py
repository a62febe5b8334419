"""Schemathesis over every operation of the OpenAPI document, for each role: no 5xx, ever.

Marked `fuzz`: the default run leaves it out and CI runs it as its own step (`make fuzz`).
Each operation gets FUZZ_EXAMPLES generated requests (30 unless the variable says otherwise)
per role, against a database holding demo accounts, the seed policy, a small generated registry,
the demo financing products and a need with an application.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from huiqi.accounts import service as accounts
from huiqi.accounts.models import User
from huiqi.core import migrate
from huiqi.core.config import Settings
from huiqi.core.db import install_session_factory, make_engine

pytestmark = pytest.mark.fuzz

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "30"))
ROLES = ("anonymous", "enterprise", "officer", "bank", "admin")
SECRET = "fuzz-secret-key-not-for-production"


@dataclass
class Target:
    """The app under test and a bearer token per role."""

    app: Any
    tokens: dict[str, str | None] = field(default_factory=dict)


def _load(session: Any) -> None:
    """Enough data that ids, filters and lender views hit real rows."""
    from huiqi import demo
    from huiqi.enterprise import population
    from huiqi.finance import demo as finance_demo
    from huiqi.finance import service as finance
    from huiqi.finance.schemas import NeedIn
    from huiqi.policy import service as policy

    policy.load_demo(session)
    population.load_demo(session, size=150, seed=11)
    products = finance_demo.load_demo(session)
    demo.load_accounts(session, demo.pick_demo_enterprise(session))
    session.flush()
    enterprise = session.scalar(select(User).where(User.username == "enterprise"))
    need = finance.post_need(
        session,
        enterprise,
        NeedIn(amount_fen=300_000_000, term_months=12, purpose="购置设备,补充流动资金"),
    )
    finance.apply(session, enterprise, need.id, [p.id for p in products[:2]], [])


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    """A migrated SQLite database with data, the app over it, and tokens for every role."""
    from huiqi.web.app import create_app

    folder: Path = tmp_path_factory.mktemp("fuzz")
    url = f"sqlite:///{folder / 'fuzz.db'}"
    migrate.upgrade(url)
    engine = make_engine(url, connect_args={"check_same_thread": False})
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    install_session_factory(factory)
    tokens: dict[str, str | None] = {"anonymous": None}
    with factory() as session:
        _load(session)
        for role in ROLES[1:]:
            user = session.scalar(select(User).where(User.username == role))
            assert user is not None, role
            tokens[role] = accounts.create_token(session, user, "fuzz", secret_key=SECRET)
        session.commit()
    settings = Settings(env="test", data_dir=folder, secret_key=SECRET, database_url=url)
    app = create_app(settings, configure_db=False)
    app.openapi()  # built once and cached, so loading the schema below never waits on it
    yield Target(app, tokens)
    engine.dispose()


def _fuzz_role(target: Target, role: str) -> tuple[int, list[str]]:
    """Run every operation for one role; return the request count and the server errors."""
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", target.app)
    token = target.tokens[role]
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    problems: list[str] = []
    sent = 0
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 30, "the OpenAPI document lost its operations"
    for operation in operations:

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def check(case: Any) -> None:
            nonlocal sent
            sent += 1
            try:
                response = case.call(headers=headers)
            except Exception as exc:  # an exception escaping the app is a server error too
                problems.append(
                    f"{case.operation.label}: {type(exc).__name__}: {exc} ({case!r})"[:600]
                )
                return
            if response.status_code >= 500:
                problems.append(
                    f"{case.operation.label}: {response.status_code} {response.text[:200]} ({case!r})"[
                        :600
                    ]
                )

        check()
    return sent, problems


@pytest.mark.parametrize("role", ROLES)
def test_no_server_error_for_any_operation(target: Target, role: str) -> None:
    sent, problems = _fuzz_role(target, role)
    assert sent >= 30
    assert problems == [], f"{len(problems)} server errors as {role}:\n" + "\n".join(problems[:20])
