"""`pip install .` alone must give a working install: every third-party module that genemi imports is declared.

Creating a clean virtual environment would download torch (minutes, network); instead this collects every
top-level import under ``genemi/`` with ``ast``, maps it to its distribution with
``importlib.metadata.packages_distributions()`` and checks that distribution against ``[project].dependencies``.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
from pathlib import Path

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "genemi"

# Imports that only optional features need, each imported lazily inside the feature and reported with an
# install hint when missing; they are declared under [project.optional-dependencies] (or not at all).
OPTIONAL = {
    "stanza": "the `stanza` caption parser backend is opt-in (extra `stanza`)",
    "tensorboard": "TensorBoard logging is skipped when it is absent (extra `tensorboard`)",
    "ray": "genemi generate --executor ray only; the executor says how to install it when absent (extra `ray`)",
    "timm": "only some third-party model architectures need it; open_clip pulls it in when they do",
}


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_name(spec: str) -> str:
    return _canonical(re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", spec).group(1))


def imported_top_level_modules(package: Path = PACKAGE) -> dict[str, set[str]]:
    """Top-level module name -> the files (relative to the repository) that import it, absolute imports only."""
    found: dict[str, set[str]] = {}
    for path in sorted(package.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], set()).add(str(path.relative_to(ROOT)))
    return found


def third_party_modules() -> dict[str, set[str]]:
    return {
        name: files
        for name, files in imported_top_level_modules().items()
        if name not in sys.stdlib_module_names and name != "genemi" and name != "__future__"
    }


def declared_dependencies() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return {_requirement_name(spec) for spec in project["dependencies"]}


def test_the_import_scan_sees_known_imports():
    modules = third_party_modules()
    assert {"torch", "open_clip", "PIL", "yaml", "wn"} <= set(modules)
    assert "os" not in modules and "genemi" not in modules
    assert "genemi/text/wordnet.py" in modules["wn"]


def test_every_runtime_import_is_a_declared_dependency():
    declared = declared_dependencies()
    distributions = importlib.metadata.packages_distributions()
    missing, unknown = [], []
    for module, files in sorted(third_party_modules().items()):
        if module in OPTIONAL:
            continue
        dists = distributions.get(module)
        if not dists:
            unknown.append(f"{module} (imported by {', '.join(sorted(files))}) is not installed here")
            continue
        if not any(_canonical(d) in declared for d in dists):
            missing.append(f"{module} -> {'/'.join(sorted(set(dists)))} (imported by {', '.join(sorted(files))})")
    assert not unknown, "cannot map imports to distributions: " + "; ".join(unknown)
    assert not missing, "imported but not in [project].dependencies: " + "; ".join(missing)


def test_optional_imports_are_declared_as_extras_when_used():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = {_requirement_name(s) for specs in project.get("optional-dependencies", {}).values() for s in specs}
    for module in set(OPTIONAL) & set(third_party_modules()):
        assert _canonical(module) in extras, f"optional import {module} has no extra in pyproject.toml"


def test_requirements_pin_every_declared_dependency():
    pinned = {
        _requirement_name(line)
        for line in (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    }
    assert declared_dependencies() <= pinned, sorted(declared_dependencies() - pinned)
