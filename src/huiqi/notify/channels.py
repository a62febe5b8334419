"""Delivery channels: e-mail over SMTP, signed webhooks, SMS through a gateway interface.

Each channel's `send` either returns (accepted) or raises DeliveryError, which says whether a
retry can help. Every message carries its outbox row's idempotency key (e-mail Message-ID,
webhook header, SMS gateway reference) so a resend after a crash can be recognised.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import ipaddress
import json
import logging
import smtplib
import socket
import ssl
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from email.header import Header
from email.utils import formataddr, formatdate, parseaddr
from typing import Any, Protocol
from urllib.parse import urlsplit

from huiqi.core.config import Settings
from huiqi.notify.errors import DeliveryError
from huiqi.notify.smtp_pipeline import Envelope, send_run

log = logging.getLogger("huiqi.notify")

SIGNATURE_HEADER = "X-Huiqi-Signature"
TIMESTAMP_HEADER = "X-Huiqi-Timestamp"
IDEMPOTENCY_HEADER = "X-Huiqi-Idempotency-Key"


@dataclass
class Outbound:
    """A rendered message ready for a channel."""

    idempotency_key: str
    channel: str
    recipient: str
    credit_code: str
    subject: str
    text: str
    link: str
    unsubscribe_url: str
    payload: dict[str, Any] = field(default_factory=dict)
    webhook_secret: str | None = None


class Sender(Protocol):
    """A delivery channel."""

    def send(self, message: Outbound) -> None:
        """Deliver or raise DeliveryError."""


def send_all(sender: Sender, messages: Sequence[Outbound]) -> list[DeliveryError | None]:
    """Send a batch over one channel; one outcome per message (None = accepted).

    Channels with a `send_many` (one SMTP connection per batch, pooled HTTP connections)
    get the whole batch; others are called message by message.
    """
    many: Callable[[Sequence[Outbound]], list[DeliveryError | None]] | None = getattr(
        sender, "send_many", None
    )
    if many is None:
        return [attempt(sender.send, m) for m in messages]
    try:
        return many(messages)
    except Exception as exc:  # a channel bug: the whole batch is retried, never lost
        log.exception("sending a batch of %d failed", len(messages))
        return [DeliveryError(f"{type(exc).__name__}: {exc}")] * len(messages)


def attempt(send: Callable[[Outbound], None], message: Outbound) -> DeliveryError | None:
    """Run one send; a channel bug becomes a retryable DeliveryError, never an escape."""
    try:
        send(message)
    except DeliveryError as exc:
        return exc
    except Exception as exc:
        log.exception("outbox %s: unexpected error", message.idempotency_key)
        return DeliveryError(f"{type(exc).__name__}: {exc}")
    return None


def _chunks(items: Sequence[Outbound], parts: int) -> list[Sequence[Outbound]]:
    """Split into at most `parts` contiguous runs of nearly equal length."""
    parts = max(1, min(parts, len(items)))
    size = -(-len(items) // parts)
    return [items[i : i + size] for i in range(0, len(items), size)]


def _text_header(value: str) -> str:
    """A header value as it may travel: ASCII as is, anything else RFC 2047 (UTF-8, folded)."""
    if value.isascii():
        return value
    return Header(value, "utf-8").encode(linesep="\r\n")


def _address_header(value: str) -> str:
    """An address header with a non-ASCII display name encoded."""
    name, address = parseaddr(value)
    if not name or name.isascii():
        return value
    return formataddr((Header(name, "utf-8").encode(), address))


def message_id(idempotency_key: str) -> str:
    """The e-mail Message-ID of an outbox row: its idempotency key, so resends are recognisable."""
    return f"<{idempotency_key}@huiqi>"


class EmailSender:
    """E-mail through an SMTP relay (HUIQI_SMTP_HOST / PORT / FROM)."""

    def __init__(
        self, host: str, port: int, sender: str, timeout: float = 10, connections: int = 4
    ) -> None:
        """Remember the relay; a batch is sent over up to `connections` SMTP sessions."""
        self.host, self.port, self.sender, self.timeout = host, port, sender, timeout
        self.connections = connections
        self.envelope_from = parseaddr(sender)[1] or sender

    @classmethod
    def from_settings(cls, settings: Settings) -> EmailSender:
        """The relay configured in the settings."""
        return cls(
            settings.smtp_host,
            settings.smtp_port,
            settings.smtp_from,
            settings.smtp_timeout_seconds,
            settings.notify_smtp_connections,
        )

    def build(self, message: Outbound) -> bytes:
        """The MIME message (plain text, UTF-8, base64) with the idempotency key as Message-ID.

        Written directly rather than through email.message.EmailMessage, whose header registry
        costs milliseconds a message — the bulk of a mass push's time. Non-ASCII header text is
        RFC 2047-encoded; the long ASCII List-Unsubscribe URL is left whole (lines may be 998).
        """
        lines = [
            f"From: {_address_header(self.sender)}",
            f"To: {_address_header(message.recipient)}",
            f"Subject: {_text_header(message.subject)}",
            f"Date: {formatdate(localtime=False)}",
            f"Message-ID: {message_id(message.idempotency_key)}",
            f"{IDEMPOTENCY_HEADER}: {message.idempotency_key}",
            f"List-Unsubscribe: <{message.unsubscribe_url}>",
            "MIME-Version: 1.0",
            'Content-Type: text/plain; charset="utf-8"',
            "Content-Transfer-Encoding: base64",
            "",
        ]
        body = base64.encodebytes(message.text.encode("utf-8")).replace(b"\n", b"\r\n")
        return "\r\n".join(lines).encode("ascii") + b"\r\n" + body

    def send(self, message: Outbound) -> None:
        """Hand one message to the relay; refused recipients are permanent, the rest retried."""
        error = self.send_many([message])[0]
        if error is not None:
            raise error

    def send_many(self, messages: Sequence[Outbound]) -> list[DeliveryError | None]:
        """Send a batch over a few SMTP sessions at once, each reused for its share."""
        chunks = _chunks(messages, self.connections)
        if len(chunks) <= 1:
            return self._session(messages)
        with ThreadPoolExecutor(max_workers=len(chunks), thread_name_prefix="smtp") as pool:
            return [e for part in pool.map(self._session, chunks) for e in part]

    def _session(self, messages: Sequence[Outbound]) -> list[DeliveryError | None]:
        """One SMTP session for a run of messages, pipelined when the relay offers it.

        A refusal of one message leaves the session usable; a session that breaks is opened
        again for the messages after the one it broke on, and when the relay cannot be reached
        at all the rest of the run is given the same (retryable) error without knocking again.
        """
        built: list[Envelope | DeliveryError] = []
        for message in messages:
            try:
                built.append(Envelope(message.recipient, self.build(message)))
            except UnicodeError as exc:  # an address that only SMTPUTF8 could carry
                built.append(DeliveryError(f"cannot be written as e-mail: {exc}", permanent=True))
        envelopes = [b for b in built if isinstance(b, Envelope)]
        sent = iter(self._run(envelopes))
        return [next(sent) if isinstance(b, Envelope) else b for b in built]

    def _run(self, envelopes: Sequence[Envelope]) -> list[DeliveryError | None]:
        """Send built messages, opening a new session whenever one breaks."""
        errors: list[DeliveryError | None] = []
        while len(errors) < len(envelopes):
            try:
                smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            except (smtplib.SMTPException, OSError) as exc:
                down = DeliveryError(f"SMTP {self.host}:{self.port}: {exc}", unreachable=True)
                errors.extend([down] * (len(envelopes) - len(errors)))
                break
            try:
                errors += send_run(smtp, self.envelope_from, envelopes[len(errors) :])
            finally:
                self._close(smtp)
        return errors

    @staticmethod
    def _close(smtp: smtplib.SMTP) -> None:
        """End a session politely if it is still open."""
        if smtp.sock is None:
            return
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            smtp.close()


def sign(secret: str, timestamp: str, body: str) -> str:
    """HMAC-SHA256 hex digest over f"{timestamp}.{body}" with the enterprise's secret."""
    return hmac.new(secret.encode(), f"{timestamp}.{body}".encode(), hashlib.sha256).hexdigest()


def verify_signature(
    secret: str,
    timestamp: str,
    body: str,
    signature: str,
    *,
    tolerance_seconds: int = 300,
    now: float | None = None,
) -> bool:
    """What a receiver does: check the signature and refuse stale timestamps (replays)."""
    try:
        age = abs((now if now is not None else time.time()) - int(timestamp))
    except ValueError:
        return False
    return age <= tolerance_seconds and hmac.compare_digest(
        sign(secret, timestamp, body), signature
    )


def resolve_webhook_host(url: str, *, allow_private: bool) -> str:
    """Resolve the webhook host once and return the address to connect to.

    Every address the name resolves to must be public unless private ones are allowed (SSRF);
    the caller then connects to exactly this address (see PinnedTransport), so a DNS answer
    that changes between this check and the connection (DNS rebinding) is never consulted.
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise DeliveryError(f"cannot resolve {host}: {exc}") from None
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    if not addresses:
        raise DeliveryError(f"cannot resolve {host}: no address")
    if not allow_private:
        for address in addresses:
            if not address.is_global:
                raise DeliveryError(
                    f"{host} resolves to non-public address {address}; refused", permanent=True
                )
    return str(addresses[0])


class PinnedConnection(http.client.HTTPSConnection):
    """A keep-alive HTTP(S) connection to one checked address that keeps the host's name.

    The TCP connection goes to `address` (never a new DNS answer); the Host header is sent by
    the caller and, for https, the TLS server name and certificate check use the host name.
    """

    def __init__(
        self, scheme: str, host: str, port: int, address: str, timeout: float, tls: ssl.SSLContext
    ) -> None:
        """Pin `host` to `address`; `tls` is used only for https."""
        super().__init__(address, port, timeout=timeout, context=tls)
        self.scheme, self.server_name, self.tls = scheme, host, tls
        self.used = False  # whether a request went over the current TCP connection

    def connect(self) -> None:
        """Open TCP to the checked address, then TLS for the host name when https."""
        http.client.HTTPConnection.connect(self)
        self.used = False
        if self.scheme == "https":
            self.sock = self.tls.wrap_socket(self.sock, server_hostname=self.server_name)


class WebhookSender:
    """JSON POST signed with HMAC-SHA256; redirects are not followed (they could point inward).

    Requests go over the standard library's HTTP client: a keep-alive connection per sending
    thread and host, pinned to the address checked by resolve_webhook_host. (An httpx client
    cost 0.7 ms of CPU a request and, shared by the sending threads, queued them on its pool's
    lock; this costs about 0.2 ms.)
    """

    MAX_CONNECTIONS = 256  # per sending thread
    MAX_RESPONSE = 65_536  # bytes of a receiver's answer read; the rest is not wanted

    def __init__(
        self, *, timeout: float = 10, allow_private: bool = False, concurrency: int = 16
    ) -> None:
        """Configure the timeout, whether private addresses are allowed, and parallel requests."""
        self.timeout = timeout
        self.allow_private = allow_private
        self.concurrency = concurrency
        self._local = threading.local()
        self._every: set[PinnedConnection] = set()
        self._lock = threading.Lock()
        self._threads: ThreadPoolExecutor | None = None
        self._tls: ssl.SSLContext | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> WebhookSender:
        """The sender configured in the settings."""
        return cls(
            timeout=settings.webhook_timeout_seconds,
            allow_private=settings.webhook_allow_private,
            concurrency=settings.notify_webhook_concurrency,
        )

    def _connection(self, scheme: str, host: str, port: int, address: str) -> PinnedConnection:
        """This thread's keep-alive connection to the host at its checked address."""
        pool: OrderedDict[tuple[str, str, int, str], PinnedConnection] | None = getattr(
            self._local, "connections", None
        )
        if pool is None:
            pool = self._local.connections = OrderedDict()
        key = (scheme, host, port, address)
        conn = pool.get(key)
        if conn is not None:
            pool.move_to_end(key)
            return conn
        with self._lock:
            if self._tls is None:  # loading the CA certificates takes a while: once
                self._tls = ssl.create_default_context()
            conn = PinnedConnection(scheme, host, port, address, self.timeout, self._tls)
            self._every.add(conn)
            pool[key] = conn
            while len(pool) > self.MAX_CONNECTIONS:
                old = pool.popitem(last=False)[1]
                self._every.discard(old)
                old.close()
        return conn

    def close(self) -> None:
        """Stop the sending threads and close every kept connection."""
        with self._lock:
            threads, self._threads = self._threads, None
        if threads is not None:
            threads.shutdown(wait=True)
        with self._lock:
            for conn in self._every:
                conn.close()
            self._every.clear()

    def _pool(self) -> ThreadPoolExecutor:
        """The sending threads, kept between batches so their connections stay open."""
        with self._lock:
            if self._threads is None:
                self._threads = ThreadPoolExecutor(
                    max_workers=self.concurrency, thread_name_prefix="webhook"
                )
            return self._threads

    def send_many(self, messages: Sequence[Outbound]) -> list[DeliveryError | None]:
        """POST a batch with up to `concurrency` requests in flight over kept connections.

        Each host is resolved and checked once for the batch, not once per message.
        """
        checked: dict[tuple[str, int | None], str | DeliveryError] = {}
        for message in messages:
            parts = urlsplit(message.recipient)
            key = (parts.hostname or "", parts.port)
            if key not in checked:
                try:
                    checked[key] = resolve_webhook_host(
                        message.recipient, allow_private=self.allow_private
                    )
                except DeliveryError as exc:
                    checked[key] = exc

        def one(message: Outbound) -> DeliveryError | None:
            parts = urlsplit(message.recipient)
            address = checked[(parts.hostname or "", parts.port)]
            if isinstance(address, DeliveryError):
                return address
            return attempt(lambda m: self.send(m, address=address), message)

        if len(messages) <= 1 or self.concurrency <= 1:
            return [one(m) for m in messages]
        return list(self._pool().map(one, messages))

    def send(self, message: Outbound, *, address: str | None = None) -> None:
        """POST the payload; 2xx is delivered, 408/425/429/5xx and network errors are retried.

        `address` is the host's address already checked by resolve_webhook_host, if any.
        """
        parts = urlsplit(message.recipient)
        if parts.scheme not in ("http", "https"):
            raise DeliveryError("webhook URL must be http(s)", permanent=True)
        if not message.webhook_secret:
            raise DeliveryError("no webhook secret configured", permanent=True)
        if address is None:
            address = resolve_webhook_host(message.recipient, allow_private=self.allow_private)
        body = json.dumps(message.payload, ensure_ascii=False, sort_keys=True)
        timestamp = str(int(time.time()))
        headers = {
            "Host": parts.netloc.rpartition("@")[2],
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "huiqi-webhook/1",
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(message.webhook_secret, timestamp, body),
            IDEMPOTENCY_HEADER: message.idempotency_key,
        }
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        port = parts.port or (443 if parts.scheme == "https" else 80)
        conn = self._connection(parts.scheme, parts.hostname or "", port, address)
        status = self._post(conn, target, body.encode(), headers)
        if 200 <= status < 300:
            return
        retry = status in (408, 425, 429) or status >= 500
        raise DeliveryError(f"webhook answered HTTP {status}", permanent=not retry)

    def _post(
        self, conn: PinnedConnection, target: str, body: bytes, headers: dict[str, str]
    ) -> int:
        """The status of one POST; a kept connection the receiver closed meanwhile is reopened."""
        for fresh in (False, True):
            reused = conn.used and not fresh
            try:
                conn.request("POST", target, body=body, headers=headers)
                response = conn.getresponse()
                response.read(self.MAX_RESPONSE)
                conn.used = True
                if not response.isclosed():  # an answer longer than wanted: drop the connection
                    conn.close()
                return response.status
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as exc:
                conn.close()
                if not reused:  # the receiver itself hung up, not an idle connection's end
                    raise DeliveryError(f"webhook {type(exc).__name__}: {exc}") from None
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                raise DeliveryError(f"webhook {type(exc).__name__}: {exc}") from None
        raise AssertionError("unreachable")  # the second pass always returns or raises


class SmsGateway(Protocol):
    """An SMS provider: send one text to one mainland mobile number."""

    def send_text(self, phone: str, text: str, reference: str) -> None:
        """Submit the text; raise DeliveryError on failure."""


class LogSmsGateway:
    """The demo gateway: writes each SMS to the log instead of sending it."""

    def __init__(self, keep: int = 1000) -> None:
        """Keep the newest `keep` texts 'sent' so the demo and tests can show them."""
        self.sent: deque[tuple[str, str, str]] = deque(maxlen=keep)

    def send_text(self, phone: str, text: str, reference: str) -> None:
        """Log the SMS (the phone number masked in the log line)."""
        self.sent.append((phone, text, reference))
        log.info("SMS to %s***%s [%s]: %s", phone[:3], phone[-4:], reference, text)


SMS_MAX_CHARS = 300
SMS_SIGNATURE = "【惠企】"


class SmsSender:
    """SMS through a gateway; the text is the subject, the link and the unsubscribe link."""

    def __init__(self, gateway: SmsGateway) -> None:
        """Wrap a gateway."""
        self.gateway = gateway

    def send(self, message: Outbound) -> None:
        """Shorten to an SMS and submit it with the idempotency key as reference.

        The signature 【惠企】 leads every SMS exactly once (subjects may carry it already).
        """
        subject = message.subject.removeprefix(SMS_SIGNATURE)
        text = f"{SMS_SIGNATURE}{subject} 详情:{message.link} 退订:{message.unsubscribe_url}"
        self.gateway.send_text(message.recipient, text[:SMS_MAX_CHARS], message.idempotency_key)
