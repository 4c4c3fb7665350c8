"""The pipeline's shape is data: a stage registered from this file branches off ``caption`` and joins at
``score``; it runs in graph order, resumes, merges across shards and is forced alone without touching
``inpaint``'s outputs. Plus the graph's own rules (order, cycles, selections, what --force removes)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pytest

from genemi.errors import ConfigError
from genemi.generation_pipeline import pipeline, registry
from genemi.generation_pipeline.backends import BackendRegistry
from genemi.generation_pipeline.graph import StageGraph, StageSpec
from genemi.generation_pipeline.options import StageSection, option
from genemi.generation_pipeline.scoring.stage import ScoreStage
from genemi.generation_pipeline.stage import Stage, StageItem
from genemi.manifest import read_records
from genemi.records import Failure, ImageStageRecord, VariationPlan

# --- a stage of our own: the number of words of each image's caption ------------------------------------


class ToyRecord(ImageStageRecord):
    words: int = 0


class WordCounter:
    name = "count"

    def __init__(self, config, context):
        self.config = config

    def check(self) -> None:
        if self.config.min_words < 0:
            raise ConfigError(f"--min-words {self.config.min_words}: must not be negative")

    def load(self) -> None: ...

    def offload(self) -> None: ...

    def count(self, texts: list[str]) -> list[int]:
        return [len(t.split()) for t in texts]


TOYS = BackendRegistry("toy", "--toy-backend", {"count": f"{__name__}:WordCounter"})


@dataclass
class ToyConfig(StageSection):
    backends: ClassVar[BackendRegistry] = TOYS
    backend: str = option("count", "how to count", flag="--toy-backend")
    min_words: int = option(1, "captions with fewer words fail")
    batch_size: int = 3


class ToyStage(Stage):
    name = "toy"

    def process(self, items: list[StageItem[VariationPlan]]) -> None:
        counts = self.backend.count([it.record.caption or "" for it in items])
        for item, n in zip(items, counts):
            item.result = n

    def build(self, item: StageItem[VariationPlan]) -> ToyRecord:
        ok = item.result >= self.config.min_words
        return ToyRecord(**item.record.carried(), words=item.result, status="ok" if ok else "failed",
                         error=None if ok else Failure(stage="toy", type="too_short", message="too few words"))


TOY = StageSpec("toy", "words per caption", ("caption",), "toys.jsonl", ToyRecord, ToyConfig, f"{__name__}:ToyStage")
TOY_GRAPH = registry.STAGES.with_stage(TOY).with_stage(dataclasses.replace(registry.STAGES["score"],
                                                                            reads=("inpaint", "toy")))


# --- the graph's rules ------------------------------------------------------------------------------------


def test_the_branch_runs_after_what_it_reads_and_before_what_reads_it():
    names = TOY_GRAPH.names  # every stage after those it reads, the declared order kept where the reads allow
    assert names[:6] == ("tag", "ground", "segment", "portray", "caption", "inpaint") and names[-2:] == ("toy", "score")
    assert set(names) == set(registry.STAGES.names) | {"toy"}
    assert [s.name for s in TOY_GRAPH.downstream(["toy"])] == ["toy", "score"]
    assert [s.name for s in TOY_GRAPH.downstream(["inpaint"])] == ["inpaint", "score"]
    assert [s.name for s in TOY_GRAPH.upstream(["toy"])] == ["tag", "ground", "segment", "portray", "caption", "toy"]
    assert [s.name for s in TOY_GRAPH.select("inpaint:")] == ["inpaint", "score"]
    assert [s.name for s in TOY_GRAPH.select("caption:")] == ["caption", "inpaint", "toy", "score"]
    assert [s.name for s in TOY_GRAPH.select("caption:toy")] == ["caption", "toy"]
    assert [s.name for s in TOY_GRAPH.select("toy,tag")] == ["tag", "toy"]
    with pytest.raises(ConfigError, match="toy does not read inpaint"):
        TOY_GRAPH.select("inpaint:toy")


def test_bad_graphs_are_refused():
    base = registry.STAGES
    with pytest.raises(ConfigError, match="cycle"):
        StageGraph([dataclasses.replace(base["tag"], reads=("score",)), *list(base)[1:]])
    with pytest.raises(ConfigError, match="reads 'nope', which is not a stage"):
        base.with_stage(dataclasses.replace(TOY, reads=("nope",)))
    with pytest.raises(ConfigError, match="stages caption and toy both write captions.jsonl"):
        base.with_stage(dataclasses.replace(TOY, writes="captions.jsonl"))
    with pytest.raises(ConfigError, match="both write variations"):
        base.with_stage(dataclasses.replace(TOY, folders=("variations",)))


# --- the branch, end to end ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_inputs(tmp_path_factory):
    from genemi.demo import write_demo_inputs

    return write_demo_inputs(tmp_path_factory.mktemp("toy_demo"))


def argv(demo_inputs, out: Path, *extra: str) -> list[str]:
    from genemi.demo import generation_argv

    data, models = demo_inputs
    # the tiny random models paint every variation; with the world's render inpainter (the demo's default) the
    # undrawable ones fail, and the sharded run's scores then differ from the whole run's in the last digit
    return [*generation_argv(data, models, out, "tiny"), "--limit", "4", "--stages", "variations", *extra]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _tree(folder: Path) -> dict[str, tuple[str, int]]:
    return {p.relative_to(folder).as_posix(): (_digest(p), p.stat().st_mtime_ns) for p in folder.rglob("*")
            if p.is_file()}


@pytest.fixture(scope="module")
def toy_run(demo_inputs, tmp_path_factory):
    out = tmp_path_factory.mktemp("toy_run") / "gen"
    seen = {}
    real = ScoreStage.prepare

    def spy(self, item):  # what the join hands the score stage
        seen[item.id] = item.inputs["toy"]
        return real(self, item)

    ScoreStage.prepare = spy
    try:
        with registry.using(TOY_GRAPH):
            assert pipeline.main(argv(demo_inputs, out, "--min-words", "3", "--batch-size", "toy=2")) == 0
    finally:
        ScoreStage.prepare = real
    return out, seen


def test_a_branch_registered_from_outside_runs_and_joins(toy_run, capsys):
    out, seen = toy_run
    captions = {r.id: r for r in read_records(out / "captions.jsonl", VariationPlan)}
    toys = {r.id: r for r in read_records(out / "toys.jsonl", ToyRecord)}
    assert sorted(toys) == sorted(captions) and len(toys) == 4
    for rid, rec in toys.items():
        assert rec.words == len((captions[rid].caption or "").split())  # counted from the caption stage's records
        assert rec.status == ("ok" if rec.words >= 3 else "failed")
    assert {rid: rec.words for rid, rec in seen.items()} == {rid: rec.words for rid, rec in toys.items()}
    summary = json.loads((out / "run_summary.json").read_text())
    assert list(summary["stages"]) == ["tag", "ground", "segment", "portray", "caption", "inpaint", "toy", "score"]
    pipe = {s["stage"]: s for s in summary["pipeline"]}
    assert pipe["toy"]["reads"] == ["caption"] and pipe["score"]["reads"] == ["inpaint", "toy"]
    assert summary["config"]["toy"] == {"backend": "count", "min_words": 3, "batch_size": 2}
    assert json.loads((out / "toys.jsonl.settings.json").read_text())["settings"]["min_words"] == 3
    with registry.using(TOY_GRAPH):
        with pytest.raises(SystemExit):
            pipeline.main(["--help"])
    text = capsys.readouterr().out
    assert "stage toy: words per caption (YAML section toy)" in text and "--min-words" in text
    assert "-> toy -> score (run order)" in text


def test_stats_report_the_branch_from_the_graph(toy_run, tmp_path):
    """``genemi generate stats`` counts the manifests the graph declares: the toy stage's too, in graph order."""
    from genemi.generation_pipeline.stats import run_stats

    out, _ = toy_run
    toys = read_records(out / "toys.jsonl", ToyRecord)
    with registry.using(TOY_GRAPH):
        stats = run_stats(out, tmp_path / "stats", plots=False)
    assert list(stats["stages"]) == ["tag", "ground", "segment", "portray", "caption", "inpaint", "toy", "score"]
    toy = stats["stages"]["toy"]
    assert (toy["manifest"], toy["records"]) == ("toys.jsonl", 4)
    assert toy["failed"] == sum(t.status == "failed" for t in toys)
    assert toy["failure_reasons"] == ({"toy/too_short": toy["failed"]} if toy["failed"] else {})
    assert "toy" not in run_stats(out, tmp_path / "plain", plots=False)["stages"]  # the declared graph has none


def test_the_branch_resumes_and_a_rerun_does_nothing(toy_run, demo_inputs, tmp_path):
    out, _ = toy_run
    part = tmp_path / "gen"
    import shutil

    shutil.copytree(out, part)
    lines = (part / "toys.jsonl").read_text().splitlines(keepends=True)
    (part / "toys.jsonl").write_text("".join(lines[:2]) + lines[2][:25])  # killed while writing the third
    (part / "scores.jsonl").unlink()
    (part / "scores.jsonl.settings.json").unlink()
    with registry.using(TOY_GRAPH):
        assert pipeline.main(argv(demo_inputs, part, "--min-words", "3", "--batch-size", "toy=2")) == 0
    summary = json.loads((part / "run_summary.json").read_text())["stages"]
    assert summary["toy"]["already_done"] == 2 and summary["toy"]["processed"] == 2
    assert summary["score"]["processed"] == 4 and summary["inpaint"]["processed"] == 0
    for name in ("toys.jsonl", "scores.jsonl"):
        assert (part / name).read_bytes() == (out / name).read_bytes(), name


def test_forcing_the_branch_alone_keeps_inpaint_and_removes_what_reads_it(toy_run, demo_inputs, tmp_path):
    out, _ = toy_run
    run = tmp_path / "gen"
    import shutil

    shutil.copytree(out, run)
    painted = _tree(run / "variations")
    kept = {n: _digest(run / n) for n in ("variations.jsonl", "captions.jsonl", "masks.jsonl")}
    with registry.using(TOY_GRAPH):
        assert pipeline.main(argv(demo_inputs, run, "--stages", "toy", "--force", "--min-words", "5")) == 0
    assert _tree(run / "variations") == painted  # not one file rewritten
    assert {n: _digest(run / n) for n in kept} == kept
    assert not (run / "scores.jsonl").exists()  # stale: it joined the old toy records
    toys = read_records(run / "toys.jsonl", ToyRecord)
    assert len(toys) == 4 and all(t.status == ("ok" if t.words >= 5 else "failed") for t in toys)
    with registry.using(TOY_GRAPH):
        assert pipeline.main(argv(demo_inputs, run, "--stages", "score", "--min-words", "5")) == 0
    assert (run / "scores.jsonl").read_bytes() == (out / "scores.jsonl").read_bytes()


def test_a_stage_whose_input_is_missing_says_which_stage_to_run(toy_run, demo_inputs, tmp_path, capsys):
    with registry.using(TOY_GRAPH):
        assert pipeline.main(argv(demo_inputs, tmp_path / "empty", "--stages", "toy")) == 2
    err = capsys.readouterr().err
    assert "stage 'toy' needs" in err and "captions.jsonl (run --stages caption first)" in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "empty" / "toys.jsonl").exists()


def test_the_branch_merges_across_shards(toy_run, demo_inputs, tmp_path, capsys):
    out, _ = toy_run
    root = tmp_path / "sharded"
    with registry.using(TOY_GRAPH):
        for k in range(2):
            assert pipeline.main(argv(demo_inputs, root, "--min-words", "3", "--batch-size", "toy=2",
                                      "--num-shards", "2", "--shard-index", str(k))) == 0
        assert pipeline.main(["merge", "--output-dir", str(root)]) == 0
    printed = capsys.readouterr().out
    assert "toys.jsonl: 4 records" in printed
    for name in ("toys.jsonl", "scores.jsonl", "variations.jsonl"):
        assert (root / name).read_bytes() == (out / name).read_bytes(), name
    assert _tree(root / "variations").keys() == _tree(out / "variations").keys()


def test_the_docs_show_the_declared_graph():
    """docs/generation_pipeline.md holds the graph as `python -m genemi.generation_pipeline.registry` prints it."""
    doc = (Path(__file__).resolve().parents[2] / "docs" / "generation_pipeline.md").read_text()
    shown = doc.split("<!-- graph:start -->\n", 1)[1].split("<!-- graph:end -->", 1)[0]
    assert shown == registry.STAGES.markdown()
    assert "caption --> inpaint" in shown and "segment --> inpaint" in shown  # the join is drawn
