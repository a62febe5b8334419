"""Delivery channels: e-mail over SMTP, signed webhooks, SMS through a gateway interface.

Each channel's `send` either returns (accepted) or raises DeliveryError, which says whether a
retry can help. Every message carries its outbox row's idempotency key (e-mail Message-ID,
webhook header, SMS gateway reference) so a resend after a crash can be recognised.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import smtplib
import socket
import time
from dataclasses import dataclass, field
from email import policy as email_policy
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx

from huiqi.core.config import Settings

log = logging.getLogger("huiqi.notify")

# Long ASCII headers (the List-Unsubscribe URL) must not be RFC 2047-encoded when folded.
MAIL_POLICY = email_policy.SMTP.clone(max_line_length=998)
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


def message_id(idempotency_key: str) -> str:
    """The e-mail Message-ID of an outbox row: its idempotency key, so resends are recognisable."""
    return f"<{idempotency_key}@huiqi>"


class EmailSender:
    """E-mail through an SMTP relay (HUIQI_SMTP_HOST / PORT / FROM)."""

    def __init__(self, host: str, port: int, sender: str, timeout: float = 10) -> None:
        """Remember the relay; one connection per message keeps failures isolated."""
        self.host, self.port, self.sender, self.timeout = host, port, sender, timeout

    @classmethod
    def from_settings(cls, settings: Settings) -> EmailSender:
        """The relay configured in the settings."""
        return cls(
            settings.smtp_host,
            settings.smtp_port,
            settings.smtp_from,
            settings.smtp_timeout_seconds,
        )

    def build(self, message: Outbound) -> EmailMessage:
        """The MIME message (plain text, UTF-8) with the idempotency key as Message-ID."""
        mail = EmailMessage(policy=MAIL_POLICY)
        mail["From"] = self.sender
        mail["To"] = message.recipient
        mail["Subject"] = message.subject
        mail["Date"] = formatdate(localtime=False)
        mail["Message-ID"] = message_id(message.idempotency_key)
        mail[IDEMPOTENCY_HEADER] = message.idempotency_key
        mail["List-Unsubscribe"] = f"<{message.unsubscribe_url}>"
        mail.set_content(message.text, charset="utf-8")
        return mail

    def send(self, message: Outbound) -> None:
        """Hand the message to the relay; refused recipients are permanent, the rest retried."""
        mail = self.build(message)
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                smtp.send_message(mail)
        except smtplib.SMTPRecipientsRefused as exc:
            raise DeliveryError(f"recipient refused: {exc.recipients}", permanent=True) from None
        except smtplib.SMTPResponseException as exc:
            permanent = 500 <= exc.smtp_code < 600
            raise DeliveryError(
                f"SMTP {exc.smtp_code}: {exc.smtp_error!r}", permanent=permanent
            ) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"SMTP {self.host}:{self.port}: {exc}") from None


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

    def __init__(self, *, timeout: float = 10, allow_private: bool = False) -> None:
        """Configure the timeout and whether private addresses are allowed (tests, intranets)."""
        self.timeout = timeout
        self.allow_private = allow_private

    @classmethod
    def from_settings(cls, settings: Settings) -> WebhookSender:
        """The sender configured in the settings."""
        return cls(
            timeout=settings.webhook_timeout_seconds, allow_private=settings.webhook_allow_private
        )

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
        transport = PinnedTransport(host, address)
        try:
            # no proxies from the environment: a proxy would resolve the name again
            with httpx.Client(
                transport=transport, timeout=self.timeout, follow_redirects=False, trust_env=False
            ) as client:
                response = client.post(message.recipient, content=body.encode(), headers=headers)
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

    def __init__(self) -> None:
        """Keep what was 'sent' so the demo and tests can show it."""
        self.sent: list[tuple[str, str, str]] = []

    def send_text(self, phone: str, text: str, reference: str) -> None:
        """Log the SMS (the phone number masked in the log line)."""
        self.sent.append((phone, text, reference))
        log.info("SMS to %s***%s [%s]: %s", phone[:3], phone[-4:], reference, text)


SMS_MAX_CHARS = 300


class SmsSender:
    """SMS through a gateway; the text is the subject, the link and the unsubscribe link."""

    def __init__(self, gateway: SmsGateway) -> None:
        """Wrap a gateway."""
        self.gateway = gateway

    def send(self, message: Outbound) -> None:
        """Shorten to an SMS and submit it with the idempotency key as reference."""
        text = f"【惠企】{message.subject} 详情:{message.link} 退订:{message.unsubscribe_url}"
        self.gateway.send_text(message.recipient, text[:SMS_MAX_CHARS], message.idempotency_key)
