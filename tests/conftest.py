"""Shared fixtures: offline hub, tiny models and the shapes dataset built once per session."""

import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

SHARED = Path(__file__).resolve().parents[1].parent / "shared"

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory):
    from genemi.models.tiny import save_tiny_clip

    return save_tiny_clip(tmp_path_factory.mktemp("tiny_clip"), seed=0)


@pytest.fixture(scope="session")
def tiny_detectors(tmp_path_factory):
    """The tiny Grounding DINO, SAM and BLIP folders, built once for every test that reads them (the pipeline
    tests, the GPU check's dry run)."""
    from genemi.models.tiny.detection import save_tiny_blip, save_tiny_grounding_dino, save_tiny_sam

    root = tmp_path_factory.mktemp("tiny_detectors")
    return {**save_tiny_grounding_dino(root), **save_tiny_sam(root), **save_tiny_blip(root)}


@pytest.fixture(scope="session")
def shapes(tmp_path_factory):
    from genemi.synthetic import write_shapes_dataset

    return write_shapes_dataset(tmp_path_factory.mktemp("shapes"), num_sources=12)


@pytest.fixture
def shared_dir():
    if not SHARED.is_dir():
        pytest.skip("../shared is not present (fresh clone)")
    return SHARED


@pytest.fixture
def loss_calls(monkeypatch):
    """What reaches the training loss at each step: the loss value, the rows, and the hard negatives' features and
    validity mask (None without negatives). Records the calls of ClipLoss and CeClipLoss (NegCLIP's too)."""
    from genemi.training import losses

    calls = []
    for cls in (losses.ClipLoss, losses.CeClipLoss):
        def spy(self, image_features, text_features, logit_scale, *args, _real=cls.forward, **kwargs):
            out = _real(self, image_features, text_features, logit_scale, *args, **kwargs)
            neg, valid = kwargs.get("neg_features"), kwargs.get("neg_valid")
            calls.append({"loss": float(out["loss"]), "rows": image_features.shape[0],
                          "texts": text_features.detach().clone(),
                          "neg": None if neg is None else neg.detach().clone(),
                          "neg_valid": None if valid is None else valid.detach().clone()})
            return out

        monkeypatch.setattr(cls, "forward", spy)
    return calls
