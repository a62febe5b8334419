"""A scripted SMTP relay for the pipelining tests: strict about RFC 2920 and able to misbehave.

With PIPELINING on it answers a command group only once the group's last command (DATA, EHLO,
QUIT) is in, as a relay may: a client that waits for the answer to MAIL before sending RCPT
waits for ever (its timeout). After a message's content it answers at once only when nothing
more has come in within a short while; such answers are counted, so a test can tell a client
that sends each content together with the next message's commands from one that waits.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
from dataclasses import dataclass, field

WAIT_FOR_MORE = 0.3  # seconds the relay waits for the next group after a message's content


@dataclass
class ScriptedRelay:
    """A running relay: what it accepted and how it was spoken to."""

    pipelining: bool = True
    drop_at: int | None = None  # hang up on receiving the content of the n-th message (1-based)
    messages: list[tuple[str, bytes]] = field(default_factory=list)  # recipient, content
    sessions: int = 0
    waits: int = 0  # answers to a content given because nothing else came (client waited)
    received: int = 0  # contents received, including one the relay hung up on
    lock: threading.Lock = field(default_factory=threading.Lock)
    listener: socket.socket | None = None
    port: int = 0

    def start(self, port: int = 0) -> ScriptedRelay:
        """Listen on 127.0.0.1 (a free port unless given) and serve in a thread."""
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen(16)
        self.listener, self.port = listener, int(listener.getsockname()[1])
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop listening (a client now gets connection refused)."""
        if self.listener is not None:
            with contextlib.suppress(OSError):
                self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread
            self.listener.close()
            self.listener = None

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with self.lock:
                self.sessions += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            _Session(self, conn).run()


class _Session:
    def __init__(self, relay: ScriptedRelay, conn: socket.socket) -> None:
        self.relay, self.conn = relay, conn
        self.buffer = bytearray()
        self.answers: list[bytes] = []

    def line(self) -> bytes:
        while b"\n" not in self.buffer:
            data = self.conn.recv(65536)
            if not data:
                return b""
            self.buffer += data
        end = self.buffer.index(b"\n") + 1
        text = bytes(self.buffer[:end])
        del self.buffer[:end]
        return text

    def answer(self, text: str, *, flush: bool = False) -> None:
        self.answers.append(text.encode() + b"\r\n")
        if flush or not self.relay.pipelining:
            self.conn.sendall(b"".join(self.answers))
            self.answers.clear()

    def more_coming(self) -> bool:
        return bool(self.buffer) or bool(select.select([self.conn], [], [], WAIT_FOR_MORE)[0])

    def run(self) -> None:
        relay = self.relay
        self.answer("220 relay ready", flush=True)
        sender: bytes | None = None
        recipients: list[str] = []
        while line := self.line():
            verb = line[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                extensions = ["PIPELINING"] if relay.pipelining else []
                for ext in ["relay", *extensions][:-1]:
                    self.answer(f"250-{ext}")
                self.answer(f"250 {(['relay', *extensions])[-1]}", flush=True)
            elif verb == b"MAIL":
                if sender is not None:
                    self.answer("503 5.5.1 nested MAIL command")
                else:
                    sender = line
                    self.answer("250 2.1.0 ok")
            elif verb == b"RCPT":
                address = line.decode().partition("<")[2].partition(">")[0]
                if sender is None:
                    self.answer("503 5.5.1 need MAIL first")
                elif address.startswith("refused"):
                    self.answer("550 5.1.1 no such user")
                elif address.startswith("later"):
                    self.answer("451 4.3.0 try again later")
                else:
                    recipients.append(address)
                    self.answer("250 2.1.5 ok")
            elif verb == b"DATA":
                if not recipients:
                    self.answer("554 5.5.1 no valid recipients", flush=True)
                    continue
                self.answer("354 go ahead", flush=True)
                content = bytearray()
                while (part := self.line()) not in (b".\r\n", b""):
                    content += part[1:] if part.startswith(b"..") else part
                with relay.lock:
                    relay.received += 1
                    if relay.received == relay.drop_at:
                        return  # hang up without answering
                    relay.messages.append((recipients[0], bytes(content)))
                sender, recipients = None, []
                if relay.pipelining and not self.more_coming():
                    with relay.lock:
                        relay.waits += 1
                    self.answer("250 2.0.0 queued", flush=True)
                else:
                    self.answer("250 2.0.0 queued")
            elif verb == b"RSET":
                sender, recipients = None, []
                self.answer("250 2.0.0 ok")
            elif verb == b"QUIT":
                self.answer("221 2.0.0 bye", flush=True)
                return
            else:
                self.answer("500 5.5.2 unknown command", flush=True)
