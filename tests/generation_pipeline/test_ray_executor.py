"""``genemi generate --executor ray``: the demo through Ray Data equals the local executor byte for byte; a rerun
skips what is done; an actor killed mid-stage is restarted and nothing is lost or written twice; bad input is
one line (Ray missing, an address nobody answers at, resources no node has)."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path

import pytest

from genemi.generation_pipeline import pipeline, registry
from genemi.generation_pipeline.t2i.stage import T2IStage
from tests.generation_pipeline.demo_digest import digest

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'genemi[ray]'; .ci/run installs it)")

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module", autouse=True)
def cluster():
    """One local Ray cluster for the module (2 CPUs); its workers import this repository's tests."""
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from genemi.demo import write_demo_inputs

    root = tmp_path_factory.mktemp("ray_demo")
    return root, *write_demo_inputs(root)


def test_the_demo_through_ray_equals_the_local_executor(demo):
    from genemi.demo import generation_argv

    root, data, models = demo
    local, gen = root / "local", root / "generation"
    assert pipeline.main(generation_argv(data, models, local)) == 0
    assert pipeline.main([*generation_argv(data, models, gen), "--executor", "ray"]) == 0
    expected, found = digest(local, root), digest(gen, root)
    assert found == expected and len(found) > 60  # every manifest, settings record, painted image and preview (64)
    summary = json.loads((gen / "run_summary.json").read_text())
    assert summary["executor"] == "ray" and all(s["processed"] == 8 for s in summary["stages"].values())
    assert all(len(s["busy"]) == 1 for s in summary["stages"].values())  # one group of 8 images per stage


class DieOnceT2IStage(T2IStage):
    """Kills its own process the first time it paints (the marker file says it did): Ray restarts the actor and
    redoes the group."""

    def process(self, items):
        marker = self.context.output_dir / ".died-once"
        if not marker.exists():
            marker.write_text("x")
            os.kill(os.getpid(), 9)
        return super().process(items)


def _branch_argv(data, out, *extra):
    return ["--annotation-file", str(data.coco_train), "--root-dir", str(data.images), "--output-dir", str(out),
            "--stages", "tag,negcaption,t2i", "--painter", "render", "--kinds", "swap_obj,swap_att", "--limit", "8",
            "--batch-size", "t2i=2", "--device", "cpu", "--no-progress", *extra]


def test_an_actor_killed_mid_stage_is_restarted_and_nothing_is_lost_or_doubled(demo, tmp_path):
    root, data, _ = demo
    local = tmp_path / "local"
    assert pipeline.main(_branch_argv(data, local)) == 0
    dying = registry.STAGES.with_stage(dataclasses.replace(registry.STAGES["t2i"],
                                                           stage=f"{__name__}:DieOnceT2IStage"))
    out = tmp_path / "ray"
    with registry.using(dying):
        assert pipeline.main(_branch_argv(data, out, "--executor", "ray", "--ray-group-size", "4")) == 0
    assert (out / ".died-once").exists()  # it did die
    for name in ("tags.jsonl", "negcaptions.jsonl", "negimages.jsonl"):
        lines = (out / name).read_text().splitlines()
        assert len(lines) == len({json.loads(x)["id"] for x in lines}) == 8, name
        assert (out / name).read_bytes() == (local / name).read_bytes(), name
    pngs = sorted(p.relative_to(out) for p in (out / "negatives").rglob("*.png"))
    assert pngs and pngs == sorted(p.relative_to(local) for p in (local / "negatives").rglob("*.png"))
    assert all((out / p).read_bytes() == (local / p).read_bytes() for p in pngs)
    assert not list((out / "negatives").rglob(".tmp-*"))
    # a rerun finds everything done and changes nothing
    before = {name: (out / name).read_bytes() for name in ("tags.jsonl", "negcaptions.jsonl", "negimages.jsonl")}
    with registry.using(dying):
        assert pipeline.main(_branch_argv(data, out, "--executor", "ray", "--ray-group-size", "4")) == 0
    again = json.loads((out / "run_summary.json").read_text())["stages"]
    assert all(s["processed"] == 0 and s["already_done"] == 8 for s in again.values())
    assert {name: (out / name).read_bytes() for name in before} == before


def test_ray_missing_is_one_line(demo, tmp_path, capsys, monkeypatch):
    root, data, _ = demo
    monkeypatch.setitem(sys.modules, "ray", None)
    assert pipeline.main(_branch_argv(data, tmp_path / "x", "--executor", "ray")) == 2
    err = capsys.readouterr().err
    assert "pip install 'genemi[ray]'" in err and len(err.strip().splitlines()) == 1


def test_resources_no_node_has_are_refused_before_any_image(demo, tmp_path, capsys):
    root, data, _ = demo
    out = tmp_path / "x"
    assert pipeline.main(_branch_argv(data, out, "--executor", "ray", "--ray-resources", "t2i=num_gpus:1",
                                      "--ray-timeout", "1")) == 2
    err = capsys.readouterr().err
    assert "--ray-resources t2i: no node of the cluster has num_cpus 0.25, num_gpus 1" in err
    assert len(err.strip().splitlines()) == 1 and not list(out.glob("*.jsonl"))


@pytest.mark.parametrize("flags, message", [
    (["--ray-resources", "t2i=gpus:1"], "unknown resource 'gpus'"),
    (["--ray-resources", "t2i=num_gpus:x"], "num_gpus must be a number"),
    (["--ray-resources", "t2i=concurrency:0"], "concurrency 0 must be at least 1"),
    (["--ray-resources", "inpaint=num_gpus:1"], "--ray-resources names inpaint, which this run does not run"),
    (["--ray-group-size", "0"], "--ray-group-size must be at least 1"),
    (["--executor", "spark"], "invalid choice: 'spark'"),
])
def test_bad_ray_options_are_one_line(demo, tmp_path, capsys, flags, message):
    root, data, _ = demo
    rc = pipeline.main(_branch_argv(data, tmp_path / "x", "--executor", "ray", *flags)) if flags[0] != "--executor" \
        else None
    if rc is None:
        with pytest.raises(SystemExit) as exit_:
            pipeline.main(_branch_argv(data, tmp_path / "x", *flags))
        rc = exit_.value.code
    err = capsys.readouterr().err
    assert rc == 2 and message in err


def test_an_address_nobody_answers_at_is_one_line_and_quick(demo, tmp_path, capsys, monkeypatch):
    import socket
    import time

    root, data, _ = demo
    monkeypatch.setattr(ray, "is_initialized", lambda: False)  # as if no cluster were joined yet
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.monotonic()
    assert pipeline.main(_branch_argv(data, tmp_path / "x", "--executor", "ray", "--ray-address",
                                      f"127.0.0.1:{port}")) == 2
    err = capsys.readouterr().err
    assert f"--ray-address 127.0.0.1:{port}: no Ray cluster answers there" in err and time.monotonic() - start < 30
