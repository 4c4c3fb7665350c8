"""pytest plugin for the GPU check (``python -m pytest -p cuda_select ...`` with benchmarks/gpu on sys.path).

Keeps only the tests that need CUDA: those carrying a ``cuda`` or ``gpu`` marker, or a ``skipif`` whose reason
names CUDA (``@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")``). Everything else is
deselected, so the GPU run spends its minutes on what the CPU machines cannot check.

spaCy and pyarrow are not carried to the GPU machine (too large for a device call, and CPU work). Where it is missing,
the CUDA tests known to parse captions with it are deselected, and any other test that fails only because
spaCy (or its model, nltk, wn) is absent is reported as skipped, with that reason, rather than failed.
"""

from __future__ import annotations

import importlib.util

import pytest

#: CUDA tests whose pipeline uses the ``captions`` tagger (spaCy noun phrases).
NEEDS_SPACY = {"test_chain_on_cuda_with_offload"}
CPU_ONLY_PACKAGES = ("spacy", "nltk", "wn", "en_core_web_sm", "pyarrow")


def needs_cuda(item) -> bool:
    if item.get_closest_marker("cuda") is not None or item.get_closest_marker("gpu") is not None:
        return True
    return any("cuda" in str(m.kwargs.get("reason", "")).lower() for m in item.iter_markers("skipif"))


def spacy_installed() -> bool:
    try:
        return importlib.util.find_spec("spacy") is not None
    except (ImportError, ValueError):
        return False


def pytest_collection_modifyitems(config, items):
    has_spacy = spacy_installed()
    keep, drop = [], []
    for item in items:
        wanted = needs_cuda(item) and (has_spacy or item.originalname not in NEEDS_SPACY)
        (keep if wanted else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
    items[:] = keep
    if not has_spacy:
        print(f"\ncuda_select: spaCy is not installed here: deselected {', '.join(sorted(NEEDS_SPACY))}")


def _missing_cpu_package(excinfo) -> str | None:
    exc = excinfo.value if excinfo is not None else None
    while exc is not None:
        if isinstance(exc, ModuleNotFoundError) and (exc.name or "").split(".")[0] in CPU_ONLY_PACKAGES:
            return exc.name
        if type(exc).__name__ == "BackendUnavailable" and "spacy" in str(exc).lower():
            return "spacy"
        exc = exc.__cause__ or exc.__context__
    return None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed and call.excinfo is not None:
        missing = _missing_cpu_package(call.excinfo)
        if missing:
            report.outcome = "skipped"
            path, line = item.location[0], (item.location[1] or 0) + 1
            report.longrepr = (path, line, f"Skipped: needs {missing}, which the GPU machine lacks (CPU work)")
