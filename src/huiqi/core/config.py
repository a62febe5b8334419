"""Settings read from HUIQI_* environment variables and an optional TOML file."""

from __future__ import annotations

import ipaddress
import os
import secrets
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

# The key earlier releases used by default: it is public, so it is refused wherever it shows up.
DEFAULT_SECRET_KEY = "huiqi-development-secret-do-not-use-in-production"
PUBLISHED_KEYS = frozenset({DEFAULT_SECRET_KEY})
MIN_KEY_LENGTH = 16
# Outside production a missing key is generated once into the data folder and kept there.
KEY_FILES = {"secret_key": "secret.key", "ledger_key": "ledger.key"}


class ConfigError(Exception):
    """A setting is malformed or unsafe; the message names the setting."""


class Environment(StrEnum):
    """Where the platform runs; production needs its keys configured, the others make their own."""

    development = "development"
    test = "test"
    production = "production"


def _config_file() -> Path | None:
    """Return the optional settings file named by HUIQI_CONFIG_FILE."""
    raw = os.environ.get("HUIQI_CONFIG_FILE")
    return Path(raw) if raw else None


class Settings(BaseSettings):
    """All runtime settings; environment variables override the optional TOML file."""

    model_config = SettingsConfigDict(env_prefix="HUIQI_", extra="ignore")

    env: Environment = Environment.development
    data_dir: Path = Path("data")
    database_url: str = ""
    # signs CSRF tokens and unsubscribe/open links
    secret_key: str = ""
    # keys the grant ledger's hashes (HMAC-SHA256); kept outside the database on purpose
    ledger_key: str = ""
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    cookie_secure: bool = True
    session_hours: int = Field(default=12, ge=1, le=24 * 30)
    max_upload_mb: int = Field(default=20, ge=1, le=1024)
    # Uploaded policy files are read in a separate, bounded process (huiqi.policy.worker).
    parse_timeout_seconds: float = Field(default=30, gt=0, le=600)
    parse_memory_mb: int = Field(default=1024, ge=256, le=65536)
    parse_workers: int = Field(default=2, ge=1, le=64)
    parse_max_unzipped_mb: int = Field(default=50, ge=1, le=4096)
    parse_max_elements: int = Field(default=200_000, ge=100, le=100_000_000)
    parse_max_paragraphs: int = Field(default=50_000, ge=100, le=100_000_000)
    # Import spreadsheets are read in the same kind of bounded process (huiqi.enterprise.importer).
    import_xlsx_timeout_seconds: float = Field(default=600, gt=0, le=86_400)
    import_xlsx_max_cells: int = Field(default=40_000_000, ge=1_000, le=1_000_000_000)
    login_max_failures: int = Field(default=5, ge=1, le=100)
    login_window_minutes: int = Field(default=15, ge=1, le=24 * 60)
    # Failures on one username from all clients within the window that alert the administrators
    # and hold back clients the account has never logged in from.
    login_burst_failures: int = Field(default=20, ge=2, le=10_000)
    api_token_days: int = Field(default=90, ge=1, le=3650)
    api_tokens_per_user: int = Field(default=10, ge=1, le=1000)
    # Peers whose X-Forwarded-For / X-Forwarded-Proto are believed (addresses or networks);
    # empty: the TCP peer is the client.
    trusted_proxies: list[str] = Field(default_factory=list)
    base_url: str = "http://127.0.0.1:8000"
    # Serving under load (huiqi serve): database connections per process and how long a request
    # waits for one, or for SQLite's write lock, before it is answered 503 with Retry-After.
    db_pool_size: int = Field(default=20, ge=1, le=1000)
    db_max_overflow: int = Field(default=10, ge=0, le=1000)
    db_pool_timeout_seconds: float = Field(default=5.0, gt=0, le=300)
    db_busy_timeout_seconds: float = Field(default=5.0, gt=0, le=300)
    queue_timeout_seconds: float = Field(default=5.0, gt=0, le=300)
    # Requests waiting for a working slot at once (per process); the next is answered 503 at once.
    queue_max_waiting: int = Field(default=256, ge=0, le=100_000)
    workers: int = Field(default=1, ge=1, le=64)
    shutdown_timeout_seconds: int = Field(default=10, ge=1, le=300)
    token_usage_flush_seconds: float = Field(default=30.0, gt=0, le=3600)
    # How long a worker trusts a cached page's change stamp before reading it from the database
    # again; changes made through the same process show at once.
    page_stamp_seconds: float = Field(default=2.0, ge=0, le=300)
    # How long a worker trusts the user it found behind a session cookie; a log-out or a user
    # change in the same process is seen at once, in other processes within this time.
    session_cache_seconds: float = Field(default=2.0, ge=0, le=60)
    # Outbound notification channels (huiqi.notify); e-mail goes through this SMTP relay.
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_from: str = "huiqi <noreply@huiqi.local>"
    smtp_timeout_seconds: int = Field(default=10, ge=1, le=300)
    notify_max_attempts: int = Field(default=6, ge=1, le=50)
    notify_backoff_seconds: int = Field(default=30, ge=1, le=86400)
    notify_lease_seconds: int = Field(default=120, ge=1, le=86400)
    notify_poll_seconds: float = Field(default=2.0, gt=0, le=3600)
    # Sends a minute per channel: HUIQI_NOTIFY_CHANNEL_RATES='{"sms": 6000}' overrides a
    # channel's default (huiqi.notify.dispatcher.DEFAULT_CHANNEL_RATES); a set
    # HUIQI_NOTIFY_RATE_PER_MINUTE applies to every channel not named there.
    notify_rate_per_minute: int | None = Field(default=None, ge=1, le=10_000_000)
    notify_channel_rates: dict[str, int] = Field(default_factory=dict)
    notify_batch_size: int = Field(default=200, ge=1, le=5000)
    notify_smtp_connections: int = Field(default=4, ge=1, le=64)
    notify_webhook_concurrency: int = Field(default=16, ge=1, le=256)
    webhook_timeout_seconds: int = Field(default=10, ge=1, le=300)
    # Webhooks to loopback/private addresses are refused (SSRF) unless this is switched on.
    webhook_allow_private: bool = False

    @field_validator("database_url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        """Accept only database URLs of the backends huiqi supports."""
        if value and not value.startswith(("sqlite", "postgresql")):
            raise ValueError("must start with sqlite:// or postgresql://")
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _check_proxies(cls, value: list[str]) -> list[str]:
        """Accept only IP addresses and networks (a name would never match the peer address)."""
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or network") from None
        return value

    @model_validator(mode="after")
    def _resolve_keys(self) -> Settings:
        """Refuse published or short keys; outside production, read or make missing ones."""
        for name, filename in KEY_FILES.items():
            setting = f"HUIQI_{name.upper()}"
            value = getattr(self, name)
            if value in PUBLISHED_KEYS:
                raise ConfigError(
                    f"{setting}: this key is published with huiqi's source and is refused; "
                    f"unset it (development makes its own in the data folder) or set a long "
                    "random value (python3 -c 'import secrets; print(secrets.token_urlsafe(48))')."
                )
            if value and len(value) < MIN_KEY_LENGTH:
                raise ConfigError(f"{setting}: must be at least {MIN_KEY_LENGTH} characters long.")
            if value:
                continue
            if self.env == Environment.production:
                raise ConfigError(
                    f"{setting}: required when HUIQI_ENV=production; set it to a long random "
                    "value (python3 -c 'import secrets; print(secrets.token_urlsafe(48))')."
                )
            setattr(self, name, _key_from_file(self.data_dir / filename, setting))
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Order the sources: explicit values, environment, then the TOML file."""
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = _config_file()
        if path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)

    @property
    def effective_database_url(self) -> str:
        """The configured database URL, or the embedded SQLite file under the data folder."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'huiqi.db').resolve()}"

    @property
    def max_upload_bytes(self) -> int:
        """Upload size limit in bytes."""
        return self.max_upload_mb * 1024 * 1024

    def check_safe(self) -> None:
        """Refuse to start without both keys (production must configure them)."""
        for name in KEY_FILES:
            if not getattr(self, name):
                raise ConfigError(
                    f"HUIQI_{name.upper()}: required when HUIQI_ENV={self.env.value}; set it to a "
                    "long random value (python3 -c 'import secrets; print(secrets.token_urlsafe(48))')."
                )


def _key_from_file(path: Path, setting: str) -> str:
    """The key kept in `path`, generated (random, readable by the owner only) when absent."""
    if not path.exists():
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            draft = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
            fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="ascii") as fh:
                fh.write(secrets.token_urlsafe(48) + "\n")
            try:
                # a hard link appears whole: of two processes starting together, one key wins
                os.link(draft, path)
            except FileExistsError:
                pass
            finally:
                draft.unlink()
        except OSError as exc:
            raise ConfigError(f"{setting}: cannot create {path}: {exc.strerror}") from None
    try:
        key = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{setting}: cannot read {path}: {exc}") from None
    if len(key) < MIN_KEY_LENGTH or key in PUBLISHED_KEYS:
        raise ConfigError(f"{setting}: {path} holds no usable key; delete it to generate one.")
    return key


def load_settings(**overrides: Any) -> Settings:
    """Build settings, turning validation errors into a ConfigError naming each bad setting."""
    path = _config_file()
    if path is not None and not path.is_file():
        raise ConfigError(f"HUIQI_CONFIG_FILE: file not found: {path}")
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            name = "HUIQI_" + "_".join(str(p) for p in err["loc"]).upper()
            lines.append(f"{name}: {err['msg']} (got {err.get('input')!r})")
        raise ConfigError("invalid setting: " + "; ".join(lines)) from None
    except ValueError as exc:  # a malformed TOML file
        raise ConfigError(f"HUIQI_CONFIG_FILE: cannot read {path}: {exc}") from None
    return settings


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Process-wide settings, read once."""
    return load_settings()
