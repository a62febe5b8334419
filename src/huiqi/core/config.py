"""Settings read from HUIQI_* environment variables and an optional TOML file."""

from __future__ import annotations

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
    base_url: str = "http://127.0.0.1:8000"
    # Serving under load (huiqi serve): database connections per process and how long a request
    # waits for one, or for SQLite's write lock, before it is answered 503 with Retry-After.
    db_pool_size: int = Field(default=20, ge=1, le=1000)
    db_max_overflow: int = Field(default=10, ge=0, le=1000)
    db_pool_timeout_seconds: float = Field(default=5.0, gt=0, le=300)
    db_busy_timeout_seconds: float = Field(default=5.0, gt=0, le=300)
    workers: int = Field(default=1, ge=1, le=64)
    shutdown_timeout_seconds: int = Field(default=10, ge=1, le=300)
    token_usage_flush_seconds: float = Field(default=30.0, gt=0, le=3600)
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
