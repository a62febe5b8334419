"""A real dispatcher process is killed with SIGKILL mid-run and restarted: nothing is lost, and
only messages that were in flight at the kill may arrive twice (with the same idempotency key)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import sessionmaker

from huiqi.core import migrate
from huiqi.core.codes import make_credit_code
from huiqi.core.db import make_engine
from huiqi.notify import service
from huiqi.notify.models import OutboxMessage
from huiqi.notify.schemas import SettingsInput
from tests.conftest import PG_ENV
from tests.notify.servers import start_smtp, start_webhook

pytestmark = [pytest.mark.timeout(180), pytest.mark.slow]
ENTERPRISES = 30
BATCH = 4


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh migrated database the subprocess can reach (not the rolled-back test one)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'crash.db'}"
        migrate.upgrade(url)
        yield url
        return
    base_url = os.environ.get(PG_ENV)
    if not base_url:
        pytest.skip(f"PostgreSQL tests are off: set {PG_ENV}")
    base = make_url(base_url)
    name = f"huiqi_crash_{uuid.uuid4().hex[:8]}"
    admin = make_engine(base.render_as_string(hide_password=False), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = base.set(database=name).render_as_string(hide_password=False)
    migrate.upgrade(url)
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _dispatcher(env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", "from huiqi.cli.main import main; main()", "notify", "run", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def _wait_until_due(rows: Sequence[OutboxMessage]) -> None:
    """Sleep until every unsent row is claimable: its lease or its backoff has run out."""
    due = [
        r.claimed_until if r.status == "sending" else r.next_attempt_at
        for r in rows
        if r.status in ("sending", "pending")
    ]
    # SQLite gives the stored UTC moments back without their zone
    last = max(
        (d if d.tzinfo else d.replace(tzinfo=UTC) for d in due if d is not None),
        default=None,
    )
    if last is not None:
        time.sleep(max(0.0, (last - datetime.now(UTC)).total_seconds()) + 0.05)


def test_kill_9_mid_run_loses_nothing(database_url: str, tmp_path: Path) -> None:
    smtp = start_smtp(delay=0.02, pipelining=True)
    hook = start_webhook()
    hook.delay = 0.02
    engine = make_engine(database_url)
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    try:
        with factory() as session, session.begin():
            for i in range(ENTERPRISES):
                code = make_credit_code("9", "1", "620102", f"MA{i:06d}")
                data = SettingsInput.parse(
                    email=f"e{i}@example.com",
                    webhook_url=f"{hook.url}/e{i}",
                    consent_email=True,
                    consent_webhook=True,
                    daily_cap=10,
                    allow_private_webhooks=True,
                )
                service.save_settings(session, code, data, actor="test")
                service.enqueue(
                    session,
                    credit_code=code,
                    topic="policy_match",
                    subject=f"政策匹配 {i}",
                    body="经比对,贵企业可能符合条件。",
                    link="/notify/inbox",
                    dedupe_key=f"crash-{i}",
                )
        env = {
            **os.environ,
            "HUIQI_DATABASE_URL": database_url,
            "HUIQI_ENV": "test",
            "HUIQI_SECRET_KEY": "crash-test-secret-" + uuid.uuid4().hex,
            "HUIQI_SMTP_HOST": "127.0.0.1",
            "HUIQI_SMTP_PORT": str(smtp.port),
            "HUIQI_WEBHOOK_ALLOW_PRIVATE": "true",
            "HUIQI_NOTIFY_LEASE_SECONDS": "2",
            "HUIQI_NOTIFY_POLL_SECONDS": "0.2",
            # a send that fails on a loaded machine (a timeout) is retried soon, not in 30 s
            "HUIQI_NOTIFY_BACKOFF_SECONDS": "1",
            # small batches: the kill finds batches recorded, one on the wire and one claimed
            # and rendered but not yet sent (each channel prepares the next while one is sent)
            "HUIQI_NOTIFY_BATCH_SIZE": str(BATCH),
            "HUIQI_DATA_DIR": str(tmp_path),
        }
        first = _dispatcher(env)
        deadline = time.monotonic() + 60
        # the third webhook batch is on the wire, so the first two have been recorded
        while len(hook.received()) <= 2 * BATCH and time.monotonic() < deadline:
            assert first.poll() is None, first.stdout.read().decode() if first.stdout else ""
            time.sleep(0.01)
        first.send_signal(signal.SIGKILL)
        first.wait()
        assert first.returncode == -signal.SIGKILL

        with factory() as session:
            rows = session.scalars(select(OutboxMessage)).all()
            in_flight = {r.idempotency_key for r in rows if r.status == "sending"}
            unsent_before = {r.idempotency_key for r in rows if r.status != "sent"}
            sent_before = {r.idempotency_key for r in rows if r.status == "sent"}
        assert unsent_before, "the kill came too late to test anything"
        assert sent_before, "no batch was recorded before the kill"
        # at most two batches a channel are claimed at any moment: one sent, one prepared
        assert len(in_flight) <= 2 * 2 * BATCH

        # the in-flight rows become claimable once their lease (2 s from their claim) has run out
        _wait_until_due(rows)
        # passes until nothing is left: a send that failed before the kill waits out its backoff
        for _ in range(10):
            second = _dispatcher(env, "--once")
            out, _ = second.communicate(timeout=120)
            assert second.returncode == 0, out.decode()
            with factory() as session:
                rows = session.scalars(select(OutboxMessage)).all()
            if {r.status for r in rows} == {"sent"}:
                break
            _wait_until_due(rows)
        assert len(rows) == 2 * ENTERPRISES
        assert {r.status for r in rows} == {"sent"}, [
            (r.status, r.attempts, r.last_error) for r in rows if r.status != "sent"
        ]
        # a retried send (its peer timed out after receiving) carries the same key again
        retried = {r.idempotency_key for r in rows if r.attempts > 1}
        mail_keys = Counter(
            str(m["Message-ID"]).strip("<>").removesuffix("@huiqi") for m in smtp.messages
        )
        hook_keys = Counter(r.headers["X-Huiqi-Idempotency-Key"] for r in hook.received())
        assert set(mail_keys) == {r.idempotency_key for r in rows if r.channel == "email"}
        assert set(hook_keys) == {r.idempotency_key for r in rows if r.channel == "webhook"}
        duplicates = {k for k, n in (mail_keys + hook_keys).items() if n > 1}
        assert duplicates <= in_flight | retried
        assert not (duplicates & sent_before) - retried  # a recorded send is never repeated
        assert all(n <= 2 for n in (mail_keys + hook_keys).values())
    finally:
        smtp.controller.stop()
        hook.stop()
        engine.dispose()
