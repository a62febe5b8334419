"""The server's event loop accepts every waiting connection in one turn (huiqi.web.accept)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import cast

import pytest
import uvloop

from huiqi.web.accept import EagerAcceptLoop, bind_shared, is_shared, new_event_loop

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


# Several workers: each is an event loop of its own in its own process; two servers in one
# loop stand in for them here (each server only ever reads its own listening socket).
CLIENTS = 64


async def _shares(make_sockets: Callable[[], list[socket.socket]]) -> list[int]:
    """Connections each of two servers was given when `CLIENTS` clients connected at once."""
    loop = asyncio.get_running_loop()
    given: list[list[asyncio.BaseTransport]] = [[], []]

    def recorder(made: list[asyncio.BaseTransport]) -> Callable[[], asyncio.Protocol]:
        class Noting(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                made.append(transport)

        return Noting

    sockets = make_sockets()
    servers = [
        await loop.create_server(recorder(made), sock=sock, backlog=256)
        for made, sock in zip(given, sockets, strict=True)
    ]
    port = servers[0].sockets[0].getsockname()[1]
    clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(CLIENTS)]
    try:
        turns = 0
        while sum(map(len, given)) < CLIENTS and turns < 10 * CLIENTS:
            await asyncio.sleep(0)
            turns += 1
        return [len(made) for made in given]
    finally:
        for transport in given[0] + given[1]:
            transport.close()
        for client in clients:
            client.close()
        for server in servers:
            server.close()
        for sock in sockets:
            sock.close()


def _run_shares(make_sockets: Callable[[], list[socket.socket]]) -> list[int]:
    loop = new_event_loop()
    try:
        return loop.run_until_complete(_shares(make_sockets))
    finally:
        loop.close()


def test_one_listening_socket_gives_everyone_waiting_to_the_first_worker_awake() -> None:
    # why the workers do not share one: the eager accepter that wakes first takes them all
    def one_socket_twice() -> list[socket.socket]:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        return [sock, sock.dup()]

    assert sorted(_run_shares(one_socket_twice)) == [0, CLIENTS]


def test_workers_on_the_shared_port_each_get_a_fair_part_of_the_connections() -> None:
    def shared_port() -> list[socket.socket]:
        (sock,) = bind_shared("127.0.0.1", 0)
        return [sock, sock.dup()]  # both workers are handed the supervisor's socket

    shares = _run_shares(shared_port)
    assert sum(shares) == CLIENTS
    # the kernel hashes each client's address and port over the two sockets: a split worse
    # than 12/52 has a probability below 1e-6
    assert min(shares) >= 12, shares


def test_a_worker_listens_on_a_socket_of_its_own_and_never_on_the_supervisors() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        (shared,) = bind_shared("127.0.0.1", 0)
        assert is_shared(shared)
        server = await loop.create_server(asyncio.Protocol, sock=shared)
        (own,) = server.sockets
        assert own is not shared and own.getsockname() == shared.getsockname()
        assert own.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT)
        assert own.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
        assert not shared.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
        server.close()
        shared.close()

    loop = new_event_loop()
    try:
        loop.run_until_complete(scenario())
    finally:
        loop.close()


def test_only_a_bound_reuseport_socket_that_is_not_listening_counts_as_shared() -> None:
    plain = socket.socket()
    plain.bind(("127.0.0.1", 0))
    listening = socket.socket()
    listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    listening.bind(("127.0.0.1", 0))
    listening.listen()
    try:
        assert not is_shared(plain) and not is_shared(listening)
    finally:
        plain.close()
        listening.close()
