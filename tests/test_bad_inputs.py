"""Bad command-line values get one clear line (exit 2) before any work."""

import pytest


def test_device_strings_are_checked_before_any_work():
    import torch

    from genemi.distributed import DistEnv, resolve_device
    from genemi.errors import ConfigError

    env = DistEnv.from_environ()
    assert resolve_device("cpu", env) == torch.device("cpu")
    with pytest.raises(ConfigError, match="--device 'tpu9': not a device"):
        resolve_device("tpu9", env)
    if not torch.cuda.is_available():
        for name in ("cuda", "cuda:1"):
            with pytest.raises(ConfigError, match="no CUDA GPU is visible"):
                resolve_device(name, env)


@pytest.mark.parametrize("flags, message", [
    (["--max-items", "0"], "--max-items must be at least 1, not 0"),
    (["--num-portrayals", "0"], "--num-portrayals must be at least 1"),
    (["--box-threshold", "1.5"], "--box-threshold must be in [0, 1], not 1.5"),
    (["--text-threshold", "-0.1"], "--text-threshold must be in [0, 1]"),
    (["--nms-iou", "2"], "--nms-iou must be in [0, 1]"),
    (["--device", "tpu9"], "--device 'tpu9': not a device"),
])
def test_generate_refuses_nonsense_values(flags, message, tmp_path, capsys):
    from genemi.generation_pipeline import pipeline

    rc = pipeline.main(["--input-dir", str(tmp_path), "--output-dir", str(tmp_path / "out"), "--no-progress", *flags])
    err = capsys.readouterr().err
    assert rc == 2 and message in err and "Traceback" not in err


def test_genemi_without_a_command_prints_usage_and_fails(capsys):
    from genemi.cli import main

    assert main([]) == 2 and "usage: genemi" in capsys.readouterr().err


@pytest.mark.parametrize("content, message", [(b"", "the file is empty"), (b"hello\n", "not a PyTorch checkpoint"),
                                              (b"PK\x03\x04broken", "truncated, or not a PyTorch file")])
def test_unreadable_checkpoints_are_one_clear_error(tmp_path, content, message):
    from genemi.errors import CheckpointError
    from genemi.models.checkpoints import read_checkpoint

    path = tmp_path / "model.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=message):
        read_checkpoint(path)


def test_mining_counts_name_their_flag():
    from genemi.errors import ConfigError
    from genemi.training.mining import MiningSpec

    with pytest.raises(ConfigError, match="--groups-per-batch must be at least 1, not 0"):
        MiningSpec(group_by=("name",), variations_per_group=1, pool_per_group=1, groups_per_batch=0,
                   sample_by_score=False)


def test_non_utf8_caption_files_name_file_line_and_offset(tmp_path):
    from genemi.caption_files import read_caption_entries
    from genemi.errors import DataError, ManifestError

    bad_json = tmp_path / "caps.json"
    bad_json.write_bytes(b'[{"image": "a.png",\n  "caption": "a red \xff square"}]')
    with pytest.raises(DataError, match=r"caps\.json:2: byte offset 40 \(0xff\) is not valid utf-8"):
        read_caption_entries(bad_json)
    bad_tsv = tmp_path / "caps.tsv"
    bad_tsv.write_bytes(b"filepath\ttitle\na.png\tok\nb.png\tbad \xe9\n")
    with pytest.raises(DataError, match=r"caps\.tsv:3: byte offset 34"):
        read_caption_entries(bad_tsv)
    bad_jsonl = tmp_path / "caps.jsonl"
    bad_jsonl.write_bytes(b'{"image": "a.png", "caption": "ok"}\n{"image": "b.png", "caption": "\xff"}\n')
    with pytest.raises(ManifestError,
                       match=r"caps\.jsonl:2: byte 32 of the line \(0xff\) is not valid UTF-8; pass --encoding"):
        read_caption_entries(bad_jsonl)


def test_output_paths_are_checked_before_any_work(tmp_path, capsys):
    from genemi.negatives import command as negatives

    caps = tmp_path / "caps.json"
    caps.write_text('[{"image": "a.png", "caption": "a red square left of a blue circle"}]')
    assert negatives.main(["--input", str(caps), "--output", str(tmp_path), "--no-progress"]) == 2
    assert "is a folder" in capsys.readouterr().err
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert negatives.main(["--input", str(caps), "--output", str(blocker / "neg.jsonl"), "--no-progress"]) == 2
    assert "cannot write there" in capsys.readouterr().err


def test_a_model_folder_of_another_architecture_is_named_before_any_image(tmp_path, capsys):
    from genemi.generation_pipeline import pipeline
    from genemi.models.tiny import save_tiny_blip

    blip = save_tiny_blip(tmp_path)["blip"]
    capsys.readouterr()
    rc = pipeline.main(["--input-dir", str(tmp_path), "--output-dir", str(tmp_path / "out"), "--stages", "ground",
                        "--gd-model", str(blip), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and "holds a 'blip' model, not 'grounding-dino'" in err and len(err.strip().splitlines()) == 1


def test_a_run_where_every_image_failed_exits_non_zero_and_says_why(tmp_path, capsys):
    import json

    from genemi.generation_pipeline import pipeline

    for name in ("a.jpg", "b.jpg"):
        (tmp_path / name).write_text("not an image")
    (tmp_path / "caps.json").write_text(json.dumps([{"image": "a.jpg", "caption": "a red square"},
                                                    {"image": "b.jpg", "caption": "a dog"}]))
    rc = pipeline.main(["--annotation-file", str(tmp_path / "caps.json"), "--root-dir", str(tmp_path), "--output-dir",
                        str(tmp_path / "out"), "--stages", "tag", "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 1 and "every image failed in stage tag (tag/ImageError" in err and "Traceback" not in err


def test_negatives_resume_never_mixes_settings_and_the_trainer_refuses_mixed_layouts(tmp_path, capsys):
    from genemi.errors import DataError
    from genemi.negatives import command as negatives
    from genemi.training.data import read_text_negative_pairs

    caps = tmp_path / "caps.json"
    caps.write_text('[{"image": "a.png", "caption": "a red square left of a blue circle"},'
                    ' {"image": "b.png", "caption": "a small dog on a green sofa"}]')
    out = tmp_path / "neg.jsonl"
    base = ["--input", str(caps), "--output", str(out), "--no-progress", "--sources", "vocabulary"]
    assert negatives.main(base + ["--types", "ceclip", "--limit", "1"]) == 0
    capsys.readouterr()
    assert negatives.main(base) == 2  # default types now: refused, naming the setting
    assert "types: ['swap_obj'" in capsys.readouterr().err and len(out.read_text().splitlines()) == 1
    assert negatives.main(base + ["--allow-changed-settings"]) == 0  # appended on purpose: 4 and 12 negatives
    with pytest.raises(DataError, match="different negative layouts"):
        read_text_negative_pairs(out, None)
    assert negatives.main(base + ["--force"]) == 0  # start over: one layout again
    assert len(read_text_negative_pairs(out, None)) == 2


def test_torchscript_archives_are_read_as_data_without_running_their_code(tmp_path):
    import warnings
    import zipfile

    import torch

    from genemi.errors import CheckpointError
    from genemi.models.checkpoints import read_checkpoint, read_torchscript_tensors

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.proj = torch.nn.Linear(3, 2).half()
            self.register_buffer("mask", torch.triu(torch.ones(4, 4)))
            self.blocks = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.LayerNorm(2))

        def forward(self, x):
            return self.blocks(self.proj(x).float())

    path = tmp_path / "model.pt"
    torch.jit.save(torch.jit.script(Net()), str(path))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = torch.jit.load(str(path), map_location="cpu").state_dict()
    got = read_torchscript_tensors(path)
    assert set(got) == set(expected) and all(torch.equal(got[k], expected[k]) and got[k].dtype == expected[k].dtype
                                             for k in expected)
    assert read_checkpoint(path).format == "openai_jit"
    # an archive whose pickle asks for anything but tensors is refused, not executed
    evil = tmp_path / "evil.pt"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(evil, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename.endswith("/data.pkl"):
                data = b"\x80\x02cos\nsystem\nq\x00X\x04\x00\x00\x00trueq\x01\x85q\x02Rq\x03."
            dst.writestr(item, data)
    with pytest.raises(CheckpointError, match="refusing os.system"):
        read_torchscript_tensors(evil)


def test_quick_gelu_guesses_are_said_to_be_guesses():
    from pathlib import Path

    import torch

    from genemi.models.checkpoints import Checkpoint
    from genemi.models.clip import decide_quick_gelu, resolve_model_spec

    spec = resolve_model_spec("ViT-B-32")
    fp16 = Checkpoint(Path("w.pt"), "openai_state_dict", {"x": torch.zeros(1, dtype=torch.float16)})
    assert decide_quick_gelu(spec, fp16, {}, None)[0] is True and decide_quick_gelu(spec, fp16, {}, None)[1].startswith("a guess")
    marked = Checkpoint(Path("w.pt"), "openai_state_dict", {"x": torch.zeros(1)}, raw={"input_resolution": 224})
    assert decide_quick_gelu(spec, marked, {}, None) == (True, "OpenAI-derived weights (openai_state_dict)")
    fp32 = Checkpoint(Path("w.pt"), "state_dict", {"x": torch.zeros(1)})
    use, reason = decide_quick_gelu(spec, fp32, {}, None)
    assert use is False and reason.startswith("a guess") and "--quick-gelu on" in reason
    assert decide_quick_gelu(spec, fp32, {}, True) == (True, "set explicitly")


def test_an_encoding_flag_reads_caption_files_in_other_encodings(tmp_path, capsys):
    from genemi.caption_files import read_caption_entries
    from genemi.errors import DataError, ManifestError
    from genemi.negatives import command as negatives

    for suffix, content in ((".json", '[{"image": "a.png", "caption": "a café by a red sofa"}]'),
                            (".jsonl", '{"image": "a.png", "caption": "a café by a red sofa"}\n'),
                            (".tsv", "filepath\ttitle\na.png\ta café by a red sofa\n")):
        path = tmp_path / f"caps{suffix}"
        path.write_bytes(content.encode("latin-1"))
        with pytest.raises((DataError, ManifestError), match="pass --encoding"):
            read_caption_entries(path)
        [entry] = read_caption_entries(path, encoding="latin-1")
        assert entry.caption == "a café by a red sofa"
    with pytest.raises(DataError, match="unknown text encoding"):
        read_caption_entries(tmp_path / "caps.json", encoding="klingon")
    out = tmp_path / "neg.jsonl"
    assert negatives.main(["--input", str(tmp_path / "caps.json"), "--output", str(out), "--encoding", "latin-1",
                           "--no-progress", "--sources", "vocabulary"]) == 0
    assert "café" in out.read_text(encoding="utf-8")


# --- issue 26: the remaining bad inputs, each one line (exit 2) naming the flag or file, nothing left behind ---

def _one_line(capsys, prog):
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1 and err.startswith(f"{prog}: error: "), err
    return err


@pytest.mark.parametrize("flags, message", [
    (["--chunk-size", "0"], "--chunk-size must be at least 1, not 0"),
    (["--chunk-size", "-5"], "--chunk-size must be at least 1, not -5"),
    (["--mlm-model", "bert-x", "--sources", "vocabulary"], "--mlm-model bert-x is used only by --sources mlm"),
])
def test_negatives_bad_values_touch_no_file(tmp_path, capsys, flags, message):
    from genemi.negatives import command as negatives

    caps = tmp_path / "caps.json"
    caps.write_text('[{"image": "a.png", "caption": "a red square left of a blue circle"}]')
    out = tmp_path / "neg.jsonl"
    assert negatives.main(["--input", str(caps), "--output", str(out), "--no-progress", *flags]) == 2
    assert message in _one_line(capsys, "genemi negatives")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["caps.json"]  # no output, no settings record


def _train_args(tmp_path, shapes, tiny_clip, *extra, pretrained=None):
    return ["--clip-model", str(tiny_clip["config"]), "--pretrained", str(pretrained or tiny_clip["openai_state_dict"]),
            "--dataset", str(shapes.variations_json), "--image-root", str(shapes.images), "--output-dir",
            str(tmp_path / "run"), "--workers", "0", "--no-progress", "--device", "cpu", *extra]


def _truncated(tmp_path):
    import torch

    path = tmp_path / "cut.pt"
    torch.save({"w": torch.zeros(1000)}, path)
    path.write_bytes(path.read_bytes()[:2000])
    return path


def test_train_bad_inputs_name_their_flag_and_leave_no_run_folder(tmp_path, shapes, tiny_clip, capsys):
    from genemi.training import train

    blocker = tmp_path / "file"
    blocker.write_text("x")
    cases = [
        (["--output-dir", str(blocker)], None, f"--output-dir {blocker}: is a file, not a folder"),
        (["--lr", "-1"], None, "--lr must be greater than 0, not -1"),
        ([], "laion/CLIP-ViT-B-32", "looks like a hub id: download it once, e.g. `hf download laion/CLIP-ViT-B-32"),
        ([], _truncated(tmp_path), "(truncated, or not a PyTorch file; copy it again)"),
        # --dataset is read before any weight: a bad data path is reported even when the weights are broken too
        (["--dataset", str(tmp_path / "nope.json")], _truncated(tmp_path), f"--dataset {tmp_path / 'nope.json'}: no such file"),
        (["--image-root", str(tmp_path / "nowhere")], None, f"--image-root {tmp_path / 'nowhere'}: no such folder"),
    ]
    for flags, pretrained, message in cases:
        assert train.main(_train_args(tmp_path, shapes, tiny_clip, *flags, pretrained=pretrained)) == 2, flags
        err = _one_line(capsys, "genemi train")
        assert message in err and "miniz" not in err, err
        assert not (tmp_path / "run").exists(), flags  # no run folder, config.yaml or metrics left behind


def test_train_refuses_image_paths_that_leave_the_image_root(tmp_path, shapes, tiny_clip, capsys):
    import json

    from genemi.training import train

    records = json.loads(shapes.variations_json.read_text())
    records[0]["save"] = "../../etc/passwd"
    bad = tmp_path / "variations.json"
    bad.write_text(json.dumps(records))
    assert train.main(_train_args(tmp_path, shapes, tiny_clip, "--dataset", str(bad))) == 2
    assert "image path '../../etc/passwd' leaves the image folder" in _one_line(capsys, "genemi train")
    assert not (tmp_path / "run").exists()


def test_generate_refuses_annotation_paths_that_leave_the_root(tmp_path, capsys):
    import json

    from genemi.generation_pipeline import pipeline

    (tmp_path / "images").mkdir()
    (tmp_path / "caps.json").write_text(json.dumps([{"image": "../../etc/passwd", "caption": "a red square"}]))
    rc = pipeline.main(["--annotation-file", str(tmp_path / "caps.json"), "--root-dir", str(tmp_path / "images"),
                        "--output-dir", str(tmp_path / "out"), "--stages", "tag", "--no-progress"])
    assert rc == 2 and "image path '../../etc/passwd' leaves the image folder" in _one_line(capsys, "genemi generate")


@pytest.mark.parametrize("make, message, not_said", [
    ("code", "asks to run code when loaded (posix.system)", ("weights_only", "trust", "truncated")),
    ("cut", "reading zip archive: failed finding central directory (truncated, or not a PyTorch file",
     ("miniz", "weights_only")),
])
def test_dangerous_or_damaged_checkpoints_are_one_plain_line(tmp_path, make, message, not_said):
    import os

    import torch

    from genemi.errors import CheckpointError
    from genemi.models.checkpoints import read_checkpoint

    class RunsCode:
        def __reduce__(self):
            return os.system, ("true",)

    path = _truncated(tmp_path) if make == "cut" else tmp_path / "evil.pt"
    if make == "code":
        torch.save({"model_state_dict": RunsCode()}, path)
    with pytest.raises(CheckpointError) as info:
        read_checkpoint(path)
    text = str(info.value)
    assert message in text and "\n" not in text and not any(word in text for word in not_said), text


def test_eval_bad_inputs_name_their_flag_and_leave_nothing(tmp_path, tiny_clip, capsys):
    from genemi.evaluation import eval_autogmentation as cli
    from tests.evaluation.test_eval_cli import _winoground

    wino = _winoground(tmp_path / "w")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    base = ["--clip-model", str(tiny_clip["config"]), "--winoground-root", str(wino), "--device", "cpu",
            "--workers", "0", "--no-progress"]
    good = ["--baseline", f"b={tiny_clip['openai_state_dict']}"]
    cases = [(good + ["--output", str(blocker)], f"--output-dir {blocker / 'genemi'}: cannot create it, {blocker} is a file"),
             (good + ["--batch-size", "0", "--output-dir", str(tmp_path / "o")], "--batch-size must be at least 1, not 0"),
             (["--baseline", f"b={_truncated(tmp_path)}", "--output-dir", str(tmp_path / "o")], "truncated, or not a "
              "PyTorch file")]
    for flags, message in cases:
        assert cli.main(base + flags) == 2
        assert message in _one_line(capsys, "genemi eval")
    assert not (tmp_path / "o").exists()


def test_convert_groundingdino_with_a_config_missing_fields_is_one_line(tmp_path, capsys):
    from genemi.convert import main

    cfg = tmp_path / "cfg.py"
    cfg.write_text('modelname = "groundingdino"\nbackbone = "swin_T_224_1k"\nenc_layers = 6\ndec_layers = 6\n'
                   "dim_feedforward = 2048\nnheads = 8\n")
    rc = main(["groundingdino", "--gd-config", str(cfg), "--gd-checkpoint", str(tmp_path / "x.pth"), "--output-dir",
               str(tmp_path / "out")])
    err = _one_line(capsys, "genemi convert")
    assert rc == 2 and "missing num_queries, hidden_dim (an original config such as GroundingDINO_SwinT_OGC.py" in err
    assert not (tmp_path / "out").exists()


def test_eval_annotation_files_cannot_point_outside_their_image_folder(tmp_path):
    import json

    from genemi.errors import DataError
    from genemi.evaluation.benchmarks.genemi_testset import GenemiTestSet
    from genemi.evaluation.benchmarks.retention import Retrieval

    (tmp_path / "images").mkdir()
    rows = tmp_path / "gnm_test.json"
    rows.write_text(json.dumps([{"num_sample": 2, "image_0": "ok.png", "image_1": "../../etc/passwd",
                                 "caption_0": "one", "caption_1": "two"}]))
    with pytest.raises(DataError, match=r"image path '\.\./\.\./etc/passwd' leaves the image folder"):
        GenemiTestSet(rows, tmp_path / "images")
    ann = tmp_path / "retrieval.json"
    ann.write_text(json.dumps([{"image": "../secret.jpg", "caption": ["a cat"]}]))
    with pytest.raises(DataError, match=r"retrieval annotations .*image path '\.\./secret\.jpg' leaves"):
        Retrieval(ann, tmp_path / "images")
