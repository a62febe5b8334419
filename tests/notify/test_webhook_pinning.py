"""Webhook SSRF guard: the name is resolved once, every answer checked, and the connection goes
to the checked address, so a DNS rebind between the check and the connection cannot reach a
private address."""

from __future__ import annotations

import re
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from huiqi.notify.channels import DeliveryError, Outbound, WebhookSender
from tests.notify.servers import WebhookReceiver, start_webhook

NAME = "hooks.rebind.test"
real_getaddrinfo = socket.getaddrinfo


@pytest.fixture
def hook() -> Iterator[WebhookReceiver]:
    rec = start_webhook()
    yield rec
    rec.stop()


def fake_dns(monkeypatch: pytest.MonkeyPatch, answers: list[str]) -> list[str]:
    """Resolve NAME to the next answer on each lookup (the last one repeats); returns lookups."""
    asked: list[str] = []

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host != NAME:
            return real_getaddrinfo(host, port, *args, **kwargs)
        asked.append(host)
        ip = answers[min(len(asked), len(answers)) - 1]
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port or 80))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return asked


def message(url: str) -> Outbound:
    return Outbound(
        idempotency_key="hq-pin",
        channel="webhook",
        recipient=url,
        credit_code="91620102MA72H8K3X0",
        subject="s",
        text="t",
        link="/notify/inbox/1",
        unsubscribe_url="https://huiqi.example/u",
        payload={"subject": "s"},
        webhook_secret="k",
    )


def test_name_resolving_to_loopback_is_refused(
    monkeypatch: pytest.MonkeyPatch, hook: WebhookReceiver
) -> None:
    fake_dns(monkeypatch, ["127.0.0.1"])
    port = hook.server.server_address[1]
    with pytest.raises(DeliveryError) as info:
        WebhookSender(allow_private=False).send(message(f"http://{NAME}:{port}/in"))
    assert info.value.permanent and "127.0.0.1" in str(info.value)
    assert hook.received() == []


def test_allowed_private_delivery_connects_to_the_checked_address_with_the_host_name(
    monkeypatch: pytest.MonkeyPatch, hook: WebhookReceiver
) -> None:
    # the second answer would point elsewhere: it must never be asked for
    asked = fake_dns(monkeypatch, ["127.0.0.1", "10.255.255.1"])
    port = hook.server.server_address[1]
    WebhookSender(allow_private=True, timeout=5).send(message(f"http://{NAME}:{port}/in"))
    (req,) = hook.received()
    assert req.path == "/in" and req.headers["Host"] == f"{NAME}:{port}"
    assert asked == [NAME]


def test_rebind_after_the_check_is_not_followed(monkeypatch: pytest.MonkeyPatch) -> None:
    """The check sees a public address; a later lookup would say 127.0.0.1: the connection
    still goes to the public address, and TLS is for the host name (SNI, certificate check)."""
    asked = fake_dns(monkeypatch, ["93.184.216.34", "127.0.0.1"])
    connected: list[tuple[str, int]] = []
    server_names: list[str | None] = []
    listener = socket.create_server(("127.0.0.1", 0))  # stands in for the public address
    real_create_connection = socket.create_connection

    def create_connection(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
        connected.append(address)
        return real_create_connection(listener.getsockname(), *args, **kwargs)

    def wrap_socket(self: ssl.SSLContext, sock: socket.socket, **kwargs: Any) -> Any:
        server_names.append(kwargs.get("server_hostname"))
        raise ssl.SSLError("handshake stopped by the test")

    monkeypatch.setattr(socket, "create_connection", create_connection)
    monkeypatch.setattr(ssl.SSLContext, "wrap_socket", wrap_socket)
    try:
        with pytest.raises(DeliveryError) as info:
            WebhookSender(allow_private=False).send(message(f"https://{NAME}/in"))
    finally:
        listener.close()
    assert not info.value.permanent
    assert connected == [("93.184.216.34", 443)]
    assert server_names == [NAME]
    assert asked == [NAME]


def test_every_answer_must_be_public(monkeypatch: pytest.MonkeyPatch) -> None:
    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.7", port)),
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    with pytest.raises(DeliveryError, match="10.0.0.7"):
        WebhookSender().send(message(f"https://{NAME}/in"))


def test_a_kept_connection_closed_by_the_receiver_is_reopened() -> None:
    """Receivers close idle keep-alive connections: the next message goes over a new one."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    requests: list[bytes] = []

    def serve() -> None:
        for _ in range(2):  # each connection answers one request, then is closed while kept
            conn, _addr = listener.accept()
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(65536)
                head, _, body = data.partition(b"\r\n\r\n")
                length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
                while len(body) < length:
                    body += conn.recv(65536)
                requests.append(head)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    sender = WebhookSender(allow_private=True, timeout=5, concurrency=1)
    try:
        sender.send(message(f"http://127.0.0.1:{port}/in"))
        time.sleep(0.05)  # the receiver has closed the kept connection by now
        sender.send(message(f"http://127.0.0.1:{port}/in"))
    finally:
        sender.close()
        server.join(5)
        listener.close()
    assert len(requests) == 2
    assert all(r.startswith(b"POST /in HTTP/1.1") for r in requests)
