"""Official tie rules, per-item rows and the on-disk forms of SugarCrepe, SugarCrepe++, VALSE and Winoground.

Images are tiny PNGs whose first pixel's red value ``k`` makes their embedding the one-hot e_k (read through
genemi's image loader, so extracted files must be real images); text vectors are given, so s(image k, text) is
the text vector's k-th entry. Exact ties come from identical values; every expected number is hand-computed.
"""

import io
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from genemi.errors import ConfigError, ImageError, ManifestError
from genemi.evaluation.benchmarks import build_benchmarks
from genemi.evaluation.benchmarks.sugarcrepe import SugarCrepe, SugarCrepePP
from genemi.evaluation.benchmarks.valse import Valse
from genemi.evaluation.benchmarks.winoground import Winoground
from genemi.evaluation.scoring import embed
from genemi.images import load_rgb

DIM = 8


class ColourEmbedder:
    key = "colour"

    def __init__(self, text_vecs: dict):
        self.text_vecs = text_vecs

    def embed_images(self, images):
        vecs, errors = np.zeros((len(images), DIM), np.float32), []
        for n, ref in enumerate(images):
            try:
                vecs[n, load_rgb(ref.path).getpixel((0, 0))[0]] = 1.0
                errors.append(None)
            except ImageError as exc:
                errors.append(str(exc))
        return vecs, errors

    def embed_texts(self, texts):
        return np.array([self.text_vecs.get(t, [0.0] * DIM) for t in texts], np.float32)


def vec(*values):
    return list(values) + [0.0] * (DIM - len(values))


def run(bench, text_vecs, ties=None):
    if ties:
        bench.ties = ties
    images, texts = bench.inputs()
    return bench.score(embed(ColourEmbedder(text_vecs), images, texts))


def png(red: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (4, 4), (red, 10, 20)).save(buf, format="PNG")
    return buf.getvalue()


def write_png(path: Path, red: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png(red))
    return path


def write_parquet(path: Path, columns: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(columns), path)
    return path


IMAGE_TYPE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])


# --- SugarCrepe --------------------------------------------------------------------------------------------


def test_sugarcrepe_exact_tie_is_wrong_officially_and_right_under_first(tmp_path):
    write_png(tmp_path / "img" / "a.png", 0)
    (tmp_path / "replace_obj.json").write_text(json.dumps({
        "7": {"filename": "a.png", "caption": "pos tie", "negative_caption": "neg tie"},
        "9": {"filename": "a.png", "caption": "pos", "negative_caption": "neg"},
    }))  # fmt: skip
    vecs = {"pos tie": vec(0.5), "neg tie": vec(0.5), "pos": vec(0.5), "neg": vec(0.25)}
    bench = SugarCrepe(tmp_path, tmp_path / "img")
    assert bench.official_ties == bench.ties == "strict"
    r = run(bench, vecs)
    assert r.metrics["replace_obj"] == 50.0 and r.ties == 1 and r.tie_rule == "strict"
    assert [row["item_id"] for row in r.rows] == ["7", "9"] and {row["subset"] for row in r.rows} == {"replace_obj"}
    tie, clear = r.rows
    assert tie["scores"] == [0.5, 0.5] and tie["chosen"] == -1 and tie["tie"] and not tie["correct"]
    assert clear["scores"] == [0.5, 0.25] and clear["chosen"] == 0 and not clear["tie"] and clear["correct"]
    r = run(bench, vecs, ties="first")  # the caption is listed first: it wins the tie
    assert r.metrics["replace_obj"] == 100.0 and r.ties == 1 and r.tie_rule == "first"
    assert r.rows[0]["chosen"] == 0 and r.rows[0]["correct"]


# --- SugarCrepe++ ------------------------------------------------------------------------------------------

SCPP_ITEMS = [  # image a.png = e_0 for all
    {"id": 10, "filename": "a.png", "caption": "p1", "caption2": "p2", "negative_caption": "n"},
    {"id": 11, "filename": "a.png", "caption": "q1", "caption2": "q2", "negative_caption": "m"},
    {"id": 12, "filename": "a.png", "caption": "r1", "caption2": "r2", "negative_caption": "o"},
]
SCPP_VECS = {
    # 10: ITT s = .5, .5, .5 (tie); TOT p1.p2 = .5 > p1.n = p2.n = .25
    "p1": vec(0.5, 0.5), "p2": vec(0.5, 0.5), "n": vec(0.5, 0.0, 0.5),
    # 11: identical vectors: ITT 1, 1, 1 and TOT 1 vs 1, 1 all tie
    "q1": vec(1.0), "q2": vec(1.0), "m": vec(1.0),
    # 12: ITT .75 > .5 but .125 < .5: wrong; TOT r1.r2 = .09375 < r1.o = .375: wrong
    "r1": vec(0.75), "r2": vec(0.125), "o": vec(0.5),
}


def _scpp_layouts(tmp_path):
    write_png(tmp_path / "val2017" / "a.png", 0)
    github = tmp_path / "github" / "data"  # Sri-Harsha/scpp data/ (and the hub's main branch data/)
    github.mkdir(parents=True)
    (github / "swap_att.json").write_text(json.dumps(SCPP_ITEMS, indent=1))
    hub = tmp_path / "hub"  # Aman-J/SugarCrepe_pp refs/convert/parquet: <config>/train/0000.parquet
    cols = {k: [item[k] for item in SCPP_ITEMS] for k in ("caption", "id", "filename", "caption2", "negative_caption")}
    write_parquet(hub / "swap_atribute" / "train" / "0000.parquet", cols)
    return tmp_path / "github", hub, tmp_path / "val2017"


def test_sugarcrepe_pp_ties_rows_and_both_layouts(tmp_path):
    github, hub, images = _scpp_layouts(tmp_path)
    a = SugarCrepePP(github, images)  # root = the repository (its data/ folder is looked in)
    b = SugarCrepePP(hub, images)
    assert a.files["swap_att"] == [github / "data" / "swap_att.json"]
    assert b.files["swap_att"] == [hub / "swap_atribute" / "train" / "0000.parquet"]
    assert a.items == b.items and a.cache_key() != b.cache_key()
    ra, rb = run(a, SCPP_VECS), run(b, SCPP_VECS)
    assert ra.rows == rb.rows and ra.metrics == rb.metrics
    assert ra.metrics["swap_att/itt"] == 0.0 and ra.metrics["swap_att/tot"] == pytest.approx(100 / 3)
    assert ra.ties == 2 and ra.tie_rule == "strict"
    rows = {row["item_id"]: row for row in ra.rows}
    assert list(rows) == ["10", "11", "12"] and rows["10"]["subset"] == "swap_att"
    assert rows["10"]["scores"] == [0.5, 0.5, 0.5] and rows["10"]["itt"] is False and rows["10"]["tie"]
    assert (rows["10"]["tot_p1_p2"], rows["10"]["tot_p1_neg"], rows["10"]["tot_p2_neg"]) == (0.5, 0.25, 0.25)
    assert rows["10"]["tot"] is True
    assert rows["11"]["itt"] is False and rows["11"]["tot"] is False and rows["11"]["tie"]
    assert rows["12"]["scores"] == [0.75, 0.125, 0.5] and not rows["12"]["tie"]
    first = run(b, SCPP_VECS, ties="first")  # listed first (the positive) wins each tied comparison
    assert first.metrics["swap_att/itt"] == pytest.approx(200 / 3)
    assert first.metrics["swap_att/tot"] == pytest.approx(200 / 3)
    assert [row["itt"] for row in first.rows] == [True, True, False]


def test_sugarcrepe_pp_hub_shards_and_missing_image(tmp_path):
    write_png(tmp_path / "img" / "a.png", 0)
    rows = [dict(item, id=n) for n, item in enumerate(SCPP_ITEMS)]
    rows[2]["filename"] = "gone.png"
    for shard, part in (("0000", rows[:2]), ("0001", rows[2:])):
        write_parquet(tmp_path / "hub" / "replace_relation" / "train" / f"{shard}.parquet",
                      {k: [r[k] for r in part] for k in ("id", "filename", "caption", "caption2", "negative_caption")})
    bench = SugarCrepePP(tmp_path / "hub", tmp_path / "img")
    assert [i[0] for i in bench.items["replace_rel"]] == ["0", "1", "2"]
    r = run(bench, SCPP_VECS)
    assert r.missing_images == 1 and r.evaluated == 2
    assert r.rows[2]["itt"] is None and "scores" not in r.rows[2] and r.rows[2]["tot"] is False
    assert r.metrics["replace_rel/itt"] == 0.0 and r.metrics["replace_rel/tot"] == pytest.approx(100 / 3)


def test_sugarcrepe_pp_malformed_files(tmp_path):
    (tmp_path / "swap_obj.json").write_text(json.dumps({"0": SCPP_ITEMS[0]}))
    with pytest.raises(ManifestError, match=r"swap_obj\.json: expected a JSON list"):
        SugarCrepePP(tmp_path, tmp_path)
    (tmp_path / "swap_obj.json").write_text(json.dumps([SCPP_ITEMS[0], SCPP_ITEMS[0]]))
    with pytest.raises(ManifestError, match=r"swap_obj\.json: item 1: id 10 already used"):
        SugarCrepePP(tmp_path, tmp_path)
    (tmp_path / "swap_obj.json").unlink()
    write_parquet(tmp_path / "swap_object" / "train" / "0000.parquet",
                  {"id": [0], "filename": ["a.png"], "caption": ["x"]})
    with pytest.raises(ManifestError, match=r"0000\.parquet: no column 'caption2', 'negative_caption'"):
        SugarCrepePP(tmp_path, tmp_path)
    (tmp_path / "swap_object" / "train" / "0000.parquet").write_bytes(b"not a parquet file")
    with pytest.raises(ManifestError, match=r"0000\.parquet: not a readable Parquet file"):
        SugarCrepePP(tmp_path, tmp_path)


# --- VALSE -------------------------------------------------------------------------------------------------


def _valse_item(image, cap, foil, votes=3):
    return {"dataset": "x", "image_file": image, "caption": cap, "foil": foil,
            "mturk": {"caption": votes, "foil": 0, "other": 0}}


TRAIN, VAL = "COCO_train2014_000000000001.jpg", "COCO_val2014_000000000002.jpg"
VALSE_VECS = {"c1": vec(0, 1.0), "f1": vec(0, 0.5),  # train2014 image (e_1): right
              "c2": vec(0, 0, 1.0), "f2": vec(0, 0, 1.0),  # val2014 image (e_2): exact tie
              "c3": vec(0, 0, 0, 0.25), "f3": vec(0, 0, 0, 0.5)}  # visual7w image (e_3): wrong


def _valse_fixture(tmp_path):
    ann = tmp_path / "valse"
    ann.mkdir()
    (ann / "coreference-standard.json").write_text(json.dumps({
        "coref_train_1": _valse_item(TRAIN, "c1", "f1"), "coref_val_2": _valse_item(VAL, "c2", "f2"),
        "coref_invalid": _valse_item(VAL, "c9", "f9", votes=1)}))
    (ann / "existence.json").write_text(json.dumps({"existence_v7w_3": _valse_item("v7w_3.jpg", "c3", "f3")}))
    root = tmp_path / "datasets"  # the CLIP script's dataset folders
    write_png(root / "coco" / "2014" / "train2014" / TRAIN, 1)
    write_png(root / "coco" / "2014" / "val2014" / VAL, 2)
    write_png(root / "visual7w" / "v7w_3.jpg", 3)
    (root / "coco" / "2017" / "val2017").mkdir(parents=True)
    return ann, root


def test_valse_root_layout_redirects_coco_2014_names(tmp_path):
    ann, root = _valse_fixture(tmp_path)
    bench = Valse(ann, root)
    assert [(k, Path(ref.path)) for k, ref, _, _ in bench.items["coreference-standard"]] == [
        ("coref_train_1", root / "coco/2014/train2014" / TRAIN), ("coref_val_2", root / "coco/2014/val2014" / VAL)]
    assert Path(bench.items["existence"][0][1].path) == root / "visual7w" / "v7w_3.jpg"
    r = run(bench, VALSE_VECS)
    assert r.missing_images == 0 and r.evaluated == 3
    assert r.metrics["coreference-standard"] == 50.0 and r.metrics["existence"] == 0.0 and r.metrics["avg"] == 25.0
    assert Valse.official_ties == "strict" and r.ties == 1
    assert [(row["subset"], row["item_id"], row["scores"], row["chosen"], row["correct"]) for row in r.rows] == [
        ("existence", "existence_v7w_3", [0.25, 0.5], 1, False),  # instruments in VALSE's order
        ("coreference-standard", "coref_train_1", [1.0, 0.5], 0, True),
        ("coreference-standard", "coref_val_2", [1.0, 1.0], -1, False)]
    first = run(bench, VALSE_VECS, ties="first")
    assert first.metrics["coreference-standard"] == 100.0 and first.rows[2]["chosen"] == 0


def test_valse_mapping_forms(tmp_path):
    ann, root = _valse_fixture(tmp_path)
    train, val, v7w = root / "coco/2014/train2014", root / "coco/2014/val2014", root / "visual7w"
    # by source
    r = run(Valse(ann, {"coco2014_train": train, "coco2014_val": val, "visual7w": v7w}), VALSE_VECS)
    assert r.missing_images == 0 and r.metrics["coreference-standard"] == 50.0
    # by instrument (the old form): COCO_val2014 files go to the folder given for foil-it (val2014)
    r = run(Valse(ann, {"coreference-standard": train, "foil-it": val, "existence": v7w}), VALSE_VECS)
    assert r.missing_images == 0 and not any("COCO image" in n for n in r.notes)
    # no val2014 folder anywhere: looked up in the instrument's folder, reported missing, and said so
    r = run(Valse(ann, {"coreference-standard": train, "existence": v7w}), VALSE_VECS)
    assert r.missing_images == 1 and VAL in r.missing_examples[0]
    assert any("coreference-standard: 1 COCO image(s) looked up in" in n for n in r.notes)
    # root plus an override
    other = write_png(tmp_path / "elsewhere" / "v7w_3.jpg", 3).parent
    bench = Valse(ann, {"root": root, "visual7w": other})
    assert Path(bench.items["existence"][0][1].path) == other / "v7w_3.jpg"
    with pytest.raises(ConfigError, match="unknown key.*'coco_val2014'"):
        Valse(ann, {"coco_val2014": val})
    with pytest.raises(ConfigError, match="needs images"):
        build_benchmarks(["valse"], {"valse": {"root": str(ann)}})


def test_valse_missing_folder_and_malformed_votes(tmp_path):
    ann, root = _valse_fixture(tmp_path)
    from genemi.errors import DataError

    with pytest.raises(DataError, match="no image folder for instrument 'existence'.*images.visual7w"):
        Valse(ann, {"coco2014_train": root})
    (ann / "existence.json").write_text(json.dumps({"e": _valse_item("v7w_3.jpg", "c", "f", votes="3")}))
    with pytest.raises(ManifestError, match=r"existence\.json: item 'e': mturk.caption is not a number"):
        Valse(ann, root)


# --- Winoground --------------------------------------------------------------------------------------------

WINO = [  # (id, captions, red of image_0 / image_1)
    (0, ("a", "b"), (0, 1)),
    (1, ("c", "d"), (2, 3)),
]
# s(c_i, image_j): example 0 all right; example 1 s(c,i0) = s(c,i1) = s(d,i0) = .5, s(d,i1) = .75: text and
# image both tie once (c vs d on image_0; i0 vs i1 for c)
WINO_VECS = {"a": vec(0.875, 0.25), "b": vec(0.125, 0.75), "c": vec(0, 0, 0.5, 0.5), "d": vec(0, 0, 0.5, 0.75)}


def _winoground_layouts(tmp_path):
    jsonl = tmp_path / "jsonl"
    for _, _, reds in WINO:
        for red in reds:
            write_png(jsonl / "images" / f"img_{red}.png", red)
    (jsonl / "examples.jsonl").write_text("".join(json.dumps(
        {"id": i, "image_0": f"img_{r[0]}", "image_1": f"img_{r[1]}", "caption_0": c[0], "caption_1": c[1],
         "tag": "Object"}) + "\n" for i, c, r in WINO))
    hub = tmp_path / "hub"  # facebook/winoground: data/test-*.parquet, images embedded
    cols = {"id": pa.array([i for i, _, _ in WINO], pa.int32()),
            "image_0": pa.array([{"bytes": png(r[0]), "path": f"ex_{i}_img_0.png"} for i, _, r in WINO], IMAGE_TYPE),
            "image_1": pa.array([{"bytes": png(r[1]), "path": None} for i, _, r in WINO], IMAGE_TYPE),
            "caption_0": [c[0] for _, c, _ in WINO], "caption_1": [c[1] for _, c, _ in WINO],
            "tag": ["Object"] * len(WINO)}
    write_parquet(hub / "data" / "test-00000-of-00001.parquet", cols)
    return jsonl, hub


def test_winoground_parquet_with_embedded_images_scores_like_jsonl(tmp_path, monkeypatch):
    jsonl, hub = _winoground_layouts(tmp_path)
    cache = tmp_path / "cache"
    a, b = Winoground(jsonl), Winoground(hub, image_cache=cache)
    assert a.format == "jsonl" and b.format == "parquet"
    assert [i[0] for i in a.items] == [i[0] for i in b.items] == ["0", "1"]
    extracted = [Path(r.path) for i in b.items for r in i[1:3]]
    assert all(p.is_file() and p.is_relative_to(cache) for p in extracted)
    assert extracted[0].name == "0_image_0.png"
    ra, rb = run(a, WINO_VECS), run(b, WINO_VECS)
    assert ra.metrics == rb.metrics == {"text": 50.0, "image": 50.0, "group": 50.0}
    assert ra.rows == rb.rows and ra.ties == rb.ties == 1 and Winoground.official_ties == "strict"
    assert ra.rows[0] == {"subset": None, "item_id": "0", "scores": [0.875, 0.25, 0.125, 0.75], "text": True,
                          "image": True, "group": True, "tie": False, "tie_any": False}
    assert ra.rows[1]["scores"] == [0.5, 0.5, 0.5, 0.75] and ra.rows[1]["tie"] and not ra.rows[1]["group"]
    first = run(b, WINO_VECS, ties="first")  # caption_0 / image_0 win their ties
    assert first.metrics == {"text": 100.0, "image": 100.0, "group": 100.0}
    # a second run reuses the extracted files: nothing is written
    monkeypatch.setattr(Path, "write_bytes", lambda *a, **k: pytest.fail("images extracted again"))
    again = Winoground(hub, image_cache=cache)
    assert [r.path for i in again.items for r in i[1:3]] == [str(p) for p in extracted]
    built = build_benchmarks(["winoground"], {"winoground": {"root": str(hub), "image_cache": str(cache)}})
    assert built[0].items == again.items


def test_winoground_malformed_files(tmp_path):
    cache = tmp_path / "cache"
    bad = tmp_path / "bad"
    write_parquet(bad / "data" / "test-0.parquet", {"id": [0], "caption_0": ["a"]})
    with pytest.raises(ManifestError, match=r"test-0\.parquet: no column 'caption_1'"):
        Winoground(bad, image_cache=cache)
    null = tmp_path / "null"
    write_parquet(null / "test.parquet", {
        "id": [0], "image_0": pa.array([{"bytes": None, "path": None}], IMAGE_TYPE),
        "image_1": pa.array([{"bytes": png(1), "path": None}], IMAGE_TYPE), "caption_0": ["a"], "caption_1": ["b"]})
    with pytest.raises(ManifestError, match=r"test\.parquet: row 0, column 'image_0': no image"):
        Winoground(null, image_cache=cache)
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "x.parquet").write_bytes(b"PAR1 but not really")
    with pytest.raises(ManifestError, match=r"x\.parquet: not a readable Parquet file"):
        Winoground(tmp_path / "junk", image_cache=cache)
    (tmp_path / "dup").mkdir()
    (tmp_path / "dup" / "examples.jsonl").write_text(
        "".join(json.dumps({"id": 5, "image_0": "x", "image_1": "y", "caption_0": "a", "caption_1": "b"}) + "\n"
                for _ in range(2)))
    with pytest.raises(ManifestError, match="id '5' appears twice"):
        Winoground(tmp_path / "dup")
    from genemi.errors import DataError

    with pytest.raises(DataError, match="no examples.jsonl"):
        Winoground(tmp_path / "cache")
    _, hub = _winoground_layouts(tmp_path)
    (tmp_path / "a_file").write_text("")
    with pytest.raises(DataError, match="cannot write the images embedded in .*test-00000-of-00001.parquet"):
        Winoground(hub, image_cache=tmp_path / "a_file")
