"""YAML reading that keeps line numbers, and the error type every rule check reports with."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import yaml

from huiqi.core.errors import Invalid

Path_ = tuple[str | int, ...]


@dataclass(frozen=True)
class RuleError:
    """One problem in a rule source: where it is (file, line) and why it is refused."""

    file: str
    line: int | None
    reason: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.reason}"


class RuleValidationError(Invalid):
    """A rule, parameter or scenario file was refused; carries every problem found."""

    def __init__(self, errors: list[RuleError]) -> None:
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))


class Located:
    """Parsed YAML data plus the source line of every mapping key and list item."""

    def __init__(self, file: str, data: Any, lines: dict[Path_, int]) -> None:
        self.file = file
        self.data = data
        self.lines = lines

    def line(self, path: Path_) -> int | None:
        """The line of the deepest known node on `path` (falls back to its parents)."""
        for end in range(len(path), -1, -1):
            found = self.lines.get(tuple(path[:end]))
            if found is not None:
                return found
        return None

    def error(self, path: Path_, reason: str) -> RuleError:
        """A RuleError located at `path`."""
        return RuleError(self.file, self.line(path), reason)


# libyaml's parser (same nodes, marks and errors) when PyYAML was built with it: the rule
# library is parsed at every load of the rules, and the C parser is five times faster.
_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _scalar(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Any:
    """Construct a scalar; YAML floats become exact Decimals read from the source text."""
    if node.tag == "tag:yaml.org,2002:float":
        try:
            return Decimal(node.value.replace("_", ""))
        except InvalidOperation:
            return node.value
    return loader.construct_object(node, deep=True)


def load_yaml(text: str, file: str) -> Located:
    """Parse YAML text; syntax errors and duplicate keys raise RuleValidationError with the line."""
    lines: dict[Path_, int] = {}
    errors: list[RuleError] = []
    loader = _LOADER(text)
    try:
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise RuleValidationError(
            [RuleError(file, line, f"YAML syntax: {exc.problem or exc}")]
        ) from None
    finally:
        loader.dispose()

    def walk(node: yaml.Node, path: Path_) -> Any:
        lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            out: dict[str, Any] = {}
            for key_node, value_node in node.value:
                key = _scalar(loader, key_node) if isinstance(key_node, yaml.ScalarNode) else None
                if not isinstance(key, str | int) or isinstance(key, bool):
                    errors.append(
                        RuleError(file, key_node.start_mark.line + 1, "mapping keys must be text")
                    )
                    continue
                key = str(key)
                if key in out:
                    errors.append(
                        RuleError(file, key_node.start_mark.line + 1, f"duplicate key {key!r}")
                    )
                    continue
                lines[(*path, key)] = key_node.start_mark.line + 1
                out[key] = walk(value_node, (*path, key))
            return out
        if isinstance(node, yaml.SequenceNode):
            return [walk(item, (*path, i)) for i, item in enumerate(node.value)]
        assert isinstance(node, yaml.ScalarNode)
        return _scalar(loader, node)

    data = walk(root, ()) if root is not None else None
    if errors:
        raise RuleValidationError(errors)
    return Located(file, data, lines)


def pydantic_errors(located: Located, exc: Any, prefix: Path_ = ()) -> list[RuleError]:
    """Turn a pydantic ValidationError into located RuleErrors with readable reasons."""
    out = []
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function")))
        path = (*prefix, *loc)
        name = ".".join(str(p) for p in path) or "document"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key (not part of the format)"
        elif err["type"] == "missing":
            msg = "required key is missing"
        out.append(located.error(path, f"{name}: {msg}"))
    return out
