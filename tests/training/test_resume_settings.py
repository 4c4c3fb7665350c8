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
