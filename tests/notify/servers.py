"""Real local receivers for the channel tests: an aiosmtpd SMTP server and an HTTP webhook sink."""

from __future__ import annotations

import asyncio
import email
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Collect:
    def __init__(self, delay: float = 0.0) -> None:
        self.messages: list[Message] = []
        self.lock = threading.Lock()
        self.delay = delay

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        if self.delay:
            await asyncio.sleep(self.delay)
        with self.lock:
            self.messages.append(email.message_from_bytes(envelope.original_content))
        return "250 OK"


class _CollectPipelining(_Collect):
    """The same, offering PIPELINING (aiosmtpd reads pipelined commands in turn)."""

    async def handle_EHLO(  # noqa: N802
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        return [*responses[:-1], "250-PIPELINING", responses[-1]]


@dataclass
class SmtpServer:
    """A running aiosmtpd server and what it received."""

    port: int
    handler: _Collect
    controller: Controller

    @property
    def messages(self) -> list[Message]:
        """Messages received so far."""
        with self.handler.lock:
            return list(self.handler.messages)


def start_smtp(delay: float = 0.0, *, pipelining: bool = False) -> SmtpServer:
    """Start an SMTP server on a free localhost port (optionally slow to accept each message)."""
    handler = _CollectPipelining(delay) if pipelining else _Collect(delay)
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    return SmtpServer(port, handler, controller)


@dataclass
class Received:
    """One webhook request as the receiver saw it."""

    path: str
    headers: dict[str, str]
    body: str


@dataclass
class WebhookReceiver:
    """A local HTTP server that records POSTs and answers with a scripted status."""

    server: ThreadingHTTPServer
    thread: threading.Thread
    requests: list[Received] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)  # answers for the next requests
    delay: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        """Base URL of the receiver."""
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def received(self) -> list[Received]:
        """Requests received so far."""
        with self.lock:
            return list(self.requests)

    def stop(self) -> None:
        """Shut the server down."""
        self.server.shutdown()
        self.server.server_close()


def start_webhook() -> WebhookReceiver:
    """Start a webhook receiver on a free localhost port."""
    holder: dict[str, WebhookReceiver] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            rec = holder["r"]
            length = int(self.headers.get("content-length", "0"))
            body = self.rfile.read(length).decode()
            if rec.delay:
                time.sleep(rec.delay)
            with rec.lock:
                status = rec.statuses.pop(0) if rec.statuses else 200
                if status < 300:
                    rec.requests.append(
                        Received(self.path, {k: v for k, v in self.headers.items()}, body)
                    )
            self.send_response(status)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    rec = WebhookReceiver(server, thread)
    holder["r"] = rec
    thread.start()
    return rec


def payloads(rec: WebhookReceiver) -> Iterator[dict[str, Any]]:
    """Decoded JSON bodies received."""
    for r in rec.received():
        yield json.loads(r.body)
