"""``genemi generate export`` and ``genemi generate stats`` on a hand-made finished run (no models).

The expected sets and counts are computed independently from :class:`ScoredRun` (its ``scores`` table and
the layout documented in ``scored_run.py``), never from the code under test.
"""

import csv
import json
import math
import os
import statistics
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from genemi.generation_pipeline import export, pipeline, stats
from genemi.manifest import read_records
from genemi.records import LEGACY_VARIATION_KEYS, VariationPlan, VariationRecord
from genemi.score_filters import DEFAULT_MIN_ITM, DEFAULT_MIN_IVA
from genemi.training.data import (WebDatasetPairs, expand_shards, iter_tar_samples, read_csv_pairs,
                                  read_variation_records)
from tests.generation_pipeline.scored_run import write_scored_run


@pytest.fixture
def run(tmp_path):
    return write_scored_run(tmp_path)


def expected_ids(run, min_itm=DEFAULT_MIN_ITM, min_iva=DEFAULT_MIN_IVA):
    return {vid for vid, (itm, iva) in run.scores.items()
            if (min_itm is None or itm > min_itm) and (min_iva is None or iva > min_iva)}


def plan_variations(run):
    """variation id -> (image record, item, variation) from scores.jsonl."""
    out = {}
    for plan in read_records(run.output_dir / "scores.jsonl", VariationPlan):
        for item in plan.items:
            for var in item.variations:
                out[var.id] = (plan, item, var)
    return out


def jsonl_records(path):
    return read_records(path, VariationRecord)


def export_files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# --- export ---------------------------------------------------------------------------------------------


def test_export_keeps_exactly_the_variations_that_pass(run):
    summary = export.export_run(run.output_dir)
    want = expected_ids(run)
    assert len(want) == 10 and run.failed_variation not in want
    records = jsonl_records(run.output_dir / "export" / "dataset.jsonl")
    assert [r.id for r in records] == sorted(want)
    assert summary["exported"] == 10 and summary["variations"] == 16 and summary["images"] == 3
    assert summary["failed_images"] == 1
    assert summary["dropped"] == {"failed": 1, "not_painted": 0, "no_captions": 0, "low_itm": 1, "low_iva": 4,
                                  "missing_image": 0}
    table = plan_variations(run)
    for rec in records:
        plan, item, var = table[rec.id]
        assert (rec.parent_id, rec.origin_name, rec.item, rec.name) == (item.id, plan.id, item.item, var.id)
        assert (rec.source, rec.save, rec.short, rec.portrayal) == (plan.image, var.image, var.short, var.prompt)
        assert rec.tag2text_caption == plan.caption and rec.original_captions == plan.original_captions
        assert rec.captions == var.captions and rec.itm_score == var.itm_score and rec.itm_prob == var.itm_prob
        assert (rec.iva_score, rec.iva_image, rec.iva_window) == (var.iva_image, var.iva_image, var.iva_window)
        assert (rec.seed, rec.kind, rec.crop) == (var.seed, var.kind, item.crop)  # provenance of each variation
        assert (run.output_dir / rec.save).is_file() and (run.input_dir / rec.source).is_file()
        assert math.isclose(rec.mean_itm, run.scores[rec.id][0])


@pytest.mark.parametrize("min_itm,min_iva", [(-2.0, 0.0), (0.6, 14.0), (None, 35.0), (0.0, None), (1.0, 26.0)])
def test_thresholds_change_the_result(run, min_itm, min_iva):
    export.export_run(run.output_dir, formats="jsonl", min_itm=min_itm, min_iva=min_iva)
    got = {r.id for r in jsonl_records(run.output_dir / "export" / "dataset.jsonl")}
    assert got == expected_ids(run, min_itm, min_iva)
    assert got != expected_ids(run)


def test_no_filter_keeps_every_painted_variation_and_accepts_an_unscored_run(run, capsys):
    summary = export.export_run(run.output_dir, formats="jsonl", no_filter=True)
    assert summary["exported"] == len(run.scores) == 15 and summary["dropped"]["failed"] == 1
    (run.output_dir / "scores.jsonl").unlink()
    assert export.main(["--output-dir", str(run.output_dir), "--format", "jsonl,csv", "--no-filter"]) == 0
    out = capsys.readouterr().out
    assert "variations.jsonl" in out and "exported 15 of 16" in out
    records = jsonl_records(run.output_dir / "export" / "dataset.jsonl")
    assert {r.id for r in records} == set(run.scores) and all(r.itm_score is None for r in records)


def test_legacy_json_has_the_legacy_keys_and_reads_back_equal_to_the_jsonl(run):
    export.export_run(run.output_dir, formats="jsonl,legacy")
    folder = run.output_dir / "export"
    data = json.loads((folder / "variation_annotation.json").read_text())
    assert len(data) == 10 and all(list(obj) == list(LEGACY_VARIATION_KEYS) for obj in data)
    legacy = read_variation_records(folder / "variation_annotation.json")
    modern = read_variation_records(folder / "dataset.jsonl")
    assert [r.model_dump(include=set(LEGACY_VARIATION_KEYS)) for r in legacy] == \
        [r.model_dump(include=set(LEGACY_VARIATION_KEYS)) for r in modern]
    assert [r.id for r in legacy] == [r.id for r in modern]  # the legacy name is the variation id


def test_csv_has_one_row_per_caption_of_the_kept_variations(run):
    export.export_run(run.output_dir, formats="csv")
    path = run.output_dir / "export" / "dataset.csv"
    with open(path, newline="", encoding="utf-8") as fh:
        rows = [(r["filepath"], r["title"]) for r in csv.DictReader(fh, delimiter="\t")]
    table = plan_variations(run)
    want = [(table[v][2].image, cap) for v in sorted(expected_ids(run)) for cap in table[v][2].captions]
    assert rows == want and len(rows) == 20
    pairs = read_csv_pairs(path, run.output_dir, "filepath", "title", "\t")  # the trainer's reader
    assert [p.captions[0] for p in pairs] == [c for _, c in want]
    assert all(Path(p.image).is_file() for p in pairs)


def test_webdataset_shards_read_back_with_sibling_and_source_negatives(run):
    summary = export.export_run(run.output_dir, formats="webdataset", shard_size=3)
    info = summary["formats"]["webdataset"]
    urls = expand_shards(info["path"])
    assert len(urls) == 4 and urls == info["shards"] and all(Path(u).is_file() for u in urls)
    samples = [s for u in urls for s in iter_tar_samples(u)]
    assert [len(list(iter_tar_samples(u))) for u in urls] == [3, 3, 3, 1]
    table = plan_variations(run)
    metas = [json.loads(s["json"]) for s in samples]
    assert [m["id"] for m in metas] == sorted(expected_ids(run))
    for sample, meta in zip(samples, metas):
        plan, item, var = table[meta["id"]]
        assert sample["png"] == (run.output_dir / var.image).read_bytes()
        assert sample["txt"].decode() == var.captions[0]
        assert (meta["item"], meta["short"], meta["source"], meta["captions"]) == \
            (item.item, var.short, plan.image, var.captions)
        assert meta["itm_score"] == var.itm_score and meta["itm_prob"] == var.itm_prob
        assert (meta["iva_image"], meta["iva_window"]) == (var.iva_image, var.iva_window)
        assert (meta["seed"], meta["kind"], meta["crop"]) == (var.seed, var.kind, item.crop)
        siblings = [c for v in sorted(item.variations, key=lambda v: v.id) if v.id != var.id for c in v.captions]
        source = [*plan.original_captions, plan.caption]
        negs = meta["negatives"]
        assert [n["text"] for n in negs if n["type"] == "sibling"] == siblings
        assert [n["text"] for n in negs if n["type"] == "source"] == source
        assert len(negs) == len(siblings) + len(source) and all(n["valid"] for n in negs)

    def to_tensor(img):
        return torch.from_numpy(np.asarray(img.resize((16, 16)), dtype=np.float32)).permute(2, 0, 1)

    groups = list(WebDatasetPairs(info["path"], to_tensor, normalize_captions=False))  # the trainer's reader
    assert len(groups) == 10 and all(len(g.pairs) == 1 and not g.skipped for g in groups)
    assert all(len(g.pairs[0].negatives) == 8 and g.pairs[0].image.shape == (3, 16, 16) for g in groups)


def test_rerun_gives_byte_identical_files_and_no_stale_shards(run):
    folder = run.output_dir / "export"
    export.export_run(run.output_dir, shard_size=2)
    assert len(list((folder / "wds").glob("*.tar"))) == 5
    export.export_run(run.output_dir, shard_size=3)
    first = export_files(folder)
    export.export_run(run.output_dir, shard_size=3)
    assert export_files(folder) == first
    assert sorted(p.name for p in (folder / "wds").iterdir()) == [f"shard-{i:06d}.tar" for i in range(4)]
    assert sorted(p.name for p in folder.iterdir()) == ["dataset.csv", "dataset.jsonl", "export_summary.json",
                                                        "variation_annotation.json", "wds"]


def test_a_rerun_removes_what_a_killed_export_left(run):
    """kill -9 during an export leaves its temporaries (``.<file>.<pid>.tmp``, ``.wds.tmp-<pid>``); the rerun
    removes those of dead writers and keeps a live writer's."""
    import subprocess
    import sys

    folder = run.output_dir / "export"
    export.export_run(run.output_dir)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)  # a process that has ended
    left = [folder / f".dataset.csv.{pid}.tmp", folder / f".variation_annotation.json.{pid}.tmp"]
    for path in left:
        path.write_text("half written")
    (folder / f".wds.tmp-{pid}").mkdir()
    (folder / f".wds.tmp-{pid}" / "shard-000000.tar").write_bytes(b"half")
    live = folder / f".dataset.jsonl.{os.getppid()}.tmp"  # a live process's: not ours to remove
    live.write_text("busy")
    first = export_files(folder)
    export.export_run(run.output_dir)
    assert sorted(p.name for p in folder.iterdir() if p.name.startswith(".")) == [live.name]
    live.unlink()
    assert export_files(folder) == {k: v for k, v in first.items() if not k.startswith(".")}


def test_missing_variation_image_is_dropped_and_counted(run):
    table = plan_variations(run)
    victim = sorted(expected_ids(run))[0]
    (run.output_dir / table[victim][2].image).unlink()
    summary = export.export_run(run.output_dir, formats="jsonl")
    assert summary["dropped"]["missing_image"] == 1 and summary["exported"] == 9


@pytest.mark.parametrize("fmt", ["variations", "csv", "webdataset"])
def test_export_then_genemi_train_runs_one_step(run, tiny_clip, tmp_path, capsys, fmt):
    from genemi.cli import main as genemi

    assert genemi(["generate", "export", "--output-dir", str(run.output_dir), "--shard-size", "4"]) == 0
    folder = run.output_dir / "export"
    data = {
        "variations": ["--dataset", str(folder / "dataset.jsonl"), "--image-root", str(run.output_dir),
                       "--groups-per-batch", "2"],
        "csv": ["--dataset-type", "csv", "--dataset", str(folder / "dataset.csv"), "--image-root", str(run.output_dir),
                "--csv-img-key", "filepath", "--csv-caption-key", "title", "--batch-size", "4"],
        "webdataset": ["--dataset-type", "webdataset", "--dataset", str(folder / "wds" / "shard-{000000..000002}.tar"),
                       "--batch-size", "4", "--loss", "negclip"],
    }[fmt]
    rc = genemi(["train", "--clip-model", str(tiny_clip["config"]), "--pretrained", str(tiny_clip["openai_state_dict"]),
                 "--save-path", str(tmp_path / "train"), "--workers", "0", "--no-progress", "--device", "cpu",
                 "--epoch", "1", "--max-steps", "1", "--lr", "1e-4", *data])
    assert rc == 0
    assert "1 steps" in capsys.readouterr().out and (tmp_path / "train" / "model_0.pt").is_file()


# --- stats ----------------------------------------------------------------------------------------------


def test_stats_counts_equal_hand_counts_and_pngs_are_images(run, capsys):
    assert stats.main(["--output-dir", str(run.output_dir)]) == 0
    out = capsys.readouterr().out
    assert "inpaint/NonFiniteOutput: the model returned NaN pixels" in out and "ground/no_boxes" in out
    s = json.loads((run.output_dir / "stats" / "stats.json").read_text())
    assert list(s["stages"]) == ["segment", "inpaint", "score"]  # the manifests the run has
    seg, score = s["stages"]["segment"], s["stages"]["score"]
    assert (seg["records"], seg["ok"], seg["failed"], seg["items"]) == (3, 2, 1, 4)
    assert seg["failure_reasons"] == {"ground/no_boxes": 1}
    assert seg["failure_examples"] == {"ground/no_boxes": "no item grounded to a box"}
    assert score["failure_reasons"] == {"ground/no_boxes": 1, "inpaint/NonFiniteOutput": 1}
    assert (score["items"], score["variations"], score["variations_ok"], score["variations_failed"]) == (4, 16, 15, 1)
    assert (score["painted"], score["scored"]) == (15, 15) and s["stages"]["inpaint"]["scored"] == 0
    assert s["variations_per_item"] == {"manifest": "scores.jsonl", "planned": {"4": 4}, "ok": {"3": 1, "4": 3}}
    itm = [v[0] for v in run.scores.values()]
    iva = [v[1] for v in run.scores.values()]
    assert s["filters"] == {
        "min_itm": 0.0, "min_iva": DEFAULT_MIN_IVA, "iva_scope": "image", "painted": 15,
        "pass_itm": sum(v > 0 for v in itm), "pass_iva": sum(v > DEFAULT_MIN_IVA for v in iva),
        "pass_both": len(expected_ids(run)), "exportable": len(expected_ids(run)),
        "export_dropped": {"low_itm": 1, "low_iva": 4, "failed": 1}}
    assert (s["filters"]["pass_itm"], s["filters"]["pass_iva"], s["filters"]["pass_both"]) == (14, 11, 10)
    for name, vals in (("itm", itm), ("iva_image", iva)):
        summary = s["scores"][name]
        assert summary["count"] == 15 and math.isclose(summary["median"], statistics.median(vals))
        assert math.isclose(summary["mean"], statistics.fmean(vals))
        assert (summary["min"], summary["max"]) == (min(vals), max(vals))
    assert s["scores"]["clip_score"] is None and s["scores"]["itm_prob"]["count"] == 15
    for name in ("itm", "itm_prob", "iva", "variations_per_item"):
        path = run.output_dir / "stats" / f"{name}.png"
        assert s["files"][name] == str(path)
        with Image.open(path) as img:
            img.verify()
        with Image.open(path) as img:
            assert img.format == "PNG" and img.size[0] > 100 and img.size[1] > 100
    assert not (run.output_dir / "stats" / "clip_score.png").exists()


def test_stats_thresholds_and_an_unscored_run(run, tmp_path):
    s = stats.run_stats(run.output_dir, tmp_path / "elsewhere", min_itm=None, min_iva=35.0)
    assert (s["filters"]["pass_itm"], s["filters"]["pass_iva"], s["filters"]["pass_both"]) == \
        (15, 4, len(expected_ids(run, None, 35.0)))
    assert (tmp_path / "elsewhere" / "stats.json").is_file()
    (run.output_dir / "scores.jsonl").unlink()
    s = stats.run_stats(run.output_dir, plots=True)
    assert s["scores"] is None and list(s["stages"]) == ["segment", "inpaint"]
    assert set(s["files"]) == {"variations_per_item", "stats"}


# --- bad inputs -----------------------------------------------------------------------------------------


def _one_line_error(capsys, rc):
    captured = capsys.readouterr()
    assert rc == 2 and captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in captured.err, captured.err
    return lines[0]


def test_bad_inputs_give_one_line_and_exit_2(run, tmp_path, capsys):
    missing = str(tmp_path / "nope")
    assert "output folder not found" in _one_line_error(capsys, export.main(["--output-dir", missing]))
    assert "output folder not found" in _one_line_error(capsys, stats.main(["--output-dir", missing]))
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "no stage manifests" in _one_line_error(capsys, stats.main(["--output-dir", str(empty)]))
    msg = _one_line_error(capsys, export.main(["--output-dir", str(run.output_dir), "--shard-size", "-3"]))
    assert "--shard-size" in msg
    msg = _one_line_error(capsys, export.main(["--output-dir", str(run.output_dir), "--format", "jsonl,parquet"]))
    assert "--format" in msg
    msg = _one_line_error(capsys, export.main(["--output-dir", str(run.output_dir), "--min-itm", "high"]))
    assert "--min-itm" in msg
    scores = run.output_dir / "scores.jsonl"
    lines = scores.read_text().splitlines(keepends=True)
    scores.write_text(lines[0] + '{"id": "x", "image": "x.png", "bogus": 1}\n' + "".join(lines[1:]))
    for main in (export.main, stats.main):
        assert "scores.jsonl:2" in _one_line_error(capsys, main(["--output-dir", str(run.output_dir)]))
    scores.unlink()
    msg = _one_line_error(capsys, pipeline.main(["export", "--output-dir", str(run.output_dir)]))
    assert "--stages score" in msg and "--no-filter" in msg


def test_help_describes_formats_and_training(capsys):
    assert export.main(["--help"]) == 0
    text = capsys.readouterr().out
    assert "--csv-img-key filepath --csv-caption-key title" in text and "--image-root" in text
    assert stats.main(["--help"]) == 0 and "--min-iva" in capsys.readouterr().out
