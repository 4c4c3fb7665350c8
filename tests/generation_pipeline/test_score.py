"""The ``score`` stage on tiny models in their real formats: IVA on hand-made stacks, batched ITM against the
plain model call, ITM on the variation (not the source), CLIPScore, per-variation failures, the CLI."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from genemi.errors import ConfigError, DataError
from genemi.generation_pipeline import pipeline
from genemi.generation_pipeline.scoring.blip import BlipMatcher, normalise_caption
from genemi.generation_pipeline.scoring.clip_score import ClipScorer, clip_score
from genemi.generation_pipeline.scoring.config import ScoreConfig
from genemi.variation_area import image_variation_area, sibling_iva
from genemi.generation_pipeline.stage import StageContext
from genemi.images import load_rgb
from genemi.manifest import read_records
from genemi.records import VariationPlan
from tests.generation_pipeline.scored_run import BOXES, H, W, _line, write_scored_run


@pytest.fixture(scope="module")
def itm_model(tmp_path_factory):
    from genemi.models.tiny import TINY_BUILDERS

    return TINY_BUILDERS["blip_itm"](tmp_path_factory.mktemp("itm"), seed=0)["blip_itm"]


@pytest.fixture(scope="module")
def matcher(itm_model):
    m = BlipMatcher(ScoreConfig(blip_model=str(itm_model), itm_batch_size=3), StageContext())
    m.check()
    m.load()
    return m


def run_score(run, itm_model, *extra) -> int:
    return pipeline.main(["--stages", "score", "--blip-model", str(itm_model), "--output-dir", str(run.output_dir),
                          "--input-dir", str(run.input_dir), "--no-progress", *extra])


def scored_run(tmp_path):
    """The hand-made run of ``scored_run.py`` without its ``scores.jsonl`` (this stage writes it)."""
    run = write_scored_run(tmp_path)
    (run.output_dir / "scores.jsonl").unlink()
    return run


def variations(path) -> dict:
    """variation id -> (record, item, variation) of a manifest."""
    return {v.id: (r, i, v) for r in read_records(path, VariationPlan) for i in r.items for v in i.variations}


def reference_iva(arrays, threshold=10.0) -> float:
    """IVA the slow way: pixel by pixel, np.std of each channel over the stack."""
    stack = np.stack(arrays).astype(np.float64)
    k, h, w, _ = stack.shape
    count = 0
    for y in range(h):
        for x in range(w):
            if np.mean([np.std(stack[:, y, x, c]) for c in range(3)]) > threshold:
                count += 1
    return 100.0 * count / (h * w)


# --- IVA -------------------------------------------------------------------------------------------------


def test_iva_counts_pixels_whose_channel_mean_std_exceeds_the_threshold():
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    stack = np.stack([base] * 4)
    stack[0::2, 2:8, 3:13] = 0  # a 6 x 10 block alternating 0 / 255 over the stack: std 127.5
    stack[1::2, 2:8, 3:13] = 255
    assert image_variation_area(stack) == pytest.approx(100 * 60 / 600)
    assert image_variation_area(np.stack([base] * 4)) == 0.0

    def block(values, channels=(0, 1, 2)):
        s = np.stack([np.full((10, 10, 3), 100, np.uint8) for _ in values])
        for k, v in enumerate(values):
            s[k, :5, :, list(channels)] = v  # the top half varies, the bottom half not
        return s

    assert image_variation_area(block([100, 120, 100, 120])) == 0.0  # std exactly 10: not above the threshold
    assert image_variation_area(block([100, 119, 100, 119])) == 0.0  # 9.5
    assert image_variation_area(block([100, 121, 100, 121])) == 50.0  # 10.5
    # one channel with std 27 -> channel mean 9 (not counted); std 33 -> 11 (counted)
    assert image_variation_area(block([100, 154], channels=(1,))) == 0.0
    assert image_variation_area(block([100, 166], channels=(1,))) == 50.0
    assert image_variation_area(block([100, 121]), threshold=11.0) == 0.0


@pytest.mark.parametrize("k", [2, 3, 5])
def test_iva_any_group_size_matches_the_pixelwise_definition(k):
    rng = np.random.default_rng(k)
    base = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
    arrays = [base.copy() for _ in range(k)]
    for j, a in enumerate(arrays):
        a[3:9, 4:12] = np.clip(base[3:9, 4:12].astype(int) + rng.integers(-40, 41, (6, 8, 3)) * (j % 2), 0, 255)
    expected = reference_iva(arrays)
    assert 0 < expected < 100
    assert image_variation_area(np.stack(arrays)) == pytest.approx(expected)
    assert sibling_iva([Image.fromarray(a) for a in arrays], [0, 0, 16, 12]) == \
        (pytest.approx(expected), pytest.approx(expected), None)


def test_sibling_iva_records_the_whole_image_and_the_window_and_explains_degenerate_groups():
    a = np.zeros((40, 60, 3), np.uint8)
    b = a.copy()
    b[10:20, 10:20] = 255  # 100 changed pixels
    # over the whole image (the original's IVA): 100 / 2400; in a 20 x 20 window holding the change: 25 %
    assert sibling_iva([a, b], [5, 5, 25, 25])[:2] == (pytest.approx(100 * 100 / 2400), pytest.approx(25.0))
    assert sibling_iva([a, b], None)[:2] == (pytest.approx(100 * 100 / 2400),) * 2
    assert sibling_iva([a, b], [-10, -10, 1000, 1000])[1] == pytest.approx(100 * 100 / 2400)  # clipped
    image, window, note = sibling_iva([b], [0, 0, 60, 40])
    assert image == window == 0.0 and "only 1 variation" in note
    image, window, note = sibling_iva([a, b, b], [0, 0, 60, 40], planned=4)
    assert image > 0 and "3 of the item's 4" in note
    with pytest.raises(DataError, match="differ in size"):
        sibling_iva([a, np.zeros((40, 61, 3), np.uint8)], [0, 0, 60, 40])
    with pytest.raises(DataError, match="does not overlap"):
        sibling_iva([a, b], [100, 100, 200, 200])


# --- ITM -------------------------------------------------------------------------------------------------


def test_batched_itm_equals_the_plain_model_call_per_pair(matcher):
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 256, (40 + 8 * k, 50, 3), dtype=np.uint8)) for k in range(4)]
    captions = [["a red cube", "a blue ball next to a dog on the left of a tree"], [],
                ["A cat!", "a dog and a cat", "two cats"], ["a green cone"]]
    result = matcher.match(images, captions)
    assert result[1] == ([], [])
    spread = []
    for img, caps, (logits, probs) in zip(images, captions, result):
        assert len(logits) == len(probs) == len(caps)
        for cap, logit, prob in zip(caps, logits, probs):
            enc = matcher.tokenize([cap])
            with torch.no_grad():
                out = matcher.model(input_ids=enc["input_ids"], pixel_values=matcher.preprocess([img]),
                                    use_itm_head=True).itm_score[0]
            assert logit == pytest.approx(out[1].item(), abs=1e-5)
            assert prob == pytest.approx(out.softmax(-1)[1].item(), abs=1e-5)
            spread.append(logit)
    assert max(spread) - min(spread) > 1e-2  # the tiny model's scores depend on image and caption
    # preprocessed pixels give the same result (the stage preprocesses in its reader thread)
    again = matcher.match(matcher.preprocess(images), captions)
    assert [x for r in again for x in r[0]] == pytest.approx([x for r in result for x in r[0]], abs=1e-6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_itm_on_cuda_in_bf16_matches_cpu(itm_model, matcher):
    cuda = BlipMatcher(ScoreConfig(blip_model=str(itm_model)), StageContext(device="cuda", dtype=torch.bfloat16))
    cuda.load()
    rng = np.random.default_rng(2)
    images = [Image.fromarray(rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)) for _ in range(3)]
    captions = [["a red cube", "a dog"], ["a cat"], []]
    got, ref = cuda.match(images, captions), matcher.match(images, captions)
    assert [x for r in got for x in r[0]] == pytest.approx([x for r in ref for x in r[0]], abs=0.1)


def test_itm_text_follows_lavis(matcher):
    assert normalise_caption("A Cat (sitting)  on: the MAT!") == "a cat sitting on the mat"
    ids = matcher.tokenize(["a cat", "a dog on a mat"])["input_ids"]
    tok = matcher.tokenizer
    assert (ids[:, 0] == tok.convert_tokens_to_ids("[ENC]")).all()  # not [CLS], as BLIP/LAVIS do for ITM
    assert matcher.tokenize([" ".join(["cat"] * 80)])["input_ids"].shape[1] == 35  # LAVIS cuts ITM text at 35 tokens


def test_blip_matcher_check_refuses_missing_hub_and_captioning_folders(tmp_path):
    from genemi.models.tiny.detection import save_tiny_blip

    ctx = StageContext()
    for path, message in [(None, "needs --blip-model"), ("Salesforce/blip-itm-large-coco", "not a local folder"),
                          (str(tmp_path / "nope"), "not a local folder")]:
        with pytest.raises(ConfigError, match=message):
            BlipMatcher(ScoreConfig(blip_model=path), ctx).check()
    captioner = save_tiny_blip(tmp_path)["blip"]
    with pytest.raises(ConfigError, match="not an image-text matching model"):
        BlipMatcher(ScoreConfig(blip_model=str(captioner)), ctx).check()


# --- CLIPScore -------------------------------------------------------------------------------------------


def test_clip_score_is_100_times_the_clamped_cosine(tiny_clip):
    from genemi.models.clip import create_clip

    assert clip_score(torch.tensor([[1.0, 0.0], [1.0, 0.0]]), torch.tensor([[2.0, 0.0], [-1.0, 0.1]])).tolist() == [
        100.0, 0.0]
    model_name = f"local-dir:{tiny_clip['open_clip_dir']}"
    scorer = ClipScorer.from_config(ScoreConfig(clip_score_model=model_name), StageContext())
    scorer.check()
    scorer.load()
    rng = np.random.default_rng(1)
    images = [Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)) for _ in range(2)]
    captions = [["a red cube", "a blue ball"], ["a red cube", "two dogs", "a cat"]]
    scores = scorer.score(images, captions)
    flat = [x for row in scores for x in row]
    assert [len(row) for row in scores] == [2, 3] and any(x > 0 for x in flat) and 0.0 in flat  # both sides of max
    # independently: the plain open_clip calls, normalised features, 100 * max(cos, 0)
    bundle = create_clip(model_name)
    transform = bundle.transform()
    with torch.no_grad():
        for img, caps, got in zip(images, captions, scores):
            f_img = bundle.model.encode_image(transform(img)[None], normalize=True)
            f_txt = bundle.model.encode_text(bundle.tokenizer(caps), normalize=True)
            expected = (100 * (f_img @ f_txt.T).clamp(min=0))[0].tolist()
            assert got == pytest.approx(expected, abs=1e-4)


def test_clip_score_options_need_a_model_with_weights(tiny_clip):
    with pytest.raises(ConfigError, match="--clip-score-pretrained needs --clip-score-model"):
        ClipScorer.from_config(ScoreConfig(clip_score_pretrained=str(tiny_clip["open_clip_state_dict"])),
                               StageContext())
    with pytest.raises(ConfigError, match="has no weights"):
        ClipScorer.from_config(ScoreConfig(clip_score_model=str(tiny_clip["config"])), StageContext()).check()


# --- the stage -------------------------------------------------------------------------------------------


def test_score_stage_end_to_end(tmp_path, itm_model, matcher, tiny_clip, capsys):
    run = scored_run(tmp_path)
    assert run_score(run, itm_model, "--clip-score-model", str(tiny_clip["config"]),
                     "--clip-score-pretrained", str(tiny_clip["open_clip_state_dict"])) == 0
    before = variations(run.output_dir / "variations.jsonl")
    after = variations(run.output_dir / "scores.jsonl")
    assert after.keys() == before.keys()
    records = {r.id: r for r in read_records(run.output_dir / "scores.jsonl", VariationPlan)}
    inputs = {r.id: r for r in read_records(run.output_dir / "variations.jsonl", VariationPlan)}
    assert records[run.failed_image] == inputs[run.failed_image]  # failed upstream: carried unchanged
    assert after[run.failed_variation][2] == before[run.failed_variation][2]
    painted = [vid for vid, (_, _, v) in after.items() if v.status == "ok"]
    expected_iva = {}
    assert sorted(painted) == sorted(run.scores)
    for vid in painted:
        rec, item, var = after[vid]
        assert len(var.itm_score) == len(var.itm_prob) == len(var.clip_score) == len(var.captions) == 2
        assert all(0 < p < 1 for p in var.itm_prob) and all(0 <= s <= 100 for s in var.clip_score)
        # the scores are the matcher's on the variation image
        [(logits, _)] = matcher.match([load_rgb(run.output_dir / var.image)], [var.captions])
        assert var.itm_score == pytest.approx(logits, abs=1e-5)
        # IVA, independently: every painted sibling, its crop window, the pixelwise definition
        if item.id not in expected_iva:
            siblings = [np.asarray(load_rgb(run.output_dir / v.image)) for v in item.variations if v.status == "ok"]
            x0, y0, x1, y1 = item.crop
            expected_iva[item.id] = (reference_iva(siblings), reference_iva([s[y0:y1, x0:x1] for s in siblings]))
        assert (var.iva_image, var.iva_window) == pytest.approx(expected_iva[item.id])
    # the siblings differ only inside the item's box, in every channel: IVA = box area / window area
    x0, y0, x1, y1 = BOXES[0]
    assert after["img_0.png/item_00/var_0"][2].iva_window == pytest.approx(100 * (x1 - x0) * (y1 - y0) / (W * H))
    assert after["img_0.png/item_00/var_0"][2].iva_note is None
    assert "3 of the item's 4" in after["img_1.png/item_00/var_0"][2].iva_note  # var_2 failed in inpaint
    summary = json.loads((run.output_dir / "run_summary.json").read_text())
    assert summary["stages"]["score"]["processed"] == 3
    capsys.readouterr()
    clip = ["--clip-score-model", str(tiny_clip["config"]), "--clip-score-pretrained", str(tiny_clip["open_clip_state_dict"])]
    assert run_score(run, itm_model) == 2  # without CLIPScore now: the resume would mix settings, so it stops
    assert "clip_score_model" in capsys.readouterr().err
    assert run_score(run, itm_model, *clip) == 0  # resumed: nothing left to do
    assert json.loads((run.output_dir / "run_summary.json").read_text())["stages"]["score"]["already_done"] == 3


def test_itm_is_computed_on_the_variation_not_the_source(tmp_path, itm_model, matcher):
    run = scored_run(tmp_path)
    vid = "img_0.png/item_00/var_0"
    rec, _, var = variations(run.output_dir / "variations.jsonl")[vid]
    source = load_rgb(run.input_dir / rec.image)
    different = Image.fromarray(255 - np.asarray(source)[::-1])  # inverted and flipped: nothing like the source
    different.save(run.output_dir / var.image)
    assert run_score(run, itm_model) == 0
    scored = variations(run.output_dir / "scores.jsonl")[vid][2]
    [(on_variation, _), (on_source, _)] = matcher.match([load_rgb(run.output_dir / var.image), source],
                                                        [var.captions, var.captions])
    assert scored.itm_score == pytest.approx(on_variation, abs=1e-5)
    assert all(abs(s - o) > 1e-3 for s, o in zip(scored.itm_score, on_source))


def test_missing_or_corrupt_variation_image_fails_only_that_variation(tmp_path, itm_model):
    run = scored_run(tmp_path)
    before = variations(run.output_dir / "variations.jsonl")
    missing, corrupt, silent = "img_0.png/item_00/var_1", "img_0.png/item_00/var_2", "img_0.png/item_01/var_3"
    (run.output_dir / before[missing][2].image).unlink()
    (run.output_dir / before[corrupt][2].image).write_bytes(b"not a png")
    resized = "img_1.png/item_01/var_0"  # siblings of different sizes cannot be compared: the item's IVA fails
    Image.new("RGB", (W + 4, H)).save(run.output_dir / before[resized][2].image)
    # a variation without captions: scored with [] (no mean ITM: ITM filters drop it), still an IVA sibling
    recs = [r.model_copy(update={"items": [i.model_copy(update={"variations": [
        v.model_copy(update={"captions": []}) if v.id == silent else v for v in i.variations]}) for i in r.items]})
        for r in read_records(run.output_dir / "variations.jsonl", VariationPlan)]
    (run.output_dir / "variations.jsonl").write_text("".join(_line(r) for r in recs))
    assert variations(run.output_dir / "variations.jsonl")[silent][2].captions == []
    assert run_score(run, itm_model) == 0
    after = variations(run.output_dir / "scores.jsonl")
    rec = after[missing][0]
    assert rec.status == "ok" and after[missing][1].status == "ok"
    for vid, text in [(missing, "image not found"), (corrupt, "cannot read image")]:
        var = after[vid][2]
        assert var.status == "failed" and var.error.stage == "score" and var.error.type == "ImageError"
        assert text in var.error.message and var.itm_score is None
    ok = [after[f"img_0.png/item_00/var_{j}"][2] for j in (0, 3)]
    assert all(v.status == "ok" and len(v.itm_score) == 2 for v in ok)
    assert ok[0].iva_image == ok[1].iva_image and "2 of the item's 4" in ok[0].iva_note
    for j in range(4):
        var = after[f"img_1.png/item_01/var_{j}"][2]
        assert var.status == "failed" and var.error.type == "DataError" and "differ in size" in var.error.message
    assert after["img_1.png/item_00/var_0"][2].status == "ok"
    quiet = after[silent][2]
    assert quiet.status == "ok" and quiet.itm_score == [] and quiet.itm_prob == [] and quiet.mean_itm is None
    assert quiet.iva_image == after["img_0.png/item_01/var_0"][2].iva_image > 0


def test_score_cli_refuses_bad_models_in_one_line(tmp_path, itm_model, tiny_clip, capsys):
    run = scored_run(tmp_path)
    common = ["--stages", "score", "--output-dir", str(run.output_dir), "--input-dir", str(run.input_dir),
              "--no-progress"]
    for extra, message in [
        (["--blip-model", "Salesforce/blip-itm-large-coco"], "--blip-model: Salesforce/blip-itm-large-coco is not a "
                                                             "local folder (looks like a hub id"),
        (["--blip-model", str(tmp_path / "missing")], f"--blip-model: {tmp_path / 'missing'} is not a local folder"),
        ([], "--scorer blip needs --blip-model DIR"),
        (["--blip-model", str(itm_model), "--clip-score-pretrained", str(tiny_clip["open_clip_state_dict"])],
         "--clip-score-pretrained needs --clip-score-model"),
    ]:
        assert pipeline.main(common + extra) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("genemi generate: error: ") and message in err
        assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert not (run.output_dir / "scores.jsonl").exists()
