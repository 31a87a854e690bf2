"""The import structure the project relies on, read from the source (imports inside functions count):
- ``shared``'s subpackages are layers: a module imports its own package and packages of lower layers only, so
  ``model`` and ``data`` (both layer 1) never import each other and ``util`` imports nothing of the project;
- a backend's library modules (all but its entry points) import nothing of ``shared`` above ``training``;
- no import cycle inside ``shared``, ``cnnlab_torch`` or ``cnnlab_tf``;
- ``shared`` never imports a framework."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("shared", "cnnlab_torch", "cnnlab_tf")
FRAMEWORKS = ("torch", "torchvision", "tensorflow", "keras", "tf2onnx", "triton")
# shared's subpackages, bottom up (docs/how-it-is-built.md)
LAYERS = {"util": 0, "model": 1, "data": 1, "formats": 2, "training": 3, "report": 4, "run": 5, "serving": 5,
          "measure": 6, "commands": 7, "bench": 7, "tools": 8}
# ``python -m shared.compare``: the documented command, kept as a shim at the top
SHIMS = {"shared.compare": "commands"}
# What a user or the suite runs in a backend: these may reach the runner and the commands
BACKEND_ENTRY_POINTS = ("__init__", "train", "evaluate", "bench", "export", "predict", "serve")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def source_modules() -> dict[str, Path]:
    return {module_name(path): path for package in PACKAGES for path in (ROOT / package).rglob("*.py")
            if "tests" not in path.relative_to(ROOT).parts}


def imported_names(path: Path) -> set[str]:
    """Every module an ``import`` or ``from ... import`` statement names, at any depth of the file."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)  # ``from shared import rundir``
    return names


def import_graph() -> dict[str, set[str]]:
    modules = source_modules()
    return {name: {other for other in imported_names(path) if other in modules and other != name}
            for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules (first == last), or None."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        stack.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                return stack[stack.index(target):] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_cycle_finder_finds_a_planted_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycles():
    cycle = find_cycle(import_graph())
    assert cycle is None, f"import cycle: {' -> '.join(cycle)}"


@pytest.mark.parametrize("name", sorted(name for name in source_modules() if name.startswith("shared")))
def test_shared_never_imports_a_framework(name):
    frameworks = {imported.split(".")[0] for imported in imported_names(source_modules()[name])} & set(FRAMEWORKS)
    assert not frameworks, f"{name} imports {sorted(frameworks)}; shared/ must stay framework-neutral"


def package_of(module: str) -> str | None:
    """The subpackage of ``shared`` a module belongs to (``shared.run.runner`` -> ``run``); None outside them."""
    if module in SHIMS:
        return SHIMS[module]
    parts = module.split(".")
    return parts[1] if parts[0] == "shared" and len(parts) > 1 and parts[1] in LAYERS else None


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    """Every import of a shared module from another package of the same or a higher layer."""
    found = []
    for module, imports in sorted(graph.items()):
        own = package_of(module)
        for other in sorted(imports):
            theirs = package_of(other)
            if own and theirs and theirs != own and LAYERS[theirs] >= LAYERS[own]:
                found.append(f"{module} (layer {LAYERS[own]}) imports {other} (layer {LAYERS[theirs]})")
    return found


def test_the_layer_check_finds_planted_violations():
    graph = {"shared.run.plan": {"shared.formats.rundir", "shared.run.experiments"},  # allowed: down, and within
             "shared.model.specs": {"shared.data.dataset"},  # same layer, another package
             "shared.util.errors": {"shared.commands.cli"},  # upward
             "shared.compare": {"shared.commands.compare"}}  # a shim into its own layer
    assert upward_imports(graph) == ["shared.model.specs (layer 1) imports shared.data.dataset (layer 1)",
                                     "shared.util.errors (layer 0) imports shared.commands.cli (layer 7)"]


def test_every_shared_module_sits_in_a_layer():
    loose = [name for name in source_modules() if name.startswith("shared.") and package_of(name) is None]
    assert loose == [], f"modules outside shared's subpackages: {loose}; give each a package in LAYERS"


def test_shared_imports_only_downward():
    assert upward_imports(import_graph()) == []


@pytest.mark.parametrize("backend", ["cnnlab_torch", "cnnlab_tf"])
def test_a_backend_s_library_imports_nothing_above_training(backend):
    graph = import_graph()
    library = [name for name in graph if name.startswith(f"{backend}.")
               and name.rsplit(".", 1)[1] not in BACKEND_ENTRY_POINTS]
    assert len(library) > 10  # the modules exist under these names: the check reads something
    above = sorted(f"{name} imports {other}" for name in library for other in graph[name]
                   if package_of(other) and LAYERS[package_of(other)] > LAYERS["training"])
    assert above == []
