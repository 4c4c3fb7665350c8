"""The ``inpaint`` stage on a tiny Stable Diffusion inpainting model: geometry without distortion, pastes that
leave every pixel outside the grown mask untouched, batched painting equal to painting alone, one VAE encoding
per item, the stage end to end with failures kept local, resume after a kill, regeneration of one variation,
file names that cannot escape, and clear errors for bad checkpoints."""

import shutil
from pathlib import Path

import numpy as np
import torch
import pytest
from PIL import Image

from genemi.generation_pipeline import pipeline
from genemi.generation_pipeline.inpainting.config import InpaintConfig
from genemi.generation_pipeline.inpainting.diffusers_backend import DiffusersInpainter, NonFiniteOutput, PaintJob
from genemi.generation_pipeline.inpainting.geometry import crop_alpha, fit_to_square, paste, paste_alpha, unfit
from genemi.masks import dilate
from genemi.generation_pipeline.inpainting.stage import InpaintStage, regenerate_variation, safe_component
from genemi.masks import rle_encode
from genemi.generation_pipeline.stage import StageContext
from genemi.manifest import ManifestIndex, encode_line, read_records
from genemi.records import Failure, ItemMask, MaskRecord, PlannedItem, PlannedVariation, VariationPlan

STEPS = 3


@pytest.fixture(scope="module")
def sd(tmp_path_factory):
    from genemi.models.tiny.diffusion import save_tiny_sd_inpainting

    return save_tiny_sd_inpainting(tmp_path_factory.mktemp("sd"))


def loaded(folder, **kw) -> DiffusersInpainter:
    backend = DiffusersInpainter(InpaintConfig(sd_checkpoint=str(folder), sd_num_steps=STEPS, **kw), StageContext())
    backend.check()
    backend.load()
    return backend


@pytest.fixture(scope="module")
def backend(sd):
    return loaded(sd["sd_inpainting"])


def near_disk(mask: np.ndarray, px: int) -> np.ndarray:
    """Brute force: pixels whose centre is within ``px`` of a mask pixel's centre."""
    ys, xs = np.nonzero(mask)
    rows, cols = np.indices(mask.shape)
    out = np.zeros(mask.shape, bool)
    for y, x in zip(ys, xs):
        out |= (rows - y) ** 2 + (cols - x) ** 2 <= px * px
    return out


# --- geometry ------------------------------------------------------------------------------------------


def test_fit_keeps_the_aspect_ratio_and_never_paints_the_padding():
    rgb = np.zeros((60, 120, 3), np.uint8)
    rgb[:, :60] = (200, 0, 0)
    rgb[:, 60:] = (0, 0, 200)
    mask = np.zeros((60, 120), bool)
    mask[:, :60] = True
    model_rgb, model_mask, place = fit_to_square(rgb, mask, 64)
    assert model_rgb.shape == (64, 64, 3) and model_mask.shape == (64, 64)
    assert (place.left, place.top, place.width, place.height) == (0, 16, 64, 32)  # a 64x32 band, centred
    assert not model_mask[:16].any() and not model_mask[48:].any()  # padding: never painted
    assert model_mask[16:48, :31].all() and not model_mask[16:48, 33:].any()
    assert (model_rgb[:16] == model_rgb[16]).all() and (model_rgb[48:] == model_rgb[47]).all()  # edge replicated
    assert tuple(model_rgb[30, 5]) == (200, 0, 0) and tuple(model_rgb[30, 60]) == (0, 0, 200)
    tall_rgb, tall_mask, tall = fit_to_square(np.zeros((100, 50, 3), np.uint8), np.ones((100, 50), bool), 64)
    assert (tall.left, tall.top, tall.width, tall.height) == (16, 0, 32, 64)
    assert not tall_mask[:, :16].any() and not tall_mask[:, 48:].any() and tall_mask[:, 16:48].all()


def test_squash_is_the_originals_resize_to_the_square():
    """--crop-fit squash: the crop resized to size x size whatever its aspect (the original's 512 x 512), no
    padding; unfit resizes it back to the crop."""
    rows, cols = np.indices((60, 120))
    rgb = np.stack([cols * 2, rows * 4, np.full_like(rows, 128)], -1).astype(np.uint8)
    mask = np.zeros((60, 120), bool)
    mask[:, :60] = True
    model_rgb, model_mask, place = fit_to_square(rgb, mask, 64, "squash")
    assert (place.left, place.top, place.width, place.height) == (0, 0, 64, 64)
    assert (model_rgb == np.asarray(Image.fromarray(rgb).resize((64, 64), Image.BICUBIC))).all()
    assert model_mask[:, :31].all() and not model_mask[:, 33:].any()  # the left half, stretched to full height
    back = unfit(model_rgb, place, rgb.shape)
    assert back.shape == rgb.shape and np.abs(back.astype(int) - rgb).max() <= 4


def test_unfit_undoes_fit():
    rows, cols = np.indices((60, 120))
    x = np.stack([cols * 2, rows * 4, np.full_like(rows, 128)], -1).astype(np.uint8)  # smooth gradients
    for size in (240, 128):
        model_rgb, _, place = fit_to_square(x, np.ones((60, 120), bool), size)
        back = unfit(model_rgb, place, x.shape)
        assert back.shape == x.shape
        assert np.abs(back.astype(int) - x).max() <= 3, size


def test_dilate_is_a_disk_and_alpha_ramps_inside_the_grown_mask():
    dot = np.zeros((21, 21), bool)
    dot[10, 10] = True
    rows, cols = np.indices(dot.shape)
    assert (dilate(dot, 3) == ((rows - 10) ** 2 + (cols - 10) ** 2 <= 9)).all()
    shape = np.zeros((40, 50), bool)
    shape[10:30, 12:18] = True
    shape[24:30, 12:40] = True  # an L
    grown = near_disk(shape, 4)
    assert (dilate(shape, 4) == grown).all()
    alpha = paste_alpha(shape, 4, 2)
    assert (alpha[~grown] == 0).all() and (alpha[shape] == 1).all()
    ring = grown & ~shape
    assert ((alpha[ring] > 0) & (alpha[ring] <= 1)).all()
    padded = np.pad(grown, 1)
    edge = grown & ~(padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:])
    assert np.allclose(alpha[edge], 0.5)  # one pixel from the outside, feather 2
    assert (paste_alpha(shape, 4, 0)[grown] == 1).all() and (paste_alpha(shape, 0, 0) == shape).all()


def test_paste_touches_nothing_outside_the_dilated_mask_and_replaces_the_mask():
    rng = np.random.default_rng(0)
    source = rng.integers(0, 256, (80, 96, 3), dtype=np.uint8)
    painted = rng.integers(0, 256, (60, 60, 3), dtype=np.uint8)
    box = (10, 5, 70, 65)
    mask = np.zeros((60, 60), bool)
    mask[20:40, 15:35] = True
    out = paste(source, painted, box, crop_alpha(mask, "mask", 3, 2))
    window = np.zeros((80, 96), bool)
    window[5:65, 10:70] = True
    grown = np.zeros((80, 96), bool)
    grown[5:65, 10:70] = near_disk(mask, 3)
    assert (out[~grown] == source[~grown]).all()  # exactly the source, inside and outside the window
    assert (out[5:65, 10:70][mask] == painted[mask]).all()
    ring = grown[5:65, 10:70] & ~mask
    lo, hi = np.minimum(source[5:65, 10:70], painted), np.maximum(source[5:65, 10:70], painted)
    assert ((out[5:65, 10:70] >= lo) & (out[5:65, 10:70] <= hi))[ring].all()
    whole = paste(source, painted, box, crop_alpha(mask, "crop", 3, 2))  # the original's whole-window paste
    assert (whole[~window] == source[~window]).all() and (whole[5:65, 10:70] == painted).all()


# --- backend -------------------------------------------------------------------------------------------


def _jobs(n_vars=(4, 3), size=32):
    rng = np.random.default_rng(1)
    jobs = []
    for j, k in enumerate(n_vars):
        image = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        mask = np.zeros((size, size), bool)
        mask[6 + j : 22, 4 : 20 + j] = True
        jobs.append(PaintJob(image, mask, [f"a {c} thing number {j}" for c in ["red", "blue", "green", "odd"][:k]],
                             [100 * j + v for v in range(k)]))
    return jobs


@pytest.mark.parametrize("scheduler", [None, "euler_a"])  # the checkpoint's PNDM, and one that draws noise per step
def test_a_variation_painted_in_a_batch_equals_it_painted_alone(sd, backend, scheduler):
    backend = backend if scheduler is None else loaded(sd["sd_inpainting"], sd_scheduler=scheduler)
    jobs = _jobs()
    together = backend.paint(jobs)
    assert backend.size == 32 and [r.images.shape for r in together] == [(4, 32, 32, 3), (3, 32, 32, 3)]
    assert all(e is None for r in together for e in r.errors)
    for j, job in enumerate(jobs):
        for k in range(len(job.prompts)):
            [alone] = backend.paint([PaintJob(job.image, job.mask, [job.prompts[k]], [job.seeds[k]])])
            assert np.abs(alone.images[0].astype(int) - together[j].images[k]).max() <= 2, (j, k)
    first = together[0].images.astype(int)
    assert np.abs(first[0] - first[1]).max() > 10  # different seeds and prompts: different pictures


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_bf16_paints_the_same_seeds_as_the_cpu(sd, backend):
    gpu = DiffusersInpainter(InpaintConfig(sd_checkpoint=str(sd["sd_inpainting"]), sd_num_steps=STEPS),
                             StageContext(device="cuda", dtype=torch.bfloat16))
    gpu.check()
    gpu.load()
    assert gpu.pipe.unet.dtype == torch.bfloat16 and gpu.pipe.device.type == "cuda"
    jobs = _jobs()
    on_gpu, on_cpu = gpu.paint(jobs), backend.paint(jobs)
    for a, b in zip(on_gpu, on_cpu):
        assert all(e is None for e in a.errors)
        # same CPU-drawn noise; bf16 rounding only: close on average, not bit-equal
        assert np.abs(a.images.astype(float) - b.images).mean() < 12
    gpu.offload()
    assert gpu.pipe.unet.device.type == "cpu"


def test_batches_keep_items_together_and_encode_each_item_once(backend, monkeypatch):
    small = DiffusersInpainter(InpaintConfig(sd_batch_size=3), StageContext())
    chunks = small._chunks([PaintJob(None, None, ["p"] * k, [0] * k) for k in (2, 4, 1, 2)])
    assert chunks == [[(0, 0), (0, 1)], [(1, 0), (1, 1), (1, 2)], [(1, 3), (2, 0)], [(3, 0), (3, 1)]]
    vae, rows = backend.pipe.vae, []
    real = vae.encode

    def counting(x, *a, **kw):
        rows.append(x.shape[0])
        return real(x, *a, **kw)

    monkeypatch.setattr(vae, "encode", counting)
    together = backend.paint(_jobs())
    assert sum(rows) == 2  # two items, seven variations: one encoding per item
    monkeypatch.setattr(backend.config, "sd_batch_size", 3)  # the 4-variation item now spans two UNet batches
    rows.clear()
    split = backend.paint(_jobs())
    assert sum(rows) == 2
    for a, b in zip(split, together):
        assert np.abs(a.images.astype(int) - b.images).max() <= 2


def test_single_file_checkpoint_paints_like_the_folder(sd, backend):
    single = DiffusersInpainter(InpaintConfig(sd_checkpoint=str(sd["sd_inpainting_single_file"]),
                                              sd_config=str(sd["sd_inpainting"]), sd_num_steps=STEPS), StageContext())
    single.check()
    single.load()
    job = _jobs((2,))
    a, b = single.paint(job)[0].images, backend.paint(job)[0].images
    assert np.abs(a.astype(int) - b).max() <= 1


def test_non_finite_output_fails_the_variation(sd):
    broken = loaded(sd["sd_inpainting"])
    broken.pipe.unet.conv_out.bias.data[:] = float("nan")
    [res] = broken.paint(_jobs((2,)))
    assert all(isinstance(e, NonFiniteOutput) for e in res.errors) and not res.images.any()


# --- the stage -----------------------------------------------------------------------------------------

A_MASKS = [(8, 8, 40, 40), (50, 30, 90, 70)]  # x0, y0, x1, y1 of a.png's items (96 x 80)
A_CROPS = [[0, 0, 96, 80], [40, 10, 96, 80]]


def _line(rec) -> str:
    return encode_line(rec.model_dump(mode="json", exclude_none=True)) + "\n"


def _var(item_id, j, short, slug=None, failed=False):
    v = PlannedVariation(id=f"{item_id}/var_{j}", kind="category", prompt=f"a photo of a {short}", short=short,
                         slug=slug or short.replace(" ", "_"), seed=7 * j + len(item_id), captions=[f"a {short}"])
    if failed:
        v = v.model_copy(update={"status": "failed", "error": Failure(stage="caption", type="x", message="bad")})
    return v


def write_run(root: Path) -> tuple[Path, Path]:
    """Input images and ``masks.jsonl`` + ``captions.jsonl`` by hand: a.png (2 items, one failed variation),
    sub/b.png (portrait; its second item has no mask), c.png (failed upstream), d.png (not an image)."""
    images, out = root / "images", root / "run"
    (images / "sub").mkdir(parents=True)
    out.mkdir()
    rows, cols = np.indices((80, 96))
    a = np.stack([rows * 3, cols * 2, (rows + cols) % 256], -1).astype(np.uint8)
    Image.fromarray(a).save(images / "a.png")
    rows, cols = np.indices((100, 70))
    b = np.stack([cols * 3, rows * 2, np.full_like(rows, 90)], -1).astype(np.uint8)
    Image.fromarray(b).save(images / "sub" / "b.png")
    Image.fromarray(np.full((40, 40, 3), 128, np.uint8)).save(images / "c.png")
    (images / "d.png").write_bytes(b"not an image at all")
    masks, plans = [], []

    def base(name, w, h):
        return dict(id=name, image=name, width=w, height=h, caption="a cat and a dog")

    a_items, a_plan = [], []
    for k, (x0, y0, x1, y1) in enumerate(A_MASKS):
        m = np.zeros((80, 96), bool)
        m[y0:y1, x0:x1] = True
        iid = f"a.png/item_{k:02d}"
        a_items.append(ItemMask(id=iid, item=["cat", "dog"][k], box=[x0, y0, x1, y1], box_score=0.9, mask=rle_encode(m),
                                mask_score=0.9, area=int(m.sum()), crop=A_CROPS[k]))
        shorts = ["red cube", "blue ball", "green cone"][: 3 - k]
        a_plan.append(PlannedItem(id=iid, item=["cat", "dog"][k], box=[x0, y0, x1, y1], crop=A_CROPS[k],
                                  backend="rules", variations=[_var(iid, j, s, failed=(k, j) == (0, 1))
                                                               for j, s in enumerate(shorts)]))
    masks.append(MaskRecord(**base("a.png", 96, 80), items=a_items))
    plans.append(VariationPlan(**base("a.png", 96, 80), items=a_plan))
    m = np.zeros((100, 70), bool)
    m[(rows - 60) ** 2 / 15**2 + (cols - 35) ** 2 / 20**2 <= 1] = True  # an ellipse
    bid = "sub/b.png/item_00"
    masks.append(MaskRecord(**base("sub/b.png", 70, 100), items=[ItemMask(
        id=bid, item="cup", box=[15, 45, 55, 75], box_score=0.8, mask=rle_encode(m), mask_score=0.9,
        area=int(m.sum()), crop=[0, 0, 70, 100])]))
    plans.append(VariationPlan(**base("sub/b.png", 70, 100), items=[
        PlannedItem(id=bid, item="cup", box=[15, 45, 55, 75], crop=[0, 0, 70, 100], backend="rules",
                    variations=[_var(bid, 0, "mug"), _var(bid, 1, "evil", slug="../../evil")]),
        PlannedItem(id="sub/b.png/item_01", item="table", box=[0, 0, 10, 10], crop=[0, 0, 70, 100], backend="rules",
                    variations=[_var("sub/b.png/item_01", 0, "desk")])]))
    err = Failure(stage="ground", type="no_boxes", message="no item grounded to a box")
    masks.append(MaskRecord(**base("c.png", 40, 40), status="failed", error=err))
    plans.append(VariationPlan(**base("c.png", 40, 40), status="failed", error=err))
    d_mask = np.zeros((40, 40), bool)
    d_mask[5:20, 5:20] = True
    masks.append(MaskRecord(**base("d.png", 40, 40), items=[ItemMask(
        id="d.png/item_00", item="box", box=[5, 5, 20, 20], box_score=0.9, mask=rle_encode(d_mask), mask_score=0.9,
        area=225, crop=[0, 0, 40, 40])]))
    plans.append(VariationPlan(**base("d.png", 40, 40), items=[PlannedItem(
        id="d.png/item_00", item="box", box=[5, 5, 20, 20], crop=[0, 0, 40, 40], backend="rules",
        variations=[_var("d.png/item_00", 0, "crate")])]))
    (out / "masks.jsonl").write_text("".join(_line(r) for r in masks))
    (out / "captions.jsonl").write_text("".join(_line(r) for r in plans))
    return images, out


def cli(images, out, sd, *extra):
    return ["--input-dir", str(images), "--output-dir", str(out), "--stages", "inpaint", "--device", "cpu",
            "--no-progress", "--sd-checkpoint", str(sd["sd_inpainting"]), "--sd-num-steps", str(STEPS),
            "--variation-format", "png", "--batch-size", "inpaint=2", *extra]


@pytest.fixture(scope="module")
def run(sd, tmp_path_factory):
    images, out = write_run(tmp_path_factory.mktemp("inpaint_run"))
    assert pipeline.main(cli(images, out, sd)) == 0
    return images, out


def _records(out: Path) -> dict[str, VariationPlan]:
    return {r.id: r for r in read_records(out / "variations.jsonl", VariationPlan)}


def test_stage_paints_each_variation_inside_its_grown_mask_only(run):
    images, out = run
    recs = _records(out)
    assert sorted(recs) == ["a.png", "c.png", "d.png", "sub/b.png"]
    plans = {r.id: r for r in read_records(out / "captions.jsonl", VariationPlan)}
    assert recs["c.png"] == plans["c.png"]  # failed upstream: carried unchanged
    assert recs["d.png"].status == "failed" and recs["d.png"].error.stage == "inpaint"
    assert recs["d.png"].error.type == "ImageError"
    a = recs["a.png"]
    assert a.status == "ok" and a.items[0].variations[1] == plans["a.png"].items[0].variations[1]  # failed var kept
    source = np.asarray(Image.open(images / "a.png"))
    painted = 0
    for k, item in enumerate(a.items):
        x0, y0, x1, y1 = A_MASKS[k]
        mask = np.zeros(source.shape[:2], bool)
        mask[y0:y1, x0:x1] = True
        grown = near_disk(mask, 8)  # --mask-dilate default
        for var in item.variations:
            if var.status != "ok":
                assert var.image is None
                continue
            assert var.image == f"variations/a.png/item_{k:02d}/{var.id.rsplit('/', 1)[1]}-{var.slug}.png"
            img = np.asarray(Image.open(out / var.image))
            assert img.shape == source.shape
            assert (img[~grown] == source[~grown]).all()
            assert (img[mask] != source[mask]).any()
            painted += 1
    assert painted == 4
    b = recs["sub/b.png"]
    assert b.items[1].status == "failed" and b.items[1].error.type == "missing_mask"
    assert b.items[1].error.stage == "inpaint" and b.items[1].variations[0].image is None
    root = (out / "variations").resolve()
    for var in b.items[0].variations:
        path = (out / var.image).resolve()
        assert path.is_file() and path.is_relative_to(root) and ".." not in Path(var.image).parts
        assert Path(var.image).parts[1].startswith("sub_b.png-")  # "/" in the image id: one sanitised folder
    assert not list((out / "variations").rglob(".tmp-*"))


def test_the_settings_record_carries_provenance_and_resolved_presets(run):
    """Package versions, genemi's commit, the preset's resolved steps / guidance and the effective scheduler
    (class and config) are recorded next to the manifest; they are not compared on resume."""
    import json

    images, out = run
    record = json.loads((out / "variations.jsonl.settings.json").read_text())
    assert record["settings"]["sd_guidance"] is None  # the flag was not given: the preset decides
    prov = record["provenance"]
    assert set(prov["packages"]) == {"torch", "diffusers", "transformers", "open_clip_torch", "genemi"}
    assert prov["packages"]["torch"] and prov["packages"]["diffusers"] and prov["packages"]["genemi"]
    assert prov["genemi_commit"] is None or len(prov["genemi_commit"].split("-")[0]) == 40
    resolved = prov["resolved"]
    assert (resolved["steps"], resolved["guidance"], resolved["negative_prompt"]) == (STEPS, 7.5, None)
    assert resolved["scheduler"]["class"] == "PNDMScheduler"  # the tiny checkpoint's own
    assert resolved["scheduler"]["config"]["num_train_timesteps"] == 1000
    assert json.loads((out / "run_summary.json").read_text())["settings"]["inpaint"]["provenance"] == prov


def test_regenerating_one_variation_alone_gives_its_image(sd, run):
    images, out = run
    var = _records(out)["a.png"].items[0].variations[2]
    again = regenerate_variation(out, images, var.id, InpaintConfig(sd_checkpoint=str(sd["sd_inpainting"]),
                                                                    sd_num_steps=STEPS, variation_format="png"),
                                 StageContext(device="cpu"))
    written = np.asarray(Image.open(out / var.image))
    assert again.shape == written.shape and np.abs(again.astype(int) - written).max() <= 2


def test_regenerate_command_repaints_one_variation_with_the_runs_settings(run, tmp_path, capsys):
    images, out = run
    var = _records(out)["sub/b.png"].items[0].variations[1]
    target = tmp_path / "again.png"
    assert pipeline.main(["regenerate", "--output-dir", str(out), "--variation", var.id, "--out", str(target)]) == 0
    again = np.asarray(Image.open(target))
    written = np.asarray(Image.open(out / var.image))
    assert np.abs(again.astype(int) - written).max() <= 2  # settings and seed came from run_summary.json
    assert "max |diff|" in capsys.readouterr().out
    assert pipeline.main(["regenerate", "--output-dir", str(out), "--variation", "a.png/item_00/var_9"]) == 2
    assert pipeline.main(["regenerate", "--output-dir", str(images), "--variation", var.id]) == 2
    err = capsys.readouterr().err
    assert "is not in" in err and "run_summary.json not found" in err and "Traceback" not in err


def test_regenerate_from_another_folder_finds_the_runs_relative_paths(sd, run, tmp_path, monkeypatch, capsys):
    """A run started with relative --sd-checkpoint / --input-dir / --output-dir; regenerate runs elsewhere."""
    images, ref = run
    started = tmp_path / "started_here"
    shutil.copytree(images, started / "images")
    shutil.copytree(sd["sd_inpainting"], started / "models" / "sd")
    (started / "run").mkdir()
    for name in ("masks.jsonl", "captions.jsonl"):
        shutil.copy(ref / name, started / "run" / name)
    monkeypatch.chdir(started)
    assert pipeline.main(["--input-dir", "images", "--output-dir", "run", "--stages", "inpaint", "--device", "cpu",
                          "--no-progress", "--sd-checkpoint", "models/sd", "--sd-num-steps", str(STEPS),
                          "--variation-format", "png"]) == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    var = _records(started / "run")["a.png"].items[0].variations[0]
    assert pipeline.main(["regenerate", "--output-dir", str(started / "run"), "--variation", var.id]) == 0
    assert "max |diff| 0/255" in capsys.readouterr().out
    shutil.move(started / "models", tmp_path / "moved")  # gone from where the run recorded it: name the flag
    assert pipeline.main(["regenerate", "--output-dir", str(started / "run"), "--variation", var.id]) == 2
    err = capsys.readouterr().err
    assert "records sd_checkpoint 'models/sd', which is not found" in err and "give --sd-checkpoint PATH" in err
    assert pipeline.main(["regenerate", "--output-dir", str(started / "run"), "--variation", var.id,
                          "--sd-checkpoint", str(tmp_path / "moved" / "sd")]) == 0


def masks(folder: Path) -> dict:
    """The inpaint stage's joined input: the segment stage's records by id."""
    return {"segment": ManifestIndex(folder / "masks.jsonl", MaskRecord)}


def test_kill_during_inpaint_then_rerun_loses_and_duplicates_nothing(sd, run, tmp_path, monkeypatch):
    images, ref = run
    out = tmp_path / "run"
    out.mkdir()
    for name in ("masks.jsonl", "captions.jsonl"):
        shutil.copy(ref / name, out / name)
    real = InpaintStage.skip

    def killed(self, item):
        if item.id == "c.png":  # the second batch (c.png, d.png)
            raise KeyboardInterrupt  # killed mid-stage
        return real(self, item)

    monkeypatch.setattr(InpaintStage, "skip", killed)
    assert pipeline.main(cli(images, out, sd)) == 130
    lines = (out / "variations.jsonl").read_text().splitlines(keepends=True)
    assert [line[:20] for line in lines] == ['{"id":"a.png","image', '{"id":"sub/b.png","i']  # the first batch
    # the kill hit after sub/b.png's images were written, while its line was appended, and an older run was
    # killed while writing one of its images
    (out / "variations.jsonl").write_text(lines[0] + lines[1][:30])
    b_image = Path(_records(ref)["sub/b.png"].items[0].variations[0].image)
    (out / b_image.parent).mkdir(parents=True, exist_ok=True)
    (out / b_image.parent / (".tmp-" + b_image.name)).write_bytes(b"\x89PNG half")
    monkeypatch.setattr(InpaintStage, "skip", real)
    assert pipeline.main(cli(images, out, sd)) == 0
    assert (out / "variations.jsonl").read_bytes() == (ref / "variations.jsonl").read_bytes()
    files = sorted(p.relative_to(out) for p in (out / "variations").rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(ref) for p in (ref / "variations").rglob("*") if p.is_file())
    for f in files:
        a, b = np.asarray(Image.open(out / f)), np.asarray(Image.open(ref / f))
        assert np.abs(a.astype(int) - b).max() <= 2, f


def test_a_variation_with_non_finite_pixels_fails_alone(sd, run, tmp_path, monkeypatch):
    images, ref = run
    real = DiffusersInpainter.paint

    def one_nan(self, jobs):
        results = real(self, jobs)
        results[0].errors[0] = NonFiniteOutput("the model returned non-finite pixels")
        return results

    monkeypatch.setattr(DiffusersInpainter, "paint", one_nan)
    shutil.copy(ref / "masks.jsonl", tmp_path / "masks.jsonl")
    stage = InpaintStage(InpaintConfig(sd_checkpoint=str(sd["sd_inpainting"]), sd_num_steps=STEPS),
                         StageContext(image_root=images, output_dir=tmp_path))
    stage.load()
    plan = next(r for r in read_records(ref / "captions.jsonl", VariationPlan) if r.id == "a.png")
    [rec] = stage.apply([plan], masks(tmp_path))
    first, third = rec.items[0].variations[0], rec.items[0].variations[2]
    assert first.status == "failed" and first.error.type == "NonFiniteOutput" and first.image is None
    assert third.status == "ok" and third.image


def test_default_files_keep_every_pixel_outside_the_painted_region_of_a_jpeg_source(sd, run, tmp_path):
    """A JPEG source: the default variation file (PNG) equals the decoded source outside the grown mask; with
    --variation-format jpg the whole image is re-encoded (pixels far from the item change)."""
    images, ref = run
    jpeg_images = tmp_path / "images"
    jpeg_images.mkdir()
    Image.open(images / "a.png").save(jpeg_images / "a.png", format="JPEG", quality=90)  # JPEG bytes
    source = np.asarray(Image.open(jpeg_images / "a.png").convert("RGB")).astype(int)
    plan = next(r for r in read_records(ref / "captions.jsonl", VariationPlan) if r.id == "a.png")
    grown = np.zeros(source.shape[:2], bool)
    for x0, y0, x1, y1 in A_MASKS:
        grown[y0:y1, x0:x1] = True
    grown = near_disk(grown, 8)
    changed = {}
    for fmt in (None, "jpg"):
        out = tmp_path / str(fmt)
        out.mkdir()
        shutil.copy(ref / "masks.jsonl", out / "masks.jsonl")
        extra = {"variation_format": fmt} if fmt else {}
        stage = InpaintStage(InpaintConfig(sd_checkpoint=str(sd["sd_inpainting"]), sd_num_steps=STEPS, **extra),
                             StageContext(image_root=jpeg_images, output_dir=out))
        stage.load()
        [rec] = stage.apply([plan], masks(out))
        var = rec.items[0].variations[0]
        img = np.asarray(Image.open(out / var.image).convert("RGB")).astype(int)
        changed[fmt] = (var.image.rsplit(".", 1)[1], int(np.abs(img - source)[~grown].max()))
    assert changed[None] == ("png", 0)
    assert changed["jpg"][0] == "jpg" and changed["jpg"][1] > 0


def test_paste_crop_replaces_the_whole_window_and_nothing_else(sd, run, tmp_path):
    images, ref = run
    shutil.copy(ref / "masks.jsonl", tmp_path / "masks.jsonl")
    stage = InpaintStage(InpaintConfig(sd_checkpoint=str(sd["sd_inpainting"]), sd_num_steps=STEPS, paste="crop",
                                       variation_format="png"), StageContext(image_root=images, output_dir=tmp_path))
    stage.load()
    plan = next(r for r in read_records(ref / "captions.jsonl", VariationPlan) if r.id == "a.png")
    [rec] = stage.apply([plan], masks(tmp_path))
    source = np.asarray(Image.open(images / "a.png")).astype(int)
    img = np.asarray(Image.open(tmp_path / rec.items[1].variations[0].image)).astype(int)
    x0, y0, x1, y1 = A_CROPS[1]
    window = np.zeros(source.shape[:2], bool)
    window[y0:y1, x0:x1] = True
    assert (img[~window] == source[~window]).all()
    far = window.copy()
    far[22:79, 42:96] = False  # away from the grown mask, the window still changes (the whole crop is pasted)
    assert np.abs(img[far] - source[far]).mean() > 5


@pytest.mark.parametrize("paste, fit", [("mask", "letterbox"), ("crop", "squash")])
def test_each_variation_equals_plain_diffusers_inside_the_mask(sd, run, tmp_path, paste, fit):
    """Same folder, seed, prompt, model input (crop fitted as the stage fits it), mask and steps: the stage's
    image equals plain StableDiffusionInpaintPipeline's inside the item's mask, in both paste modes."""
    from diffusers import StableDiffusionInpaintPipeline

    images, ref = run
    shutil.copy(ref / "masks.jsonl", tmp_path / "masks.jsonl")
    stage = InpaintStage(InpaintConfig(sd_checkpoint=str(sd["sd_inpainting"]), sd_num_steps=STEPS, paste=paste,
                                       crop_fit=fit), StageContext(image_root=images, output_dir=tmp_path))
    stage.load()
    plan = next(r for r in read_records(ref / "captions.jsonl", VariationPlan) if r.id == "a.png")
    [rec] = stage.apply([plan], masks(tmp_path))
    plain = StableDiffusionInpaintPipeline.from_pretrained(sd["sd_inpainting"], local_files_only=True)
    plain.set_progress_bar_config(disable=True)
    source = np.asarray(Image.open(images / "a.png"))
    compared = 0
    for k, item in enumerate(rec.items):
        x0, y0, x1, y1 = A_CROPS[k]
        mx0, my0, mx1, my1 = A_MASKS[k]
        crop_mask = np.zeros((y1 - y0, x1 - x0), bool)
        crop_mask[my0 - y0 : my1 - y0, mx0 - x0 : mx1 - x0] = True
        model_rgb, model_mask, placement = fit_to_square(source[y0:y1, x0:x1], dilate(crop_mask, 8), 32, fit)
        for var in (v for v in item.variations if v.status == "ok"):
            out = plain(prompt=var.prompt, image=Image.fromarray(model_rgb),
                        mask_image=Image.fromarray(model_mask.astype(np.uint8) * 255), height=32, width=32,
                        strength=1.0, num_inference_steps=STEPS, guidance_scale=7.5, output_type="np",
                        generator=torch.Generator("cpu").manual_seed(var.seed)).images[0]
            expected = unfit((np.clip(out, 0, 1) * 255).round().astype(np.uint8), placement, crop_mask.shape)
            got = np.asarray(Image.open(tmp_path / var.image))[y0:y1, x0:x1]
            assert np.abs(got[crop_mask].astype(int) - expected[crop_mask]).max() <= 1, (var.id, paste)  # 0 measured
            compared += 1
    assert compared == 4


def test_hostile_ids_and_slugs_stay_inside_variations(sd, run, tmp_path):
    images, ref = run
    out = tmp_path / "evil"
    out.mkdir()
    good = next(r for r in read_records(ref / "masks.jsonl", MaskRecord) if r.id == "a.png")
    rid = "../../../escape/a.png"
    item = good.items[0].model_copy(update={"id": f"{rid}/item_00"})
    (out / "masks.jsonl").write_text(_line(good.model_copy(update={"id": rid, "items": [item]})))
    plan = VariationPlan(id=rid, image="a.png", width=96, height=80, items=[PlannedItem(
        id=f"{rid}/item_00", item="cat", box=item.box, crop=item.crop, backend="rules",
        variations=[_var(f"{rid}/item_00", 0, "x", slug="../../../../tmp/evil"),
                    _var(f"{rid}/item_00", 1, "y", slug="..")])])
    stage = InpaintStage(InpaintConfig(sd_checkpoint=str(sd["sd_inpainting"]), sd_num_steps=STEPS, sd_size=64),
                         StageContext(image_root=images, output_dir=out))  # also: a size other than the native one
    stage.load()
    [rec] = stage.apply([plan], masks(out))
    root = (out / "variations").resolve()
    written = [p for p in out.rglob("*") if p.is_file() and p.suffix == ".png"]
    assert len(written) == 2 and all(p.resolve().is_relative_to(root) for p in written)
    for var in rec.items[0].variations:
        assert var.image.startswith("variations/") and ".." not in Path(var.image).parts
        assert (out / var.image).resolve().is_relative_to(root)
    for name in ("..", ".", "", ".hidden", "a/b", "\x00"):
        clean = safe_component(name)
        assert clean not in (".", "..", "") and not clean.startswith(".") and "/" not in clean and "\x00" not in clean
    assert safe_component("sub/a.png") != safe_component("sub_a.png")  # different ids, different folders


@pytest.mark.parametrize("flags, message", [
    (["--sd-checkpoint", "stabilityai/stable-diffusion-2-inpainting"], "looks like a hub id"),
    (["--sd-checkpoint", "/no/such/folder"], "not found"),
    ([], "needs --sd-checkpoint"),
])
def test_bad_checkpoint_is_one_clear_line_and_exit_code_2(tmp_path, capsys, flags, message):
    images = tmp_path / "images"
    images.mkdir()
    Image.new("RGB", (8, 8)).save(images / "x.png")
    rc = pipeline.main(["--input-dir", str(images), "--output-dir", str(tmp_path / "out"), "--stages", "inpaint",
                        "--device", "cpu", "--no-progress", *flags])
    err = capsys.readouterr().err
    assert rc == 2 and message in err and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1


def test_single_file_without_its_config_folder_is_refused(sd, tmp_path):
    from genemi.errors import ConfigError

    cfg = InpaintConfig(sd_checkpoint=str(sd["sd_inpainting_single_file"]))
    with pytest.raises(ConfigError, match="--sd-config"):
        DiffusersInpainter(cfg, StageContext()).check()
    wrong = tmp_path / "weights.bin"
    wrong.write_bytes(b"")
    with pytest.raises(ConfigError, match="safetensors"):
        DiffusersInpainter(InpaintConfig(sd_checkpoint=str(wrong)), StageContext()).check()
    with pytest.raises(ConfigError, match="model_index.json"):
        DiffusersInpainter(InpaintConfig(sd_checkpoint=str(tmp_path)), StageContext()).check()
