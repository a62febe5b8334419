"""Settings: environment variables, the optional file, and refusals that name the setting."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from huiqi.core.config import (
    DEFAULT_SECRET_KEY,
    ConfigError,
    Environment,
    Settings,
    load_settings,
)


def test_defaults_use_sqlite_file_under_data_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("HUIQI_DATABASE_URL", raising=False)
    monkeypatch.setenv("HUIQI_DATA_DIR", str(tmp_path))
    settings = load_settings()
    assert settings.effective_database_url == f"sqlite:///{tmp_path.resolve() / 'huiqi.db'}"
    assert settings.env == Environment.development


def test_environment_overrides_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cfg = tmp_path / "huiqi.toml"
    cfg.write_text("port = 9001\nmax_upload_mb = 7\n", encoding="utf-8")
    monkeypatch.setenv("HUIQI_CONFIG_FILE", str(cfg))
    monkeypatch.setenv("HUIQI_PORT", "9100")
    settings = load_settings()
    assert settings.port == 9100
    assert settings.max_upload_mb == 7


def test_malformed_setting_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUIQI_PORT", "eighty")
    with pytest.raises(ConfigError, match="HUIQI_PORT"):
        load_settings()


def test_bad_database_url_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUIQI_DATABASE_URL", "mysql://x@y/z")
    with pytest.raises(ConfigError, match="HUIQI_DATABASE_URL"):
        load_settings()


def test_missing_config_file_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HUIQI_CONFIG_FILE", str(tmp_path / "absent.toml"))
    with pytest.raises(ConfigError, match="HUIQI_CONFIG_FILE"):
        load_settings()


def test_production_refuses_default_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUIQI_ENV", "production")
    monkeypatch.delenv("HUIQI_SECRET_KEY", raising=False)
    settings = load_settings()
    assert settings.secret_key == DEFAULT_SECRET_KEY
    with pytest.raises(ConfigError, match="HUIQI_SECRET_KEY"):
        settings.check_safe()
    monkeypatch.setenv("HUIQI_SECRET_KEY", "a-long-and-random-production-key")
    load_settings().check_safe()


def test_development_accepts_default_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUIQI_ENV", "development")
    monkeypatch.delenv("HUIQI_SECRET_KEY", raising=False)
    load_settings().check_safe()


def _readme_configuration_table() -> str:
    """The rows of the README's configuration table."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    return "\n".join(line for line in section.splitlines() if line.startswith("| `HUIQI_"))


def test_every_setting_is_documented_in_the_readme() -> None:
    documented = set(re.findall(r"`(HUIQI_[A-Z_]+)`", _readme_configuration_table()))
    settings = {"HUIQI_" + name.upper() for name in Settings.model_fields}
    assert settings - documented == set(), "add these settings to the README's configuration table"
    assert documented - settings - {"HUIQI_CONFIG_FILE"} == set(), (
        "the README names unknown settings"
    )
