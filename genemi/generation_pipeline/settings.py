"""Settings records of the pipeline's stages (see :mod:`genemi.run_settings`): next to each stage manifest,
``<manifest>.settings.json`` holds the stage's options (those of its chosen backend; options declared with
``content=False`` such as batch sizes, timeouts and concurrency are left out), the run's seed and precision
(resolved: ``auto`` is recorded as what it became), and the identity of every model file or folder an option
names; and, recorded but not compared, its provenance: package versions, genemi's git commit, and what the
stage's presets resolved to (steps, guidance, the scheduler's effective class and config). ``--force`` starts stages over (their
outputs and those of every stage that reads them are removed), ``--allow-changed-settings`` continues and
records the change.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import Any, Sequence

from genemi.run_settings import SUFFIX, fingerprint

REMEDY = ("--force to start this stage over (removes its outputs and those of every stage that reads them), or "
          "--allow-changed-settings to continue with mixed settings (recorded)")


def stage_settings(section: Any, seed: int, dtype: str, llm: Any = None, stage: str | None = None) -> dict[str, Any]:
    """The content-shaping settings of ``stage``'s config section (those of its backend; in a shared section, those
    that apply to it), plus the run's seed and dtype, and the chat model's options (section ``llm``) when the
    stage's backend asks it."""
    values: dict[str, Any] = {"seed": seed, "dtype": dtype}
    backend = getattr(section, "backend", None)
    for options in (section, llm if getattr(section, "uses_llm", False) else None):
        for f in dataclasses.fields(options) if options is not None else ():
            meta = f.metadata
            if "help" not in meta or not meta.get("content", True):
                continue
            if meta.get("backends") and backend not in meta["backends"]:
                continue  # an option of another backend changes nothing
            if meta.get("stages") and stage not in meta["stages"]:
                continue  # an option of another stage sharing the section
            values[f.name] = getattr(options, f.name)
    return fingerprint(values)


def stage_record(stage: Any, section: Any, seed: int, dtype: str, llm: Any = None, name: str | None = None) -> dict:
    """A stage's settings record: :func:`stage_settings` (compared on resume) plus ``provenance`` (recorded only):
    package versions, genemi's git commit and what the stage's presets resolved to (:meth:`Stage.provenance`)."""
    from genemi.provenance import provenance

    return {**stage_settings(section, seed, dtype, llm, name), "provenance": provenance(stage.provenance())}


def remove_outputs(out_dir: Path, specs: Sequence) -> list[str]:
    """``--force``: remove the manifests (side files, settings records) and folders of the given stages (their
    :class:`~genemi.generation_pipeline.graph.StageSpec`); returns what was removed."""
    removed = []
    for spec in specs:
        for name in (spec.writes, spec.writes + ".retry", spec.writes + SUFFIX):
            if (out_dir / name).exists():
                (out_dir / name).unlink()
                removed.append(name)
        for folder in spec.folders:
            if (out_dir / folder).is_dir():
                shutil.rmtree(out_dir / folder)
                removed.append(folder + "/")
    return removed
