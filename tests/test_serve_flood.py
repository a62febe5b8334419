"""`huiqi serve` keeps serving others while one client holds a thousand connections open.

The server runs as `huiqi serve` does, in its own process, started with a soft open-files
limit of 1,024 (a common default). The flood: connections that send nothing, connections that
send their request line and headers a few bytes at a time and never finish, and uploads that
declare a large body and send a little of it. Another client must still be answered.
"""

from __future__ import annotations

import os
import resource
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.live import free_port

FLOOD = 1100  # beyond the 1,024 files the server is started with
# generous: a hang detector for a shared machine, not a speed requirement
ANSWER_WITHIN_SECONDS = 30


def _low_limit() -> None:
    """In the server's process before it starts: the soft limit many systems give by default."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    """`huiqi serve` on a migrated SQLite file, one worker; yields its base URL."""
    from huiqi.core import migrate

    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 2 * FLOOD + 200:
        pytest.skip(f"the hard open-files limit ({hard}) is too low for {FLOOD} connections")
    # the flood's sockets live in this process too
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4 * FLOOD), hard))
    migrate.upgrade(f"sqlite:///{tmp_path / 'huiqi.db'}")
    env = {
        k: v for k, v in os.environ.items() if k not in ("HUIQI_DATABASE_URL", "HUIQI_CONFIG_FILE")
    }
    env.update(HUIQI_DATA_DIR=str(tmp_path), HUIQI_ENV="development", HUIQI_COOKIE_SECURE="false")
    port = free_port()
    log = (tmp_path / "server.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-c", "from huiqi.cli.main import main; main()", "serve"]
        + ["--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        preexec_fn=_low_limit,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert proc.poll() is None, (tmp_path / "server.log").read_text()
            try:
                if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _flood(port: int) -> list[socket.socket]:
    """Idle connections, half-sent headers and half-sent bodies, all left open."""
    held: list[socket.socket] = []
    for i in range(FLOOD):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        kind = i % 3
        if kind == 1:  # a request whose headers never end
            sock.sendall(b"GET /policy HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        elif kind == 2:  # an upload that declares 100 kB and sends 10 bytes of it
            sock.sendall(
                b"POST /login HTTP/1.1\r\nHost: x\r\n"
                b"Content-Type: application/x-www-form-urlencoded\r\n"
                b"Content-Length: 100000\r\n\r\nusername=a"
            )
        held.append(sock)
    return held


def test_a_thousand_open_connections_do_not_stop_others_being_served(server: str) -> None:
    port = int(server.rsplit(":", 1)[1])
    held = _flood(port)
    try:
        with httpx.Client(base_url=server, timeout=ANSWER_WITHIN_SECONDS) as other:
            assert other.get("/healthz").json()["database"] == "ok"
            assert other.get("/login").status_code == 200
            assert other.get("/policy").status_code == 200
        # the flood is still there, still waiting: nothing of it was answered or dropped
        for sock in held[:30]:
            sock.setblocking(False)
            with pytest.raises(BlockingIOError):
                sock.recv(1)
    finally:
        for sock in held:
            sock.close()
