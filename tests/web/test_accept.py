"""The server's event loop accepts every waiting connection in one turn (huiqi.web.accept)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import cast

import pytest
import uvloop

from huiqi.web.accept import EagerAcceptLoop, new_event_loop

WAITING = 40


class Recorder(asyncio.Protocol):
    """Notes each connection it is given."""

    made: list[asyncio.BaseTransport]

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.made.append(transport)


async def _turns_to_take(count: int, sock: socket.socket | None = None) -> int:
    """Loop turns until `count` connections that all wait at once have reached the protocol."""
    loop = asyncio.get_running_loop()
    made: list[asyncio.BaseTransport] = []
    Recorder.made = made
    if sock is None:
        server = await loop.create_server(Recorder, "127.0.0.1", 0, backlog=128)
    else:
        server = await loop.create_server(Recorder, sock=sock, backlog=128)
    assert server.sockets
    port = server.sockets[0].getsockname()[1]
    # the kernel completes each handshake by itself: all of them wait to be accepted
    clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(count)]
    try:
        turns = 0
        while len(made) < count and turns < 10 * count:
            await asyncio.sleep(0)  # one turn of the loop
            turns += 1
        assert len(made) == count
        return turns
    finally:
        for transport in made:
            transport.close()
        for client in clients:
            client.close()
        server.close()
        await server.wait_closed()


def _run(factory: Callable[[], asyncio.AbstractEventLoop], count: int) -> int:
    loop = factory()
    try:
        return loop.run_until_complete(_turns_to_take(count))
    finally:
        loop.close()


def test_uvloops_own_server_takes_one_waiting_connection_per_turn() -> None:
    # why huiqi.web.accept exists: a busy worker's turns are long, so the last of many
    # clients connecting at once waited seconds for its first request to be read
    assert _run(uvloop.new_event_loop, WAITING) >= WAITING


def test_every_waiting_connection_is_taken_within_a_few_turns() -> None:
    assert _run(new_event_loop, WAITING) <= 5


def test_a_socket_bound_beforehand_is_served_the_same_way() -> None:
    # several workers share one socket that the supervisor bound
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    loop = new_event_loop()
    try:
        assert loop.run_until_complete(_turns_to_take(WAITING, sock)) <= 5
    finally:
        loop.close()


def test_a_closed_server_accepts_no_one() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        assert server.is_serving()
        server.close()
        await server.wait_closed()
        assert not server.is_serving()
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=5).close()

    loop = new_event_loop()
    try:
        loop.run_until_complete(scenario())
    finally:
        loop.close()


def test_http_is_served_on_the_loop() -> None:
    async def scenario() -> bytes:
        loop = asyncio.get_running_loop()

        class Hello(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                self.transport = cast(asyncio.Transport, transport)

            def data_received(self, data: bytes) -> None:
                self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

        server = await loop.create_server(Hello, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = await reader.readexactly(40)
        writer.close()
        server.close()
        return answer

    loop = new_event_loop()
    try:
        assert isinstance(loop, EagerAcceptLoop)
        assert loop.run_until_complete(scenario()).endswith(b"\r\n\r\nok")
    finally:
        loop.close()
