"""Every benchmark's loader (exact on-disk format) and metric, checked against hand-computed values with
injected embeddings of known similarities (ties, macro-averaging, missing images included)."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from genemi.errors import ConfigError, DataError, ManifestError
from genemi.evaluation.benchmarks import build_benchmarks
from genemi.evaluation.benchmarks.aro import ARO_SYMMETRIC_RELATIONS, OrderBenchmark, VGAttribution, VGRelation
from genemi.evaluation.benchmarks.genemi_testset import GenemiTestSet
from genemi.evaluation.benchmarks.retention import Retrieval, ZeroShot, recall_at_k
from genemi.evaluation.benchmarks.sugarcrepe import SugarCrepe, SugarCrepePP
from genemi.evaluation.benchmarks.valse import Valse
from genemi.evaluation.benchmarks.vl_checklist import VLCheckList
from genemi.evaluation.benchmarks.winoground import Winoground
from tests.evaluation.fixed_scores import score


def write_images(folder, names):
    folder.mkdir(parents=True, exist_ok=True)
    for n in names:
        Image.new("RGB", (8, 8), (len(n) * 10 % 255, 0, 0)).save(folder / n)
    return folder


# --- SugarCrepe ----------------------------------------------------------------------------------------


def test_sugarcrepe_loader_reads_the_real_files_unchanged(shared_dir, tmp_path):
    bench = SugarCrepe(shared_dir / "data" / "sugarcrepe", tmp_path)
    sizes = {s: len(v) for s, v in bench.items.items()}
    assert sizes == {"replace_obj": 1652, "replace_att": 788, "replace_rel": 1406, "swap_obj": 245,
                     "swap_att": 666, "add_obj": 2062, "add_att": 692}
    assert sum(sizes.values()) == 7511
    assert "108" not in {k for k, *_ in bench.items["swap_obj"]}
    images, texts = bench.inputs()
    assert len({i.key for i in images}) == 1560 and len(texts) == 2 * 7511
    result = score(bench, {})  # no image on disk: every item is reported missing, nothing crashes
    assert result.missing_images == 7511 and result.evaluated == 0 and math.isnan(result.metrics["mean"])


def _sugarcrepe_fixture(tmp_path):
    root = tmp_path / "sc"
    root.mkdir()
    (root / "replace_obj.json").write_text(json.dumps({
        "0": {"filename": "a.jpg", "caption": "pos a", "negative_caption": "neg a"},
        "1": {"filename": "b.jpg", "caption": "pos b", "negative_caption": "neg b"},
        "2": {"filename": "c.jpg", "caption": "pos c", "negative_caption": "neg c"},
        "5": {"filename": "gone.jpg", "caption": "pos d", "negative_caption": "neg d"},
    }))  # fmt: skip
    (root / "swap_att.json").write_text(json.dumps({
        "0": {"filename": "a.jpg", "caption": "pos e", "negative_caption": "neg e"},
        "1": {"filename": "b.jpg", "caption": "pos f", "negative_caption": "neg f"},
    }))  # fmt: skip
    images = write_images(tmp_path / "val2017", ["a.jpg", "b.jpg", "c.jpg"])
    return root, images


def test_sugarcrepe_metric_ties_missing_and_family_means(tmp_path):
    root, images = _sugarcrepe_fixture(tmp_path)
    bench = SugarCrepe(root, images)
    a, b, c = (str(images / n) for n in ("a.jpg", "b.jpg", "c.jpg"))
    scores = {(a, "pos a"): 0.9, (a, "neg a"): 0.1,  # right
              (b, "pos b"): 0.2, (b, "neg b"): 0.3,  # wrong
              (c, "pos c"): 0.5, (c, "neg c"): 0.5,  # tie -> wrong
              (a, "pos e"): 0.6, (a, "neg e"): 0.5, (b, "pos f"): 0.7, (b, "neg f"): 0.1}  # fmt: skip
    r = score(bench, scores)
    assert r.metrics["replace_obj"] == pytest.approx(100 / 3)
    assert r.metrics["swap_att"] == 100.0
    assert r.metrics["replace"] == pytest.approx(100 / 3) and r.metrics["swap"] == 100.0
    assert math.isnan(r.metrics["add"])
    assert r.metrics["mean"] == pytest.approx((100 / 3 + 100) / 2)
    assert r.missing_images == 1 and r.items == 6 and r.evaluated == 5 and "gone.jpg" in r.missing_examples[0]
    assert r.ties == 1 and r.tie_rule == "strict" and [row["item_id"] for row in r.rows] == ["0", "1", "2", "0", "1"]


def test_sugarcrepe_bad_files(tmp_path):
    with pytest.raises(DataError, match="no subset files"):
        SugarCrepe(tmp_path, tmp_path)
    (tmp_path / "add_att.json").write_text(json.dumps({"0": {"filename": "a.jpg", "caption": "x"}}))
    with pytest.raises(ManifestError, match="add_att.json: item '0' has no 'negative_caption'"):
        SugarCrepe(tmp_path, tmp_path)


def test_sugarcrepe_pp_itt_and_tot(tmp_path):
    root = tmp_path / "scpp"
    root.mkdir()
    (root / "swap_obj.json").write_text(json.dumps([
        {"id": 0, "filename": "a.jpg", "caption": "p1", "caption2": "p2", "negative_caption": "n"},
        {"id": 1, "filename": "a.jpg", "caption": "q1", "caption2": "q2", "negative_caption": "m"},
    ]))  # fmt: skip
    images = write_images(tmp_path / "img", ["a.jpg"])
    # 2-d text vectors; the image is e_0, so s(image, t) = t[0]
    vecs = {"p1": [0.9, 0.1], "p2": [0.8, 0.2], "n": [0.5, -0.9],  # ITT yes; TOT: p1.p2=0.74 > 0.36, 0.22 -> yes
            "q1": [0.9, 0.0], "q2": [0.4, 0.0], "m": [0.6, 0.0]}  # ITT no (q2 < m); TOT: 0.36 > 0.54? no
    r = score(SugarCrepePP(root, images), {}, vecs)
    assert r.metrics["swap_obj/itt"] == 50.0 and r.metrics["swap_obj/tot"] == 50.0
    assert r.metrics["itt_mean"] == 50.0


# --- ARO -----------------------------------------------------------------------------------------------


def _vg_item(image, true, false, **extra):
    return {"image_path": image, "bbox_x": 1, "bbox_y": 2, "bbox_w": 4, "bbox_h": 5, "true_caption": true,
            "false_caption": false, **extra}


def test_vg_relation_macro_over_non_symmetric_relations(tmp_path):
    assert len(ARO_SYMMETRIC_RELATIONS) == 157 and "next to" in ARO_SYMMETRIC_RELATIONS and "on" not in ARO_SYMMETRIC_RELATIONS
    write_images(tmp_path / "images", ["1.jpg"])
    items = [_vg_item("1.jpg", "t1", "f1", relation_name="on"), _vg_item("1.jpg", "t2", "f2", relation_name="on"),
             _vg_item("1.jpg", "t3", "f3", relation_name="above"),
             _vg_item("1.jpg", "t4", "f4", relation_name="next to"),
             _vg_item("1.jpg", "t5", "f5", relation_name="under")]
    (tmp_path / "visual_genome_relation.json").write_text(json.dumps(items))
    bench = VGRelation(tmp_path)
    assert bench.official_ties == bench.ties == "first"  # ARO: argmax over [false, true], right = index 1
    ref = bench.items[0][0]
    assert ref.box == (1.0, 2.0, 4.0, 5.0) and ref.key.endswith("@1,2,4,5")
    k = ref.key
    scores = {(k, "t1"): 1, (k, "f1"): 0, (k, "t2"): 0, (k, "f2"): 1, (k, "t3"): 1, (k, "f3"): 0, (k, "t4"): 0, (k, "f4"): 1,
              (k, "t5"): 0.5, (k, "f5"): 0.5}  # item 4 ties: argmax picks the false caption (listed first)
    r = score(bench, scores)
    assert r.metrics["macro_accuracy"] == 50.0  # mean(on 50, above 100, under 0); "next to" excluded
    assert r.metrics["macro_accuracy_all_relations"] == 37.5  # mean(on 50, above 100, next to 0, under 0)
    assert r.metrics["micro_accuracy_all"] == 40.0 and r.metrics["relations_used"] == 3
    assert r.metrics["relations_all"] == 4 and r.ties == 1 and r.tie_rule == "first"
    assert [(row["item_id"], row["subset"], row["right"], row["chosen"], row["correct"]) for row in r.rows] == [
        ("0", "on", 1, 1, True), ("1", "on", 1, 0, False), ("2", "above", 1, 1, True),
        ("3", "next to", 1, 0, False), ("4", "under", 1, 0, False)]
    assert r.rows[0]["scores"] == [0.0, 1.0]  # ARO's option order: [false_caption, true_caption]


def test_vg_attribution_keeps_pairs_with_25_samples(tmp_path):
    write_images(tmp_path / "images", ["1.jpg"])
    items = [_vg_item("1.jpg", f"ta{i}", f"fa{i}", attributes=["red", "blue"]) for i in range(25)]
    items += [_vg_item("1.jpg", f"tb{i}", f"fb{i}", attributes=["big", "small"]) for i in range(24)]
    (tmp_path / "visual_genome_attribution.json").write_text(json.dumps(items))
    bench = VGAttribution(tmp_path)
    k = bench.items[0][0].key
    scores = {(k, f"ta{i}"): 1.0 if i < 20 else 0.0 for i in range(25)} | {(k, f"tb{i}"): 1.0 for i in range(24)}
    r = score(bench, scores)
    assert r.metrics["macro_accuracy"] == 80.0 and r.metrics["attribute_pairs_used"] == 1
    assert {row["subset"] for row in r.rows} == {"red_blue", "big_small"}  # ARO's pair names
    assert r.rows[0]["item_id"] == "0" and r.rows[-1]["item_id"] == "48"


def test_order_benchmark_is_seeded_and_decides_ties_by_the_rule(tmp_path):
    write_images(tmp_path / "img", ["x.jpg", "y.jpg"])
    ann = tmp_path / "coco_karpathy_test.json"
    ann.write_text(json.dumps([{"image": "x.jpg", "caption": ["A man riding a brown horse on the beach."]},
                               {"image": "y.jpg", "caption": ["Two dogs playing with a red frisbee."]}]))
    bench = OrderBenchmark("aro_coco_order", ann, tmp_path / "img", seeds=(0, 1))
    assert bench.protocol == "official" and bench.official_ties == bench.ties == "first"
    first, second = bench.items[0][0], bench.items[1][0]
    assert first.options[0] == "a man riding a brown horse on the beach"  # ARO's pre_caption
    assert len(first.options) == 5 and first.options != second.options and first.item_id == second.item_id == "0"
    again = OrderBenchmark("aro_coco_order", ann, tmp_path / "img", seeds=(0, 1))
    assert again.items == bench.items
    refs = bench.refs()
    true_high = {(refs[it.image].key, it.options[0]): 1.0 for items in bench.items.values() for it in items}
    r = score(bench, true_high)
    assert r.metrics["precision_at_1"] == 100.0 and r.metrics["precision_at_1_std"] == 0.0
    assert [(row["subset"], row["item_id"]) for row in r.rows] == [("seed_0", "0"), ("seed_0", "1"),
                                                                  ("seed_1", "0"), ("seed_1", "1")]
    r = score(bench, {})  # every option scores 0: argmax picks the true caption, listed first
    assert r.metrics["precision_at_1"] == 100.0 and r.ties == 4
    bench.ties = "strict"
    assert score(bench, {}).metrics["precision_at_1"] == 0.0  # --ties strict: ties fail


# --- VALSE, VL-CheckList, Winoground ------------------------------------------------------------------


def test_valse_valid_items_and_both_averages(tmp_path):
    root = tmp_path / "valse"
    root.mkdir()
    images = write_images(tmp_path / "img", ["v.jpg"])
    def item(cap, foil, votes):
        return {"dataset": "x", "image_file": "v.jpg", "caption": cap, "foil": foil, "mturk": {"caption": votes, "foil": 0, "other": 0}}
    (root / "existence.json").write_text(json.dumps({"1": item("c1", "f1", 3), "2": item("c2", "f2", 1)}))
    (root / "counting-hard.json").write_text(json.dumps({"1": item("c3", "f3", 2), "2": item("c4", "f4", 2)}))
    (root / "foil-it.json").write_text(json.dumps({"1": item("c5", "f5", 2)}))
    bench = Valse(root, images)
    assert len(bench.items["existence"]) == 1  # the item with 1 validation is not valid
    assert bench.items["existence"][0][0] == "1"  # the item id is the file's key
    k = bench.items["existence"][0][1].key  # a root without the layout folders is one flat folder
    scores = {(k, "c1"): 1, (k, "c2"): 0, (k, "f2"): 1, (k, "c3"): 1, (k, "c4"): 0, (k, "f4"): 1, (k, "c5"): 0, (k, "f5"): 1}
    r = score(bench, scores)
    assert r.metrics["existence"] == 100 and r.metrics["counting-hard"] == 50 and r.metrics["foil-it"] == 0
    assert r.metrics["avg"] == pytest.approx(50.0)
    assert r.metrics["avg_9col"] == pytest.approx(50.0)  # counting column = mean of the present counting files
    assert any("instruments missing" in n for n in r.notes)


def test_vl_checklist_every_config_columns_and_missing_files(tmp_path):
    root = tmp_path / "vlc"
    write_images(tmp_path / "images" / "vg", ["1.jpg", "2.jpg"])
    corpus = root / "vl_checklist" / "corpus" / "v1"
    cfgs = {"Attribute/color/vg.yaml": "data/attr_color.json", "Attribute/size/vg.yaml": "data/attr_size.json",
            "Object/Location/center/vg_subj.yaml": "data/loc_center.json",
            "Object/Location/margin/vg_obj.yaml": "data/loc_margin.json",
            "Relation/spatial/vg.yaml": "data/missing.json"}
    for cfg, anno in cfgs.items():
        (corpus / cfg).parent.mkdir(parents=True, exist_ok=True)
        (corpus / cfg).write_text(f'ANNO_PATH: "{anno}"\nIMG_ROOT: "vg/"\nTYPE: "TUPLE_JSON"\n')
    (root / "data").mkdir(parents=True)
    def tuples(*names):
        return json.dumps([[img, {"POS": [f"pos {name}"], "NEG": [f"neg {name}"]}] for img, name in names])
    (root / "data" / "attr_color.json").write_text(tuples(("1.jpg", "a"), ("2.jpg", "b")))
    (root / "data" / "attr_size.json").write_text(tuples(("1.jpg", "c")))
    (root / "data" / "loc_center.json").write_text(tuples(("1.jpg", "d")))
    (root / "data" / "loc_margin.json").write_text(tuples(("2.jpg", "e"), ("missing.jpg", "f")))
    bench = VLCheckList(root, tmp_path / "images")
    assert any("Relation/spatial/vg.yaml" in p for p in bench.problems)
    i1, i2 = str(tmp_path / "images" / "vg" / "1.jpg"), str(tmp_path / "images" / "vg" / "2.jpg")
    scores = {(i1, "pos a"): 1, (i2, "neg b"): 1, (i1, "pos c"): 1, (i1, "pos d"): 1, (i2, "neg e"): 1}
    r = score(bench, scores)
    assert r.metrics["Attribute/color"] == 50 and r.metrics["Attribute/size"] == 100
    assert r.metrics["Attribute"] == 75
    assert r.metrics["Object/Location"] == 50  # mean of center 100 and margin 0 (its other image is missing)
    assert r.metrics["Object"] == 50 and math.isnan(r.metrics["Relation"])
    assert r.metrics["avg"] == pytest.approx((50 + 100 + 50) / 3)
    assert r.missing_images == 1 and any("missing.json" in n for n in r.notes)


def test_vl_checklist_drops_absent_images_before_taking_the_first_samples(tmp_path):
    """The official loader keeps the samples whose image exists, then takes the first MAX_NUM/2 of them."""
    root = tmp_path / "vlc"
    corpus = root / "corpus" / "v1" / "Attribute" / "color"
    corpus.mkdir(parents=True)
    (corpus / "vg.yaml").write_text('ANNO_PATH: "data/color.json"\nIMG_ROOT: "vg/"\n')
    (root / "data").mkdir()
    names = ["gone0.jpg", "a.jpg", "gone1.jpg", "b.jpg", "c.jpg", "d.jpg"]
    (root / "data" / "color.json").write_text(json.dumps([[n, {"POS": [f"pos {n}"], "NEG": [f"neg {n}"]}]
                                                          for n in names]))
    write_images(tmp_path / "images" / "vg", ["a.jpg", "b.jpg", "c.jpg", "d.jpg"])
    bench = VLCheckList(root, tmp_path / "images", max_per_file=3)
    kept = [Path(ref.path).name for ref, _, _ in bench.files["Attribute/color/vg.yaml"]]
    assert kept == ["a.jpg", "b.jpg", "c.jpg"]
    img = lambda n: str(tmp_path / "images" / "vg" / n)  # noqa: E731
    r = score(bench, {(img("a.jpg"), "pos a.jpg"): 1, (img("b.jpg"), "pos b.jpg"): 1, (img("c.jpg"), "neg c.jpg"): 1})
    assert r.evaluated == 3 and r.metrics["Attribute/color"] == pytest.approx(200 / 3)
    assert r.items == 5 and r.missing_images == 2  # the two absent images met before the third sample
    assert any("2 sample(s)" in n and "absent" in n for n in r.notes)


def test_winoground_text_image_group(tmp_path):
    write_images(tmp_path / "images", ["ex_0_img_0.png", "ex_0_img_1.png", "ex_1_img_0.png", "ex_1_img_1.png"])
    rows = [{"id": 0, "image_0": "ex_0_img_0", "image_1": "ex_0_img_1", "caption_0": "a", "caption_1": "b"},
            {"id": 1, "image_0": "ex_1_img_0", "image_1": "ex_1_img_1", "caption_0": "c", "caption_1": "d"}]
    (tmp_path / "examples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    bench = Winoground(tmp_path)
    i = [str(tmp_path / "images" / f"ex_{e}_img_{k}.png") for e in (0, 1) for k in (0, 1)]
    scores = {(i[0], "a"): 0.9, (i[0], "b"): 0.1, (i[1], "a"): 0.2, (i[1], "b"): 0.8,  # all right
              (i[2], "c"): 0.9, (i[2], "d"): 0.1, (i[3], "c"): 0.95, (i[3], "d"): 0.96}  # text right, image wrong
    r = score(bench, scores)
    assert r.metrics == {"text": 100.0, "image": 50.0, "group": 50.0}


# --- GeNeMi test set, retention ------------------------------------------------------------------------


def test_genemi_testset_rows_and_manifest(tmp_path):
    write_images(tmp_path, ["a.png", "b.png", "c.png", "d.png", "e.png"])
    rows = [{"num_sample": 3, "image_0": {"path": "a.png"}, "image_1": "b.png", "image_2": "c.png",
             "caption_0": "ca", "caption_1": "cb", "caption_2": "cc"},
            {"num_sample": 2, "image_0": "d.png", "image_1": "e.png", "caption_0": "cd", "caption_1": "ce"}]
    path = tmp_path / "test.json"
    path.write_text(json.dumps(rows))
    bench = GenemiTestSet(path)
    a, b, c, d, e = (str(tmp_path / f"{n}.png") for n in "abcde")
    # row 1: image a prefers cb (text@1 wrong for a), b, c right; caption cb is best on a? s(a,cb)=.9 > s(b,cb)=.8
    scores = {(a, "ca"): .5, (a, "cb"): .9, (a, "cc"): .1, (b, "ca"): .1, (b, "cb"): .8, (b, "cc"): .0,
              (c, "ca"): .0, (c, "cb"): .1, (c, "cc"): .7, (d, "cd"): 1, (e, "ce"): 1}  # fmt: skip
    r = score(bench, scores)
    # text@1: a no, b yes, c yes, d yes, e yes -> 4/5; image@1: ca (a .5 best) yes, cb (a .9 > b .8) no, cc yes,
    # cd, ce yes -> 4/5; group: a no, b no, c yes, d, e yes -> 3/5; all-correct rows: row 2 only
    assert r.metrics["text_1"] == 80 and r.metrics["image_1"] == 80 and r.metrics["group_1"] == 60
    assert r.metrics["text_all"] == 50 and r.metrics["image_all"] == 50 and r.metrics["group_all"] == 50
    from genemi.records import VariationRecord

    manifest = tmp_path / "variations.jsonl"
    recs = [VariationRecord(id=f"s/{n}", origin_name="s", item="dog", name=n, source="s.png", save=f"{n}.png",
                            short=n, captions=[f"c{n}"]) for n in "ab"]
    recs.append(VariationRecord(id="s/c", origin_name="s", item="cat", name="c", source="s.png", save="c.png",
                                short="c", captions=["cc"]))
    manifest.write_text("".join(r.model_dump_json() + "\n" for r in recs))
    rows = GenemiTestSet(manifest, tmp_path).rows
    assert len(rows) == 1 and [c for _, c in rows[0]] == ["ca", "cb"]  # the lone "cat" variation is no row


def test_genemi_testset_keeps_two_items_with_the_same_phrase_apart(tmp_path):
    from genemi.records import VariationRecord

    write_images(tmp_path, [f"{n}.png" for n in "abcdef"])
    # one source image with two different "dog" items (and a cat), two variations each: three rows, not two
    layout = {"s/item_00": ("dog", "ab"), "s/item_01": ("dog", "cd"), "s/item_02": ("cat", "ef")}
    recs = [VariationRecord(id=f"{item_id}/var_{n}", parent_id=item_id, origin_name="s", item=phrase, name=n,
                            source="s.png", save=f"{n}.png", short=n, captions=[f"c{n}"])
            for item_id, (phrase, names) in layout.items() for n in names]
    manifest = tmp_path / "variations.jsonl"
    manifest.write_text("".join(r.model_dump_json() + "\n" for r in recs))
    rows = GenemiTestSet(manifest, tmp_path).rows
    assert sorted([c for _, c in row] for row in rows) == [["ca", "cb"], ["cc", "cd"], ["ce", "cf"]]


def test_recall_at_k_ties_rank_below():
    scores = np.array([[0.9, 0.5, 0.9], [0.1, 0.2, 0.3]])
    assert recall_at_k(scores, [{0}, {2}], ks=(1, 2)) == {1: 50.0, 2: 100.0}


#: similarities of image i (row) with class / caption c (column), written by hand: a Latin square (every column
#: holds 1..7 once, so normalising a class's text vector keeps the order) whose diagonal, each image's own
#: class, is the 6th highest of its row and column for 0 (just outside the top 5), the 5th highest for 1 (just
#: inside) and the highest for 2..6. So R@1 / top-1 = 5/7 and R@5 / top-5 = 6/7, in both retrieval directions.
LATIN = [[2, 7, 1, 3, 4, 5, 6],
         [7, 3, 2, 1, 5, 6, 4],
         [1, 2, 7, 4, 6, 3, 5],
         [3, 5, 6, 7, 1, 4, 2],
         [4, 1, 5, 6, 7, 2, 3],
         [5, 6, 4, 2, 3, 7, 1],
         [6, 4, 3, 5, 2, 1, 7]]


def test_retrieval_recall_at_k_counts_ranks_beyond_the_first(tmp_path):
    names = [f"i{k}.jpg" for k in range(7)]
    write_images(tmp_path / "img", names)
    ann = tmp_path / "test.json"
    ann.write_text(json.dumps([{"image": n, "caption": [f"caption {k}"]} for k, n in enumerate(names)]))
    scores = {(str(tmp_path / "img" / names[i]), f"caption {c}"): LATIN[i][c] / 10 for i in range(7) for c in range(7)}
    r = score(Retrieval(ann, tmp_path / "img"), scores)
    for direction in ("i2t", "t2i"):
        assert r.metrics[f"{direction}_R@1"] == pytest.approx(100 * 5 / 7)
        assert r.metrics[f"{direction}_R@5"] == pytest.approx(100 * 6 / 7)  # image 0's caption ranks 6th
        assert r.metrics[f"{direction}_R@10"] == 100


def test_zero_shot_top5_counts_ranks_beyond_the_first(tmp_path):
    folder = tmp_path / "zs"
    for k in range(7):
        write_images(folder / f"class_{'abcdefg'[k]}", [f"{k}.jpg"])
    zs = ZeroShot(folder, templates="simple")
    assert zs.classnames == [f"class {c}" for c in "abcdefg"] and len(zs.prompts[0]) > 1
    scores = {(str(folder / f"class_{'abcdefg'[i]}" / f"{i}.jpg"), p): LATIN[i][c] / 10
              for i in range(7) for c in range(7) for p in zs.prompts[c]}
    r = score(zs, scores)
    assert r.metrics["top1"] == pytest.approx(100 * 5 / 7) and r.metrics["top5"] == pytest.approx(100 * 6 / 7)


def test_registry_errors():
    with pytest.raises(ConfigError, match="unknown benchmark 'sugercrepe'"):
        build_benchmarks(["sugercrepe"], {})
    with pytest.raises(ConfigError, match="needs root, images"):
        build_benchmarks(["sugarcrepe"], {})
