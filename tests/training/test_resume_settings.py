"""A resumed training run never mixes settings, and its metrics never hold a step twice."""

import csv
from collections import OrderedDict

import pytest
import torch

from genemi.training import train
from genemi.training.loop import MetricsLog
from tests.training.test_trainer import _args


def test_resume_with_other_training_settings_is_refused_unless_allowed(tmp_path, shapes, tiny_clip, capsys):
    assert train.main(_args(tmp_path, shapes, tiny_clip, "--epoch", "1")) == 0
    capsys.readouterr()
    assert train.main(_args(tmp_path, shapes, tiny_clip, "--epoch", "2", "--resume", "latest", "--lr", "1e-3",
                            "--mode", "allinone")) == 2
    err = capsys.readouterr().err
    assert "mining.mode: 'item_based' -> 'allinone'" in err and "optim.lr: 0.0001 -> 0.001" in err
    assert not (tmp_path / "run" / "model_1.pt").exists()
    # more epochs, another device or worker count are not content changes
    assert train.main(_args(tmp_path, shapes, tiny_clip, "--epoch", "2", "--resume", "latest")) == 0
    assert train.main(_args(tmp_path, shapes, tiny_clip, "--epoch", "3", "--resume", "latest", "--lr", "1e-3",
                            "--allow-changed-settings")) == 0
    assert (tmp_path / "run" / "model_2.pt").exists()


def test_metrics_keep_only_the_steps_before_the_resumed_snapshot(tmp_path):
    path = tmp_path / "metrics.csv"
    path.write_text("epoch,step,loss\n0,1,2.0\n0,10,1.5\n1,20,1.2\n1,25,1.1\n1,2")  # killed after step 20's snapshot
    MetricsLog(tmp_path, enabled=True, tensorboard=False, resume_step=20)
    assert [r["step"] for r in csv.DictReader(path.open())] == ["1", "10", "20"]
    MetricsLog(tmp_path, enabled=True, tensorboard=False, resume_step=0)  # a fresh run in the same folder
    assert not path.exists()


def test_weight_decay_groups_follow_open_clips_rule(tiny_clip):
    from genemi.models.clip import create_clip
    from genemi.training.config import OptimConfig
    from genemi.training.loop import build_optimizer

    model = create_clip(str(tiny_clip["config"]), str(tiny_clip["open_clip_state_dict"])).model
    opt = build_optimizer(model, OptimConfig(weight_decay=0.2, decay_all_params=False, optimizer="adamw"))
    names = {id(p): n for n, p in model.named_parameters()}
    decayed = {names[id(p)] for g in opt.param_groups if g["weight_decay"] > 0 for p in g["params"]}
    # the tiny CLIP's matrices, listed by hand (open_clip_train/main.py decays what is not a gain, bias,
    # LayerNorm or logit_scale): the projections, embeddings, patch conv and each block's four weight matrices
    blocks = {f"{tower}transformer.resblocks.{i}.{w}" for tower in ("visual.", "") for i in (0, 1)
              for w in ("attn.in_proj_weight", "attn.out_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")}
    expected = {"positional_embedding", "text_projection", "token_embedding.weight", "visual.positional_embedding",
                "visual.proj", "visual.conv1.weight", *blocks}
    assert decayed == expected and len(expected) == 22
    # and what must not decay, by name: the class token (a vector), gains and biases, logit_scale
    kept = {names[id(p)] for g in opt.param_groups if g["weight_decay"] == 0 for p in g["params"]}
    assert {"visual.class_embedding", "logit_scale", "ln_final.weight", "visual.ln_pre.bias",
            "transformer.resblocks.1.ln_2.weight", "visual.transformer.resblocks.0.attn.in_proj_bias",
            "transformer.resblocks.0.mlp.c_fc.bias"} <= kept and not kept & decayed
    assert all(torch.is_tensor(p) for g in opt.param_groups for p in g["params"])


class _OpenAIBlock(torch.nn.Module):
    """A residual block registered in the order of OpenAI's clip/model.py: attn, ln_1, mlp, ln_2."""

    def __init__(self, width: int):
        super().__init__()
        self.attn = torch.nn.MultiheadAttention(width, 2)
        self.ln_1 = torch.nn.LayerNorm(width)
        self.mlp = torch.nn.Sequential(OrderedDict([("c_fc", torch.nn.Linear(width, 4 * width)),
                                                    ("c_proj", torch.nn.Linear(4 * width, width))]))
        self.ln_2 = torch.nn.LayerNorm(width)


def _openai_layout_model(state_dict):
    """The tiny CLIP's weights in a module tree registered like OpenAI's ``CLIP`` (its .parameters() order is
    the order the original trainer's Adam state uses)."""

    def tower(layers: int, width: int) -> torch.nn.Module:
        t = torch.nn.Module()
        t.resblocks = torch.nn.Sequential(*[_OpenAIBlock(width) for _ in range(layers)])
        return t

    root = torch.nn.Module()
    root.visual = torch.nn.Module()
    root.visual.class_embedding = torch.nn.Parameter(state_dict["visual.class_embedding"].clone())
    root.visual.positional_embedding = torch.nn.Parameter(state_dict["visual.positional_embedding"].clone())
    root.visual.proj = torch.nn.Parameter(state_dict["visual.proj"].clone())
    root.visual.conv1 = torch.nn.Conv2d(3, 64, 8, 8, bias=False)
    root.visual.ln_pre = torch.nn.LayerNorm(64)
    root.visual.transformer = tower(2, 64)
    root.visual.ln_post = torch.nn.LayerNorm(64)
    root.transformer = tower(2, 64)
    root.token_embedding = torch.nn.Embedding(49408, 64)
    root.positional_embedding = torch.nn.Parameter(state_dict["positional_embedding"].clone())
    root.ln_final = torch.nn.LayerNorm(64)
    root.text_projection = torch.nn.Parameter(state_dict["text_projection"].clone())
    root.logit_scale = torch.nn.Parameter(state_dict["logit_scale"].clone())
    root.load_state_dict({k: v for k, v in state_dict.items() if k in dict(root.named_parameters())}, strict=True)
    return root


def test_an_original_snapshot_continues_with_its_adam_state_matched_by_name(tmp_path, shapes, tiny_clip, capsys):
    from tests.training.test_trainer import _cfg

    sd = torch.load(tiny_clip["openai_state_dict"], weights_only=True)
    sd = {k: v.float() for k, v in sd.items()}
    original = _openai_layout_model(sd)
    params = list(original.parameters())
    adam = torch.optim.Adam(params, lr=1e-6, betas=(0.9, 0.98), eps=1e-6)
    for k, p in enumerate(params):  # a distinct, recognisable state per parameter
        p.grad = torch.full_like(p, float(k + 1))
    adam.step()
    snap = tmp_path / "model_1.pt"
    torch.save({"epoch": 1, "model_state_dict": {k: v.half() for k, v in sd.items()},
                "optimizer_state_dict": adam.state_dict(), "loss": torch.tensor(1.0)}, snap)

    seen = {}
    import genemi.training.loop as loop

    real = loop._restore

    def spy(snapshot, model, optimizer, *rest):
        real(snapshot, model, optimizer, *rest)
        names = {id(p): n for n, p in model.named_parameters()}
        seen.update({names[id(p)]: optimizer.state[p]["exp_avg"].clone() for g in optimizer.param_groups
                     for p in g["params"] if p in optimizer.state})

    loop._restore = spy
    try:
        cfg = _cfg(tmp_path, shapes, tiny_clip, "--epoch", "3", "--model-checkpoint", str(snap), "--max-steps", "1")
        loop.fit(cfg, progress=False)
    finally:
        loop._restore = real
    # exp_avg after one Adam step on a constant gradient g is (1 - beta1) * g: each parameter kept its own
    expected = {n: (1 - 0.9) * float(k + 1) for k, (n, _) in enumerate(original.named_parameters())}
    assert set(seen) == set(expected)
    for name, value in seen.items():
        assert torch.allclose(value, torch.full_like(value, expected[name])), name
    # a snapshot whose epochs are all done is refused instead of training nothing
    with pytest.raises(Exception, match="already finished epoch 1"):
        loop.fit(_cfg(tmp_path / "b", shapes, tiny_clip, "--epoch", "2", "--model-checkpoint", str(snap)),
                 progress=False)
