"""The rule library on disk: derived values, dated parameters, rules and their scenario files."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from huiqi.rules.catalogue import Catalogue, default_catalogue
from huiqi.rules.compiler import Parameter, Rule, build_parameter, check_derived, compile_rule
from huiqi.rules.schema import DerivedDoc, DerivedFile, ParameterFile, ScenarioFile
from huiqi.rules.source import RuleError, RuleValidationError, load_yaml, pydantic_errors

LIBRARY_DIR = Path(__file__).resolve().parent / "library"
SCENARIO_SUFFIX = ".scenarios.yaml"


@dataclass
class Library:
    """Everything rules may reference, plus the rules and scenarios found on disk."""

    catalogue: Catalogue
    derived: dict[str, DerivedDoc] = field(default_factory=dict)
    params: dict[str, Parameter] = field(default_factory=dict)
    rules: dict[str, Rule] = field(default_factory=dict)
    scenarios: dict[str, tuple[str, ScenarioFile]] = field(default_factory=dict)
    root: Path | None = None

    def parse_rule(self, text: str, file: str = "<rule>") -> Rule:
        """Check rule YAML text against this library; raise RuleValidationError with lines."""
        located = load_yaml(text, file)
        return compile_rule(located, self.catalogue, self.derived, self.params, source=text)

    def rule_files(self) -> list[Path]:
        """The rule files of the library, sorted."""
        if self.root is None:
            return []
        return sorted(
            p for p in (self.root / "rules").glob("*.yaml") if not p.name.endswith(SCENARIO_SUFFIX)
        )


def _rel(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root.parent))
    except ValueError:
        return str(path)


def parse_scenarios(text: str, file: str) -> ScenarioFile:
    """Read a scenario file; raise RuleValidationError with lines."""
    located = load_yaml(text, file)
    try:
        return ScenarioFile.model_validate(located.data)
    except ValidationError as exc:
        raise RuleValidationError(pydantic_errors(located, exc)) from None


def load_base(root: Path | None = None, catalogue: Catalogue | None = None) -> Library:
    """Load derived values and parameters only (what rules reference)."""
    root = root or LIBRARY_DIR
    lib = Library(catalogue or default_catalogue(), root=root)
    errors: list[RuleError] = []
    derived_path = root / "derived.yaml"
    if derived_path.exists():
        located = load_yaml(derived_path.read_text(encoding="utf-8"), _rel(derived_path, root))
        try:
            dfile = DerivedFile.model_validate(located.data)
        except ValidationError as exc:
            raise RuleValidationError(pydantic_errors(located, exc)) from None
        for i, d in enumerate(dfile.derived):
            why = check_derived(d, lib.catalogue)
            if why or d.id in lib.derived or lib.catalogue.get(d.id):
                errors.append(
                    located.error(
                        ("derived", i), why or f"derived value {d.id!r} is declared twice"
                    )
                )
            else:
                lib.derived[d.id] = d
    for ppath in sorted((root / "parameters").glob("*.yaml")):
        located = load_yaml(ppath.read_text(encoding="utf-8"), _rel(ppath, root))
        try:
            pfile = ParameterFile.model_validate(located.data)
        except ValidationError as exc:
            errors += pydantic_errors(located, exc)
            continue
        for i, pdoc in enumerate(pfile.parameters):
            if pdoc.id in lib.params:
                errors.append(
                    located.error(
                        ("parameters", i, "id"), f"parameter {pdoc.id!r} is declared twice"
                    )
                )
                continue
            built = build_parameter(pdoc, located, ("parameters", i), errors)
            if built:
                lib.params[pdoc.id] = built
    if errors:
        raise RuleValidationError(errors)
    return lib


def load_library(root: Path | None = None, catalogue: Catalogue | None = None) -> Library:
    """Load the whole library; every problem in any file is reported together."""
    lib = load_base(root, catalogue)
    assert lib.root is not None
    errors: list[RuleError] = []
    for path in lib.rule_files():
        name = _rel(path, lib.root)
        try:
            rule = lib.parse_rule(path.read_text(encoding="utf-8"), name)
        except RuleValidationError as exc:
            errors += exc.errors
            continue
        if rule.id in lib.rules:
            errors.append(
                RuleError(name, 1, f"rule id {rule.id!r} also used by {lib.rules[rule.id].file}")
            )
            continue
        lib.rules[rule.id] = rule
        spath = path.with_name(path.name.removesuffix(".yaml") + SCENARIO_SUFFIX)
        if spath.exists():
            sname = _rel(spath, lib.root)
            try:
                sfile = parse_scenarios(spath.read_text(encoding="utf-8"), sname)
            except RuleValidationError as exc:
                errors += exc.errors
                continue
            if sfile.rule != rule.id:
                errors.append(
                    RuleError(
                        sname,
                        1,
                        f"scenarios name rule {sfile.rule!r} but the rule beside it is {rule.id!r}",
                    )
                )
                continue
            lib.scenarios[rule.id] = (sname, sfile)
    if errors:
        raise RuleValidationError(errors)
    return lib
