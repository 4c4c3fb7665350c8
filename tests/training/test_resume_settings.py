"""A resumed training run never mixes settings, and its metrics never hold a step twice."""

import csv

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
    import torch

    from genemi.models.clip import create_clip
    from genemi.training.config import OptimConfig
    from genemi.training.loop import build_optimizer

    model = create_clip(str(tiny_clip["config"]), str(tiny_clip["open_clip_state_dict"])).model
    opt = build_optimizer(model, OptimConfig(weight_decay=0.2, decay_all_params=False, optimizer="adamw"))
    names = {id(p): n for n, p in model.named_parameters()}
    decayed = {names[id(p)] for g in opt.param_groups if g["weight_decay"] > 0 for p in g["params"]}
    # open_clip_train/main.py: exclude = p.ndim < 2 or "bn"/"ln"/"bias"/"logit_scale" in the name
    expected = {n for n, p in model.named_parameters()
                if not (p.ndim < 2 or "bn" in n or "ln" in n or "bias" in n or "logit_scale" in n)}
    assert decayed == expected
    assert "positional_embedding" in decayed and "logit_scale" not in decayed  # embeddings decay, as in open_clip
    assert all(torch.is_tensor(p) for g in opt.param_groups for p in g["params"])
