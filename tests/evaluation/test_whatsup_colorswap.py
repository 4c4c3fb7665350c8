"""What'sUp and ColorSwap: loaders on fixtures in the official on-disk formats (What'sUp's six JSON files,
ColorSwap's GitHub JSON release and its Hugging Face Parquet files), metrics against hand-computed values
from injected embeddings, both tie rules, per-item rows, malformed files and missing images."""

import io
import json
import math
import shutil
from pathlib import Path

import pytest
from PIL import Image

from genemi.errors import ConfigError, DataError, ManifestError
from genemi.evaluation.benchmarks import build_benchmarks
from genemi.evaluation.benchmarks.colorswap import ColorSwap
from genemi.evaluation.benchmarks.whatsup import WhatsUp
from tests.evaluation.fixed_scores import score as run

FIXTURES = Path(__file__).parent / "fixtures"


def png(path: Path, color) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (4, 4), color).save(path)


def png_bytes(color) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (4, 4), color).save(buf, format="PNG")
    return buf.getvalue()


# --- What'sUp ------------------------------------------------------------------------------------------

#: per image file name: similarity with each caption option, in the official order (right one first)
WHATSUP_SCORES = {
    "controlled_images_a": {
        "mug_on_table.jpeg": [0.9, 0.1, 0.2, 0.3],        # right
        "mug_under_table.jpeg": [0.5, 0.6, 0.0, 0.0],     # wrong
        "mug_left_of_table.jpeg": [0.7, 0.1, 0.1, 0.6],   # right
        "mug_right_of_table.jpeg": [0.4, 0.4, 0.1, 0.1],  # exact tie with a wrong caption
        "cap_on_chair.jpeg": [0.9, 0.0, 0.0, 0.0],        # right
        "cap_under_chair.jpeg": [0.8, 0.0, 0.0, 0.0],     # right
        "cap_left_of_chair.jpeg": [0.1, 0.0, 0.0, 0.5],   # wrong
        "cap_right_of_chair.jpeg": [0.3, 0.0, 0.0, 0.0],  # right
    },
    "controlled_images_b": {  # all right
        "cube_left_of_sphere.jpeg": [0.5, 0.1, 0.1, 0.1],
        "cube_right_of_sphere.jpeg": [0.5, 0.1, 0.1, 0.1],
        "cube_in-front_of_sphere.jpeg": [0.5, 0.1, 0.1, 0.1],
        "cube_behind_sphere.jpeg": [0.5, 0.1, 0.1, 0.1],
    },
    "coco_qa_one_obj": {"000000000139.jpg": [0.5, 0.2], "000000000285.jpg": [0.1, 0.3],
                        "000000000632.jpg": [0.2, 0.2]},  # right, wrong, tie
    "coco_qa_two_obj": {"000000000724.jpg": [0.6, 0.4], "000000000776.jpg": [0.2, 0.6],
                        "000000000785.jpg": [0.3, 0.1]},
    "vg_qa_one_obj": {"2345.jpg": [0.3, 0.1]},  # 107.jpg is not on disk
    "vg_qa_two_obj": {"2410.jpg": [0.1, 0.9], "2411.jpg": [0.5, 0.4]},
}


def whatsup_root(tmp_path, with_images=True):
    root = tmp_path / "data"
    shutil.copytree(FIXTURES / "whatsup", root)
    if with_images:
        folders = {"controlled_images_a": "controlled_images", "controlled_images_b": "controlled_clevr",
                   "coco_qa_one_obj": "val2017", "coco_qa_two_obj": "val2017", "vg_qa_one_obj": "vg_images",
                   "vg_qa_two_obj": "vg_images"}
        for n, (subset, files) in enumerate(WHATSUP_SCORES.items()):
            for k, name in enumerate(files):
                png(root / folders[subset] / name, (n * 40, k * 20, 0))
    return root


def whatsup_scores(bench):
    out = {}
    for subset, items in bench.items.items():
        for item in items:
            values = WHATSUP_SCORES[subset].get(Path(item.image.path).name)
            if values is not None:
                out.update({(item.image.key, c): v for c, v in zip(item.captions, values)})
    return out


def test_whatsup_reads_the_six_official_files(tmp_path):
    root = whatsup_root(tmp_path)
    bench = WhatsUp(root)
    assert {s: len(v) for s, v in bench.items.items()} == {
        "controlled_images_a": 8, "controlled_images_b": 4, "coco_qa_one_obj": 3, "coco_qa_two_obj": 3,
        "vg_qa_one_obj": 2, "vg_qa_two_obj": 2}
    first = bench.items["controlled_images_a"][0]
    # "data/controlled_images/..." is relative to the authors' repository: the "data/" is the root
    assert first.image.path == str(root / "controlled_images" / "mug_on_table.jpeg")
    assert first.captions[0] == "A mug on a table" and len(first.captions) == 4
    assert first.preposition == "on" and first.slot == (("mug", "table"), "on")
    assert bench.items["controlled_images_b"][2].preposition == "in-front_of"
    assert bench.items["coco_qa_one_obj"][0].image.path == str(root / "val2017" / "000000000139.jpg")
    assert bench.items["vg_qa_one_obj"][1].image.path == str(root / "vg_images" / "107.jpg")
    assert [i.preposition for i in bench.items["coco_qa_one_obj"]] == ["left", "right", "top"]
    assert [i.preposition for i in bench.items["coco_qa_two_obj"]] == ["above", "left", "right"]
    assert [i.preposition for i in bench.items["vg_qa_two_obj"]] == ["behind", "right"]
    images, texts = bench.inputs()
    assert len(images) == 22 and len(texts) == 8 * 4 + 4 * 4 + 10 * 2


def test_whatsup_accuracy_pairs_sets_and_macro_means_official_ties(tmp_path):
    bench = WhatsUp(whatsup_root(tmp_path))
    assert bench.official_ties == bench.ties == "first"
    r = run(bench, whatsup_scores(bench))
    m = r.metrics
    # A: right = on, left, right (tie, first option wins), on, under, right -> 6/8
    assert m["controlled_images_a"] == 75.0
    # pairs: mug left/right yes, mug on/under no, cap left/right no, cap on/under yes; sets: none complete
    assert m["controlled_images_a/pairs"] == 50.0 and m["controlled_images_a/set"] == 0.0
    assert (m["controlled_images_a/on"], m["controlled_images_a/under"], m["controlled_images_a/left_of"],
            m["controlled_images_a/right_of"]) == (100.0, 50.0, 50.0, 100.0)
    assert (m["controlled_images_b"], m["controlled_images_b/pairs"], m["controlled_images_b/set"]) == (100.0,) * 3
    assert m["coco_qa_one_obj"] == pytest.approx(200 / 3) and m["coco_qa_two_obj"] == pytest.approx(200 / 3)
    assert m["vg_qa_one_obj"] == 100.0 and m["vg_qa_two_obj"] == 50.0
    assert (m["coco_qa_one_obj/left"], m["coco_qa_one_obj/right"], m["coco_qa_one_obj/top"]) == (100.0, 0.0, 100.0)
    assert (m["coco_qa_two_obj/above"], m["coco_qa_two_obj/left"], m["coco_qa_two_obj/right"]) == (100.0, 0.0, 100.0)
    assert (m["vg_qa_two_obj/behind"], m["vg_qa_two_obj/right"]) == (0.0, 100.0)
    assert m["whatsup"] == 87.5 and m["whatsup/pairs"] == 75.0 and m["whatsup/set"] == 50.0
    assert m["coco_spatial"] == pytest.approx(200 / 3) and m["gqa_spatial"] == 75.0
    assert r.headline[-5:] == ["whatsup", "whatsup/pairs", "whatsup/set", "coco_spatial", "gqa_spatial"]
    assert (r.items, r.evaluated, r.missing_images) == (22, 21, 1)
    assert "107.jpg" in r.missing_examples[0]
    assert r.ties == 2 and r.tie_rule == "first"
    rows = {(row["subset"], row["item_id"]): row for row in r.rows}
    assert len(rows) == 21
    tie_row = rows[("controlled_images_a", "mug_right_of_table.jpeg")]
    assert tie_row["scores"] == pytest.approx([0.4, 0.4, 0.1, 0.1])
    assert (tie_row["right"], tie_row["chosen"], tie_row["correct"], tie_row["tie"]) == (0, 0, True, True)
    assert tie_row["preposition"] == "right_of"
    wrong = rows[("coco_qa_one_obj", "1")]
    assert (wrong["chosen"], wrong["correct"], wrong["tie"]) == (1, False, False)
    assert wrong["image"].endswith("000000000285.jpg")


def test_whatsup_strict_ties(tmp_path):
    bench = WhatsUp(whatsup_root(tmp_path))
    r = run(bench, whatsup_scores(bench), ties="strict")
    m = r.metrics
    assert m["controlled_images_a"] == 62.5 and m["controlled_images_a/pairs"] == 25.0
    assert m["controlled_images_a/right_of"] == 50.0
    assert m["coco_qa_one_obj"] == pytest.approx(100 / 3) and m["coco_spatial"] == pytest.approx(50.0)
    assert m["whatsup"] == 81.25 and m["whatsup/pairs"] == 62.5
    assert r.ties == 2 and r.tie_rule == "strict"
    tie_row = next(row for row in r.rows if row["item_id"] == "mug_right_of_table.jpeg")
    assert (tie_row["chosen"], tie_row["correct"]) == (-1, False)


def test_whatsup_some_files_options_and_missing_images(tmp_path):
    root = whatsup_root(tmp_path, with_images=False)
    (root / "coco_qa_two_obj.json").unlink()
    bench = WhatsUp(root, subsets=["controlled_images_a", "coco_qa_one_obj", "coco_qa_two_obj"])
    assert list(bench.items) == ["controlled_images_a", "coco_qa_one_obj"]
    r = run(bench, {})
    assert r.missing_images == 11 and r.evaluated == 0 and math.isnan(r.metrics["whatsup"])
    assert any("coco_spatial" in n for n in r.notes)
    coco = tmp_path / "coco"
    bench = WhatsUp(root, coco_images=coco, vg_images=tmp_path / "vg", subsets=["coco_qa_one_obj"])
    assert bench.items["coco_qa_one_obj"][0].image.path == str(coco / "000000000139.jpg")
    assert bench.cache_key() != WhatsUp(root, subsets=["coco_qa_one_obj"]).cache_key()
    assert list(WhatsUp(root, subsets="controlled_images_a, vg_qa_one_obj").items) == [
        "controlled_images_a", "vg_qa_one_obj"]


def test_whatsup_pairs_need_both_images(tmp_path):
    root = whatsup_root(tmp_path)
    (root / "controlled_images" / "mug_under_table.jpeg").unlink()
    bench = WhatsUp(root, subsets=["controlled_images_a"])
    m = run(bench, whatsup_scores(bench)).metrics
    # mug on/under and the mug set drop out: pairs = mug l/r yes, cap l/r no, cap on/under yes; set: cap no
    assert m["controlled_images_a"] == pytest.approx(600 / 7)
    assert m["controlled_images_a/pairs"] == pytest.approx(200 / 3) and m["controlled_images_a/set"] == 0.0


def test_whatsup_malformed_files(tmp_path):
    root = whatsup_root(tmp_path, with_images=False)
    with pytest.raises(DataError, match="none of"):
        WhatsUp(tmp_path / "empty")
    with pytest.raises(DataError, match="unknown subset"):
        WhatsUp(root, subsets=["controlled_images_c"])
    path = root / "controlled_images_dataset.json"
    items = json.loads(path.read_text())
    path.write_text(json.dumps({"items": items}))
    with pytest.raises(ManifestError, match="controlled_images_dataset.json: expected a JSON list"):
        WhatsUp(root)
    del items[1]["caption_options"]
    path.write_text(json.dumps(items))
    with pytest.raises(ManifestError, match=r"controlled_images_dataset.json: item 1: expected an object"):
        WhatsUp(root)
    items[1]["caption_options"] = ["only one"]
    path.write_text(json.dumps(items))
    with pytest.raises(ManifestError, match="item 1: 'caption_options' must be a list of at least 2"):
        WhatsUp(root)
    items[1] = dict(items[0])
    path.write_text(json.dumps(items))
    with pytest.raises(ManifestError, match="item 1: mug_on_table.jpeg repeats .* item 0"):
        WhatsUp(root)
    path.write_text(json.dumps(items)[:-40])
    with pytest.raises(ManifestError, match=r"controlled_images_dataset.json:\d+: invalid JSON"):
        WhatsUp(root)
    path.unlink()
    (root / "vg_qa_two_obj.json").write_text(json.dumps([[1, "A cup to the left of a plate"]]))
    with pytest.raises(ManifestError, match=r"vg_qa_two_obj.json: item 0: expected \[image_id, right_caption"):
        WhatsUp(root)


def test_whatsup_registry(tmp_path):
    root = whatsup_root(tmp_path, with_images=False)
    [bench] = build_benchmarks(["whatsup"], {"whatsup": {"root": str(root), "subsets": ["vg_qa_one_obj"]}})
    assert isinstance(bench, WhatsUp) and list(bench.items) == ["vg_qa_one_obj"] and bench.ties == "first"
    [bench] = build_benchmarks(["whatsup"], {"whatsup": {"root": str(root)}}, ties="strict")
    assert bench.ties == "strict"
    with pytest.raises(ConfigError, match="whatsup"):
        build_benchmarks(["whatsup"], {})


# --- ColorSwap -----------------------------------------------------------------------------------------

#: per example: s(caption_1, image_1), s(caption_2, image_1), s(caption_1, image_2), s(caption_2, image_2)
COLORSWAP_SCORES = {
    "0": (0.9, 0.1, 0.2, 0.8),  # text, image, group right
    "1": (0.5, 0.6, 0.1, 0.7),  # image right only
    "2": (0.5, 0.5, 0.1, 0.6),  # image right; text ties on image_1 (right under "first", wrong under "strict")
    "3": (0.9, 0.0, 0.0, 0.9),  # image_2 missing on disk
}


def colorswap_scores(bench):
    out = {}
    for _, item_id, i1, i2, c1, c2, _ in bench.items:
        a11, a21, a12, a22 = COLORSWAP_SCORES[item_id]
        out.update({(i1.key, c1): a11, (i1.key, c2): a21, (i2.key, c1): a12, (i2.key, c2): a22})
    return out


def colorswap_release(tmp_path):
    """The GitHub / Google Drive release: test.json and images/ (example 3's second image absent)."""
    root = tmp_path / "colorswap"
    root.mkdir()
    shutil.copy(FIXTURES / "colorswap" / "test.json", root / "test.json")
    for k in range(4):
        png(root / "images" / f"img_{k}_1.png", (k * 50, 0, 0))
        if k != 3:
            png(root / "images" / f"img_{k}_2.png", (0, k * 50, 0))
    return root


def test_colorswap_release_json_text_image_group(tmp_path):
    bench = ColorSwap(colorswap_release(tmp_path))
    assert bench.official_ties == bench.ties == "strict"
    assert len(bench.items) == 4
    split, item_id, i1, i2, c1, c2, extra = bench.items[0]
    assert (split, item_id) == ("test", "0")
    assert i1.path == str(tmp_path / "colorswap" / "images" / "img_0_1.png")
    assert c1 == "someone holding a yellow umbrella wearing a white dress"
    assert extra == {"image_source": "midjourney", "caption_source": "human"}
    r = run(bench, colorswap_scores(bench))
    assert r.metrics["text"] == pytest.approx(100 / 3)
    assert r.metrics["image"] == 100.0
    assert r.metrics["group"] == pytest.approx(100 / 3)
    assert (r.items, r.evaluated, r.missing_images, r.ties, r.tie_rule) == (4, 3, 1, 1, "strict")
    assert "img_3_2.png" in r.missing_examples[0]
    rows = {row["item_id"]: row for row in r.rows}
    assert set(rows) == {"0", "1", "2"}
    # Winoground's row order: s(c1,i1), s(c1,i2), s(c2,i1), s(c2,i2)
    assert rows["1"]["scores"] == pytest.approx([0.5, 0.1, 0.6, 0.7])
    assert (rows["1"]["text"], rows["1"]["image"], rows["1"]["group"], rows["1"]["tie"]) == (False, True, False, False)
    assert (rows["2"]["text"], rows["2"]["tie"], rows["2"]["subset"]) == (False, True, "test")
    assert rows["2"]["image_source"] == "sdxl"


def test_colorswap_first_tie_rule(tmp_path):
    bench = ColorSwap(colorswap_release(tmp_path))
    r = run(bench, colorswap_scores(bench), ties="first")
    assert r.metrics["text"] == pytest.approx(200 / 3) and r.metrics["group"] == pytest.approx(200 / 3)
    assert r.metrics["image"] == 100.0 and r.ties == 1


def colorswap_as_shipped(tmp_path, n=12, prefix="images/"):
    """The repository's layout, not extracted: data/test.json and data/images.zip (members images/img_<id>_<k>.png)."""
    import zipfile

    data = tmp_path / "colorswap" / "data"
    data.mkdir(parents=True)
    examples = [{"id": k, "caption_1": f"a red cup on a blue table {k}", "caption_2": f"a blue cup on a red table {k}",
                 "image_1": f"images/img_{k}_1.png", "image_2": f"images/img_{k}_2.png", "image_source": "midjourney",
                 "caption_source": "human"} for k in range(n)]
    (data / "test.json").write_text(json.dumps(examples, indent=4))
    with zipfile.ZipFile(data / "images.zip", "w") as zf:
        for k in range(n):
            for j in (1, 2):
                zf.writestr(f"{prefix}img_{k}_{j}.png", png_bytes((20 * k, 100 * j, 0)))
    return tmp_path / "colorswap", examples


def test_colorswap_as_its_repository_ships_it_reads_images_from_the_zip(tmp_path):
    root, examples = colorswap_as_shipped(tmp_path)
    bench = ColorSwap(root)
    zip_path = str(root / "data" / "images.zip")
    assert [(i1.path, i1.member) for _, _, i1, _, _, _, _ in bench.items][:2] == [
        (zip_path, "images/img_0_1.png"), (zip_path, "images/img_1_1.png")]
    scores = {}
    for k, (_, _, i1, i2, c1, c2, _) in enumerate(bench.items):  # items 0-5 all right, 6-11 text wrong
        scores.update({(i1.key, c1): 0.9, (i1.key, c2): 0.1, (i2.key, c1): 0.2 if k < 6 else 0.85, (i2.key, c2): 0.8})
    r = run(bench, scores)
    assert (r.items, r.evaluated, r.missing_images) == (12, 12, 0)
    assert r.metrics == {"text": 50.0, "image": 100.0, "group": 50.0}


def test_colorswap_zip_members_under_a_folder_or_ambiguous(tmp_path):
    root, _ = colorswap_as_shipped(tmp_path, n=2, prefix="colorswap_release/images/")
    bench = ColorSwap(root)
    assert bench.items[0][2].member == "colorswap_release/images/img_0_1.png"
    import zipfile

    with zipfile.ZipFile(root / "data" / "images.zip", "a") as zf:  # a second img_0_2.png elsewhere
        zf.writestr("other/images/img_0_2.png", png_bytes((1, 2, 3)))
    bench = ColorSwap(root)
    assert bench.items[0][3].member is None  # ambiguous: left as the (absent) file, counted missing
    assert run(bench, {}).missing_images == 1


def test_zip_members_embed_like_the_extracted_files(tmp_path, tiny_clip):
    from genemi.evaluation.scoring import ClipEmbedder, ImageRef
    from genemi.models.clip import create_clip

    root, _ = colorswap_as_shipped(tmp_path, n=2)
    extracted = tmp_path / "extracted"
    import zipfile

    zipfile.ZipFile(root / "data" / "images.zip").extractall(extracted)
    bundle = create_clip(str(tiny_clip["config"]), tiny_clip["open_clip_state_dict"])
    emb = ClipEmbedder(bundle, "cpu", batch_size=4, workers=0, progress=False)
    refs = [ImageRef(str(root / "data" / "images.zip"), member=f"images/img_{k}_{j}.png") for k in (0, 1) for j in (1, 2)]
    files = [ImageRef(str(extracted / "images" / f"img_{k}_{j}.png")) for k in (0, 1) for j in (1, 2)]
    a, errors = emb.embed_images(refs + [ImageRef(str(root / "data" / "images.zip"), member="images/nope.png")])
    b, _ = emb.embed_images(files)
    assert errors[:4] == [None] * 4 and "image not found" in errors[4] and "nope.png" in errors[4]
    assert abs(a[:4] - b).max() < 1e-6


def colorswap_parquet(path: Path, rows: list[dict], drop: str | None = None) -> None:
    """A Parquet file in the hub layout: image columns are structs {bytes, path}, as ``datasets`` writes."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    image = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    fields = [("id", pa.int64()), ("image_1", image), ("image_2", image), ("caption_1", pa.string()),
              ("caption_2", pa.string()), ("image_source", pa.string()), ("caption_source", pa.string())]
    schema = pa.schema([f for f in fields if f[0] != drop])
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist([{k: r.get(k) for k in schema.names} for r in rows], schema=schema), path)


def hub_rows(ids, missing=()):
    release = json.loads((FIXTURES / "colorswap" / "test.json").read_text())
    rows = []
    for k in ids:
        ex = dict(release[k])
        for j in (1, 2):
            ex[f"image_{j}"] = None if (k, j) in missing else {
                "bytes": png_bytes((k * 50, j * 100, 7)), "path": f"img_{k}_{j}.png"}
        rows.append(ex)
    return rows


def test_colorswap_hub_parquet_extracts_images_once(tmp_path):
    root = tmp_path / "hub"
    colorswap_parquet(root / "data" / "test-00000-of-00001.parquet", hub_rows(range(4)))
    colorswap_parquet(root / "data" / "train-00000-of-00001.parquet", hub_rows([0]))
    cache = tmp_path / "cache"
    bench = ColorSwap(root, image_cache=cache)
    assert len(bench.items) == 4
    split, item_id, i1, i2, c1, _, extra = bench.items[0]
    assert (split, item_id, extra["image_source"]) == ("test", "0", "midjourney")
    assert c1 == "someone holding a yellow umbrella wearing a white dress"
    assert Path(i1.path).read_bytes() == png_bytes((0, 100, 7)) and Path(i1.path).parent.parent == cache
    stamp = Path(i1.path).stat().st_mtime_ns
    assert ColorSwap(root, image_cache=cache).items[0][2] == i1 and Path(i1.path).stat().st_mtime_ns == stamp
    r = run(bench, colorswap_scores(bench))
    # examples 0 and 3 right on text (2 ties under strict), all four on image
    assert (r.metrics["text"], r.metrics["image"], r.metrics["group"]) == (50.0, 100.0, 50.0)
    assert (r.evaluated, r.missing_images, r.ties) == (4, 0, 1)
    both = ColorSwap(root, split="all", image_cache=cache)
    assert [i[0] for i in both.items] == ["train", "test", "test", "test", "test"]
    assert both.cache_key() != bench.cache_key()
    single = ColorSwap(root / "data" / "train-00000-of-00001.parquet", split="train", image_cache=cache)
    assert len(single.items) == 1 and single.items[0][0] == "train"


def test_colorswap_default_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GENEMI_CACHE", str(tmp_path / "gc"))
    colorswap_parquet(tmp_path / "test-0.parquet", hub_rows([0]))
    bench = ColorSwap(tmp_path)
    assert Path(bench.items[0][2].path).parent.parent == tmp_path / "gc" / "embedded_images"


def test_colorswap_malformed_files(tmp_path):
    with pytest.raises(DataError, match="no test split"):
        ColorSwap(tmp_path)
    with pytest.raises(DataError, match="split must be"):
        ColorSwap(tmp_path, split="validation")
    root = colorswap_release(tmp_path)
    data = json.loads((root / "test.json").read_text())
    del data[1]["caption_2"]
    (root / "test.json").write_text(json.dumps(data))
    with pytest.raises(ManifestError, match=r"test.json: example 1: missing caption_2"):
        ColorSwap(root)
    (root / "test.json").write_text(json.dumps({"0": data[0]}))
    with pytest.raises(ManifestError, match="test.json: expected a JSON list"):
        ColorSwap(root)
    (root / "test.json").write_text("[{")
    with pytest.raises(ManifestError, match=r"test.json:1: invalid JSON"):
        ColorSwap(root)
    hub = tmp_path / "hub"
    colorswap_parquet(hub / "data" / "test-0.parquet", hub_rows([0]), drop="caption_2")
    with pytest.raises(ManifestError, match=r"test-0.parquet: no column 'caption_2'"):
        ColorSwap(hub, image_cache=tmp_path / "c")
    colorswap_parquet(hub / "data" / "test-0.parquet", hub_rows([0, 1], missing={(1, 2)}))
    with pytest.raises(ManifestError, match=r"test-0.parquet: row 1, column 'image_2'"):
        ColorSwap(hub, image_cache=tmp_path / "c")
    (hub / "data" / "test-0.parquet").write_bytes(b"not parquet")
    with pytest.raises(ManifestError, match="test-0.parquet: not a readable Parquet file"):
        ColorSwap(hub, image_cache=tmp_path / "c")


def test_colorswap_registry(tmp_path):
    root = colorswap_release(tmp_path)
    [bench] = build_benchmarks(["colorswap"], {"colorswap": {"root": str(root)}})
    assert isinstance(bench, ColorSwap) and bench.split == "test" and bench.ties == "strict"
    with pytest.raises(ConfigError, match="colorswap"):
        build_benchmarks(["colorswap"], {})
