"""``genemi convert snapshot --to original``: the original GeNeMi trainer continues from the converted file.

The original trainer trains OpenAI's ``clip`` model and continues with ``model.load_state_dict(...)``,
``Adam(model.parameters())``, ``optimizer.load_state_dict(...)``. OpenAI's module layout is written out by hand
in ``test_resume_settings._openai_layout_model`` (a residual block registers attn, ln_1, mlp, ln_2), so the
parameter order the test expects does not come from genemi's own conversion code.
"""

import pytest
import torch

from genemi import convert
from genemi.training import train
from tests.training.test_resume_settings import _openai_layout_model
from tests.training.test_trainer import _args


@pytest.fixture(scope="module")
def genemi_snapshot(tmp_path_factory, shapes, tiny_clip):
    """One real training step of genemi with open_clip's weight-decay rule (two parameter groups)."""
    tmp = tmp_path_factory.mktemp("snap")
    assert train.main(_args(tmp, shapes, tiny_clip, "--epoch", "1", "--max-steps", "1",
                            "--no-decay-all-params")) == 0
    return tmp / "run" / "model_0.pt"


def _continue_like_the_original(path):
    """The original trainer's --model-checkpoint: strict weights, Adam over model.parameters(), its state, a step."""
    ckpt = torch.load(path, weights_only=True)
    model = _openai_layout_model(ckpt["model_state_dict"])
    model.load_state_dict(ckpt["model_state_dict"])  # strict: every key of the file
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-6, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.1)
    optimizer.load_state_dict(ckpt["optimizer_state_dict"])
    loss = sum((p.float() ** 2).sum() for p in model.parameters())
    loss.backward()
    optimizer.step()
    return model, optimizer


def test_the_original_trainer_continues_from_a_converted_snapshot(genemi_snapshot, tmp_path, capsys):
    ours = torch.load(genemi_snapshot, weights_only=True)
    groups = ours["optimizer_state_dict"]["param_groups"]
    assert len(groups) == 2  # --no-decay-all-params: the layout the original cannot read as it is
    with pytest.raises((ValueError, RuntimeError)):  # the break: genemi's file as it is
        _continue_like_the_original(genemi_snapshot)

    assert convert.main(["snapshot", "--snapshot", str(genemi_snapshot), "--output-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"wrote {tmp_path / 'model_0.pt'}" in out and "2 parameter groups" in out
    converted = torch.load(tmp_path / "model_0.pt", weights_only=True)
    assert set(converted) == {"epoch", "model_state_dict", "optimizer_state_dict", "loss"}
    assert converted["epoch"] == 0

    # each Adam moment sits at its parameter's position in OpenAI's order, with genemi's values for that name
    by_name = {name: ours["optimizer_state_dict"]["state"][index]
               for g in groups for index, name in zip(g["params"], g["param_names"])}
    names = [n for n, _ in _openai_layout_model(ours["model_state_dict"]).named_parameters()]
    assert names[:3] == ["positional_embedding", "text_projection", "logit_scale"]
    assert names.index("transformer.resblocks.0.attn.in_proj_weight") < names.index("transformer.resblocks.0.ln_1.weight")
    state = converted["optimizer_state_dict"]["state"]
    assert sorted(state) == list(range(len(names)))
    for k, name in enumerate(names):
        assert torch.equal(state[k]["exp_avg"], by_name[name]["exp_avg"]), name
        assert torch.equal(state[k]["exp_avg_sq"], by_name[name]["exp_avg_sq"]), name

    model, optimizer = _continue_like_the_original(tmp_path / "model_0.pt")
    for p in model.parameters():
        assert optimizer.state[p]["exp_avg"].shape == p.shape
        assert int(optimizer.state[p]["step"]) == 2  # genemi's step, then the original's


def test_convert_snapshot_refuses_what_it_cannot_do(genemi_snapshot, tmp_path, capsys):
    assert convert.main(["snapshot", "--snapshot", str(genemi_snapshot), "--gd-config", "x.py"]) == 2
    err = capsys.readouterr().err
    assert "--gd-config belongs to `genemi convert groundingdino`" in err and len(err.strip().splitlines()) == 1
    assert convert.main(["snapshot"]) == 2
    assert "genemi convert snapshot needs --snapshot" in capsys.readouterr().err
    assert convert.main(["snapshot", "--snapshot", str(genemi_snapshot), "--output-dir",
                         str(genemi_snapshot.parent)]) == 2
    assert "would overwrite the snapshot itself" in capsys.readouterr().err
    assert convert.main(["snapshot", "--snapshot", str(genemi_snapshot), "--output-dir", str(tmp_path / "a")]) == 0
    capsys.readouterr()
    assert convert.main(["snapshot", "--snapshot", str(tmp_path / "a" / "model_0.pt"), "--output-dir",
                         str(tmp_path / "b")]) == 2
    assert "already in the original trainer's layout" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


def test_genemi_continues_from_the_converted_snapshot(genemi_snapshot, tmp_path, shapes, tiny_clip):
    assert convert.main(["snapshot", "--snapshot", str(genemi_snapshot), "--output-dir", str(tmp_path / "o")]) == 0
    assert train.main(_args(tmp_path, shapes, tiny_clip, "--epoch", "2", "--max-steps", "1", "--model-checkpoint",
                            str(tmp_path / "o" / "model_0.pt"))) == 0
    assert (tmp_path / "run" / "model_1.pt").exists() and not (tmp_path / "run" / "model_0.pt").exists()
