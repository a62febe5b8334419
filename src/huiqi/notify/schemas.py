"""Checked input for notification settings: addresses are refused when entered, not when sent."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from email_validator import EmailNotValidError, validate_email

from huiqi.core.errors import DomainError, Invalid, NotFound
from huiqi.notify.models import Topic

PHONE_RE = re.compile(r"^1[3-9]\d{9}$")  # mainland mobile numbers (11 digits, 13x–19x)
HHMM_RE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
MAX_DAILY_CAP = 100


class NotifyError(DomainError):
    """A notification request was refused; the message says why."""


class InvalidLink(NotFound, NotifyError):
    """A signed link (unsubscribe, open) that is forged, damaged or not ours: 404."""


class SettingsError(Invalid):
    """A notification setting was refused; `field` names it and the message says why."""

    def __init__(self, field_name: str, message: str) -> None:
        zh, _sep, en = message.partition(" / ")
        label_zh, label_en = SETTING_LABELS.get(field_name, (field_name, field_name))
        super().__init__(f"{label_zh}:{zh}", f"{label_en}: {en or zh}", field=field_name)
        self.message = message


# The settings as the form labels them, for messages that name a field.
SETTING_LABELS = {
    "email": ("邮箱地址", "E-mail address"),
    "phone": ("手机号", "Mobile"),
    "webhook_url": ("Webhook 接收地址", "Webhook URL"),
    "consent_email": ("邮件推送", "E-mail consent"),
    "consent_sms": ("短信推送", "SMS consent"),
    "consent_webhook": ("Webhook 推送", "Webhook consent"),
    "muted_topics": ("不接收的主题", "Muted topics"),
    "quiet_start": ("免打扰开始", "Quiet from"),
    "quiet_end": ("免打扰结束", "Quiet until"),
    "daily_cap": ("每日最多推送条数", "Messages per day"),
}


def check_email(raw: str) -> str:
    """A normalised e-mail address, or SettingsError (syntax only: no DNS lookup when entered)."""
    try:
        return validate_email(raw.strip(), check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise SettingsError("email", f"邮箱地址无效 / invalid e-mail address: {exc}") from None


def check_phone(raw: str) -> str:
    """An 11-digit mainland mobile number (spaces, dashes and +86 removed)."""
    digits = re.sub(r"[\s\-]", "", raw)
    if digits.startswith("+86"):
        digits = digits[3:]
    if not PHONE_RE.match(digits):
        raise SettingsError("phone", "手机号应为 11 位大陆手机号 / not an 11-digit mainland mobile")
    return digits


def _is_private_ip(host: str) -> bool:
    """Whether a literal IP address is loopback, private, link-local or otherwise not public."""
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return not ip.is_global


def check_webhook_url(raw: str, *, allow_private: bool) -> str:
    """A webhook URL that is safe to POST to.

    SSRF guard: only http and https; no user:password part; a host is required; loopback,
    private, link-local and reserved IP literals and `localhost` are refused unless
    HUIQI_WEBHOOK_ALLOW_PRIVATE is set. Names are resolved again just before each send
    (huiqi.notify.channels) so a name that later points inside the network is refused then.
    """
    url = raw.strip()
    if len(url) > 500:
        raise SettingsError("webhook_url", "地址过长(最多 500 字符) / longer than 500 characters")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise SettingsError("webhook_url", "只接受 http 或 https 地址 / only http(s) URLs")
    if not parts.hostname:
        raise SettingsError("webhook_url", "缺少主机名 / no host name")
    if parts.username or parts.password:
        raise SettingsError("webhook_url", "地址中不得包含用户名或密码 / no credentials in URL")
    try:
        _ = parts.port
    except ValueError:
        raise SettingsError("webhook_url", "端口无效 / invalid port") from None
    host = parts.hostname.lower()
    if not allow_private and (host == "localhost" or host.endswith(".localhost")):
        raise SettingsError("webhook_url", "不得指向本机 / must not point at this machine")
    if not allow_private and _is_private_ip(host):
        raise SettingsError(
            "webhook_url", "不得指向内网或保留地址 / must not point at a private address"
        )
    return url


def parse_hhmm(raw: str, field_name: str) -> int:
    """Minute of the day from 'HH:MM'."""
    m = HHMM_RE.match(raw.strip())
    if not m:
        raise SettingsError(field_name, "时间格式应为 HH:MM / time must be HH:MM")
    return int(m.group(1)) * 60 + int(m.group(2))


def fmt_hhmm(minute: int | None) -> str:
    """'HH:MM' for a minute of the day, '' for none."""
    if minute is None:
        return ""
    return f"{minute // 60:02d}:{minute % 60:02d}"


@dataclass
class SettingsInput:
    """What an enterprise submits on its notification settings page (already checked)."""

    email: str | None = None
    phone: str | None = None
    webhook_url: str | None = None
    consent_email: bool = False
    consent_sms: bool = False
    consent_webhook: bool = False
    muted_topics: list[str] = field(default_factory=list)
    quiet_start: int | None = None
    quiet_end: int | None = None
    daily_cap: int = 5

    @classmethod
    def parse(
        cls,
        *,
        email: str = "",
        phone: str = "",
        webhook_url: str = "",
        consent_email: bool = False,
        consent_sms: bool = False,
        consent_webhook: bool = False,
        muted_topics: list[str] | None = None,
        quiet_start: str = "",
        quiet_end: str = "",
        daily_cap: str | int = 5,
        allow_private_webhooks: bool = False,
    ) -> SettingsInput:
        """Check raw form values; raise SettingsError naming the first bad field."""
        muted = list(dict.fromkeys(muted_topics or []))
        known = {t.value for t in Topic}
        for topic in muted:
            if topic not in known:
                raise SettingsError("muted_topics", f"未知主题 / unknown topic {topic!r}")
        start = parse_hhmm(quiet_start, "quiet_start") if quiet_start.strip() else None
        end = parse_hhmm(quiet_end, "quiet_end") if quiet_end.strip() else None
        if (start is None) != (end is None):
            raise SettingsError("quiet_end", "免打扰需同时填写开始和结束 / give both start and end")
        if start is not None and start == end:
            raise SettingsError("quiet_end", "免打扰开始与结束不能相同 / start equals end")
        try:
            cap = int(str(daily_cap).strip())
        except ValueError:
            raise SettingsError("daily_cap", "每日上限应为整数 / must be a whole number") from None
        if not 1 <= cap <= MAX_DAILY_CAP:
            raise SettingsError("daily_cap", f"每日上限应在 1–{MAX_DAILY_CAP} / must be 1–100")
        out = cls(
            email=check_email(email) if email.strip() else None,
            phone=check_phone(phone) if phone.strip() else None,
            webhook_url=(
                check_webhook_url(webhook_url, allow_private=allow_private_webhooks)
                if webhook_url.strip()
                else None
            ),
            consent_email=consent_email,
            consent_sms=consent_sms,
            consent_webhook=consent_webhook,
            muted_topics=muted,
            quiet_start=start,
            quiet_end=end,
            daily_cap=cap,
        )
        for flag, address, name in (
            (consent_email, out.email, "email"),
            (consent_sms, out.phone, "phone"),
            (consent_webhook, out.webhook_url, "webhook_url"),
        ):
            if flag and address is None:
                raise SettingsError(name, "同意推送前请先填写地址 / give the address to consent")
        return out
