"""genemi.models.files: model files read as structure, on real files written by safetensors / torch.save /
save_pretrained / diffusers and then damaged; the tensor bytes are never read."""

import argparse
import json
import os
import shutil
import struct
import zipfile

import pytest
import torch
from safetensors.torch import save_file

from genemi.errors import CheckpointError
from genemi.models import files
from genemi.models.files import TensorInfo


def _cut(path, size, out=None):
    """A copy of ``path`` (or ``path`` itself) holding only its first ``size`` bytes."""
    out = out or path
    data = path.read_bytes()[:size]
    out.write_bytes(data)
    return out


def _raises(fn, path, match):
    with pytest.raises(CheckpointError) as info:
        fn(path, "--flag")
    message = str(info.value)
    assert message.startswith(f"--flag {path}: ") and "\n" not in message, message
    assert match in message, message
    return message


# --- safetensors ------------------------------------------------------------------------------------------


@pytest.fixture
def st(tmp_path):
    tensors = {"a.weight": torch.randn(3, 5), "b": torch.arange(7, dtype=torch.int64),
               "half": torch.ones(2, 2, dtype=torch.bfloat16), "scalar": torch.tensor(1.5)}
    path = tmp_path / "model.safetensors"
    save_file(tensors, str(path))
    (header_len,) = struct.unpack("<Q", path.read_bytes()[:8])
    return path, tensors, header_len


def test_safetensors_header_describes_every_tensor_and_only_the_header_is_read(st):
    path, tensors, header_len = st
    found = files.inspect_safetensors(path, "--flag")
    assert found.format == "safetensors" and found.size == path.stat().st_size
    assert found.tensors() == {k: TensorInfo(tuple(v.shape), str(v.dtype).removeprefix("torch."))
                               for k, v in tensors.items()}
    assert found.bytes_read == 8 + header_len
    meta = files.as_meta(found.tensors())
    assert all(meta[k].is_meta and meta[k].shape == v.shape and meta[k].dtype == v.dtype for k, v in tensors.items())


def test_truncated_safetensors_say_how_much_is_missing(st, tmp_path):
    path, tensors, header_len = st
    size = path.stat().st_size
    data = size - 8 - header_len
    assert "holds 5 bytes, too few" in _raises(files.inspect_safetensors, _cut(path, 5, tmp_path / "a.safetensors"),
                                               "too few")
    _raises(files.inspect_safetensors, _cut(path, 8 + header_len // 2, tmp_path / "b.safetensors"),
            f"truncated: its header alone is {header_len:,} bytes long, the file holds {header_len // 2:,}")
    for keep in (8 + header_len, 8 + header_len + data // 2, size - 1):
        _raises(files.inspect_safetensors, _cut(path, keep, tmp_path / f"c{keep}.safetensors"),
                f"truncated: the header says {data:,} bytes of tensor data, the file holds {keep - 8 - header_len:,}")


def test_empty_text_and_lying_safetensors(st, tmp_path):
    path, _, header_len = st
    raw = path.read_bytes()
    empty = tmp_path / "empty.safetensors"
    empty.write_bytes(b"")
    _raises(files.inspect_safetensors, empty, "is empty")
    text = tmp_path / "text.safetensors"
    text.write_text("Entry not found\n")
    _raises(files.inspect_safetensors, text, "is a text file (starts with 'Entry not found'), not weights")
    lfs = tmp_path / "lfs.safetensors"
    lfs.write_text("version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 123\n")
    _raises(files.inspect_safetensors, lfs, "is a Git LFS pointer")
    html = tmp_path / "page.safetensors"
    html.write_text("<!DOCTYPE html><html><body>Not Found</body></html>")
    _raises(files.inspect_safetensors, html, "is an HTML page (a failed download?)")
    short = tmp_path / "short.safetensors"  # the length field says less than the header is: JSON cut
    short.write_bytes(struct.pack("<Q", header_len - 10) + raw[8:])
    _raises(files.inspect_safetensors, short, f"damaged: its {header_len - 10:,}-byte JSON header does not parse")
    long = tmp_path / "long.safetensors"  # says more than the file holds
    long.write_bytes(struct.pack("<Q", len(raw)) + raw[8:])
    _raises(files.inspect_safetensors, long, "truncated: its header alone is")
    extra = tmp_path / "extra.safetensors"
    extra.write_bytes(raw + b"xyz")
    _raises(files.inspect_safetensors, extra, "damaged: 3 bytes follow the last tensor's data")
    header = json.loads(raw[8:8 + header_len])
    header["a.weight"]["shape"] = [3, 6]
    body = json.dumps(header).encode()
    wrong = tmp_path / "wrong.safetensors"
    wrong.write_bytes(struct.pack("<Q", len(body)) + body + raw[8 + header_len:])
    _raises(files.inspect_safetensors, wrong, "tensor 'a.weight' (F32 [3, 6]) needs 72 bytes, its data_offsets span 60")
    bin_ = tmp_path / "random.safetensors"
    bin_.write_bytes(bytes(range(256)) * 4)
    _raises(files.inspect_safetensors, bin_, "is not a safetensors file")


def test_huge_sparse_safetensors_are_checked_from_their_header_alone(tmp_path):
    shape, total = (65536, 16384), 65536 * 16384 * 4  # a 4 GiB tensor
    header = json.dumps({"w": {"dtype": "F32", "shape": list(shape), "data_offsets": [0, total]}}).encode()
    header += b" " * (-len(header) % 8)
    path = tmp_path / "huge.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header)
    os.truncate(path, 8 + len(header) + total)  # sparse: nothing of it is on disk
    with files.counting_reads() as log:
        found = files.inspect_safetensors(path)
    assert found.tensors() == {"w": TensorInfo(shape, "float32")}
    assert found.bytes_read == log.bytes_read == 8 + len(header) and log.total_size == path.stat().st_size
    os.truncate(path, 8 + len(header) + total - 4096)
    with pytest.raises(CheckpointError, match=f"the header says {total:,} bytes of tensor data, the file holds "
                                              f"{total - 4096:,}"):
        files.inspect_safetensors(path)


# --- torch files ------------------------------------------------------------------------------------------


def _state():
    base = torch.randn(512, 512)  # 1 MiB: far more than the structure
    return {"model": {"w": base, "view": base[10:20, :5], "p": torch.nn.Parameter(torch.ones(4, 3)),
                      "h": torch.zeros(6, dtype=torch.float16), "i": torch.arange(5)},
            "epoch": 3, "args": argparse.Namespace(lr=0.1)}


EXPECTED = {"w": TensorInfo((512, 512), "float32"), "view": TensorInfo((10, 5), "float32"),
            "p": TensorInfo((4, 3), "float32"), "h": TensorInfo((6,), "float16"), "i": TensorInfo((5,), "int64")}


@pytest.mark.parametrize("zip_format", [True, False], ids=["zip", "legacy"])
def test_torch_files_are_read_as_records_without_their_tensor_bytes(tmp_path, zip_format):
    path = tmp_path / "ckpt.pth"
    torch.save(_state(), path, _use_new_zipfile_serialization=zip_format)
    with files.counting_reads() as log:
        found = files.inspect_torch_file(path, "--flag")
    assert found.format == ("torch_zip" if zip_format else "torch_legacy")
    assert found.tensors("model") == EXPECTED and found.content["epoch"] == 3
    assert found.classes == ("argparse.Namespace",) and isinstance(found.content["args"], files.Opaque)
    assert found.refused_classes() == ["argparse.Namespace"] and found.refused_classes(["argparse.Namespace"]) == []
    assert found.bytes_read == log.bytes_read < 64 * 1024 < found.size // 10
    meta = files.as_meta(found.content)["model"]
    assert meta["view"].is_meta and meta["view"].shape == (10, 5) and meta["h"].dtype == torch.float16


def test_truncated_torch_zips_and_missing_or_short_storages(tmp_path):
    path = tmp_path / "ckpt.pth"
    torch.save(_state(), path)
    size = path.stat().st_size
    for keep in (100, size // 2, size - 1):
        _raises(files.inspect_torch_file, _cut(path, keep, tmp_path / f"t{keep}.pth"),
                "truncated: it starts as a zip archive (the torch.save format) but the zip directory at its end is "
                "missing or damaged")
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        prefix = names[0].split("/")[0]
        big = max((n for n in names if "/data/" in n), key=lambda n: zf.getinfo(n).file_size)
        key = big.rsplit("/", 1)[1]

        def rewrite(out, change):
            with zipfile.ZipFile(out, "w") as dst:
                for item in zf.infolist():
                    data = change(item.filename, zf.read(item.filename))
                    if data is not None:
                        dst.writestr(item.filename, data)
            return out

        missing = rewrite(tmp_path / "missing.pth", lambda n, d: None if n == big else d)
        short = rewrite(tmp_path / "short.pth", lambda n, d: d[:100] if n == big else d)
        bad_pickle = rewrite(tmp_path / "pkl.pth", lambda n, d: d[:-20] if n.endswith("data.pkl") else d)
    _raises(files.inspect_torch_file, missing, f"damaged: storage data/{key} that its tensors use is not in the archive")
    _raises(files.inspect_torch_file, short, f"damaged: storage data/{key} holds 100 bytes, its tensors need "
                                             f"{512 * 512 * 4:,}")
    _raises(files.inspect_torch_file, bad_pickle, f"{prefix}/data.pkl stops early")


def test_truncated_legacy_torch_files(tmp_path):
    path = tmp_path / "legacy.pth"
    torch.save(_state(), path, _use_new_zipfile_serialization=False)
    size = path.stat().st_size
    _raises(files.inspect_torch_file, _cut(path, 150, tmp_path / "a.pth"), "stops early")
    _raises(files.inspect_torch_file, _cut(path, size // 2, tmp_path / "b.pth"), f"the file holds {size // 2:,}")
    _raises(files.inspect_torch_file, _cut(path, size - 1, tmp_path / "c.pth"), "truncated: storage")


def test_not_torch_files(tmp_path, st):
    for name, content, match in [("empty.pth", b"", "is empty"), ("text.pth", b"Entry not found", "is a text file"),
                                 ("page.pth", b"<html>404</html>", "is an HTML page"),
                                 ("noise.pth", bytes(range(1, 256)) * 3, "is not a PyTorch file")]:
        (tmp_path / name).write_bytes(content)
        _raises(files.inspect_torch_file, tmp_path / name, match)
    _raises(files.inspect_torch_file, st[0], "is a safetensors file, expected a PyTorch file")
    pickle_only = tmp_path / "plain.pkl"
    pickle_only.write_bytes(__import__("pickle").dumps({"a": 1}, protocol=2))
    _raises(files.inspect_torch_file, pickle_only, "is a pickle, not a torch.save file")
    _raises(files.inspect_torch_file, tmp_path / "absent.pth", "file not found")
    _raises(files.inspect_torch_file, tmp_path, "is a folder, expected a PyTorch file")


def test_foreign_objects_are_recorded_never_built(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "evil.pth"
    torch.save({"w": torch.zeros(2)}, path)
    evil = b"\x80\x02cos\nsystem\nq\x00X" + struct.pack("<I", len(f"touch {marker}")) + f"touch {marker}".encode() \
        + b"q\x01\x85q\x02Rq\x03."
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(tmp_path / "evil2.pth", "w") as dst:
        for item in src.infolist():
            dst.writestr(item.filename, evil if item.filename.endswith("/data.pkl") else src.read(item.filename))
    found = files.inspect_torch_file(tmp_path / "evil2.pth")
    assert not marker.exists() and found.classes == ("os.system",) and found.refused_classes() == ["os.system"]
    with pytest.raises(CheckpointError, match=r"refused: its pickle asks to run code when loaded \(os.system\)"):
        files.require_weights_only(found, "--flag")


def test_torchscript_archives_are_read_as_structure(tiny_clip):
    from genemi.models.checkpoints import read_torchscript_tensors

    found = files.inspect_torch_file(tiny_clip["openai_jit"])
    real = read_torchscript_tensors(tiny_clip["openai_jit"])
    assert found.format == "torchscript" and found.classes == ()
    assert found.tensors() == {k: TensorInfo(tuple(v.shape), str(v.dtype).removeprefix("torch."))
                               for k, v in real.items()}
    with pytest.raises(CheckpointError, match="is a TorchScript archive"):
        files.require_weights_only(found, "--flag")


# --- folders ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bert(tmp_path_factory):
    from transformers import BertConfig, BertModel

    from genemi.models.tiny.building import save_folder, seeded

    with seeded(0):
        model = BertModel(BertConfig(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
                                     vocab_size=300, max_position_embeddings=64))
    root = tmp_path_factory.mktemp("bert")
    single = save_folder(root / "single", model)
    sharded = root / "sharded"
    from genemi.models.hf import quiet_loading

    with quiet_loading():
        model.save_pretrained(sharded, max_shard_size="20KB")
    return {"single": single, "sharded": sharded, "state": {k: v.contiguous() for k, v in model.state_dict().items()}}


def test_model_folders_single_sharded_and_bin(bert, tmp_path):
    state = bert["state"]
    single = files.inspect_model_folder(bert["single"], "--flag")
    assert single.config["model_type"] == "bert" and set(single.tensors) == set(state)
    sharded = files.inspect_model_folder(bert["sharded"], "--flag")
    assert len(sharded.weights) > 2 and sharded.tensors == single.tensors
    binary = tmp_path / "bin"
    binary.mkdir()
    shutil.copy(bert["single"] / "config.json", binary)
    torch.save(state, binary / "pytorch_model.bin")
    assert files.inspect_model_folder(binary).tensors == single.tensors
    files.expect_model(single, "--flag", "bert", ("BertModel",), ("encoder.",))
    with pytest.raises(CheckpointError, match="holds a 'bert' model, not 'blip'"):
        files.expect_model(single, "--flag", "blip")
    with pytest.raises(CheckpointError, match="holds a BertModel, not a BlipForImageTextRetrieval"):
        files.expect_model(single, "--flag", "bert", ("BlipForImageTextRetrieval",))
    with pytest.raises(CheckpointError, match="holds no itm_head.\\* weights"):
        files.expect_model(single, "--flag", "bert", (), ("itm_head.",))


def test_damaged_model_folders(bert, tmp_path):
    folder = shutil.copytree(bert["sharded"], tmp_path / "sharded")
    index = folder / "model.safetensors.index.json"
    weight_map = json.loads(index.read_text())["weight_map"]
    shards = sorted(set(weight_map.values()))
    (folder / shards[1]).unlink()
    with pytest.raises(CheckpointError, match=f"{index}: lists shard {shards[1]}, which is missing"):
        files.inspect_model_folder(folder, "--flag")
    shutil.copy(bert["sharded"] / shards[1], folder / shards[1])
    moved = next(t for t, s in weight_map.items() if s == shards[0])
    data = json.loads(index.read_text())
    data["weight_map"][moved] = shards[1]
    index.write_text(json.dumps(data))
    with pytest.raises(CheckpointError, match=f"{shards[1]}: does not hold {moved}, which "
                                              "model.safetensors.index.json places there"):
        files.inspect_model_folder(folder, "--flag")
    single = shutil.copytree(bert["single"], tmp_path / "single")
    config = single / "config.json"
    text = config.read_text()
    config.write_text(text[: len(text) // 2])
    with pytest.raises(CheckpointError, match=r"config.json: is not valid JSON \(truncated\?"):
        files.inspect_model_folder(single, "--flag")
    config.write_text("")
    with pytest.raises(CheckpointError, match="config.json: is empty"):
        files.inspect_model_folder(single, "--flag")
    config.write_text("Entry not found")
    with pytest.raises(CheckpointError, match="config.json: is not valid JSON \\(starts with 'Entry not found'\\)"):
        files.inspect_model_folder(single, "--flag")
    config.write_text(text)
    (single / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="has no weights \\(model.safetensors or model.safetensors.index.json"):
        files.inspect_model_folder(single, "--flag")


@pytest.fixture(scope="module")
def sd(tmp_path_factory):
    from genemi.models.tiny import save_tiny_sd_inpainting

    return save_tiny_sd_inpainting(tmp_path_factory.mktemp("sd"))["sd_inpainting"]


def test_diffusers_folders_every_component(sd, tmp_path):
    pipe = files.inspect_pipeline_folder(sd, "--flag")
    assert set(pipe.components) == {"scheduler", "text_encoder", "tokenizer", "unet", "vae"}
    assert pipe.components["unet"].config["in_channels"] == 9 and pipe.components["unet"].tensors
    assert files.inspect_pipeline_folder(sd, weights=False).components["unet"].tensors == {}

    def damaged(change):
        folder = tmp_path / f"sd{len(list(tmp_path.iterdir()))}"
        shutil.copytree(sd, folder)
        change(folder)
        return folder

    weights = "diffusion_pytorch_model.safetensors"
    cases = [
        (lambda f: (f / "unet" / weights).unlink(), "unet: has no weights (diffusion_pytorch_model.safetensors or"),
        (lambda f: _cut(f / "vae" / weights, 1000), f"vae/{weights}: truncated"),
        (lambda f: (f / "text_encoder" / "model.safetensors").write_text("oops"), "too few"),
        (lambda f: (f / "scheduler" / "scheduler_config.json").unlink(), "has no scheduler config"),
        (lambda f: shutil.rmtree(f / "tokenizer"), "has no tokenizer/ folder, which model_index.json lists"),
        (lambda f: (f / "model_index.json").write_text('{"_class_name": "UNet2DConditionModel"}'),
         "names no diffusers pipeline"),
        (lambda f: (f / "unet" / "config.json").write_text(
            (sd / "unet" / "config.json").read_text().replace("UNet2DConditionModel", "UNet2DModel")),
         "unet/config.json: holds a UNet2DModel, model_index.json says UNet2DConditionModel"),
        (lambda f: (f / "model_index.json").unlink(), "has no model_index.json: not a diffusers pipeline folder"),
    ]
    for change, match in cases:
        with pytest.raises(CheckpointError, match=match.replace("(", "\\(").replace("?", "\\?")):
            files.inspect_pipeline_folder(damaged(change), "--flag")


def test_counting_reads_nests_and_sums(st, tmp_path):
    path = st[0]
    with files.counting_reads() as outer:
        files.inspect_safetensors(path)
        with files.counting_reads() as inner:
            files.read_json(_write(tmp_path / "c.json", b'{"a": 1}'))
    assert inner.bytes_read == 8 and outer.bytes_read == 8 + 8 + st[2]
    assert set(outer.files) == {str(path), str(tmp_path / "c.json")}


def _write(path, data):
    path.write_bytes(data)
    return path


def test_as_meta_keeps_containers():
    obj = {"a": [TensorInfo((2,), "float32"), (TensorInfo((1, 1), "int8"), 3)], "b": "x"}
    out = files.as_meta(obj)
    assert out["a"][0].shape == (2,) and out["a"][1][0].dtype == torch.int8 and out["a"][1][1] == 3 and out["b"] == "x"
