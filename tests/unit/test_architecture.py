"""ARCHITECTURE.md stays true: the modules it names exist, dependencies point one way, and
no code outside the engine profiles branches on an engine's name."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from auditor.engine_kind import EngineKind

ROOT = Path(__file__).resolve().parents[2]
ARCHITECTURE = (ROOT / "ARCHITECTURE.md").read_text("utf-8")
PACKAGE = ROOT / "auditor"

# package (or module) -> offgrid packages it must not import
FORBIDDEN = {
    "auditor.verdicts": ("auditor.",),
    "auditor.engine_kind": ("auditor.",),
    "auditor.models": ("auditor.inventory", "auditor.checks", "auditor.report"),
    "auditor.inventory": ("auditor.checks", "auditor.report"),
    "auditor.checks": ("auditor.report",),
}


def _named_paths() -> list[str]:
    paths = re.findall(r"`((?:auditor|tests|roles)/[^`\s]*)`", ARCHITECTURE)
    return sorted({p for p in paths if "<" not in p})


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_architecture_names_modules_that_exist() -> None:
    named = _named_paths()
    assert len(named) > 20, "ARCHITECTURE.md should name where each concern lives"
    missing = [p for p in named if not (ROOT / p.rstrip("/")).exists()]
    assert not missing, missing


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_dependencies_point_one_way(layer: str) -> None:
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = _module_name(path)
        if module != layer and not module.startswith(layer + "."):
            continue
        for name in _imports(path):
            if any(name.startswith(bad) and name != module for bad in FORBIDDEN[layer]):
                offenders.append(f"{module} imports {name}")
    assert not offenders, offenders


def _branches_on_engine_name(path: Path) -> list[int]:
    names = {kind.value for kind in EngineKind}
    lines = []
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if not isinstance(node, ast.Compare):
            continue
        sides = [node.left, *node.comparators]
        on_kind = any(isinstance(s, ast.Attribute) and s.attr == "kind" for s in sides)
        literal = any(isinstance(s, ast.Constant) and s.value in names for s in sides)
        if on_kind and literal:
            lines.append(node.lineno)
    return lines


def test_only_the_profiles_know_engines_by_name() -> None:
    offenders = {
        str(path.relative_to(ROOT)): lines
        for path in sorted(PACKAGE.rglob("*.py"))
        if (lines := _branches_on_engine_name(path))
    }
    assert not offenders, offenders
