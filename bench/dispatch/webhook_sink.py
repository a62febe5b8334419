"""A small keep-alive HTTP sink for the dispatcher benchmark: answers every POST with 200.

Run as `python bench/dispatch/webhook_sink.py PORT [KEYS_FILE]`; it prints the number of
requests it received when it gets SIGTERM. With KEYS_FILE it appends each request's
X-Huiqi-Idempotency-Key to that file, one a line, as it arrives (`bench province` counts them).
"""

from __future__ import annotations

import asyncio
import signal
import sys
from typing import TextIO

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"
received = 0
keys: TextIO | None = None


class Sink(asyncio.Protocol):
    """Parses just enough HTTP/1.1 (headers, Content-Length) to answer pipelined requests."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        global received
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            length = 0
            key = b""
            for line in self.buffer[:end].split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
                elif name.strip().lower() == b"x-huiqi-idempotency-key":
                    key = value.strip()
            if len(self.buffer) < end + 4 + length:
                return
            self.buffer = self.buffer[end + 4 + length :]
            received += 1
            if keys is not None:
                keys.write(key.decode("ascii", "replace") + "\n")
            self.transport.write(RESPONSE)  # type: ignore[attr-defined]


async def main(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Sink, "127.0.0.1", port, backlog=1024)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    print("ready", flush=True)
    async with server:
        await stop.wait()
    print(received, flush=True)


if __name__ == "__main__":
    if len(sys.argv) > 2:
        keys = open(sys.argv[2], "a", buffering=1, encoding="ascii")  # noqa: SIM115
    asyncio.run(main(int(sys.argv[1])))
