"""The harness with the tiny CLIP: equality with one-at-a-time scoring (the official scripts' way), the
CLI over snapshot folders and baselines, resume/skip, cache, reports and bad input."""

import json
import os
import shutil
from pathlib import Path

import pytest
import torch
from PIL import Image

from genemi.evaluation import eval_autogmentation as cli
from genemi.evaluation.benchmarks.sugarcrepe import SugarCrepe
from genemi.evaluation.runner import evaluate
from genemi.evaluation.scoring import ClipEmbedder, EmbeddingCache, ImageRef
from genemi.evaluation.snapshots import collect_models, snapshot_epoch
from genemi.models.clip import create_clip


def _image(path, seed):
    g = torch.Generator().manual_seed(seed)
    arr = (torch.rand(24, 24, 3, generator=g) * 255).to(torch.uint8).numpy()
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


@pytest.fixture
def sugarcrepe_small(tmp_path, shared_dir):
    """The first 15 items of each real SugarCrepe file (unchanged layout) with synthetic images."""
    root = tmp_path / "sugarcrepe"
    root.mkdir()
    names = set()
    for f in sorted((shared_dir / "data" / "sugarcrepe").glob("*.json")):
        items = dict(list(json.loads(f.read_text()).items())[:15])
        (root / f.name).write_text(json.dumps(items))
        names |= {v["filename"] for v in items.values()}
    for k, name in enumerate(sorted(names)):
        _image(tmp_path / "val2017" / name, k)
    return root, tmp_path / "val2017"


def official_one_at_a_time(bundle, bench):
    """SugarCrepe's main_eval.py way: per item, embed the image and its two captions, compare."""
    transform = bundle.transform(False)
    model = bundle.model.eval()
    out = {}
    with torch.no_grad():
        for subset, items in bench.items.items():
            correct = 0
            for _, filename, pos, neg in items:
                img = transform(Image.open(bench.images / filename).convert("RGB"))[None]
                i = torch.nn.functional.normalize(model.encode_image(img), dim=-1)
                t = torch.nn.functional.normalize(model.encode_text(bundle.tokenizer([pos, neg])), dim=-1)
                s = (i @ t.T)[0]
                correct += bool(s[0] > s[1])
            out[subset] = 100 * correct / len(items)
    return out


def test_batched_harness_equals_the_official_one_at_a_time_scoring(sugarcrepe_small, tiny_clip):
    bench = SugarCrepe(*sugarcrepe_small)
    bundle = create_clip(str(tiny_clip["config"]), tiny_clip["openai_state_dict"])
    results = evaluate(ClipEmbedder(bundle, "cpu", batch_size=7, workers=0, progress=False), [bench])
    expected = official_one_at_a_time(bundle, bench)
    for subset, value in expected.items():
        assert results["sugarcrepe"].metrics[subset] == pytest.approx(value, abs=1e-9), subset


def test_clip_embedder_batches_equal_single_forward_passes(tiny_clip, tmp_path):
    bundle = create_clip(str(tiny_clip["config"]), tiny_clip["open_clip_state_dict"])
    emb = ClipEmbedder(bundle, "cpu", batch_size=2, workers=0, progress=False)
    texts = ["a dog", "a very long caption about a red car parked next to a tree", "cat", "two birds on a wire"]
    batched = emb.embed_texts(texts)
    with torch.no_grad():
        single = torch.cat([torch.nn.functional.normalize(bundle.model.encode_text(bundle.tokenizer([t])), dim=-1)
                            for t in texts]).numpy()
    assert abs(batched - single).max() < 1e-5
    _image(tmp_path / "a.png", 0)
    (tmp_path / "bad.png").write_bytes(b"not a png")
    vecs, errors = emb.embed_images([ImageRef(str(tmp_path / "a.png")), ImageRef(str(tmp_path / "bad.png")),
                                     ImageRef(str(tmp_path / "a.png"), (0, 0, 10, 10))])
    assert errors[0] is None and "cannot read image" in errors[1] and errors[2] is None
    assert abs((vecs[0] ** 2).sum() - 1) < 1e-5 and not (vecs[0] == vecs[2]).all()  # the crop differs


def test_snapshot_order_and_labels(tmp_path):
    for name in ("model_3.pt", "epoch_10.pt", "model_20.pt", "latest.pt", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    models = collect_models(snapshot_folder=str(tmp_path), baselines=["openai=/x.pt", "random="])
    assert [m.label for m in models] == ["openai", "random", "model_3", "epoch_10", "model_20", "latest"]
    assert [m.epoch for m in models] == [None, None, 3, 10, 20, None]
    assert models[1].pretrained is None and snapshot_epoch("gnm_clip_v2_7.pt") == 7
    from genemi.errors import ConfigError

    with pytest.raises(ConfigError, match="NAME=PATH"):
        collect_models(baselines=["/just/a/path.pt"])


def _winoground(root):
    rows = []
    for e in range(3):
        for k in (0, 1):
            _image(root / "images" / f"ex_{e}_img_{k}.png", 10 * e + k)
        rows.append({"id": e, "image_0": f"ex_{e}_img_0", "image_1": f"ex_{e}_img_1",
                     "caption_0": f"a red cube left of a blue ball {e}", "caption_1": f"a blue ball left of a red cube {e}"})
    (root / "examples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


def test_cli_snapshots_baselines_reports_skip_force_and_cache(tmp_path, tiny_clip, capsys):
    snaps = tmp_path / "snaps"
    snaps.mkdir()
    shutil.copy(tiny_clip["genemi_snapshot"], snaps / "model_3.pt")
    shutil.copy(tiny_clip["ceclip_train"], snaps / "epoch_10.pt")
    wino = _winoground(tmp_path / "winoground")
    rows = [{"num_sample": 2, "image_0": "images/ex_0_img_0.png", "image_1": "images/ex_0_img_1.png",
             "caption_0": "one", "caption_1": "two"}]
    (tmp_path / "gnm_test.json").write_text(json.dumps(rows))
    out = tmp_path / "results"
    args = ["--model-name", "tiny", "--clip-model", str(tiny_clip["config"]), "--snapshot_folder", str(snaps),
            "--baseline", f"openai={tiny_clip['openai_state_dict']}", "--winoground-root", str(wino),
            "--evaluation-filepath", str(tmp_path / "gnm_test.json"), "--evaluation-image-folder", str(wino),
            "--output", str(out), "--device", "cpu", "--workers", "0", "--no-progress", "--batch-size", "4",
            "--cache-dir", str(tmp_path / "cache")]
    assert cli.main(args) == 0
    printed = capsys.readouterr().out
    run = out / "tiny"
    for label in ("openai", "model_3", "epoch_10"):
        data = json.loads((run / f"{label}.json").read_text())
        assert set(data["benchmarks"]) == {"winoground", "genemi_testset"}
        assert data["quick_gelu"] is (label != "epoch_10")  # OpenAI-derived weights get QuickGELU
    assert json.loads((run / "model_3.json").read_text())["epoch"] == 3
    csv_rows = (run / "results.csv").read_text().splitlines()
    assert csv_rows[0].startswith("model,epoch,checkpoint,winoground/text") and [r.split(",")[0] for r in csv_rows[1:]] == ["openai", "model_3", "epoch_10"]
    md = (run / "results.md").read_text()
    assert md.startswith("| model | winoground text | winoground image | winoground group | genemi_testset text_1")
    assert "| model_3 |" in printed
    assert (run / "plots" / "winoground.png").stat().st_size > 1000
    assert any((tmp_path / "cache").rglob("*.pt"))
    # rerun: nothing to do; --force redoes it, from the embedding cache, with the same numbers
    before = (run / "model_3.json").read_text()
    assert cli.main(args) == 0
    assert capsys.readouterr().out.count("already evaluated") == 3
    assert cli.main(args + ["--force"]) == 0
    after = json.loads((run / "model_3.json").read_text())
    assert after["benchmarks"]["winoground"]["metrics"] == json.loads(before)["benchmarks"]["winoground"]["metrics"]


def test_cli_missing_images_reported_or_fatal_and_wrong_architecture(tmp_path, tiny_clip, capsys):
    wino = _winoground(tmp_path / "w")
    (wino / "images" / "ex_2_img_1.png").unlink()
    base = ["--clip-model", str(tiny_clip["config"]), "--baseline", f"b={tiny_clip['open_clip_state_dict']}",
            "--winoground-root", str(wino), "--device", "cpu", "--workers", "0", "--no-progress"]
    assert cli.main(base + ["--output", str(tmp_path / "o1")]) == 0
    assert "1 of 3 items skipped" in capsys.readouterr().err
    data = json.loads((tmp_path / "o1" / "genemi" / "b.json").read_text())["benchmarks"]["winoground"]
    assert data["missing_images"] == 1 and data["evaluated"] == 2
    summary = (tmp_path / "o1" / "genemi" / "results.md").read_text()  # partial coverage, as counts
    assert "Partial coverage:\n- b: winoground: 2 of 3 items evaluated (1 with missing or unreadable images)" in summary
    assert cli.main(base + ["--output", str(tmp_path / "o2"), "--fail-on-missing"]) == 2
    assert "unreadable images" in capsys.readouterr().err
    wrong = ["--clip-model", "ViT-B-32", "--baseline", f"b={tiny_clip['open_clip_state_dict']}",
             "--winoground-root", str(wino), "--device", "cpu", "--output", str(tmp_path / "o3"), "--no-progress"]
    assert cli.main(wrong) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    ckpt = tiny_clip["open_clip_state_dict"]
    assert f"genemi eval: error: checkpoint {ckpt} (state_dict) does not fit the model architecture." in err
    tiny = json.loads(Path(tiny_clip["config"]).read_text())["model_cfg"]
    vis, txt = tiny["vision_cfg"], tiny["text_cfg"]
    # ViT-B-32: width 768, patch 32, 12 layers; the tiny checkpoint lacks blocks 2..11 and has other shapes
    lines = {line.strip().split(" (")[0]: line for line in err.splitlines() if line.startswith("  ")}
    assert "visual.transformer.resblocks.2.ln_1.weight" in lines["missing keys"]
    assert "unexpected keys" not in lines
    conv = (vis["width"], 3, vis["patch_size"], vis["patch_size"])
    assert f"visual.conv1.weight {conv} vs model (768, 3, 32, 32)" in lines["shape mismatches"]
    grid = vis["image_size"] // vis["patch_size"]
    assert f"visual.positional_embedding ({grid * grid + 1}, {vis['width']}) vs model (50, 768)" in err
    assert (f"looks like a ViT with patch {vis['patch_size']}, width {vis['width']}, {vis['layers']} layers, "
            f"image {vis['image_size']}px, text width {txt['width']}.") in err
    assert cli.main(["--baseline", "x=", "--output", str(tmp_path / "o4")]) == 2
    assert "no benchmark data" in capsys.readouterr().err


def test_plots_have_whole_epoch_ticks_and_name_every_baseline(tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from genemi.evaluation.reports import write_plots

    figures = []
    monkeypatch.setattr(plt, "close", lambda fig=None: figures.append(fig))

    def result(label, epoch, text, image, baseline=False):
        return {"label": label, "epoch": epoch, "baseline": baseline,
                "benchmarks": {"winoground": {"headline": ["text", "image"], "metrics": {"text": text, "image": image}}}}

    results = [result("openai", None, 30.0, 10.0, True), result("negclip", None, 35.0, 12.0, True),
               result("model_1", 1, 31.0, 11.0), result("model_2", 2, 33.0, 12.5), result("model_3", 3, 34.0, 13.0)]
    [path] = write_plots(results, tmp_path / "plots")
    assert path.stat().st_size > 1000
    [fig] = figures
    ax = fig.axes[0]
    fig.canvas.draw()
    lo, hi = ax.get_xlim()
    ticks = [t for t in ax.get_xticks() if lo <= t <= hi]
    assert ticks and all(float(t).is_integer() for t in ticks), ticks
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "text" in legend and "image" in legend
    assert "baseline openai" in legend and "baseline negclip" in legend
    # the two baselines are told apart by line style, each metric's lines keep its colour
    dashed = [line for line in ax.get_lines() if line.get_linestyle() not in ("-", "None")]
    assert len(dashed) == 4 and len({line.get_linestyle() for line in dashed}) == 2
    monkeypatch.undo()
    plt.close(fig)


def test_embedding_cache_round_trip(tmp_path):
    import numpy as np

    cache = EmbeddingCache(tmp_path)
    cache.save("m", "b", ["i"], np.ones((1, 2), np.float32), {"i": "x"}, ["t"], np.zeros((1, 2), np.float32))
    got = cache.load("m", "b")
    assert got["images"] == ["i"] and got["image_errors"] == {"i": "x"} and got["text_vecs"].shape == (1, 2)
    (tmp_path / "m" / "b.pt").write_bytes(b"garbage")
    assert cache.load("m", "b") is None


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_autocast_embeddings_match_fp32(tiny_clip, tmp_path):
    bundle = create_clip(str(tiny_clip["config"]), tiny_clip["open_clip_state_dict"])
    texts = ["a dog", "a red car next to a tree"]
    fp32 = ClipEmbedder(bundle, "cpu", workers=0, progress=False, precision="fp32").embed_texts(texts)
    bf16 = ClipEmbedder(bundle, "cuda", workers=0, progress=False, precision="auto").embed_texts(texts)
    assert abs(fp32 - bf16).max() < 5e-2


def test_zero_evaluated_items_is_an_error_naming_the_folder_and_flag(tmp_path, tiny_clip, capsys):
    """ColorSwap as shipped used to evaluate 0 of 12 items, exit 0 and report NaN; any benchmark with nothing
    to evaluate now stops (exit 2) with one line naming the image folder and the flag; a zip is read."""
    from tests.evaluation.test_whatsup_colorswap import colorswap_as_shipped

    root, _ = colorswap_as_shipped(tmp_path)
    base = ["--clip-model", str(tiny_clip["config"]), "--baseline", f"b={tiny_clip['open_clip_state_dict']}",
            "--device", "cpu", "--workers", "0", "--no-progress"]
    assert cli.main(base + ["--colorswap-root", str(root), "--output", str(tmp_path / "o1")]) == 0
    data = json.loads((tmp_path / "o1" / "genemi" / "b.json").read_text())["benchmarks"]["colorswap"]
    assert (data["items"], data["evaluated"]) == (12, 12)
    capsys.readouterr()
    (root / "data" / "images.zip").rename(root / "data" / "elsewhere.bin")  # the JSON without its images
    assert cli.main(base + ["--colorswap-root", str(root), "--output", str(tmp_path / "o2")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("genemi eval: error: colorswap: 0 items evaluated")
    assert str(root) in err[0] and "--colorswap-root" in err[0]
    assert not (tmp_path / "o2" / "genemi" / "b.json").exists()
    # images that exist but none decodes: found after embedding, same error
    sc = tmp_path / "sc"
    sc.mkdir()
    (sc / "swap_obj.json").write_text(json.dumps({"0": {"filename": "x.jpg", "caption": "a", "negative_caption": "b"}}))
    (tmp_path / "coco").mkdir()
    (tmp_path / "coco" / "x.jpg").write_bytes(b"not a jpeg")
    assert cli.main(base + ["--sugarcrepe-root", str(sc), "--coco-val2017", str(tmp_path / "coco"),
                            "--output", str(tmp_path / "o3")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("genemi eval: error: sugarcrepe: 0 items evaluated (1 of 1 items have unreadable")
    assert "--coco-val2017" in err[-1] and str(tmp_path / "coco") in err[-1]


def test_thread_and_worker_defaults_by_device(monkeypatch, tiny_clip, tmp_path):
    """CPU: no loader processes, torch threads = the idle cores when embedding starts (at least 1, at most the
    cores; cores - 1 without /proc/stat; OMP_NUM_THREADS wins); CUDA: a loader process per spare core (at most
    8), torch's threads. The thread count is restored after embedding."""
    from genemi.evaluation import scoring

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    for cores, idle, cpu_threads, cuda_workers in ((1, 0.9, 1, 0), (2, 0.1, 1, 1), (2, 1.8, 2, 1), (2, None, 1, 1),
                                                   (16, 15.6, 16, 8), (16, 7.2, 7, 8), (16, None, 15, 8)):
        monkeypatch.setattr(scoring, "_cores", lambda n=cores: n)
        monkeypatch.setattr(scoring, "idle_cores", lambda window=0.1, v=idle: v)
        assert scoring.default_workers("cpu") == 0 and scoring.default_threads("cpu") == cpu_threads
        assert scoring.default_workers("cuda") == cuda_workers and scoring.default_threads("cuda") is None
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert scoring.default_threads("cpu") is None
    monkeypatch.setenv("OMP_NUM_THREADS", "")
    monkeypatch.setattr(scoring, "_cores", lambda: 3)
    monkeypatch.setattr(scoring, "idle_cores", lambda window=0.1: 2.2)
    bundle = create_clip(str(tiny_clip["config"]), tiny_clip["open_clip_state_dict"])
    emb = ClipEmbedder(bundle, "cpu", progress=False)
    assert (emb.workers, emb.threads) == (0, None)
    seen = []
    monkeypatch.setattr(bundle.model, "encode_image", lambda x: seen.append(torch.get_num_threads()) or x.flatten(1))
    before = torch.get_num_threads()
    _image(tmp_path / "a.png", 0)
    emb.embed_images([ImageRef(str(tmp_path / "a.png"))])
    assert seen == [2] and emb.threads_used == 2 and torch.get_num_threads() == before
    parsed = cli.build_parser().parse_args(["--baseline", "x="])
    assert parsed.workers is None  # the CLI leaves the choice to the device
    monkeypatch.undo()  # the real sampler: a share of the machine's cores (None without /proc/stat)
    idle = scoring.idle_cores(0.01)
    assert idle is None or 0 <= idle <= (os.cpu_count() or 1) + 1e-9
