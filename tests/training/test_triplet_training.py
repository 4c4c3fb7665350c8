"""--loss triplet in the trainer: one forward per tower, training with pool pairs mixed in, autocast, the
non-finite guard, resume and its settings check (DDP: tests/training/test_distributed.py)."""

import csv
import math

import pytest
import torch

from genemi.distributed import DistEnv
from genemi.models.clip import ContrastiveForward, create_clip
from genemi.training import losses, train
from genemi.training.config import TrainConfig
from genemi.training.data import Batch
from genemi.training.loop import TrainStep, build_optimizer, fit
from tests.training.test_trainer import _args, _cfg, _weights


def _triplet_args(triplets, *extra):
    return ("--loss", "triplet", "--dataset-type", "triplets", "--dataset", str(triplets.jsonl), "--mode", "allinone",
            "--batch-size", "4", *extra)  # fmt: skip


class _Recorder(torch.nn.Module):
    """A loss that records what it was given."""

    def forward(self, image_features, text_features, logit_scale, **kw):
        self.seen = dict(kw, image_features=image_features, text_features=text_features)
        return {"loss": image_features.sum() + text_features.sum()}


def test_one_forward_per_tower_and_negative_image_features_row_aligned(tiny_clip):
    bundle = create_clip(str(tiny_clip["config"]), tiny_clip["openai_state_dict"])
    model = bundle.model.eval()
    calls = []
    forward = ContrastiveForward(model)
    real = forward.forward
    forward.forward = lambda images, texts: calls.append((images.shape[0], texts.shape[0])) or real(images, texts)
    g = torch.Generator().manual_seed(0)
    size = bundle.preprocess_cfg["size"]
    size = size[0] if isinstance(size, (tuple, list)) else size
    images, neg_images = torch.randn(3, 3, size, size, generator=g), torch.randn(2, 3, size, size, generator=g)
    texts = bundle.tokenizer(["a red square", "a blue circle", "two green squares"])
    neg_texts = bundle.tokenizer(["a red circle", "a blue square", "two green circles"]).view(3, 1, -1)
    valid = torch.tensor([True, False, True])  # row 1 (a pool pair, say) has no negative image
    batch = Batch(images, texts, neg_texts, torch.ones(3, 1, dtype=torch.bool), 0, neg_images, valid)
    recorder = _Recorder()
    step = TrainStep(forward, recorder, build_optimizer(model, TrainConfig().optim), TrainConfig(precision="fp32"),
                     torch.device("cpu"), DistEnv())  # fmt: skip
    with torch.no_grad():
        step.forward_loss(batch)
        want_images = model.encode_image(images, normalize=True)
        want_neg = model.encode_image(neg_images, normalize=True)
    assert calls == [(3 + 2, 3 + 3)]  # images with negative images, captions with negative captions: one call
    seen = recorder.seen
    assert torch.allclose(seen["image_features"], want_images, atol=1e-5)
    assert seen["neg_image_features"].shape == want_images.shape
    assert torch.allclose(seen["neg_image_features"][[0, 2]], want_neg, atol=1e-5)
    assert torch.all(seen["neg_image_features"][1] == 0) and torch.equal(seen["neg_image_valid"], valid)
    assert seen["neg_features"].shape == (3, 1, want_images.shape[1])


def test_triplet_trains_with_pool_pairs_mixed_in_and_logs_its_terms(tmp_path, shapes, triplets, tiny_clip):
    result = fit(_cfg(tmp_path, shapes, tiny_clip, *_triplet_args(triplets, "--epoch", "2", "--log-every", "1")),
                 progress=False)  # fmt: skip
    assert result.steps == 2 * (triplets.num_sources // 4) and all(math.isfinite(v) for v in result.epoch_losses)
    rows = list(csv.DictReader((tmp_path / "run" / "metrics.csv").open()))
    assert len(rows) == result.steps
    for row in rows:
        halves = float(row["negclip_positive"]) + float(row["negclip_negative"])
        assert float(row["loss"]) == pytest.approx(halves, rel=1e-5)
        assert float(row["negclip_negative"]) > 0 and 0 <= float(row["accuracy"]) <= 1
    before = create_clip(str(tiny_clip["config"]), tiny_clip["openai_state_dict"]).model.state_dict()
    after = _weights(tmp_path / "run" / "model_1.pt")
    assert any(not torch.equal(before[k], after[k]) for k in before)


def test_triplet_under_bf16_autocast_keeps_fp32_weights(tmp_path, shapes, triplets, tiny_clip):
    cfg = _cfg(tmp_path, shapes, tiny_clip, *_triplet_args(triplets, "--epoch", "1", "--precision", "bf16",
                                                           "--max-steps", "2", "--accum-freq", "1"))  # fmt: skip
    result = fit(cfg, progress=False)
    assert result.steps == 2 and result.nonfinite_steps == 0 and math.isfinite(result.epoch_losses[0])
    snap = torch.load(tmp_path / "run" / "model_0.pt", weights_only=True)
    assert all(v.dtype == torch.float32 for v in snap["model_state_dict"].values() if v.is_floating_point())


def test_triplet_non_finite_loss_is_skipped(tmp_path, shapes, triplets, tiny_clip, monkeypatch):
    calls = {"n": 0}
    real = losses.TripletClipLoss.forward

    def once_nan(self, *a, **k):
        out = real(self, *a, **k)
        calls["n"] += 1
        if calls["n"] == 2:
            out["loss"] = out["loss"] * float("nan")
        return out

    monkeypatch.setattr(losses.TripletClipLoss, "forward", once_nan)
    result = fit(_cfg(tmp_path, shapes, tiny_clip, *_triplet_args(triplets, "--epoch", "1")), progress=False)
    assert result.nonfinite_steps == 1 and result.steps == triplets.num_sources // 4 - 1


def test_triplet_resume_continues_identically_and_refuses_another_loss(tmp_path, shapes, triplets, tiny_clip, capsys):
    extra = _triplet_args(triplets, "--epoch", "2", "--optimizer", "adamw", "--scheduler", "cosine")
    full = fit(_cfg(tmp_path / "full", shapes, tiny_clip, *extra), progress=False)
    first = _cfg(tmp_path / "part", shapes, tiny_clip, *extra)
    first.max_steps = full.steps // 2  # killed after epoch 0's snapshot
    fit(first, progress=False)
    assert train.main(_args(tmp_path / "part", shapes, tiny_clip, *extra, "--resume", "latest", "--loss",
                            "negclip")) == 2  # fmt: skip
    assert "loss.name: 'triplet' -> 'negclip'" in capsys.readouterr().err
    resumed = fit(_cfg(tmp_path / "part", shapes, tiny_clip, *extra, "--resume", "latest"), progress=False)
    assert resumed.steps == full.steps
    a, b = _weights(tmp_path / "full" / "run" / "model_1.pt"), _weights(tmp_path / "part" / "run" / "model_1.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)
