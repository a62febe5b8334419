"""The server's event loop: uvloop, with every waiting connection accepted in one turn.

uvloop's own server (libuv 1.45 and later) accepts one connection each time the loop polls.
Under load one turn of the loop serves every request that arrived on the open connections —
tens of milliseconds with a few hundred of them — so when many clients connect at once, the
last of them waits one turn per client ahead of it before its first request is even read: with
256 clients connecting to a busy worker, 2–5 s for the last hundred, while every request read
was answered within 250 ms. Here the listening socket is read as asyncio's own loop reads it:
each turn accepts everyone waiting (up to the backlog), and uvloop runs the connections as
before. TLS and uncommon server options keep uvloop's own server.

Several workers: an eager accepter on one shared listening socket takes whatever is waiting
into whichever worker woke first — with 32 clients connecting at once, all 32 went to one
worker in 6 trials of 8, the other sat idle, and keep-alive clients stay where they landed.
So `huiqi serve --workers N` binds its port with SO_REUSEPORT and never listens on it
(`bind_shared`); each worker, given that socket, listens on a socket of its own on the same
address, and the kernel spreads new connections over the workers' sockets by a hash of the
client's address and port. A worker still accepts everything waiting on its own socket at once.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import uvloop

log = logging.getLogger(__name__)

# Out of descriptors or memory: stop accepting for a moment instead of spinning (as asyncio does).
RESOURCE_ERRORS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
RETRY_SECONDS = 1.0


class EagerServer(asyncio.AbstractServer):
    """Listening sockets whose waiting connections are all accepted whenever one is readable."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        sockets: Iterable[socket.socket],
        backlog: int,
    ) -> None:
        """Serve `protocol_factory` on `sockets` (bound; listened on here with `backlog`)."""
        self._loop = loop
        self._protocol_factory = protocol_factory
        self._sockets = tuple(sockets)
        self._backlog = max(backlog, 1)
        self._serving = False
        # connections being set up (the loop itself keeps only weak references to tasks)
        self._connecting: set[asyncio.Task[None]] = set()

    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        """The listening sockets."""
        return self._sockets

    def _listen(self, sock: socket.socket) -> None:
        if self._serving:
            self._loop.add_reader(sock.fileno(), self._accept, sock)

    def _accept(self, sock: socket.socket) -> None:
        """Accept every connection waiting on `sock`, at most the backlog."""
        for _ in range(self._backlog):
            try:
                conn, _address = sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:
                continue  # the client gave up while queued
            except OSError as exc:
                if exc.errno not in RESOURCE_ERRORS:
                    raise
                log.warning("cannot accept connections (%s); retrying in %g s", exc, RETRY_SECONDS)
                self._loop.remove_reader(sock.fileno())
                self._loop.call_later(RETRY_SECONDS, self._listen, sock)
                return
            conn.setblocking(False)
            task = self._loop.create_task(self._connect(conn))
            self._connecting.add(task)
            task.add_done_callback(self._connecting.discard)

    async def _connect(self, conn: socket.socket) -> None:
        try:
            await self._loop.connect_accepted_socket(self._protocol_factory, conn)
        except OSError:  # the client left before its transport was made
            conn.close()

    def close(self) -> None:
        """Stop listening; connections already accepted go on (the server shuts them down)."""
        if not self._serving:
            return
        self._serving = False
        for sock in self._sockets:
            self._loop.remove_reader(sock.fileno())
            sock.close()

    def get_loop(self) -> asyncio.AbstractEventLoop:
        """The loop the server runs in."""
        return self._loop

    def is_serving(self) -> bool:
        """Whether the sockets are listened on."""
        return self._serving

    async def start_serving(self) -> None:
        """Listen on the sockets and accept from them."""
        if self._serving:
            return
        self._serving = True
        for sock in self._sockets:
            sock.setblocking(False)
            sock.listen(self._backlog)
            self._listen(sock)

    async def serve_forever(self) -> None:
        """Serve until cancelled."""
        await self.start_serving()
        try:
            await self._loop.create_future()
        finally:
            self.close()

    async def wait_closed(self) -> None:
        """Nothing to wait for: the sockets close at once, connections are the server's."""


def _bind(host: str | None, port: int | None, *, shared: bool = False) -> list[socket.socket]:
    """A socket bound to each address of `host` (every interface when empty) and `port`.

    `shared`: with SO_REUSEPORT, so that each worker can bind a listening socket of its own
    to the same address (see `bind_shared`).
    """
    found = socket.getaddrinfo(
        host or None, port or 0, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _name, address in dict.fromkeys(found):
            sockets.append(_bound(family, kind, proto, address, shared=shared))
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def _bound(family: int, kind: int, proto: int, address: Any, *, shared: bool) -> socket.socket:
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if shared:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            # the IPv4 address has its own socket
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


def bind_shared(host: str | None, port: int) -> list[socket.socket]:
    """The supervisor's sockets for several workers: bound with SO_REUSEPORT, never listened on.

    They hold the port (and tell each worker the address); a worker given one listens on a
    socket of its own (`worker_socket`), so the kernel balances connections over the workers.
    """
    if not hasattr(socket, "SO_REUSEPORT"):
        raise OSError("SO_REUSEPORT is not available on this system")
    return _bind(host, port, shared=True)


def is_shared(sock: socket.socket) -> bool:
    """Whether `sock` is a supervisor's socket from `bind_shared`: SO_REUSEPORT, not listening."""
    if sock.type != socket.SOCK_STREAM or not hasattr(socket, "SO_REUSEPORT"):
        return False
    return bool(sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT)) and not bool(
        sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
    )


def worker_socket(shared: socket.socket) -> socket.socket:
    """A worker's own socket, bound with SO_REUSEPORT to the address of the supervisor's."""
    return _bound(shared.family, shared.type, shared.proto, shared.getsockname(), shared=True)


class EagerAcceptLoop(uvloop.Loop):
    """uvloop, whose plain TCP servers accept every waiting connection in one turn."""

    async def create_server(  # type: ignore[override]
        self,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        host: str | None = None,
        port: int | None = None,
        *,
        sock: socket.socket | None = None,
        backlog: int = 100,
        ssl: Any = None,
        **options: Any,
    ) -> asyncio.AbstractServer:
        """A TCP server on `host` and `port` or on the bound socket `sock`."""
        if ssl is not None or options:
            uvloop_server: Callable[..., Awaitable[asyncio.AbstractServer]] = super().create_server
            return await uvloop_server(
                protocol_factory, host, port, sock=sock, backlog=backlog, ssl=ssl, **options
            )
        if sock is None:
            sockets = _bind(host, port)
        elif is_shared(sock):
            sockets = [worker_socket(sock)]  # the kernel balances the workers' own sockets
        else:
            sockets = [sock]
        eager = EagerServer(self, protocol_factory, sockets, backlog)
        await eager.start_serving()
        return eager


def new_event_loop() -> asyncio.AbstractEventLoop:
    """The event loop `huiqi serve` runs on (uvicorn's `loop` setting names this function)."""
    return EagerAcceptLoop()
