"""`huiqi serve`: worker processes need PostgreSQL; SQLite says why it stays at one."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from huiqi.cli.main import app
from huiqi.core.config import get_settings

runner = CliRunner()


def test_sqlite_refuses_several_workers(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HUIQI_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("HUIQI_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    result = runner.invoke(app, ["serve", "--workers", "2"])
    get_settings.cache_clear()
    assert result.exit_code == 2
    assert "one write lock" in result.output and "PostgreSQL" in result.output


def test_serve_documents_workers() -> None:
    result = runner.invoke(app, ["serve", "--help"])
    assert result.exit_code == 0 and "--workers" in result.output


def test_several_workers_each_listen_on_the_shared_port(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # one listening socket for all would let the first worker awake take every new client
    import socket

    from uvicorn.supervisors import multiprocess

    from huiqi.core import migrate
    from huiqi.web.accept import is_shared

    seen: dict[str, object] = {}

    class Supervisor:
        def __init__(self, config: object, sockets: list[socket.socket]) -> None:
            seen["workers"] = getattr(config, "workers", None)
            seen["shared"] = [is_shared(sock) for sock in sockets]

        def run(self) -> None:
            seen["ran"] = True

    monkeypatch.setattr(multiprocess, "Multiprocess", Supervisor)
    monkeypatch.setattr(migrate, "pending_revisions", lambda _url: [])
    monkeypatch.setenv("HUIQI_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("HUIQI_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/unused")
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    get_settings.cache_clear()
    try:
        result = runner.invoke(app, ["serve", "--workers", "2", "--port", str(port)])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert seen == {"workers": 2, "shared": [True], "ran": True}
