"""The domain packages form no import cycle, and domain events are wired wherever huiqi starts.

How the import graph is read: every `import` and `from … import` of `huiqi.*` in every module
of `src/huiqi`, at module level and inside functions alike (a function-level import is an edge
all the same), is an edge from the importing module's package to the imported one.

Imports under `if TYPE_CHECKING:` are left out: they never run.

- Domain packages: accounts, enterprise, finance, grants, matching, notify, policy, reports,
  rules, plus `core` and the leaf module `huiqi.events`. Their graph must have no cycle.
- Entry points are no part of that graph: `huiqi.web`, `huiqi.cli`, `huiqi.wiring`, `huiqi.demo`,
  `huiqi.models`, `huiqi.migrations`, and each domain's `routes` (web adapter: a module or a
  package) and `cli.py` (command adapter), or a further adapter named `*_routes.py` / `*_cli.py`
  beside them. They may import any domain; no domain module may import an entry point,
  so a domain never depends on the web layer, the command line or the wiring.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select, text
from typer.testing import CliRunner

from huiqi import events
from huiqi.core.config import get_settings

SRC = Path(__file__).resolve().parents[1] / "src" / "huiqi"
ENTRY_PACKAGES = {"web", "cli", "wiring", "demo", "models", "migrations", "__main__"}
ADAPTER_MODULES = {"routes", "cli"}


def _typing_only(tree: ast.AST) -> set[int]:
    """Import nodes under `if TYPE_CHECKING:`: never executed, so no dependency at run time."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for inner in node.body:
                skipped.update(id(n) for n in ast.walk(inner))
    return skipped


def _imports(path: Path) -> set[str]:
    """Every huiqi module a file imports, wherever the import statement stands (but for imports
    only type checkers read)."""
    found: set[str] = set()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped = _typing_only(tree)
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "huiqi":
                found.update(f"huiqi.{a.name}" for a in node.names)
            elif node.module.startswith("huiqi."):
                found.add(node.module)
                found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("huiqi."))
    return found


def _module(path: Path) -> tuple[str, ...]:
    return path.relative_to(SRC).with_suffix("").parts


def _is_entry(parts: tuple[str, ...]) -> bool:
    # a domain's adapter is a module (grants/routes.py), a package of them (finance/routes/) or
    # a further adapter module beside them (funds/officer_routes.py)
    if parts[0] in ENTRY_PACKAGES:
        return True
    last = parts[-1]
    return len(parts) > 1 and (
        last in ADAPTER_MODULES
        or parts[1] in ADAPTER_MODULES
        or any(last.endswith(f"_{a}") for a in ADAPTER_MODULES)
    )


def _package(name: str) -> str:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else "huiqi"


def domain_graph() -> tuple[dict[str, set[str]], list[str]]:
    """Edges between domain packages, and any domain module importing an entry point."""
    edges: dict[str, set[str]] = defaultdict(set)
    wrong: list[str] = []
    for path in sorted(SRC.rglob("*.py")):
        parts = _module(path)
        if parts == ("__init__",) or _is_entry(parts):
            continue
        here = parts[0]
        for name in _imports(path):
            target = tuple(name.split(".")[1:])
            if not target:
                continue
            if _is_entry(target):
                wrong.append(f"{'.'.join(parts)} imports {name}")
                continue
            there = _package(name)
            if there != here:
                edges[here].add(there)
    return edges, wrong


def _cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph, if there is any."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        state[node] = 2
        stack.pop()
        return None

    for node in sorted(edges):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_domain_packages_have_no_import_cycle() -> None:
    edges, wrong = domain_graph()
    assert wrong == [], "domain modules must not import entry points"
    assert _cycle(edges) is None, f"import cycle: {' → '.join(_cycle(edges) or [])}"
    # the edges the events replaced stay gone; the reader is checked on real edges too
    assert "grants" not in edges["matching"] and "notify" not in edges["matching"]
    assert "notify" not in edges["grants"] and "matching" in edges["grants"]
    assert {"grants", "finance", "matching"} <= edges["reports"]
    assert edges["events"] == set()


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_function_level_imports_are_edges() -> None:
    found = _imports(SRC / "web" / "app.py")
    assert "huiqi.matching.routes" in found  # imported inside _routers()


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("HUIQI_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("HUIQI_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    from huiqi.core import db

    monkeypatch.setattr(db, "_engine", None)
    monkeypatch.setattr(db, "_factory", None)
    yield tmp_path
    get_settings.cache_clear()


def test_command_line_import_matches_and_queues_notifications(
    cli_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from huiqi.cli.main import app

    # a fresh process has no handler subscribed: only the command line's own wiring counts
    monkeypatch.setattr(events.bus, "handlers", {})
    runner = CliRunner()
    for args in (
        ["db", "upgrade"],
        ["rules", "load"],
        ["demo", "population", "--size", "60", "--out", str(cli_env / "pop.csv")],
        ["enterprise", "import", str(cli_env / "pop.csv")],
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 0, (args, result.output)
    engine = create_engine(f"sqlite:///{cli_env / 'huiqi.db'}")
    with engine.connect() as conn:
        results = conn.scalar(text("SELECT count(*) FROM match_state"))
        eligible = conn.scalar(text("SELECT count(*) FROM match_state WHERE eligible > 0"))
        notes = conn.scalar(
            text(
                "SELECT count(DISTINCT credit_code) FROM notify_notification"
                " WHERE topic='policy_match'"
            )
        )
        subs = conn.scalar(select(func.count()).select_from(text("notify_subscription")))
        outbox = conn.scalar(text("SELECT count(*) FROM notify_outbox"))
    engine.dispose()
    # every enterprise with a fitting policy was told (one message each, or one summary)
    assert results and eligible and notes == eligible
    # contact details with consent in the file became subscriptions, whose pushes are queued
    assert subs and outbox
