"""benchmarks/shapes_experiment.py --quick: every code path of the experiment (data, pipeline and whole-image arms,
every setting, statistics, report) in about a minute, with its numbers pinned.

The recorded digest (benchmarks/shapes_experiment_quick.json) is the sha256 of every per-seed metric of the quick
run, rounded to 4 decimals. A change to genemi's data, training or evaluation code that moves any of those numbers
fails here until the record is rewritten on purpose:

    python benchmarks/shapes_experiment.py --quick --record-quick
"""

import importlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "shapes_experiment.py"


def _load_script():
    """The script as a module its worker processes can import by name (spawn re-imports it from sys.path)."""
    if str(SCRIPT.parent) not in sys.path:
        sys.path.insert(0, str(SCRIPT.parent))
    return importlib.import_module(SCRIPT.stem)


def test_quick_run_matches_the_recorded_digest(tmp_path):
    experiment = _load_script()
    assert experiment.main(["--quick", "--output", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    # every setting was trained (but the start) and evaluated on every benchmark, in every (world, seed) job
    assert len(results["runs"]) == 4
    for run in results["runs"]:
        assert set(run["settings"]) == set(experiment.SETTINGS)
        for name, setting in run["settings"].items():
            assert set(setting["metrics"]) >= {"sugarcrepe", "winoground", "aro_vg_relation", "retrieval"}
            assert (setting["train"] is None) == (experiment.SETTINGS[name] is None)
    # the table: every non-control setting against the control on every tested metric, and the report files
    assert len(results["differences"]) == (len(experiment.SETTINGS) - 1) * len(experiment.TESTED)
    assert (tmp_path / "results.md").read_text().startswith("Paired differences")
    assert (tmp_path / "results.png").stat().st_size > 0
    recorded = json.loads(experiment.QUICK_RECORD.read_text())["digest"]
    assert results["digest"] == recorded, (
        "the --quick run's numbers changed; if on purpose, rerun "
        "`python benchmarks/shapes_experiment.py --quick --record-quick` and commit the record")
