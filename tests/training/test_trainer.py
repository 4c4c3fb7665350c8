"""End-to-end trainer runs on the tiny CLIP: modes, losses, dataset types, snapshots, resume, bad input."""

import math
from pathlib import Path

import pytest
import torch

from genemi.errors import ConfigError, TrainingError
from genemi.models.clip import create_clip
from genemi.training import train
from genemi.training.loop import fit

PRESETS = Path(__file__).resolve().parents[2] / "configs" / "train"


def _args(tmp_path, shapes, tiny_clip, *extra):
    return [
        "--clip-model", str(tiny_clip["config"]), "--pretrained", str(tiny_clip["openai_state_dict"]),
        "--dataset", str(shapes.variations_json), "--image-root", str(shapes.images),
        "--coco-dataset", str(shapes.coco_json), "--coco-image_dir", str(shapes.images),
        "--save-path", str(tmp_path / "run"), "--workers", "0", "--no-progress", "--device", "cpu",
        "--itm-threshold", "none", "--iva-threshold", "none", "--groups-per-batch", "4", "--lr", "1e-4",
        *extra,
    ]


def _cfg(tmp_path, shapes, tiny_clip, *extra):
    return train.resolve_config(train.build_parser().parse_args(_args(tmp_path, shapes, tiny_clip, *extra)))


def _weights(path):
    return torch.load(path, weights_only=True)["model_state_dict"]


@pytest.mark.parametrize("mode", ["allinone", "item_based", "image_based"])
def test_two_epochs_per_mode_write_snapshots_and_metrics(tmp_path, shapes, tiny_clip, mode, capsys):
    rc = train.main(_args(tmp_path, shapes, tiny_clip, "--mode", mode, "--epoch", "2"))
    assert rc == 0
    run = tmp_path / "run"
    assert (run / "model_0.pt").exists() and (run / "model_1.pt").exists()
    assert (run / "open_clip" / "epoch_1" / "open_clip_model.safetensors").exists()
    assert (run / "config.yaml").exists()
    rows = (run / "metrics.csv").read_text().splitlines()
    assert rows[0].startswith("epoch,step,lr,loss") and len(rows) >= 3
    assert "done: 2 epoch(s)" in capsys.readouterr().out
    before = create_clip(str(tiny_clip["config"]), tiny_clip["openai_state_dict"]).model.state_dict()
    after = _weights(run / "model_1.pt")
    assert any(not torch.equal(before[k], after[k]) for k in before)


def test_batches_have_the_mode_composition(tmp_path, shapes, tiny_clip):
    from genemi.training.data import build_train_data
    from genemi.training.mining import mining_spec

    cfg = _cfg(tmp_path, shapes, tiny_clip, "--mode", "item_based", "--coco-per-group", "3")
    bundle = create_clip(cfg.clip_model, cfg.pretrained)
    spec = mining_spec("item_based", 4, None, 3, None)
    data = build_train_data(cfg.data, spec, bundle.transform(), bundle.tokenizer, 8, 0)
    batch = next(iter(data.loader))
    assert len(batch) == 4 * (2 + 3)
    assert batch.texts.shape == (20, 32) and batch.neg_texts is None


@pytest.mark.parametrize("loss,extra", [
    ("negclip", []),
    ("ceclip", ["--threshold-type", "mean"]),
    ("ceclip", ["--threshold-type", "max", "--imc-variant", "released_2024"]),
])
def test_two_epochs_per_hard_negative_loss(tmp_path, shapes, tiny_clip, loss, extra, loss_calls):
    import json

    cfg = _cfg(tmp_path, shapes, tiny_clip, "--loss", loss, "--dataset-type", "text_negatives",
               "--dataset", str(shapes.negatives_jsonl), "--batch-size", "4", "--epoch", "2", *extra)
    result = fit(cfg, progress=False)
    assert len(result.epoch_losses) == 2 and all(math.isfinite(v) for v in result.epoch_losses)
    records = [json.loads(line) for line in shapes.negatives_jsonl.read_text().splitlines()]
    k = max(len(r["negatives"]) for r in records)
    valid = sum(n["valid"] for r in records for n in r["negatives"])
    # every step's loss got the file's hard negatives: (rows, K, D) features with the valid ones marked, and over
    # an epoch (3 batches of 4 of the 12 records, each once; the COCO pool rows have none) every valid negative
    assert len(records) == 12 and len(loss_calls) == result.steps == 2 * 3
    assert all(c["neg"].shape[:2] == (c["rows"], k) for c in loss_calls)
    assert sum(int(c["neg_valid"].sum()) for c in loss_calls) == 2 * valid
    snap = torch.load(tmp_path / "run" / "model_1.pt", weights_only=True)
    if loss == "ceclip":
        thresholds = snap["genemi"]["loss_state"]["_extra_state"]["thresholds"]
        assert thresholds.shape == (4,) and torch.isfinite(thresholds).all()


@pytest.mark.parametrize("kind", ["coco", "csv", "webdataset"])
def _pairs_in(shapes, kind) -> int:
    """Image-caption pairs (one per image) in the shapes files, counted from the files themselves."""
    import json
    import tarfile

    if kind == "coco":
        return len({e["image"] for e in json.loads(shapes.coco_json.read_text())})
    if kind == "csv":
        return len(shapes.csv.read_text().splitlines()) - 1  # minus the header
    names = [n for tar in sorted(shapes.images.parent.glob("shard-*.tar")) for n in tarfile.open(tar).getnames()]
    return len({n.split(".")[0] for n in names})


@pytest.mark.parametrize("kind", ["coco", "csv", "webdataset"])
def test_flat_dataset_types_train(tmp_path, shapes, tiny_clip, kind, loss_calls):
    dataset = {"coco": shapes.coco_json, "csv": shapes.csv, "webdataset": shapes.shards}[kind]
    cfg = _cfg(tmp_path, shapes, tiny_clip, "--dataset-type", kind, "--dataset", str(dataset),
               "--batch-size", "4", "--epoch", "1")
    cfg.data.coco_dataset = None
    result = fit(cfg, progress=False)
    assert math.isfinite(result.epoch_losses[0])
    # the whole file reaches the loss: one call per step, 4 pairs each, every full batch of the file's pairs
    assert len(loss_calls) == result.steps == _pairs_in(shapes, kind) // 4 >= 2
    assert all(c["rows"] == 4 and c["neg"] is None for c in loss_calls)
    for call in loss_calls:  # 4 different captions, not one repeated
        assert torch.cdist(call["texts"], call["texts"]).fill_diagonal_(1).min() > 0


def test_resume_equals_an_uninterrupted_run(tmp_path, shapes, tiny_clip):
    full = fit(_cfg(tmp_path / "full", shapes, tiny_clip, "--epoch", "3", "--scheduler", "cosine",
                    "--warmup", "2", "--optimizer", "adamw"), progress=False)
    first = _cfg(tmp_path / "part", shapes, tiny_clip, "--epoch", "1", "--scheduler", "cosine", "--warmup", "2",
                 "--optimizer", "adamw")
    # the schedule must see the same total: run epoch 0 of a 3-epoch run, then stop
    first.epochs, steps = 3, full.steps // 3
    first.max_steps = steps
    fit(first, progress=False)
    rest = _cfg(tmp_path / "part", shapes, tiny_clip, "--epoch", "3", "--scheduler", "cosine", "--warmup", "2",
                "--optimizer", "adamw", "--resume", "latest")
    resumed = fit(rest, progress=False)
    assert resumed.steps == full.steps
    a, b = _weights(tmp_path / "full" / "run" / "model_2.pt"), _weights(tmp_path / "part" / "run" / "model_2.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_snapshot_is_the_genemi_format_and_round_trips(tmp_path, shapes, tiny_clip):
    fit(_cfg(tmp_path, shapes, tiny_clip, "--epoch", "1"), progress=False)
    path = tmp_path / "run" / "model_0.pt"
    snap = torch.load(path, weights_only=True)
    assert {"epoch", "model_state_dict", "optimizer_state_dict", "loss"} <= set(snap)
    assert snap["epoch"] == 0 and isinstance(snap["loss"], float)
    reloaded = create_clip(str(tiny_clip["config"]), path)
    assert reloaded.checkpoint.format == "genemi" and reloaded.quick_gelu  # recorded in the snapshot
    assert all(torch.equal(reloaded.model.state_dict()[k], v) for k, v in snap["model_state_dict"].items())
    local = create_clip("local-dir:" + str(tmp_path / "run" / "open_clip" / "epoch_0"))
    assert local.quick_gelu and all(torch.equal(local.model.state_dict()[k], v)
                                    for k, v in snap["model_state_dict"].items())


def test_original_genemi_snapshot_resumes_via_model_checkpoint(tmp_path, shapes, tiny_clip):
    rc = train.main(_args(tmp_path, shapes, tiny_clip, "--epoch", "5", "--model-checkpoint",
                          str(tiny_clip["genemi_snapshot"])))
    assert rc == 0
    assert (tmp_path / "run" / "model_4.pt").exists() and not (tmp_path / "run" / "model_3.pt").exists()


def test_missing_images_are_skipped_and_reported(tmp_path, shapes, tiny_clip, capsys, caplog):
    import shutil

    images = tmp_path / "images"
    shutil.copytree(shapes.images, images)
    victims = sorted((images / "variations").iterdir())[:5]
    for v in victims[:4]:
        v.unlink()
    victims[4].write_bytes(b"broken")
    # allinone: one variation per group, and 4 groups per batch divide the 72 variations, so an epoch draws
    # each variation exactly once: the 5 broken files are skipped 5 times, and reported
    import json
    import logging

    assert len(json.loads(shapes.variations_json.read_text())) == 72
    caplog.set_level(logging.WARNING, logger="genemi.training.datasets.base")
    args = _args(tmp_path, shapes, tiny_clip, "--epoch", "1", "--mode", "allinone", "--coco-per-group", "0")
    args[args.index("--image-root") + 1] = str(images)
    assert train.main(args) == 0
    assert "images skipped 5;" in capsys.readouterr().out
    rows = (tmp_path / "run" / "metrics.csv").read_text().splitlines()
    assert rows[-1].split(",")[rows[0].split(",").index("skipped_images")] == "5"
    warned = " ".join(r.getMessage() for r in caplog.records if "skipping pair" in r.getMessage())
    assert all(v.name in warned for v in victims)


def test_non_finite_losses_are_skipped_then_abort(tmp_path, shapes, tiny_clip, monkeypatch):
    from genemi.training import losses

    calls = {"n": 0}
    real = losses.ClipLoss.forward

    def sometimes_nan(self, *a, **k):
        out = real(self, *a, **k)
        calls["n"] += 1
        if calls["n"] == 2:
            out["loss"] = out["loss"] * float("nan")
        return out

    monkeypatch.setattr(losses.ClipLoss, "forward", sometimes_nan)
    result = fit(_cfg(tmp_path / "a", shapes, tiny_clip, "--epoch", "1"), progress=False)
    assert result.nonfinite_steps == 1

    monkeypatch.setattr(losses.ClipLoss, "forward", lambda self, *a, **k: {"loss": torch.tensor(float("nan"),
                                                                                   requires_grad=True)})
    with pytest.raises(TrainingError, match="3 non-finite losses in a row"):
        fit(_cfg(tmp_path / "b", shapes, tiny_clip, "--epoch", "1", "--max-nonfinite-steps", "3",
                 "--groups-per-batch", "1"), progress=False)


def test_precision_autocast_keeps_fp32_weights(tmp_path, shapes, tiny_clip):
    cfg = _cfg(tmp_path, shapes, tiny_clip, "--epoch", "1", "--precision", "bf16", "--max-steps", "2",
               "--grad-clip", "1.0", "--accum-freq", "2", "--lock-image")
    fit(cfg, progress=False)
    snap = torch.load(tmp_path / "run" / "model_0.pt", weights_only=True)
    assert all(v.dtype == torch.float32 for v in snap["model_state_dict"].values() if v.is_floating_point())
    before = create_clip(str(tiny_clip["config"]), tiny_clip["openai_state_dict"]).model.state_dict()
    assert torch.equal(before["visual.conv1.weight"], snap["model_state_dict"]["visual.conv1.weight"])
    assert snap["genemi"]["step"] == 2


def test_logit_scale_is_clamped(tmp_path, shapes, tiny_clip):
    cfg = _cfg(tmp_path, shapes, tiny_clip, "--epoch", "1", "--max-steps", "1", "--set", "max_logit_scale=2.0")
    fit(cfg, progress=False)
    snap = torch.load(tmp_path / "run" / "model_0.pt", weights_only=True)
    assert snap["model_state_dict"]["logit_scale"].exp().item() <= 2.0 + 1e-5


def test_ceclip_on_variations_is_a_clear_config_error(tmp_path, shapes, tiny_clip, capsys):
    assert train.main(_args(tmp_path, shapes, tiny_clip, "--loss", "ceclip")) == 2
    assert "needs hard-negative captions" in capsys.readouterr().err


def test_numeric_flags_are_typed_and_bad_values_rejected(tmp_path, shapes, tiny_clip):
    cfg = _cfg(tmp_path, shapes, tiny_clip, "--lr", "3e-5", "--beta-2", "0.95", "--epoch", "4")
    assert cfg.optim.lr == 3e-5 and cfg.optim.betas == (0.9, 0.95) and cfg.epochs == 4
    with pytest.raises(SystemExit):
        train.build_parser().parse_args(["--lr", "fast"])


def test_presets_and_set_overrides(tmp_path, shapes, tiny_clip):
    cfg = _cfg(tmp_path, shapes, tiny_clip, "--config", str(PRESETS / "ceclip_paper.yaml"),
               "--dataset-type", "text_negatives", "--set", "loss.upper_bound=5", "--lr", "1e-5")
    assert cfg.loss.name == "ceclip" and cfg.loss.imc_weight == 0.3 and cfg.loss.upper_bound == 5.0
    assert cfg.optim.lr == 1e-5 and cfg.optim.warmup_steps == 50 and cfg.epochs == 5
    with pytest.raises(ConfigError, match="did you mean 'optim.lr'"):
        _cfg(tmp_path, shapes, tiny_clip, "--set", "optim.lrr=1")


_PAPER_OPTIM = {"optim.optimizer": "adam", "optim.lr": 1e-6, "optim.betas": (0.9, 0.98), "optim.eps": 1e-6,
                "optim.weight_decay": 0.1, "epochs": 10}
# What each preset is for, written out by hand (not read from the YAML): the loaded config must carry it.
PRESET_EXPECTED = {
    "genemi_paper": {**_PAPER_OPTIM, "clip_model": "ViT-B/32", "pretrained": "openai", "optim.decay_all_params": True,
                     "optim.scheduler": "constant", "data.dataset_type": "variations", "data.itm_threshold": 0.0,
                     "data.iva_threshold": 14.0, "loss.name": "clip"},
    "allinone": {**_PAPER_OPTIM, "mining.mode": "allinone", "mining.groups_per_batch": 100,
                 "mining.variations_per_group": 1, "mining.coco_per_group": 1, "mining.sample_by_score": False},
    "item_based": {**_PAPER_OPTIM, "mining.mode": "item_based", "mining.groups_per_batch": 20,
                   "mining.variations_per_group": 2, "mining.coco_per_group": 8, "mining.sample_by_score": True},
    "image_based": {**_PAPER_OPTIM, "mining.mode": "image_based", "mining.groups_per_batch": 20,
                    "mining.variations_per_group": 2, "mining.coco_per_group": 8, "mining.sample_by_score": True},
    "ceclip_paper": {"epochs": 5, "seed": 42, "precision": "fp16", "optim.optimizer": "adamw", "optim.lr": 5e-6,
                     "optim.decay_all_params": False, "optim.scheduler": "cosine", "optim.warmup_steps": 50,
                     "data.dataset_type": "text_negatives", "data.max_negatives": 4, "loss.name": "ceclip",
                     "loss.imc_weight": 0.3, "loss.cmr_weight": 0.2, "loss.imc_variant": "fixed"},
}


def _get(obj, dotted):
    for part in dotted.split("."):
        obj = obj[part] if isinstance(obj, dict) else getattr(obj, part)
    return obj


def _yaml_leaves(node, prefix=""):
    for key, value in node.items():
        if isinstance(value, dict):
            yield from _yaml_leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", tuple(value) if isinstance(value, list) else value


@pytest.mark.parametrize("preset", sorted(PRESET_EXPECTED))
def test_every_preset_loads_its_own_settings(preset):
    from genemi.presets import load_config, read_preset
    from genemi.training.config import TrainConfig

    cfg = load_config(TrainConfig, preset=PRESETS / f"{preset}.yaml")
    raw = read_preset(PRESETS / f"{preset}.yaml")
    defaults = TrainConfig()
    for key, value in PRESET_EXPECTED[preset].items():
        assert _get(cfg, key) == value, key
        # pinned in the file itself, so the preset keeps meaning this if a dataclass default changes
        assert _get(raw, key) == (list(value) if isinstance(value, tuple) else value), key
    for key, value in _yaml_leaves(raw):  # and nothing in the file is dropped on the way
        assert _get(cfg, key) == value, key
    if preset != "genemi_paper":  # the paper preset restates the defaults on purpose; the others must differ
        assert any(_get(defaults, k) != v for k, v in PRESET_EXPECTED[preset].items()), preset


def test_help_lists_original_flags(capsys):
    assert train.main(["--help"]) == 0
    text = capsys.readouterr().out
    for flag in ["--epoch", "--mode", "--save-path", "--dataset", "--image-root", "--coco-dataset",
                 "--coco-image_dir", "--model-checkpoint", "--clip-model", "--lr", "--beta-1", "--beta-2",
                 "--adam-eps", "--weight-decay", "--loss", "--optimizer", "--precision", "--resume"]:
        assert flag in text


def test_genemi_command_dispatches(capsys):
    from genemi.cli import main

    assert main([]) == 2 and "train" in capsys.readouterr().err  # no command: the usage, as an error
    assert main(["--help"]) == 0 and "train" in capsys.readouterr().out
    assert main(["bogus"]) == 2
