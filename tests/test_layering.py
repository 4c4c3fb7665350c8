"""The package layering, read from the source (every import statement, those inside functions too): the shapes
world and the foundation modules sit below the commands, and no two packages import each other, even through a
chain."""

from __future__ import annotations

import ast
from functools import lru_cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "genemi"

#: the packages that are commands or run them: nothing below may import these
COMMANDS = {"generation_pipeline", "training", "evaluation", "negatives", "demo", "convert", "cli", "__main__"}
#: modules every layer uses: they import no command and not the shapes world
FOUNDATION = {"errors", "manifest", "records", "masks", "variation_area", "score_filters", "images", "precision",
              "text", "models", "provenance", "run_settings", "caption_files", "distributed", "presets", "options"}


def _unit(path: Path) -> str:
    """The top-level unit of ``genemi`` a file belongs to: its package, or its module's name."""
    rel = path.relative_to(ROOT)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def imports(path: Path) -> set[str]:
    """The top-level units of ``genemi`` that ``path`` imports anywhere in its body."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        names = []
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names if node.module == "genemi"]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "genemi" and len(parts) > 1:
                found.add(parts[1])
    return found


@lru_cache(maxsize=1)
def graph() -> dict[str, dict[str, list[str]]]:
    """unit -> imported unit -> the files (relative to genemi/) that import it."""
    edges: dict[str, dict[str, list[str]]] = {}
    for path in sorted(ROOT.rglob("*.py")):
        unit = _unit(path)
        for other in imports(path) - {unit}:
            edges.setdefault(unit, {}).setdefault(other, []).append(str(path.relative_to(ROOT)))
    return edges


def test_the_scan_sees_function_level_imports(tmp_path):
    # the kind of import that once let the shapes world reach into the pipeline unnoticed
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from genemi.generation_pipeline.inpainting import geometry\n"
                      "import genemi.masks\nfrom genemi import records\n")
    assert imports(source) == {"generation_pipeline", "masks", "records"}


def test_the_shapes_world_imports_no_command():
    reached = {other: files for other, files in graph().get("synthetic", {}).items() if other in COMMANDS}
    assert reached == {}, f"genemi/synthetic must not import the commands: {reached}"


@pytest.mark.parametrize("unit", sorted(FOUNDATION))
def test_foundation_modules_import_no_command_and_not_the_world(unit):
    reached = {other: files for other, files in graph().get(unit, {}).items()
               if other in COMMANDS | {"synthetic"}}
    assert reached == {}, f"genemi/{unit} imports above its layer: {reached}"


def test_no_two_packages_import_each_other_even_through_a_chain():
    edges = graph()
    # cli hands subcommands to the packages by name and they call back its runner: that pair is the one
    # deliberate exception, so cli's own arrows are left out and no other circle may form.
    deps = {u: {o for o in out if o != "cli"} for u, out in edges.items() if u != "cli"}
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(u: str) -> None:
        state[u] = 1
        path.append(u)
        for o in sorted(deps.get(u, ())):
            if state.get(o) == 1:
                cycle = path[path.index(o):] + [o]
                raise AssertionError("import circle: " + " -> ".join(cycle))
            if o not in state:
                visit(o)
        path.pop()
        state[u] = 2

    for unit in sorted(deps):
        if unit not in state:
            visit(unit)
