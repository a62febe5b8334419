"""Delivery channels: e-mail over SMTP, signed webhooks, SMS through a gateway interface.

Each channel's `send` either returns (accepted) or raises DeliveryError, which says whether a
retry can help. Every message carries its outbox row's idempotency key (e-mail Message-ID,
webhook header, SMS gateway reference) so a resend after a crash can be recognised.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import logging
import smtplib
import socket
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

import httpx

from huiqi.core.config import Settings

log = logging.getLogger("huiqi.notify")

SIGNATURE_HEADER = "X-Huiqi-Signature"
TIMESTAMP_HEADER = "X-Huiqi-Timestamp"
IDEMPOTENCY_HEADER = "X-Huiqi-Idempotency-Key"


class DeliveryError(Exception):
    """A send failed; `permanent` means retrying cannot help (dead-letter at once)."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


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
        """One SMTP connection for a run of messages.

        A refusal of one message (4xx/5xx) leaves the session usable; a broken connection is
        opened again for the next message, and when the relay cannot be reached at all the
        rest of the run is given the same (retryable) error without knocking again.
        """
        errors: list[DeliveryError | None] = []
        smtp: smtplib.SMTP | None = None
        try:
            for index, message in enumerate(messages):
                try:
                    if smtp is None:
                        smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
                except (smtplib.SMTPException, OSError) as exc:
                    down = DeliveryError(f"SMTP {self.host}:{self.port}: {exc}")
                    errors.extend([down] * (len(messages) - index))
                    break
                try:
                    smtp.sendmail(self.envelope_from, [message.recipient], self.build(message))
                    errors.append(None)
                except smtplib.SMTPRecipientsRefused as exc:
                    errors.append(
                        DeliveryError(f"recipient refused: {exc.recipients}", permanent=True)
                    )
                except smtplib.SMTPResponseException as exc:
                    errors.append(
                        DeliveryError(
                            f"SMTP {exc.smtp_code}: {exc.smtp_error!r}",
                            permanent=500 <= exc.smtp_code < 600,
                        )
                    )
                    if exc.smtp_code in (421, 554):  # the relay is closing the session
                        smtp = self._close(smtp)
                except (smtplib.SMTPException, OSError) as exc:
                    errors.append(DeliveryError(f"SMTP {self.host}:{self.port}: {exc}"))
                    smtp = self._close(smtp)
                except Exception as exc:  # e.g. an address smtplib cannot encode
                    log.exception("outbox %s: unexpected error", message.idempotency_key)
                    errors.append(DeliveryError(f"{type(exc).__name__}: {exc}"))
        finally:
            self._close(smtp)
        return errors

    @staticmethod
    def _close(smtp: smtplib.SMTP | None) -> None:
        """End a session politely if it still answers."""
        if smtp is None:
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


class PinnedTransport(httpx.BaseTransport):
    """Connects to one checked address while the request keeps its host name.

    The URL's host is swapped for the address just before the connection is made; the Host
    header (set from the original URL) and, for https, the TLS server name and certificate
    check (the `sni_hostname` extension) still use the host name.
    """

    def __init__(self, host: str, address: str) -> None:
        """Pin `host` to `address`; requests for any other host are refused."""
        self.host, self.address = host, address
        self._inner = httpx.HTTPTransport(retries=0)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Send the request to the pinned address."""
        if request.url.host != self.host:
            raise httpx.ConnectError(f"request for {request.url.host} refused", request=request)
        request.url = request.url.copy_with(host=self.address)
        request.extensions = {**request.extensions, "sni_hostname": self.host}
        return self._inner.handle_request(request)

    def close(self) -> None:
        """Close the pooled connections."""
        self._inner.close()


class WebhookSender:
    """JSON POST signed with HMAC-SHA256; redirects are not followed (they could point inward)."""

    MAX_CLIENTS = 256

    def __init__(
        self, *, timeout: float = 10, allow_private: bool = False, concurrency: int = 16
    ) -> None:
        """Configure the timeout, whether private addresses are allowed, and parallel requests."""
        self.timeout = timeout
        self.allow_private = allow_private
        self.concurrency = concurrency
        # one pooled client per (host, checked address): keep-alive connections are reused
        # across messages and batches, and never lead to any other address
        self._clients: OrderedDict[tuple[str, str], httpx.Client] = OrderedDict()
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> WebhookSender:
        """The sender configured in the settings."""
        return cls(
            timeout=settings.webhook_timeout_seconds,
            allow_private=settings.webhook_allow_private,
            concurrency=settings.notify_webhook_concurrency,
        )

    def _client(self, host: str, address: str) -> httpx.Client:
        """The pooled client pinned to this host's checked address."""
        key = (host, address)
        with self._lock:
            client = self._clients.get(key)
            if client is not None:
                self._clients.move_to_end(key)
                return client
            # no proxies from the environment: a proxy would resolve the name again
            client = httpx.Client(
                transport=PinnedTransport(host, address),
                timeout=self.timeout,
                follow_redirects=False,
                trust_env=False,
            )
            self._clients[key] = client
            while len(self._clients) > self.MAX_CLIENTS:
                self._clients.popitem(last=False)[1].close()
            return client

    def close(self) -> None:
        """Close every pooled connection."""
        with self._lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()

    def send_many(self, messages: Sequence[Outbound]) -> list[DeliveryError | None]:
        """POST a batch with up to `concurrency` requests in flight over pooled connections."""
        if len(messages) <= 1 or self.concurrency <= 1:
            return [attempt(self.send, m) for m in messages]
        workers = min(self.concurrency, len(messages))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="webhook") as pool:
            return list(pool.map(lambda m: attempt(self.send, m), messages))

    def send(self, message: Outbound) -> None:
        """POST the payload; 2xx is delivered, 408/425/429/5xx and network errors are retried."""
        if urlsplit(message.recipient).scheme not in ("http", "https"):
            raise DeliveryError("webhook URL must be http(s)", permanent=True)
        if not message.webhook_secret:
            raise DeliveryError("no webhook secret configured", permanent=True)
        host = urlsplit(message.recipient).hostname or ""
        address = resolve_webhook_host(message.recipient, allow_private=self.allow_private)
        body = json.dumps(message.payload, ensure_ascii=False, sort_keys=True)
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "huiqi-webhook/1",
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(message.webhook_secret, timestamp, body),
            IDEMPOTENCY_HEADER: message.idempotency_key,
        }
        try:
            response = self._client(host, address).post(
                message.recipient, content=body.encode(), headers=headers
            )
        except httpx.HTTPError as exc:
            raise DeliveryError(f"webhook {type(exc).__name__}: {exc}") from None
        status = response.status_code
        if 200 <= status < 300:
            return
        retry = status in (408, 425, 429) or status >= 500
        raise DeliveryError(f"webhook answered HTTP {status}", permanent=not retry)


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
