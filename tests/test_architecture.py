"""The layering rules of ARCHITECTURE.md, checked on every import statement of the package
(lazy ones inside functions too: a cycle through a late import is still a cycle)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "airtool"
CORE = "core"  # the top-level modules: errors, tasks, precision, config, metrics, report, _version

# Which layers each layer may import (besides itself). Bottom to top.
ALLOWED: dict[str, set[str]] = {
    CORE: set(),
    "io": {CORE},
    "degrade": {CORE, "io"},
    "models": {CORE, "io"},
    "engine": {CORE, "io", "degrade", "models"},
    "api": {CORE, "io", "degrade", "models", "engine"},
    "cli": {CORE, "api"},  # and the two registries' names (REGISTRIES), for options and completion
}

# Top-level folders of the checkout that are not installed: the package must never import them.
OUTSIDE = ("tools", "tests")


# What the CLI may read below the api: the names of the models and of the degradations (no torch).
REGISTRIES = {"airtool.models", "airtool.degrade.registry"}


def _layer(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "airtool":
        return None
    if len(parts) == 1:
        return "package"
    return parts[1] if (PACKAGE / parts[1]).is_dir() and parts[1] != "configs" else CORE


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
        elif isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
    return names


def _sources() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if p.name != "__main__.py" and p != PACKAGE / "__init__.py")


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_each_module_imports_only_the_layers_below_it(path: Path):
    module = ".".join(("airtool", *path.relative_to(PACKAGE).with_suffix("").parts))
    own = _layer(module.removesuffix(".__init__"))
    bad = [name for name in _imports(path)
           if (target := _layer(name)) is not None and target != own and target not in ALLOWED[own]
           and not (own == "cli" and name in REGISTRIES)]
    assert not bad, f"{module} ({own}) imports {bad}; allowed: {sorted(ALLOWED[own])}"


def test_no_development_tools_inside_the_package():
    assert not (PACKAGE / "devtools").exists(), "development tools belong in tools/, outside the package"


def test_nothing_in_the_package_imports_tools_or_tests():
    """tools/ and tests/ stay in the checkout: an installed airtool that imported them would break."""
    every = sorted(PACKAGE.rglob("*.py"))
    users = {str(p.relative_to(PACKAGE)): bad for p in every
             if (bad := [name for name in _imports(p) if name.split(".")[0] in OUTSIDE])}
    assert not users, f"the package imports the checkout's {OUTSIDE}: {users}"


def test_every_subpackage_has_a_layer():
    subpackages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()} - {"configs"}
    assert subpackages <= set(ALLOWED), subpackages - set(ALLOWED)


def test_importing_the_package_and_its_api_loads_no_torch():
    import subprocess
    import sys

    code = "import sys, airtool, airtool.api, airtool.models, airtool.precision; print('torch' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.stdout.strip() == "False", proc.stderr


# Inside the engine, one subpackage per concern, also bottom to top. ``engine/__init__.py`` is empty.
ENGINE_ALLOWED: dict[str, set[str]] = {
    "hardware": set(),
    "inference": {"hardware"},
    "training": {"hardware"},
    "evaluation": {"hardware", "inference"},
}


def _engine_part(module: str) -> str | None:
    parts = module.split(".")
    return parts[2] if len(parts) > 2 and parts[:2] == ["airtool", "engine"] else None


@pytest.mark.parametrize("path", sorted((PACKAGE / "engine").rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_each_engine_module_imports_only_the_concerns_below_it(path: Path):
    own = path.relative_to(PACKAGE / "engine").parts[0]
    if own == "__init__.py":
        assert not _imports(path), "engine/__init__.py imports nothing"
        return
    assert own in ENGINE_ALLOWED, f"engine/{own} is not one of the engine's concerns {sorted(ENGINE_ALLOWED)}"
    bad = [name for name in _imports(path)
           if (target := _engine_part(name)) is not None and target != own and target not in ENGINE_ALLOWED[own]]
    assert not bad, f"{path.relative_to(PACKAGE)} ({own}) imports {bad}; allowed: {sorted(ENGINE_ALLOWED[own])}"


def _module_of(path: Path) -> str:
    return ".".join(("airtool", *path.relative_to(PACKAGE).with_suffix("").parts)).removesuffix(".__init__")


def test_no_import_cycles_between_modules():
    """Every import statement, lazy ones too, as an edge; a cycle is a design knot, even if a late
    import keeps it from failing at run time."""
    paths = {_module_of(p): p for p in PACKAGE.rglob("*.py") if p.name != "__main__.py"}
    edges: dict[str, set[str]] = {}
    for module, path in paths.items():
        targets = set()
        for name in _imports(path):
            while name and name not in paths:  # "from airtool.x import y": y may be a name, not a module
                name = name.rpartition(".")[0]
            if name and name != module and not module.startswith(name + "."):
                targets.add(name)
        edges[module] = targets - {"airtool"}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = 1
        stack.append(module)
        for target in sorted(edges.get(module, ())):
            if state.get(target) == 1:
                return stack[stack.index(target):] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        stack.pop()
        state[module] = 2
        return None

    for module in sorted(edges):
        if module not in state and (cycle := visit(module)):
            pytest.fail("import cycle: " + " -> ".join(cycle))
