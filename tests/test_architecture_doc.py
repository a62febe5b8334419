"""docs/architecture.md stays true to the package: every domain package and named module exists
in it, and the modules it names exist."""

from __future__ import annotations

import re
from pathlib import Path

import huiqi

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "architecture.md"
PACKAGE = Path(huiqi.__file__).parent


def _packages() -> list[str]:
    """Every folder of Python code directly under src/huiqi."""
    return sorted(
        p.name for p in PACKAGE.iterdir() if p.is_dir() and any(p.glob("*.py")) and p.name[0] != "_"
    )


def test_every_domain_package_is_described() -> None:
    text = DOC.read_text(encoding="utf-8")
    missing = [name for name in _packages() if f"`{name}`" not in text]
    assert not missing, f"describe these packages in docs/architecture.md: {missing}"


def test_core_modules_it_names_exist() -> None:
    text = DOC.read_text(encoding="utf-8")
    for module in re.findall(r"`core\.(\w+)`", text):
        assert (PACKAGE / "core" / f"{module}.py").exists(), f"core.{module} is named but missing"
    assert (PACKAGE / "accounts" / "scopes.py").exists()
    assert (PACKAGE / "web" / "errors.py").exists()
