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


# --- one help style for every command (issue 26 item 2) ---------------------------------------------------------

#: every command and tool with its argv; each takes --config and --set
COMMANDS = {"train": ["train"], "generate": ["generate"], "negatives": ["negatives"], "eval": ["eval"],
            "convert": ["convert"], "generate merge": ["generate", "merge"], "generate export": ["generate", "export"],
            "generate stats": ["generate", "stats"], "generate gallery": ["generate", "gallery"],
            "generate regenerate": ["generate", "regenerate"], "eval compare": ["eval", "compare"],
            "demo": ["demo"]}


def _help(argv, capsys):
    from genemi.cli import main

    try:
        rc = main([*argv, "--help"])
    except SystemExit as exit_:
        rc = exit_.code
    assert rc in (0, None)
    return capsys.readouterr().out


def _invocations(text):
    """Each flag's line in --help: its spellings (``--x, --no-x``) and metavar."""
    import re

    return [line.strip() for line in re.findall(r"^  (-\S.*?)(?:  |$)", text, re.M)]


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_command_help_has_one_style(name, capsys):
    import re

    text = _help(COMMANDS[name], capsys)
    lines = _invocations(text)
    assert len(lines) >= 4, text
    for line in lines:
        spellings = [s.split(" ")[0] for s in line.split(", ")]
        assert "_" not in spellings[0], f"{name}: underscore spelling first: {line}"
        negations = [s for s in spellings if s.startswith("--no-")]
        if negations or (" " not in line and spellings[0] not in ("-h", "-v", "-q")):
            # a boolean: --x, --no-x (older spellings after them); never a bare --no-x or a lone --x
            assert len(spellings) >= 2 and spellings[1] == "--no-" + spellings[0][2:], f"{name}: boolean {line}"
    flags = {s.split(" ")[0] for line in lines for s in line.split(", ")}
    assert {"-v", "--verbose", "-q", "--quiet", "--config", "--set"} <= flags, name
    if "--dtype" in flags or "--precision" in flags:
        assert any(line.startswith("--precision, --dtype {auto,fp32,fp16,bf16}") for line in lines), name
    folders = [line for line in lines if re.match(r"--(save-path|output|out)\b(?!-).* (DIR|FOLDER|OUTPUT_DIR)\b", line)]
    assert not folders, f"{name}: an output folder flag other than --output-dir first: {folders}"
    flat = " ".join(text.split())
    odd = re.search(r"\[default|\(default\)|\(default [^:]|[;,] default |default: None|default: False|defaults to", flat)
    assert not odd, f"{name}: a default not shown as (default: X): ...{flat[odd.start() - 60:odd.end() + 20]}"


def test_genemi_help_lists_every_command_and_tool(capsys):
    from genemi.cli import COMMANDS as TOP
    from genemi.generation_pipeline.pipeline import TOOLS

    text = _help([], capsys)
    for name in TOP:
        assert f"\n  {name} " in text, name
    assert f"genemi generate merge|{'|'.join(TOOLS)}" in text  # regenerate included
    assert "genemi eval compare" in text and "genemi convert snapshot" in text
    assert set(COMMANDS) == set(TOP) | {f"generate {t}" for t in (*TOOLS, "merge")} | {"eval compare"}


def test_generate_takes_precision_set_and_the_old_spellings():
    from genemi.generation_pipeline import pipeline

    def cfg(*flags):
        return pipeline.resolve_config(pipeline.build_parser().parse_args(["--input-dir", "x", *flags]))

    assert cfg("--precision", "bf16").dtype == "bf16" == cfg("--dtype", "bf16").dtype
    assert cfg("--set", "seed=7", "--seed", "3").seed == 7  # --set is applied last
    assert cfg("--set", "ground.box_threshold=0.5").ground.box_threshold == 0.5
    assert cfg("--force").force is True and cfg("--no-force").force is False
    args = pipeline.build_parser().parse_args(["--no-progress", "-q"])
    assert args.progress is False and args.quiet is True


def test_the_tools_after_a_run_read_config_and_set_like_every_command(tmp_path, capsys):
    from genemi.generation_pipeline import stats

    missing = tmp_path / "no_such_run"
    options = tmp_path / "stats.yaml"
    options.write_text(f"output_dir: {missing}\nmin_itm: 1.5\n")
    assert stats.main(["--config", str(options)]) == 2  # the folder came from the file
    assert str(missing) in capsys.readouterr().err
    assert stats.main(["--config", str(options), "--set", f"output_dir={tmp_path / 'other'}"]) == 2
    assert str(tmp_path / "other") in capsys.readouterr().err  # --set wins
    assert stats.main([]) == 2
    assert "give --output-dir: the pipeline run's output folder" in capsys.readouterr().err
    assert stats.main(["--output-dir", str(missing), "--set", "min_itm=x"]) == 2
    assert "min_itm" in capsys.readouterr().err
