"""CREPE and SPEC: loaders on tiny files in the official formats, metrics against hand-computed values with
injected embeddings of known similarities (ties under both rules, per-item rows, missing images, bad files)."""

import json
import math

import pytest
from PIL import Image

from genemi.errors import ConfigError, DataError, ManifestError
from genemi.evaluation.benchmarks.crepe import CrepeProductivity, CrepeSystematicity, caption_rank
from genemi.evaluation.benchmarks.spec import Spec
from tests.evaluation.fixed_scores import score as run


def png(path, shade=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), (shade, 0, 0)).save(path)
    return path


# --- CREPE -----------------------------------------------------------------------------------------------

# The productivity CSV layout (pandas ``to_csv``: an unnamed index column, lists as Python literals, quoted
# by the CSV writer; a caption with a double quote and a newline; a negative with an apostrophe).
PROD_ATOM_4 = '''\
,image_id,caption,x,y,width,height,hard_negs
0,1,c1,0,0,4,4,"['n1a', 'n1b', 'n1c']"
1,2,c2,1,2,3,4,"['n2a', ""n2b's"", 'n2c']"
2,1,"c3 ""quoted""
second line",2,2,6,6,[]
3,999,c5,0,0,4,4,"['n5a']"
4,1,c4,0,0,4,4,"['n4a']"
'''
PROD_ATOM_5 = '''\
image_id,caption,x,y,width,height,hard_negs
1,d1,0,0,4,4,"['e1', 'e2']"
'''
PROD_SWAP_4 = '''\
image_id,caption,x,y,width,height,hard_negs
2,f1,0,0,8,8,"['g1']"
'''


def _prod_fixture(tmp_path):
    root = tmp_path / "prod_hard_negatives"
    for folder, name, text in (("atom", "prod_vg_hard_negs_atom_complexity_4.csv", PROD_ATOM_4),
                               ("atom", "prod_vg_hard_negs_atom_complexity_5.csv", PROD_ATOM_5),
                               ("swap", "prod_vg_hard_negs_swap_complexity_4.csv", PROD_SWAP_4)):
        (root / folder).mkdir(parents=True, exist_ok=True)
        (root / folder / name).write_text(text, encoding="utf-8")
    vg = tmp_path / "vg"
    png(vg / "VG_100K" / "1.jpg")
    png(vg / "VG_100K_2" / "2.jpg")
    png(vg / "VG_100K_2" / "1.jpg", 50)  # VG_100K is searched first, as the official loader does
    return root, vg


def _prod_scores(bench):
    rows = {(s, r.line): r for s, (_, _, rs) in bench.tests.items() for r in rs}
    key = lambda subset, line: rows[(subset, line)].image.key  # noqa: E731
    a4, a5, s4 = "atom/complexity_4", "atom/complexity_5", "swap/complexity_4"
    return {
        (key(a4, 2), "c1"): 0.9, (key(a4, 2), "n1a"): 0.5, (key(a4, 2), "n1b"): 0.3, (key(a4, 2), "n1c"): 0.1,
        # caption ties with n2b's below n2a and n2c: rank 2 (first) or 3 (strict)
        (key(a4, 3), "c2"): 0.5, (key(a4, 3), "n2a"): 0.7, (key(a4, 3), "n2b's"): 0.5, (key(a4, 3), "n2c"): 0.6,
        (key(a4, 4), 'c3 "quoted"\nsecond line'): 0.2,  # no negatives: a set of one
        (key(a4, 7), "c4"): 0.4, (key(a4, 7), "n4a"): 0.4,  # a tie at the top: rank 0 (first) or 1 (strict)
        (key(a5, 2), "d1"): 0.2, (key(a5, 2), "e1"): 0.3, (key(a5, 2), "e2"): 0.1,
        (key(s4, 2), "f1"): 0.8, (key(s4, 2), "g1"): 0.1,
    }  # fmt: skip


def test_crepe_productivity_loader_reads_the_official_layout(tmp_path):
    root, vg = _prod_fixture(tmp_path)
    bench = CrepeProductivity(root, vg)
    assert list(bench.tests) == ["atom/complexity_4", "atom/complexity_5", "swap/complexity_4"]
    rows = bench.tests["atom/complexity_4"][2]
    assert [r.line for r in rows] == [2, 3, 4, 6, 7]  # physical lines: row 3 spans lines 4-5
    assert rows[0].image.path == str(vg / "VG_100K" / "1.jpg") and rows[0].image.box == (0, 0, 4, 4)
    assert rows[1].image.path == str(vg / "VG_100K_2" / "2.jpg") and rows[1].image.box == (1, 2, 3, 4)
    assert rows[1].negatives["hard_negs"] == ("n2a", "n2b's", "n2c")
    assert rows[2].caption == 'c3 "quoted"\nsecond line' and rows[2].negatives["hard_negs"] == ()
    assert rows[3].image.path == str(vg / "VG_100K" / "999.jpg")  # not found: reported when scored
    images, texts = bench.inputs()
    assert len(images) == 7 and "n2b's" in texts and "g1" in texts
    assert any("absent" in n for n in bench.notes)  # negate and complexities 6..12 are not in the fixture


def test_crepe_productivity_recall_ties_missing_and_rows(tmp_path):
    root, vg = _prod_fixture(tmp_path)
    bench = CrepeProductivity(root, vg)
    assert bench.official_ties == bench.ties == "first"
    r = run(bench, _prod_scores(bench))
    m = r.metrics
    # atom c4, evaluated ranks (first): [0, 2, 0, 0]; the row of image 999 is missing
    assert m["atom/complexity_4/R@1"] == 75.0 and m["atom/complexity_4/R@3"] == 100.0
    assert m["atom/complexity_4/R@10"] == 100.0
    assert m["atom/complexity_4/mean_rank"] == pytest.approx(1.5) and m["atom/complexity_4/median_rank"] == 1.0
    assert m["atom/complexity_4/chance_R@1"] == pytest.approx(100 * (1 / 4 + 1 / 4 + 1 + 1 / 2) / 4)
    assert m["atom/complexity_4/evaluated"] == 4
    assert m["atom/complexity_5/R@1"] == 0.0 and m["atom/complexity_5/R@3"] == 100.0
    assert m["swap/complexity_4/R@1"] == 100.0
    assert m["atom/mean_R@1"] == pytest.approx(37.5) and m["swap/mean_R@1"] == 100.0
    assert math.isnan(m["negate/mean_R@1"])
    assert r.headline == ["atom/complexity_4/R@1", "atom/complexity_5/R@1", "swap/complexity_4/R@1",
                          "atom/mean_R@1", "swap/mean_R@1", "negate/mean_R@1"]
    assert (r.items, r.evaluated, r.missing_images) == (7, 6, 1) and "999.jpg" in r.missing_examples[0]
    assert r.ties == 1 and r.tie_rule == "first"
    assert any("no hard negatives" in n and "atom/complexity_4: 1 row" in n for n in r.notes)
    row = next(x for x in r.rows if x["item_id"] == "prod_vg_hard_negs_atom_complexity_4.csv:3")
    assert row["subset"] == "atom/complexity_4" and row["image_id"] == "2"
    assert row["scores"] == pytest.approx([0.5, 0.7, 0.5, 0.6]) and row["rank"] == 2
    assert row["right"] == 0 and row["chosen"] == 1 and row["correct"] is False and row["tie"] is False
    top_tie = next(x for x in r.rows if x["item_id"].endswith("complexity_4.csv:7"))
    assert top_tie["tie"] is True and top_tie["correct"] is True and top_tie["chosen"] == 0


def test_crepe_productivity_strict_ties(tmp_path):
    root, vg = _prod_fixture(tmp_path)
    bench = CrepeProductivity(root, vg)
    r = run(bench, _prod_scores(bench), ties="strict")
    m = r.metrics
    # ranks (strict): [0, 3, 0, 1]
    assert m["atom/complexity_4/R@1"] == 50.0 and m["atom/complexity_4/R@3"] == 75.0
    assert m["atom/complexity_4/R@5"] == 100.0
    assert m["atom/complexity_4/mean_rank"] == pytest.approx(2.0) and m["atom/complexity_4/median_rank"] == 1.0
    assert r.tie_rule == "strict" and r.ties == 1
    top_tie = next(x for x in r.rows if x["item_id"].endswith("complexity_4.csv:7"))
    assert top_tie["correct"] is False and top_tie["chosen"] == -1 and top_tie["rank"] == 1


def test_caption_rank_rules():
    assert caption_rank([0.5, 0.5, 0.4], "first") == 0 and caption_rank([0.5, 0.5, 0.4], "strict") == 1
    assert caption_rank([0.5, 0.6, 0.5, 0.5], "first") == 1 and caption_rank([0.5, 0.6, 0.5, 0.5], "strict") == 3
    assert caption_rank([0.3], "strict") == 0
    with pytest.raises(ValueError):
        caption_rank([0.1, 0.2], "random")


# Systematicity: extra columns (region_id) and image_id not first, three negative columns.
SYST_SEEN = '''\
region_id,caption,x,y,width,height,valid_hard_negs_comp,valid_hard_negs_atom,image_id,valid_hard_negs_combined
374,s1,0,0,4,4,['k1'],['a1'],1,"['a1', 'k1']"
375,s2,0,0,5,5,"['k2', 'k3']",['a2'],2,"['a2', 'k2', 'k3']"
'''
SYST_UNSEEN = '''\
region_id,caption,x,y,width,height,valid_hard_negs_comp,valid_hard_negs_atom,image_id,valid_hard_negs_combined
376,u1,1,1,5,5,['k4'],[],1,['k4']
'''


def _syst_fixture(tmp_path):
    root = tmp_path / "syst_hard_negatives"
    root.mkdir()
    (root / "syst_vg_hard_negs_seen_compounds_in_laion.csv").write_text(SYST_SEEN, encoding="utf-8")
    (root / "syst_vg_hard_negs_unseen_compounds_in_laion.csv").write_text(SYST_UNSEEN, encoding="utf-8")
    vg = tmp_path / "vg"
    png(vg / "VG_100K" / "1.jpg")
    png(vg / "2.jpg")  # genemi also accepts a flat folder
    return root, vg


def test_crepe_systematicity_per_type_and_split(tmp_path):
    root, vg = _syst_fixture(tmp_path)
    bench = CrepeSystematicity(root, vg, "laion")
    assert bench.name == "crepe_systematicity_laion"
    seen = bench.tests["atom/seen"][2]
    k1, k2 = seen[0].image.key, seen[1].image.key
    assert seen[1].image.path == str(vg / "2.jpg")
    k3 = bench.tests["atom/unseen"][2][0].image.key
    scores = {(k1, "s1"): 0.6, (k1, "a1"): 0.7, (k1, "k1"): 0.2,
              (k2, "s2"): 0.5, (k2, "a2"): 0.1, (k2, "k2"): 0.5, (k2, "k3"): 0.2,
              (k3, "u1"): 0.3, (k3, "k4"): 0.9}  # fmt: skip
    r = run(bench, scores)
    m = r.metrics
    assert r.headline == ["atom/seen/R@1", "atom/unseen/R@1", "comp/seen/R@1", "comp/unseen/R@1",
                          "combined/seen/R@1", "combined/unseen/R@1"]
    assert [m[h] for h in r.headline] == [50.0, 100.0, 100.0, 0.0, 50.0, 0.0]
    assert m["combined/seen/R@3"] == 100.0 and m["combined/seen/mean_rank"] == pytest.approx(1.5)
    assert (r.items, r.evaluated, r.missing_images) == (9, 9, 0)
    assert r.ties == 2  # s2 ties with k2 in comp and in combined
    assert any("atom/unseen: 1 row" in n for n in r.notes)
    strict = run(CrepeSystematicity(root, vg, "laion"), scores, ties="strict")
    assert [strict.metrics[h] for h in strict.headline] == [50.0, 100.0, 50.0, 0.0, 0.0, 0.0]


def test_crepe_systematicity_types_and_absent_split(tmp_path):
    root, vg = _syst_fixture(tmp_path)
    (root / "syst_vg_hard_negs_unseen_compounds_in_laion.csv").unlink()
    bench = CrepeSystematicity(root, vg, "laion", types=["comp"])
    assert list(bench.tests) == ["comp/seen"] and any("unseen" in n for n in bench.notes)
    with pytest.raises(DataError, match="neither syst_vg_hard_negs_seen_compounds_in_cc12m.csv"):
        CrepeSystematicity(root, vg, "cc12m")
    with pytest.raises(ConfigError, match="pretraining must be one of cc12m, yfcc, laion"):
        CrepeSystematicity(root, vg, "coco")
    with pytest.raises(ConfigError, match="unknown value"):
        CrepeSystematicity(root, vg, "laion", types=["swap"])


def _one_prod_file(tmp_path, text, name="prod_vg_hard_negs_atom_complexity_4.csv"):
    root = tmp_path / "p"
    (root / "atom").mkdir(parents=True, exist_ok=True)
    (root / "atom" / name).write_text(text, encoding="utf-8")
    return root


HEAD = "image_id,caption,x,y,width,height,hard_negs\n"


@pytest.mark.parametrize("text, match", [
    ("image_id,caption,x,y,width,height\n1,c,0,0,4,4\n", r"complexity_4.csv:1: CSV header lacks column\(s\) hard_negs"),
    (HEAD + "1,c,0,0,4,4,['a']\n1,d,0,0,4,4,\"['a', \"\n", r"complexity_4.csv:3: column 'hard_negs' is not a Python list"),
    (HEAD + "1,c,0,0,4,4,\"__import__('os').system('true')\"\n", r"complexity_4.csv:2: column 'hard_negs' is not a Python"),
    (HEAD + "1,c,0,0,4,4,\"[1, 2]\"\n", r"complexity_4.csv:2: column 'hard_negs' must be a list of strings"),
    (HEAD + "1,\"two\nlines\",0,0,4,4,[]\n1,c,zero,0,4,4,[]\n", r"complexity_4.csv:4: column 'x' is not a number"),
    (HEAD + "1,c,0,0,0,4,[]\n", r"complexity_4.csv:2: the crop box has width 0"),
    (HEAD + "1,c,0,0,4,4\n", r"complexity_4.csv:2: 6 fields for a header of 7 columns"),
    (HEAD + ",c,0,0,4,4,[]\n", r"complexity_4.csv:2: empty 'image_id'"),
    (HEAD + "1, ,0,0,4,4,[]\n", r"complexity_4.csv:2: empty 'caption'"),
    ("", r"complexity_4.csv: empty file"),
])  # fmt: skip
def test_crepe_malformed_files_name_file_and_line(tmp_path, text, match):
    root = _one_prod_file(tmp_path, text)
    with pytest.raises(ManifestError, match=match):
        CrepeProductivity(root, tmp_path)


def test_crepe_productivity_no_files_and_bad_options(tmp_path):
    with pytest.raises(DataError, match="no prod_vg_hard_negs"):
        CrepeProductivity(tmp_path, tmp_path)
    root = _one_prod_file(tmp_path, HEAD + "1,c,0,0,4,4,[]\n")
    with pytest.raises(ConfigError, match="unknown value"):
        CrepeProductivity(root, tmp_path, types=["comp"])
    bench = CrepeProductivity(root, tmp_path, types="atom", complexities=[4])
    assert list(bench.tests) == ["atom/complexity_4"] and not bench.notes
    r = run(bench, {})
    assert r.missing_images == 1 and r.evaluated == 0 and math.isnan(r.metrics["atom/complexity_4/R@1"])


# --- SPEC ------------------------------------------------------------------------------------------------


def _spec_fixture(tmp_path):
    root = tmp_path / "spec"
    size, count = root / "absolute_size", root / "count"
    for n in range(4):
        png(size / "i2t" / f"q{n}.png", n)
    for name in ("a.png", "b.png", "c.png"):
        png(size / "t2i" / name)
    png(count / "q0.png")
    png(count / "a.png")
    png(count / "b.png")
    (size / "image2text.json").write_text(json.dumps([
        {"query": "i2t/q0.png", "keys": ["tiny cat", "small cat", "large cat"], "label": 2},
        {"query": "i2t/q1.png", "keys": ["tiny dog", "small dog", "large dog"], "label": 0},
        {"query": "i2t/q2.png", "keys": ["tiny cow", "small cow", "large cow"], "label": 1},
        {"query": "i2t/q3.png", "keys": ["tiny pig", "small pig", "large pig"], "label": 1},
    ]))  # fmt: skip
    (size / "text2image.json").write_text(json.dumps([
        {"query": "a tiny bird", "keys": ["t2i/a.png", "t2i/b.png", "t2i/c.png"], "label": 0},
        {"query": "a large bird", "keys": ["t2i/a.png", "t2i/b.png", "t2i/c.png"], "label": 2},
        {"query": "a small bird", "keys": ["t2i/a.png", "t2i/gone.png", "t2i/c.png"], "label": 1},
    ]))  # fmt: skip
    (count / "image2text.json").write_text(json.dumps([
        {"query": "q0.png", "keys": ["one apple", "two apples"], "label": 1}]))
    (count / "text2image.json").write_text(json.dumps([
        {"query": "two apples", "keys": ["a.png", "b.png"], "label": 1}]))
    return root


def _spec_scores(root):
    s, c = root / "absolute_size", root / "count"
    i, t = (lambda n: str(s / "i2t" / n)), (lambda n: str(s / "t2i" / n))  # noqa: E731
    return {
        (i("q0.png"), "tiny cat"): 0.1, (i("q0.png"), "small cat"): 0.2, (i("q0.png"), "large cat"): 0.9,
        (i("q1.png"), "tiny dog"): 0.5, (i("q1.png"), "small dog"): 0.5, (i("q1.png"), "large dog"): 0.1,
        (i("q2.png"), "tiny cow"): 0.3, (i("q2.png"), "small cow"): 0.5, (i("q2.png"), "large cow"): 0.5,
        (i("q3.png"), "tiny pig"): 0.6, (i("q3.png"), "small pig"): 0.5, (i("q3.png"), "large pig"): 0.5,
        (t("a.png"), "a tiny bird"): 0.8, (t("b.png"), "a tiny bird"): 0.2, (t("c.png"), "a tiny bird"): 0.1,
        (t("a.png"), "a large bird"): 0.4, (t("b.png"), "a large bird"): 0.4, (t("c.png"), "a large bird"): 0.4,
        (str(c / "q0.png"), "one apple"): 0.2, (str(c / "q0.png"), "two apples"): 0.7,
        (str(c / "a.png"), "two apples"): 0.1, (str(c / "b.png"), "two apples"): 0.6,
    }  # fmt: skip


def test_spec_accuracy_first_ties_missing_and_rows(tmp_path):
    root = _spec_fixture(tmp_path)
    bench = Spec(root)
    assert bench.official_ties == bench.ties == "first"
    r = run(bench, _spec_scores(root))
    m = r.metrics
    # i2t absolute_size: q0 right; q1 ties 0/1 -> argmax 0 = label; q2 ties 1/2 -> argmax 1 = label; q3 wrong
    assert m["absolute_size/i2t"] == 75.0 and m["absolute_size/t2i"] == 50.0
    assert m["count/i2t"] == 100.0 and m["count/t2i"] == 100.0
    assert m["i2t_mean"] == pytest.approx(87.5) and m["t2i_mean"] == pytest.approx(75.0)
    assert r.headline == ["absolute_size/i2t", "absolute_size/t2i", "count/i2t", "count/t2i", "i2t_mean", "t2i_mean"]
    assert (r.items, r.evaluated, r.missing_images) == (9, 8, 1) and "gone.png" in r.missing_examples[0]
    assert r.ties == 3 and any("2 of the 6 subsets" in n for n in r.notes)
    row = next(x for x in r.rows if x["item_id"] == "absolute_size/i2t:2")
    assert row["subset"] == "absolute_size/i2t" and row["scores"] == pytest.approx([0.3, 0.5, 0.5])
    assert row["right"] == 1 and row["chosen"] == 1 and row["correct"] is True and row["tie"] is True
    t2i = next(x for x in r.rows if x["item_id"] == "absolute_size/t2i:1")
    assert t2i["scores"] == pytest.approx([0.4, 0.4, 0.4]) and t2i["chosen"] == 0 and t2i["correct"] is False


def test_spec_strict_ties(tmp_path):
    root = _spec_fixture(tmp_path)
    r = run(Spec(root), _spec_scores(root), ties="strict")
    assert r.metrics["absolute_size/i2t"] == 25.0 and r.metrics["absolute_size/t2i"] == 50.0
    assert r.metrics["i2t_mean"] == pytest.approx(62.5) and r.tie_rule == "strict"


def test_spec_inputs_subsets_and_bad_files(tmp_path):
    root = _spec_fixture(tmp_path)
    images, texts = Spec(root).inputs()
    assert len({i.key for i in images}) == 11 and "a small bird" in texts and "large pig" in texts
    assert list(Spec(root, ["count"]).i2t) == ["count"]
    with pytest.raises(ConfigError, match="unknown size"):
        Spec(root, ["size"])
    with pytest.raises(DataError, match="no subset folder"):
        Spec(tmp_path / "empty")
    (root / "count" / "text2image.json").unlink()
    with pytest.raises(DataError, match="count/text2image.json not found"):
        Spec(root)
    (root / "count" / "text2image.json").write_text(json.dumps([{"query": "x", "keys": ["a.png"], "label": 1}]))
    with pytest.raises(ManifestError, match=r"count/text2image.json: item 0: 'label' must be an index into its 1"):
        Spec(root)
    (root / "count" / "text2image.json").write_text(json.dumps([{"query": "x", "keys": ["a.png"]}]))
    with pytest.raises(ManifestError, match=r"item 0 has no 'label'"):
        Spec(root)
    (root / "count" / "text2image.json").write_text(json.dumps({"query": "x"}))
    with pytest.raises(ManifestError, match="expected a JSON list"):
        Spec(root)
    (root / "count" / "text2image.json").write_text('[{"query": "x",\n "keys": ]')
    with pytest.raises(ManifestError, match=r"count/text2image.json:2: invalid JSON"):
        Spec(root)


# --- registry --------------------------------------------------------------------------------------------


def test_registry_builds_crepe_and_spec(tmp_path):
    from genemi.evaluation.benchmarks import BENCHMARKS, build_benchmarks

    prod, vg = _prod_fixture(tmp_path)
    syst, _ = _syst_fixture(tmp_path)
    spec = _spec_fixture(tmp_path)
    assert {"crepe_productivity", "crepe_systematicity", "spec"} <= set(BENCHMARKS)
    data = {"crepe_productivity": {"root": str(prod), "images": str(vg), "types": ["atom"]},
            "crepe_systematicity": {"root": str(syst), "images": str(vg), "pretraining": "laion"},
            "spec": {"root": str(spec)}}
    benches = build_benchmarks(["crepe_productivity", "crepe_systematicity", "spec"], data, ties="strict")
    assert [b.name for b in benches] == ["crepe_productivity", "crepe_systematicity_laion", "spec"]
    assert all(b.ties == "strict" and b.official_ties == "first" for b in benches)
    assert len({b.cache_key() for b in benches}) == 3
    with pytest.raises(ConfigError, match="needs pretraining"):
        build_benchmarks(["crepe_systematicity"], {"crepe_systematicity": {"root": str(syst), "images": str(vg)}})
    with pytest.raises(ConfigError, match="needs root"):
        build_benchmarks(["spec"], {})
