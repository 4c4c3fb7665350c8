"""Exact ties: identical options must score bit-identically in every benchmark family, so each tie rule works
as documented. Random 512-d unit vectors (as a real CLIP's) are where a BLAS product's rounding differs by the
row's position (before genemi scored pairs position-independently, 3-option items tied in only ~1 of 6);
the tests use 40 items per family so noise cannot pass by luck. ``ties`` counts the right option equal to the
best wrong one, ``ties_any`` equal to any wrong one."""

import json
import zlib

import numpy as np
import pytest
from PIL import Image

from genemi.evaluation.benchmarks.aro import OrderBenchmark, VGRelation
from genemi.evaluation.benchmarks.colorswap import ColorSwap
from genemi.evaluation.benchmarks.crepe import CrepeProductivity
from genemi.evaluation.benchmarks.genemi_testset import GenemiTestSet
from genemi.evaluation.benchmarks.retention import Retrieval, ZeroShot
from genemi.evaluation.benchmarks.spec import Spec
from genemi.evaluation.benchmarks.sugarcrepe import SugarCrepe, SugarCrepePP
from genemi.evaluation.benchmarks.valse import Valse
from genemi.evaluation.benchmarks.vl_checklist import VLCheckList
from genemi.evaluation.benchmarks.whatsup import WhatsUp
from genemi.evaluation.benchmarks.winoground import Winoground
from genemi.evaluation.scoring import embed, pairwise_dots, unique_product

N = 40
DIM = 512


def vector(key: str) -> np.ndarray:
    v = np.random.default_rng(zlib.crc32(key.encode())).standard_normal(DIM).astype(np.float32)
    return v / np.linalg.norm(v)


class RandomEmbedder:
    """Every distinct image key and text gets its own random unit vector."""

    key = "random"

    def embed_images(self, images):
        return np.stack([vector("image:" + i.key) for i in images]), [None] * len(images)

    def embed_texts(self, texts):
        return np.stack([vector("text:" + t) for t in texts])


def run(bench, ties=None):
    if ties:
        bench.ties = ties
    images, texts = bench.inputs()
    return bench.score(embed(RandomEmbedder(), images, texts))


def png(path, k=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (4, 4), (k % 256, k // 256, 7)).save(path)
    return path


def words(k: int, tag: str = "") -> str:
    return f"caption {tag} number {k}"


def test_pairwise_dots_and_unique_product_do_not_depend_on_position():
    rng = np.random.default_rng(0)
    t = rng.standard_normal((300, DIM)).astype(np.float32)
    v = rng.standard_normal((1, DIM)).astype(np.float32)
    base = pairwise_dots(v, t)[0]
    for k in range(100):
        idx = [k, k + 1, k] + list(rng.integers(0, 300, int(rng.integers(0, 8))))
        block = pairwise_dots(v, t[idx])[0]
        assert block[0] == block[2] and (block == base[idx]).all()
    assert (pairwise_dots(t[:5], t[5:9]) == pairwise_dots(t[5:9], t[:5]).T).all()  # a.b == b.a exactly
    rows = t[[0, 1, 0, 2, 1]]
    m = unique_product(rows, t[[3, 3, 4]])
    assert (m[0] == m[2]).all() and (m[1] == m[4]).all() and (m[:, 0] == m[:, 1]).all()
    assert np.allclose(m, rows.astype(np.float64) @ t[[3, 3, 4]].astype(np.float64).T, atol=1e-12)


# --- 1 image, several captions ------------------------------------------------------------------------------


def test_sugarcrepe_negative_equal_to_the_caption_is_a_tie(tmp_path):
    items = {str(k): {"filename": f"{k}.jpg", "caption": words(k), "negative_caption": words(k)} for k in range(N)}
    (tmp_path / "sc").mkdir()
    (tmp_path / "sc" / "replace_att.json").write_text(json.dumps(items))
    for k in range(N):
        png(tmp_path / "img" / f"{k}.jpg", k)
    bench = SugarCrepe(tmp_path / "sc", tmp_path / "img")
    r = run(bench)
    assert r.metrics["replace_att"] == 0 and r.ties == r.ties_any == N  # strict: a tie is wrong
    assert all(row["scores"][0] == row["scores"][1] for row in r.rows)
    assert run(bench, "first").metrics["replace_att"] == 100


def test_sugarcrepe_pp_negative_equal_to_caption2(tmp_path):
    """The replace_att item whose negative equals caption2: ITT 0 officially (cos_p2 > cos_neg fails)."""
    rows = [{"id": k, "filename": f"{k}.jpg", "caption": words(k, "a"), "caption2": words(k, "b"),
             "negative_caption": words(k, "b")} for k in range(N)]
    (tmp_path / "scpp").mkdir()
    (tmp_path / "scpp" / "replace_att.json").write_text(json.dumps(rows))
    for k in range(N):
        png(tmp_path / "img" / f"{k}.jpg", k)
    r = run(SugarCrepePP(tmp_path / "scpp", tmp_path / "img"))
    assert r.metrics["replace_att/itt"] == 0
    assert all(row["scores"][1] == row["scores"][2] and row["tot_p1_p2"] == row["tot_p1_neg"] for row in r.rows)
    assert r.ties == N
    # negative equal to caption: s(caption, caption2) and s(caption2, negative) are the same pair, both ways
    for row in rows:
        row["negative_caption"] = row["caption"]
    (tmp_path / "scpp" / "replace_att.json").write_text(json.dumps(rows))
    r = run(SugarCrepePP(tmp_path / "scpp", tmp_path / "img"))
    assert all(row["tot_p1_p2"] == row["tot_p2_neg"] and row["tot"] is False for row in r.rows)


def test_aro_vg_relation_identical_captions_lose_under_argmax(tmp_path):
    items = [{"image_path": f"{k}.jpg", "bbox_x": 0, "bbox_y": 0, "bbox_w": 4, "bbox_h": 4,
              "true_caption": words(k), "false_caption": words(k), "relation_name": "on"} for k in range(N)]
    (tmp_path / "visual_genome_relation.json").write_text(json.dumps(items))
    for k in range(N):
        png(tmp_path / "images" / f"{k}.jpg", k)
    r = run(VGRelation(tmp_path))
    assert r.metrics["micro_accuracy_all"] == 0 and r.ties == N  # options [false, true]: the first wins


def test_aro_order_ties_with_any_option_and_with_the_best(tmp_path):
    """19 of 80 COCO-Order items repeated the true caption but 2 were counted: ``ties`` is the decisive
    tie, ``ties_any`` every item with an option identical to the true caption."""
    lines = []
    for k in range(N):
        true = words(k)
        options = [true, words(k, "x"), true, words(k, "y"), words(k, "z")] if k % 2 else [true] + [
            words(k, t) for t in "wxyz"]
        lines.append(json.dumps({"item_id": str(k), "seed": 0, "image": f"{k}.jpg", "options": options}))
        png(tmp_path / "img" / f"{k}.jpg", k)
    (tmp_path / "options.jsonl").write_text("\n".join(lines) + "\n")
    r = run(OrderBenchmark("aro_coco_order", None, tmp_path / "img", options_file=tmp_path / "options.jsonl"))
    repeated = [row for row in r.rows if row["item_id"] in {str(k) for k in range(1, N, 2)}]
    assert all(row["scores"][0] == row["scores"][2] and row["tie_any"] for row in repeated)
    decisive = [row for row in repeated if max(row["scores"][1:]) == row["scores"][0]]
    assert r.ties_any == N // 2 and r.ties == len(decisive) and 0 < r.ties < r.ties_any
    assert all(row["correct"] for row in decisive)  # first rule: the true caption is option 0
    assert r.metrics["items_repeating_true_caption"] == 50


def test_valse_foil_equal_to_the_caption(tmp_path):
    items = {f"i{k}": {"dataset": "x", "image_file": f"{k}.jpg", "caption": words(k), "foil": words(k),
                       "mturk": {"caption": 3}} for k in range(N)}
    (tmp_path / "valse").mkdir()
    (tmp_path / "valse" / "existence.json").write_text(json.dumps(items))
    for k in range(N):
        png(tmp_path / "img" / f"{k}.jpg", k)
    r = run(Valse(tmp_path / "valse", tmp_path / "img"))
    assert r.metrics["existence"] == 0 and r.ties == N
    assert any("floating-point noise" in n for n in r.notes)


def test_vl_checklist_negative_equal_to_the_positive(tmp_path):
    corpus = tmp_path / "vlc" / "corpus" / "v1" / "Attribute" / "color"
    corpus.mkdir(parents=True)
    (corpus / "vg.yaml").write_text('ANNO_PATH: "data/color.json"\nIMG_ROOT: "vg/"\n')
    (tmp_path / "vlc" / "data").mkdir()
    (tmp_path / "vlc" / "data" / "color.json").write_text(json.dumps(
        [[f"{k}.jpg", {"POS": [words(k)], "NEG": [words(k)]}] for k in range(N)]))
    for k in range(N):
        png(tmp_path / "images" / "vg" / f"{k}.jpg", k)
    r = run(VLCheckList(tmp_path / "vlc", tmp_path / "images"))
    assert r.metrics["Attribute/color"] == 0 and r.ties == N


def test_whatsup_repeated_caption_option(tmp_path):
    rows = [[139 + k, words(k), words(k)] for k in range(N)]
    (tmp_path / "coco_qa_one_obj.json").write_text(json.dumps(rows))
    for k in range(N):
        png(tmp_path / "val2017" / f"{139 + k:012d}.jpg", k)
    r = run(WhatsUp(tmp_path))
    assert r.metrics["coco_qa_one_obj"] == 100 and r.ties == N  # argmax: the right caption is listed first
    assert run(WhatsUp(tmp_path), "strict").metrics["coco_qa_one_obj"] == 0


def test_crepe_negative_repeating_the_caption(tmp_path):
    lines = ["image_id,caption,x,y,width,height,hard_negs"]
    for k in range(N):
        lines.append(f'{k},{words(k)},0,0,4,4,"[\'{words(k, "n")}\', \'{words(k)}\']"')
        png(tmp_path / "vg" / "VG_100K" / f"{k}.jpg", k)
    (tmp_path / "prod" / "atom").mkdir(parents=True)
    (tmp_path / "prod" / "atom" / "prod_vg_hard_negs_atom_complexity_4.csv").write_text("\n".join(lines) + "\n")
    bench = CrepeProductivity(tmp_path / "prod", tmp_path / "vg", ["atom"], [4])
    r = run(bench)
    assert all(row["scores"][0] == row["scores"][2] and row["tie_any"] for row in r.rows)
    # first rule: the copy ranks below the caption; the rank is the count of strictly better negatives
    assert [row["rank"] for row in r.rows] == [int(row["scores"][1] > row["scores"][0]) for row in r.rows]
    assert r.ties_any == N


def test_spec_repeated_image_and_repeated_text(tmp_path):
    """SPEC text-to-image with a repeated image: argmax takes the first copy (official mean 30.0; position noise
    made genemi pick the later copy in about half the items)."""
    folder = tmp_path / "spec" / "count"
    t2i, i2t = [], []
    for k in range(N):
        png(folder / f"{k}a.png", k)
        png(folder / f"{k}b.png", k + 100)
        t2i.append({"query": words(k), "keys": [f"{k}a.png", f"{k}b.png", f"{k}a.png"], "label": 2})
        i2t.append({"query": f"{k}a.png", "keys": [words(k), words(k, "b"), words(k)], "label": 2})
    (folder / "text2image.json").write_text(json.dumps(t2i))
    (folder / "image2text.json").write_text(json.dumps(i2t))
    r = run(Spec(tmp_path / "spec"))
    assert r.metrics["count/t2i"] == 0 and r.metrics["count/i2t"] == 0  # the label is the later copy
    assert all(row["scores"][0] == row["scores"][2] for row in r.rows)
    assert r.ties_any == 2 * N


# --- 2 x 2 and k x k --------------------------------------------------------------------------------------


def test_winoground_and_colorswap_identical_captions_or_images(tmp_path):
    rows = []
    for k in range(N):
        png(tmp_path / "wg" / "images" / f"{k}_0.png", k)
        png(tmp_path / "wg" / "images" / f"{k}_1.png", k + 100)
        same_image = k % 2 == 0
        rows.append({"id": k, "image_0": f"{k}_0", "image_1": f"{k}_0" if same_image else f"{k}_1",
                     "caption_0": words(k), "caption_1": words(k, "b") if same_image else words(k)})
    (tmp_path / "wg" / "examples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    r = run(Winoground(tmp_path / "wg"))
    assert r.metrics["group"] == 0 and r.ties == N
    assert all(row["text"] is False for n, row in enumerate(r.rows) if n % 2)  # identical captions
    assert all(row["image"] is False for n, row in enumerate(r.rows) if n % 2 == 0)  # identical images

    examples = [{"id": k, "image_1": f"images/img_{k}_1.png", "image_2": f"images/img_{k}_2.png",
                 "caption_1": words(k), "caption_2": words(k)} for k in range(N)]
    (tmp_path / "cs").mkdir()
    (tmp_path / "cs" / "test.json").write_text(json.dumps(examples))
    for k in range(N):
        png(tmp_path / "cs" / "images" / f"img_{k}_1.png", k)
        png(tmp_path / "cs" / "images" / f"img_{k}_2.png", k + 100)
    r = run(ColorSwap(tmp_path / "cs"))
    assert r.metrics["text"] == 0 and r.ties == N


def test_genemi_testset_repeated_caption(tmp_path):
    rows = []
    for k in range(N):
        for j in range(3):
            png(tmp_path / f"{k}_{j}.png", 3 * k + j)
        rows.append({"num_sample": 3, **{f"image_{j}": f"{k}_{j}.png" for j in range(3)},
                     "caption_0": words(k), "caption_1": words(k, "b"), "caption_2": words(k)})
    (tmp_path / "test.json").write_text(json.dumps(rows))
    r = run(GenemiTestSet(tmp_path / "test.json"))
    for row in r.rows:
        s = np.array(row["scores"]).reshape(3, 3)
        assert (s[:, 0] == s[:, 2]).all() and row["tie_any"]
    assert r.ties_any == N and r.metrics["text_all"] == 0


def test_retrieval_and_zeroshot_repeated_captions_and_classes(tmp_path):
    entries = []
    for k in range(N):  # images 2j and 2j+1 have the same caption
        png(tmp_path / "img" / f"{k}.jpg", k)
        entries.append({"image": f"{k}.jpg", "caption": [words(k // 2, "shared")]})
    (tmp_path / "ann.json").write_text(json.dumps(entries))
    r = run(Retrieval(tmp_path / "ann.json", tmp_path / "img"))
    i2t = [row for row in r.rows if row["subset"] == "i2t"]
    assert all(row["tie_any"] and row["rank"] >= 1 for row in i2t)  # its twin's copy scores exactly the same
    assert r.metrics["i2t_R@1"] == 0

    for name in ("crane_a", "crane_b"):
        for k in range(N // 2):
            png(tmp_path / "zs" / name / f"{k}.jpg", k + (0 if name == "crane_a" else 500))
    (tmp_path / "names.txt").write_text("crane\ncrane\n")
    r = run(ZeroShot(tmp_path / "zs", tmp_path / "names.txt", templates="simple"))
    assert r.ties == r.ties_any == N and r.metrics["top1"] == 0  # a tie ranks below (strict)


@pytest.mark.parametrize("size", [3, 6])
def test_item_scores_equal_for_identical_options_at_any_position(size):
    """Direct check of the lookups every benchmark uses (sims, image_sims, text_sims, scores)."""
    from genemi.evaluation.scoring import ImageRef

    texts = [words(k) for k in range(size - 1)] + [words(0)]
    images = [ImageRef(f"/x/{k}.png") for k in range(size - 1)] + [ImageRef("/x/0.png")]
    emb = embed(RandomEmbedder(), images, texts)
    for n in range(N):
        s = emb.sims(images[n % (size - 1)], texts)
        assert s[0] == s[-1]
        t = emb.image_sims(texts[n % (size - 1)], images)
        assert t[0] == t[-1]
        u = emb.text_sims(texts[1], texts)
        assert u[0] == u[-1]


def test_clip_embedder_gives_identical_model_inputs_one_vector(tiny_clip, tmp_path):
    """Copies of an image under other names, and texts the tokenizer cannot tell apart, are one model input."""
    from genemi.evaluation.scoring import ClipEmbedder, ImageRef
    from genemi.models.clip import create_clip

    bundle = create_clip(str(tiny_clip["config"]), tiny_clip["open_clip_state_dict"])
    emb = ClipEmbedder(bundle, "cpu", batch_size=3, workers=0, progress=False)
    for k in range(5):
        png(tmp_path / f"{k}.png", 40 * k)
    (tmp_path / "copy.png").write_bytes((tmp_path / "1.png").read_bytes())
    refs = [ImageRef(str(tmp_path / n)) for n in ("0.png", "1.png", "2.png", "3.png", "4.png", "copy.png")]
    vecs, errors = emb.embed_images(refs)
    assert errors == [None] * 6 and (vecs[1] == vecs[5]).all() and not (vecs[0] == vecs[1]).all()
    texts = ["a dog on a mat", "two cats", "A  dog on a   MAT", "a red car", "a dog on a mat"]
    t = emb.embed_texts(texts)
    assert (t[0] == t[2]).all() and (t[0] == t[4]).all() and not (t[0] == t[1]).all()
