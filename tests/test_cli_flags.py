"""The original flag spellings users have in scripts keep working, and --help shows only real defaults."""

import pytest

from genemi.training import train


def _cfg(*flags):
    return train.resolve_config(train.build_parser().parse_args(list(flags)))


def test_original_training_spellings():
    assert _cfg("--sample-by-score", "--mode", "allinone").mining.sample_by_score is True  # the original's bare switch
    assert _cfg("--sample-by-score", "off").mining.sample_by_score is False
    assert str(_cfg("--save_path", "runs/x").save_path) == "runs/x" == str(_cfg("--output-dir", "runs/x").save_path)
    assert _cfg("--quick-gelu").quick_gelu is True and _cfg("--quick-gelu", "off").quick_gelu is False
    assert _cfg("--no-quick-gelu").quick_gelu is False and _cfg("--quick-gelu", "auto").quick_gelu is None


@pytest.mark.parametrize("module", ["genemi.training.train", "genemi.evaluation.eval_autogmentation",
                                    "genemi.negatives.command", "genemi.generation_pipeline.pipeline"])
def test_help_has_no_empty_defaults(module, capsys):
    import importlib

    try:  # a command either returns 0 after printing its help or exits 0 as argparse does
        rc = importlib.import_module(module).main(["--help"])
    except SystemExit as exit_:
        rc = exit_.code
    text = capsys.readouterr().out
    assert rc in (0, None) and "--help" in text and "(default: " in text
    assert "(default: None)" not in text and "(default: False)" not in text


def test_eval_accepts_the_original_auth_token_flag_and_says_it_is_ignored(tmp_path, capsys):
    from genemi.evaluation import eval_autogmentation

    rc = eval_autogmentation.main(["--model-name", "x", "--clip-model", "ViT-B-32", "--hf-auth-token", "hf_abc",
                                   "--output", str(tmp_path)])
    err = capsys.readouterr().err
    assert "--hf-auth-token is ignored" in err and "hf_abc" not in err and rc == 2  # no data given: one clear line


def test_local_dir_models_use_their_own_weights_and_empty_runs_are_refused():
    from genemi.errors import ConfigError

    cfg = _cfg("--clip-model", "local-dir:runs/x/open_clip/epoch_3")
    assert cfg.pretrained is None  # not the 'openai' tag default: genemi's export carries its weights
    assert _cfg("--clip-model", "local-dir:x", "--pretrained", "w.pt").pretrained == "w.pt"
    for flags, message in ((["--max-steps", "0"], "--max-steps must be at least 1"),
                           (["--epoch", "0"], "--epoch must be at least 1")):
        with pytest.raises(ConfigError, match=message):
            _cfg(*flags)
