"""The import structure the project relies on, read from the source (imports inside functions count):
- no import cycle inside ``shared``, ``cnnlab_torch`` or ``cnnlab_tf``;
- ``shared`` never imports a framework, and ``shared.errors`` imports nothing from the project;
- a backend never imports the runner (and with it matplotlib and the experiments)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("shared", "cnnlab_torch", "cnnlab_tf")
FRAMEWORKS = ("torch", "torchvision", "tensorflow", "keras", "tf2onnx", "triton")


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


def test_errors_import_nothing_from_the_project():
    assert not import_graph()["shared.errors"], "shared.errors must be importable from anywhere"


@pytest.mark.parametrize("backend", ["cnnlab_torch", "cnnlab_tf"])
def test_a_backend_never_imports_the_runner(backend):
    graph = import_graph()
    reached, frontier = set(), [name for name in graph if name.startswith(f"{backend}.") and
                                not name.endswith((".train", ".evaluate"))]
    while frontier:
        name = frontier.pop()
        if name not in reached:
            reached.add(name)
            frontier.extend(graph[name])
    assert not reached & {"shared.runner", "shared.experiments", "shared.plots", "shared.cli"}, \
        sorted(reached & {"shared.runner", "shared.experiments", "shared.plots", "shared.cli"})
