"""Layers that only look down: every import statement in edge's source (top-level and inside functions)
points to a module of the same layer or a lower one (edge.layers), and no modules import each other in
a circle."""

import ast
from pathlib import Path

import pytest

from edge.layers import FRONT, HOST, LAYERS, NAMES, layer_of, on_device

REPO = Path(__file__).resolve().parents[1]
FOLDERS = {"edge": "edge", "convert": "edge.converter", "eval": "edge.eval", "devices": "edge.devices"}


def modules() -> dict[str, Path]:
    """Every module of edge by its installed name (convert/train.py is edge.converter.train)."""
    found = {}
    for folder, package in FOLDERS.items():
        for file in sorted((REPO / folder).rglob("*.py")):
            parts = (*package.split("."), *file.relative_to(REPO / folder).with_suffix("").parts)
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = file
    return found


def imports(module: str, file: Path, known: set[str]) -> set[str]:
    """The modules of edge that `module` imports anywhere in its file, and any old top-level names."""
    package = module if file.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(file.read_text(), str(file))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    [*package.split(".")[: len(package.split(".")) - node.level + 1], *filter(None, [base])]
                )
            found |= {f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names}
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", None)) in ("import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            found.add(str(node.args[0].value))
    return {name for name in found if name.split(".")[0] in ("edge", *FOLDERS)}


def graph() -> dict[str, set[str]]:
    found = modules()
    return {module: imports(module, file, set(found)) - {module} for module, file in found.items()}


def test_every_module_has_a_layer():
    assert [m for m in modules() if layer_of(m) is None] == []
    listed = {name for names in LAYERS.values() for name in names}
    assert listed - set(modules()) - {"edge.devices.templates"} == set()  # no stale names in the table


def test_edge_is_the_only_top_level_name_imported():
    old = {f"{m} imports {t}": t for m, targets in graph().items() for t in targets if t.split(".")[0] != "edge"}
    assert old == {}


def test_imports_point_down_only():
    upward = [
        f"{m} ({NAMES[layer_of(m)]}) imports {t} ({NAMES[layer_of(t)]})"
        for m, targets in graph().items()
        for t in sorted(targets)
        if layer_of(t) > layer_of(m)
    ]
    assert upward == []


def test_no_import_cycles():
    edges, cycles, state = graph(), [], {}

    def visit(module, path):
        state[module] = "open"
        for target in sorted(edges.get(module, ())):
            if state.get(target) == "open":
                cycles.append(" -> ".join(path[path.index(target) :] + [target]))
            elif target not in state:
                visit(target, path + [target])
        state[module] = "done"

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])
    assert cycles == []


@pytest.mark.parametrize(
    "module,shipped",
    [
        ("edge.runner", True),
        ("edge.eval.metrics", True),
        ("edge.bundle", True),
        ("edge.devices.profiles", True),
        ("edge.cli", True),
        ("edge.converter.train", False),
        ("edge.server.app", False),
        ("edge.devices.edgetpu", False),
        ("edge.devices.package", False),
    ],
)
def test_a_device_gets_every_layer_but_the_host(module, shipped):
    assert on_device(module) is shipped
    assert layer_of(module) in ((set(NAMES) - {HOST}) if shipped else {HOST})


def test_the_front_is_the_python_api_and_the_cli():
    assert {m for m in modules() if layer_of(m) == FRONT} == {"edge", "edge.cli", "edge.render"}
