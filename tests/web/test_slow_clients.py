"""Clients that send their bodies slowly hold only their own connection, not a working slot."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from huiqi.core.config import Settings


async def _get(app: Any, path: str) -> int:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "GET",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(b"host", b"testserver")],
        "scheme": "http",
        "server": ("testserver", 80),
        "client": ("127.0.0.1", 1234),
        "root_path": "",
        "http_version": "1.1",
        "state": {},
    }
    await app(scope, receive, send)
    return int(sent[0]["status"])


def test_slow_bodies_do_not_take_the_working_slots(
    tmp_path: Path, session_maker: sessionmaker[Session]
) -> None:
    """With one working slot, ten uploads stuck mid-body leave /healthz and pages answering."""
    from huiqi.web.app import create_app

    settings = Settings(
        env="test",
        data_dir=tmp_path,
        secret_key="test-secret-key-slow-bodies-0123456789",
        db_pool_size=1,
        db_max_overflow=0,
        queue_timeout_seconds=0.5,
    )
    app = create_app(settings, configure_db=False)

    async def scenario() -> None:
        never = asyncio.Event()

        async def trickle() -> dict[str, Any]:
            await never.wait()  # the rest of the body never comes
            return {"type": "http.disconnect"}

        async def ignore(_message: dict[str, Any]) -> None:
            return None

        stuck = [
            asyncio.create_task(
                app(
                    {
                        "type": "http",
                        "method": "POST",
                        "path": "/login",
                        "raw_path": b"/login",
                        "query_string": b"",
                        "headers": [
                            (b"host", b"testserver"),
                            (b"content-type", b"application/x-www-form-urlencoded"),
                            (b"content-length", b"100000"),
                        ],
                        "scheme": "http",
                        "server": ("testserver", 80),
                        "client": ("127.0.0.1", 4000 + i),
                        "root_path": "",
                        "http_version": "1.1",
                        "state": {},
                    },
                    trickle,
                    ignore,
                )
            )
            for i in range(10)
        ]
        await asyncio.sleep(0.05)
        assert await _get(app, "/healthz") == 200
        assert await _get(app, "/login") == 200
        assert not any(task.done() for task in stuck)
        for task in stuck:
            task.cancel()
        await asyncio.gather(*stuck, return_exceptions=True)

    asyncio.run(scenario())
