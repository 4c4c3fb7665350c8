"""The demo's manifests, export and gallery stay byte for byte what ``demo_digest.json`` records."""

import json

from tests.generation_pipeline.demo_digest import RECORD, digest, run_demo_generation


def test_demo_generation_outputs_equal_the_recorded_digest(tmp_path):
    found = digest(run_demo_generation(tmp_path), tmp_path)
    expected = json.loads(RECORD.read_text())
    changed = sorted(k for k in expected if k in found and found[k] != expected[k])
    assert not changed and set(found) == set(expected), (
        f"changed: {changed[:10]}; new: {sorted(set(found) - set(expected))[:10]}; "
        f"missing: {sorted(set(expected) - set(found))[:10]} (regenerate on purpose: "
        "python -m tests.generation_pipeline.demo_digest --update)")
