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


def test_production_refuses_to_start_without_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUIQI_ENV", "production")
    monkeypatch.delenv("HUIQI_SECRET_KEY", raising=False)
    monkeypatch.setenv("HUIQI_LEDGER_KEY", "a-long-and-random-ledger-key")
    with pytest.raises(ConfigError, match="HUIQI_SECRET_KEY: required"):
        load_settings()
    monkeypatch.setenv("HUIQI_SECRET_KEY", "a-long-and-random-production-key")
    monkeypatch.delenv("HUIQI_LEDGER_KEY")
    with pytest.raises(ConfigError, match="HUIQI_LEDGER_KEY: required"):
        load_settings()
    monkeypatch.setenv("HUIQI_LEDGER_KEY", "a-long-and-random-ledger-key")
    load_settings().check_safe()


@pytest.mark.parametrize("env", ["development", "test", "production"])
@pytest.mark.parametrize("name", ["HUIQI_SECRET_KEY", "HUIQI_LEDGER_KEY"])
def test_the_published_key_is_refused_everywhere(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, env: str, name: str
) -> None:
    monkeypatch.setenv("HUIQI_ENV", env)
    monkeypatch.setenv("HUIQI_DATA_DIR", str(tmp_path))
    monkeypatch.setenv(name, DEFAULT_SECRET_KEY)
    with pytest.raises(ConfigError, match=f"{name}: this key is published"):
        load_settings()
    monkeypatch.setenv(name, "short")
    with pytest.raises(ConfigError, match=f"{name}: must be at least 16"):
        load_settings()


def test_development_makes_its_own_keys_and_keeps_them(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    monkeypatch.setenv("HUIQI_ENV", "development")
    monkeypatch.setenv("HUIQI_DATA_DIR", str(data))
    monkeypatch.delenv("HUIQI_SECRET_KEY", raising=False)
    monkeypatch.delenv("HUIQI_LEDGER_KEY", raising=False)
    first = load_settings()
    first.check_safe()
    assert len(first.secret_key) >= 48 and len(first.ledger_key) >= 48
    assert first.secret_key != first.ledger_key
    assert DEFAULT_SECRET_KEY not in (first.secret_key, first.ledger_key)
    for name, value in (("secret.key", first.secret_key), ("ledger.key", first.ledger_key)):
        path = data / name
        assert path.read_text(encoding="ascii").strip() == value
        assert path.stat().st_mode & 0o077 == 0  # readable by the owner only
    again = load_settings()  # the next start keeps the same keys
    assert (again.secret_key, again.ledger_key) == (first.secret_key, first.ledger_key)
    assert [p.name for p in data.iterdir() if p.name.startswith(".")] == []
    # another data folder, other keys: nothing is shared or published
    monkeypatch.setenv("HUIQI_DATA_DIR", str(tmp_path / "other"))
    assert load_settings().secret_key != first.secret_key


def test_a_damaged_key_file_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HUIQI_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("HUIQI_LEDGER_KEY", raising=False)
    (tmp_path / "ledger.key").write_text("x\n", encoding="ascii")
    with pytest.raises(ConfigError, match="HUIQI_LEDGER_KEY: .*ledger.key holds no usable key"):
        load_settings()


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
