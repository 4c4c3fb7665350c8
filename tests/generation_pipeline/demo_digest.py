"""The demo's generation outputs as a digest: one short SHA-256 per file under the run folder.

``test_demo_digest.py`` runs the demo's generation steps (``genemi generate``, ``export``, ``gallery``) and
compares every file with ``demo_digest.json``. A refactor must leave them byte for byte as they were; a change
that alters them on purpose regenerates the record in the same commit, and says why:

    .venv/bin/python -m tests.generation_pipeline.demo_digest --update

Paths of the temporary folder are replaced by ``<ROOT>`` before hashing, ``run_summary.json`` (timings) is
left out, and settings records are hashed without the package versions and git commit of their provenance (what
the presets resolved to stays pinned). One torch thread (as in the test session): reductions on more threads round differently.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
from pathlib import Path

RECORD = Path(__file__).with_name("demo_digest.json")
#: files whose bytes hold timings, not content (the gallery's thumbs.json: the images' modification times)
VOLATILE = {"run_summary.json", "thumbs.json"}


def run_demo_generation(out: Path) -> Path:
    """The demo's generation steps in ``out``; returns the run folder."""
    from genemi.demo import generation_argv, write_demo_inputs
    from genemi.generation_pipeline import pipeline

    data, models = write_demo_inputs(out)
    gen = out / "generation"
    assert pipeline.main(generation_argv(data, models, gen)) == 0
    assert pipeline.main(["export", "--output-dir", str(gen), "--no-filter"]) == 0
    assert pipeline.main(["gallery", "--output-dir", str(gen)]) == 0
    return gen


def _stable(data: bytes) -> bytes:
    """A settings record without what changes with the installation: package versions, the git commit."""
    record = json.loads(data)
    for entry in [record, *record.get("history", [])]:
        for key in ("packages", "genemi_commit"):
            entry.get("provenance", {}).pop(key, None)
    return json.dumps(record, indent=2, sort_keys=True).encode()


def digest(run: Path, root: Path) -> dict[str, str]:
    out = {}
    for path in sorted(run.rglob("*")):
        if path.is_file() and path.name not in VOLATILE:
            data = path.read_bytes()
            if path.name.endswith(".settings.json"):
                data = _stable(data)
            for prefix in {str(root.resolve()), str(root)}:
                data = data.replace(prefix.encode(), b"<ROOT>")
            out[path.relative_to(run).as_posix()] = hashlib.sha256(data).hexdigest()[:16]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--update", action="store_true", help=f"rewrite {RECORD.name} from a fresh run")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        found = digest(run_demo_generation(root), root)
    if args.update:
        RECORD.write_text(json.dumps(found, indent=1, sort_keys=True) + "\n")
        print(f"wrote {RECORD} ({len(found)} files)")
    else:
        print(json.dumps(found, indent=1, sort_keys=True))


if __name__ == "__main__":
    main()
