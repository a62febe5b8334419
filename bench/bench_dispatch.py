"""Dispatcher benchmark: messages a second to the log SMS gateway, an SMTP sink and a webhook sink.

    .venv/bin/python -m bench dispatch                         # 20,000 messages per channel
    .venv/bin/python -m bench dispatch --messages 400000 --channels sms   # a province's push

A fresh database (SQLite by default, `--backend postgres` for a scratch PostgreSQL database
huiqi_bench_dispatch) gets one enterprise per message with e-mail, SMS and webhook consent, one
notification each and an outbox row per channel. Each channel is then drained by the dispatcher
(`run_once`, rate limits lifted) on its own. Sinks: the SMS gateway is the
log gateway (logging off), e-mail goes to Postfix's `smtp-sink` (Debian package `postfix`; a sink
in C, so it does not compete with the dispatcher for the interpreter), webhooks to a small asyncio
keep-alive sink in its own process (bench/dispatch/webhook_sink.py). Targets: ≥ 2,000/s SMS and
e-mail, ≥ 1,000/s webhook.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "out" / "dispatch"
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
TARGETS = {"sms": 2000, "email": 2000, "webhook": 1000}


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _database(backend: str) -> str:
    from sqlalchemy import text

    from huiqi.core import migrate
    from huiqi.core.db import make_engine

    if backend == "sqlite":
        OUT.mkdir(parents=True, exist_ok=True)
        path = OUT / "dispatch.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        url = f"sqlite:///{path}"
    else:
        admin = make_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text('DROP DATABASE IF EXISTS "huiqi_bench_dispatch" WITH (FORCE)'))
            conn.execute(text('CREATE DATABASE "huiqi_bench_dispatch"'))
        admin.dispose()
        url = PG_ADMIN.rsplit("/", 1)[0] + "/huiqi_bench_dispatch"
    migrate.upgrade(url)
    return url


def _fill(url: str, messages: int, channels: list[str], webhook_url: str) -> None:
    """One enterprise, notification and outbox row per channel for each message (set-based)."""
    from sqlalchemy import insert, select

    from huiqi.core.clock import today as beijing_today
    from huiqi.core.codes import make_credit_code
    from huiqi.core.db import make_engine, utcnow
    from huiqi.notify.models import Notification, OutboxMessage, Subscription

    engine = make_engine(url)
    now = utcnow()
    due = now - timedelta(seconds=1)
    today = beijing_today()
    chunk = 5000
    with engine.begin() as conn:
        for start in range(0, messages, chunk):
            codes = [
                make_credit_code("9", "1", "620102", f"BD{i:06d}")
                for i in range(start, min(messages, start + chunk))
            ]
            conn.execute(
                insert(Subscription),
                [
                    {
                        "credit_code": c,
                        "email": f"e{i}@example.com",
                        "phone": f"139{i:08d}",
                        "webhook_url": f"{webhook_url}/e{i}",
                        "webhook_secret": "bench-secret-" + c,
                        "email_consent_at": now,
                        "sms_consent_at": now,
                        "webhook_consent_at": now,
                        "muted_topics": [],
                        "daily_cap": 10,
                        "updated_at": now,
                    }
                    for i, c in enumerate(codes, start)
                ],
            )
            conn.execute(
                insert(Notification),
                [
                    {
                        "credit_code": c,
                        "topic": "policy_match",
                        "subject": "您可能符合「专精特新中小企业奖励」",
                        "body": "经比对,贵企业可能符合政策「专精特新中小企业奖励」的条件。",
                        "link": "/notify/inbox",
                        "dedupe_key": f"bench-{c}",
                        "created_at": now,
                    }
                    for c in codes
                ],
            )
            ids = dict(
                conn.execute(
                    select(Notification.credit_code, Notification.id).where(
                        Notification.credit_code.in_(codes)
                    )
                ).all()
            )
            rows = []
            for i, c in enumerate(codes, start):
                address = {
                    "email": f"e{i}@example.com",
                    "sms": f"139{i:08d}",
                    "webhook": f"{webhook_url}/e{i}",
                }
                for ch in channels:
                    rows.append(
                        {
                            "notification_id": ids[c],
                            "credit_code": c,
                            "channel": ch,
                            "kind": "single",
                            "recipient": address[ch],
                            "status": "pending",
                            "idempotency_key": uuid.uuid4().hex,
                            "local_day": today,
                            "attempts": 0,
                            "next_attempt_at": due,
                            "created_at": now,
                            "history": [],
                        }
                    )
            conn.execute(insert(OutboxMessage), rows)
    engine.dispose()


def main(argv: list[str] | None = None) -> int:
    """Fill an outbox, drain it channel by channel and together, print messages a second."""
    parser = argparse.ArgumentParser(prog="python -m bench dispatch")
    parser.add_argument("--messages", type=int, default=20_000, help="per channel")
    parser.add_argument("--channels", default="sms,email,webhook")
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--batch", type=int, default=500, help="HUIQI_NOTIFY_BATCH_SIZE")
    args = parser.parse_args(argv)
    channels = [c for c in args.channels.split(",") if c]
    sink_bin = shutil.which("smtp-sink") or (
        "/usr/sbin/smtp-sink" if Path("/usr/sbin/smtp-sink").exists() else None
    )
    if "email" in channels and sink_bin is None:
        print("smtp-sink is not installed (Debian: apt-get install postfix); e-mail is skipped")
        channels.remove("email")
    procs: list[subprocess.Popen[bytes]] = []
    smtp_port, hook_port = _port(), _port()
    try:
        if "email" in channels and sink_bin:
            procs.append(
                subprocess.Popen(
                    [sink_bin, "-u", "postfix", f"127.0.0.1:{smtp_port}", "1024"],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        hook = subprocess.Popen(
            [sys.executable, str(HERE / "dispatch" / "webhook_sink.py"), str(hook_port)],
            stdout=subprocess.PIPE,
        )
        procs.append(hook)
        assert hook.stdout is not None
        hook.stdout.readline()
        url = _database(args.backend)
        started = time.perf_counter()
        _fill(url, args.messages, channels, f"http://127.0.0.1:{hook_port}")
        print(
            f"{args.backend}: {args.messages:,} messages × {len(channels)} channels queued "
            f"in {time.perf_counter() - started:.1f} s; load average {os.getloadavg()[0]:.1f}"
        )
        return _drain(url, channels, args, smtp_port)
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(10)


def _drain(url: str, channels: list[str], args: argparse.Namespace, smtp_port: int) -> int:
    from sqlalchemy import func, select
    from sqlalchemy.orm import sessionmaker

    from huiqi.core.config import Settings
    from huiqi.core.db import make_engine
    from huiqi.notify.channels import LogSmsGateway, SmsSender
    from huiqi.notify.dispatcher import Dispatcher, default_senders
    from huiqi.notify.models import OutboxMessage

    settings = Settings(
        env="test",
        secret_key="bench-dispatch-" + uuid.uuid4().hex,
        database_url=url,
        smtp_host="127.0.0.1",
        smtp_port=smtp_port,
        webhook_allow_private=True,
        notify_channel_rates={ch: 10_000_000 for ch in ("sms", "email", "webhook")},
        notify_batch_size=args.batch,
    )
    engine = make_engine(url)
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    senders = default_senders(settings)
    senders["sms"] = SmsSender(LogSmsGateway())
    # CPU time of this process (every thread) a message: steadier than msg/s on a shared machine
    print(f"{'channel':<8} {'sent':>9} {'seconds':>8} {'msg/s':>8} {'cpu ms/msg':>10}  target")
    for channel in channels:
        dispatcher = Dispatcher(settings, senders={channel: senders[channel]}, factory=factory)
        start, cpu = time.perf_counter(), time.process_time()
        stats = dispatcher.run_once()
        took, cpu = time.perf_counter() - start, time.process_time() - cpu
        sent = stats.sent.get(channel, 0)
        target = TARGETS[channel]
        verdict = "met" if sent / took >= target else "missed"
        print(
            f"{channel:<8} {sent:>9,} {took:>8.1f} {sent / took:>8,.0f} "
            f"{1000 * cpu / max(sent, 1):>10.3f}  ≥ {target:,}/s {verdict}; "
            f"load average {os.getloadavg()[0]:.1f}"
        )
    with factory() as session:
        left = session.scalar(
            select(func.count()).select_from(OutboxMessage).where(OutboxMessage.status != "sent")
        )
    print(f"rows not sent afterwards: {left}")
    engine.dispose()
    return 0 if left == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
