"""Settings read from HUIQI_* environment variables and an optional TOML file."""

from __future__ import annotations

import ipaddress
import os
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

DEFAULT_SECRET_KEY = "huiqi-development-secret-do-not-use-in-production"


class ConfigError(Exception):
    """A setting is malformed or unsafe; the message names the setting."""


class Environment(StrEnum):
    """Where the platform runs; only development accepts the default secret key."""

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
    secret_key: str = DEFAULT_SECRET_KEY
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    cookie_secure: bool = True
    session_hours: int = Field(default=12, ge=1, le=24 * 30)
    max_upload_mb: int = Field(default=20, ge=1, le=1024)
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
    # Outbound notification channels (huiqi.notify); e-mail goes through this SMTP relay.
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_from: str = "huiqi <noreply@huiqi.local>"
    smtp_timeout_seconds: int = Field(default=10, ge=1, le=300)
    notify_max_attempts: int = Field(default=6, ge=1, le=50)
    notify_backoff_seconds: int = Field(default=30, ge=1, le=86400)
    notify_lease_seconds: int = Field(default=120, ge=1, le=86400)
    notify_poll_seconds: float = Field(default=2.0, gt=0, le=3600)
    notify_rate_per_minute: int = Field(default=600, ge=1, le=1_000_000)
    # per-channel overrides, e.g. HUIQI_NOTIFY_CHANNEL_RATES='{"sms": 60}'
    notify_channel_rates: dict[str, int] = Field(default_factory=dict)
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
        """Refuse to run outside development with the default secret key."""
        if self.env != Environment.development and self.secret_key == DEFAULT_SECRET_KEY:
            raise ConfigError(
                f"HUIQI_SECRET_KEY: the default development key may not be used when "
                f"HUIQI_ENV={self.env.value}; set HUIQI_SECRET_KEY to a long random value "
                "(e.g. python3 -c 'import secrets; print(secrets.token_urlsafe(48))')."
            )
        if len(self.secret_key) < 16:
            raise ConfigError("HUIQI_SECRET_KEY: must be at least 16 characters long.")


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
