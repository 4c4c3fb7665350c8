"""Generation pipeline stages on the tiny models: images/s per stage, the fraction of wall time spent
outside model forward passes, and batched grounding / segmentation against one-at-a-time on the same
device with equal outputs; then the text stages on one core: ``rules`` portrayals (items/s) and caption
rewriting (captions/s) through the real stage classes, and the ``openai`` portrayer against a fake server
answering in 200 ms (default concurrency vs one request at a time); and inpainting with the tiny Stable Diffusion
model: K=4 portrayals per item painted in one batched backend call (one VAE encoding per item) against the
original's loop (one pipeline call per variation, each encoding the image itself). All in one process.

    OMP_NUM_THREADS=1 python benchmarks/pipeline_stages.py           # CPU, 128 synthetic 320x240 images
    python benchmarks/pipeline_stages.py --device cuda --images 256
    python benchmarks/pipeline_stages.py --only text                 # just the text stages
    python benchmarks/pipeline_stages.py --only inpaint              # just inpainting (tiny SD, ~30 s on 2 cores)
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image


def make_images(folder: Path, n: int) -> Path:
    rng = np.random.default_rng(0)
    colours = [(220, 30, 30), (30, 30, 220), (30, 200, 30), (230, 200, 20)]
    names = ["red", "blue", "green", "yellow"]
    ann = []
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(n):
        arr = np.full((240, 320, 3), 235, np.uint8)
        picks = rng.choice(4, 3, replace=False)
        for j, c in enumerate(picks):
            x, y = 20 + 95 * j, 40 + int(rng.integers(0, 100))
            arr[y : y + 70, x : x + 80] = colours[c]
        Image.fromarray(arr).save(folder / f"{k:05d}.jpg", quality=92)
        a, b, c = (names[i] for i in picks)
        ann.append({"image": f"{k:05d}.jpg", "caption": f"a {a} square next to a {b} box and a {c} block"})
    (folder / "captions.json").write_text(json.dumps(ann))
    return folder


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=128)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--only", choices=("models", "text", "inpaint"), default=None)
    ap.add_argument("--text-images", type=int, default=5000, help="synthetic images for the text stages")
    ap.add_argument("--inpaint-items", type=int, default=4, help="items (K=4 portrayals each) for the inpainting part")
    ap.add_argument("--inpaint-steps", type=int, default=20, help="denoising steps for the inpainting part")
    ap.add_argument("--inpaint-size", type=int, default=None, help="model input side (default: the tiny model's 32 px)")
    args = ap.parse_args()
    if args.only in (None, "models"):
        bench_model_stages(args)
    if args.only in (None, "text"):
        bench_text_stages(args.text_images)
    if args.only in (None, "inpaint"):
        bench_inpaint(args)


def bench_inpaint(args) -> None:
    """Tiny SD inpainting (native 32 px; ``--inpaint-size`` changes it): ``--inpaint-items`` items x K=4
    portrayals, same steps and guidance. Batched: :class:`DiffusersInpainter` (variations of 2 items per UNet
    batch, masked image encoded once per item, per-variation seeds). Original: one pipeline call per variation
    (the pipeline encodes the masked image itself every time, no seed)."""
    from genemi.generation_pipeline.inpainting.config import InpaintConfig
    from genemi.generation_pipeline.inpainting.diffusers_backend import DiffusersInpainter, PaintJob
    from genemi.generation_pipeline.stage import StageContext
    from genemi.models.tiny.diffusion import save_tiny_sd_inpainting

    k, steps = 4, args.inpaint_steps
    folder = save_tiny_sd_inpainting(Path(tempfile.mkdtemp(prefix="genemi-inpaintbench-")))["sd_inpainting"]
    backend = DiffusersInpainter(InpaintConfig(sd_checkpoint=str(folder), sd_num_steps=steps, sd_guidance=7.5,
                                               sd_batch_size=2 * k, sd_size=args.inpaint_size),
                                 StageContext(device=args.device))
    backend.check()
    backend.load()
    size, pipe = backend.size, backend.pipe
    rng = np.random.default_rng(0)
    jobs = []
    for i in range(args.inpaint_items):
        image = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        mask = np.zeros((size, size), bool)
        mask[size // 4 : 3 * size // 4, size // 5 : 4 * size // 5] = True
        prompts = [f"a photo of a {c} object, item {i}" for c in ("red", "blue", "green", "gold")]
        jobs.append(PaintJob(image, mask, prompts, list(range(i * k, i * k + k))))
    backend.paint(jobs[:1])  # warm-up
    start = time.perf_counter()
    backend.paint(jobs)
    t_batched = time.perf_counter() - start

    def original() -> None:
        for job in jobs:
            image, mask = Image.fromarray(job.image), Image.fromarray(job.mask.astype(np.uint8) * 255)
            for prompt in job.prompts:
                pipe(prompt=prompt, image=image, mask_image=mask, height=size, width=size, num_inference_steps=steps,
                     guidance_scale=7.5, output_type="np")

    with torch.no_grad():
        start = time.perf_counter()
        original()
        t_loop = time.perf_counter() - start
    n = k * len(jobs)
    print(f"inpainting: tiny SD {size}x{size}, {len(jobs)} items x K={k} = {n} variations, {steps} steps, "
          f"guidance 7.5, {args.device}, torch threads {torch.get_num_threads()}")
    print(f"  original loop (one call per variation): {t_loop:.2f} s -> {n / t_loop:.2f} variations/s")
    print(f"  batched ({backend.config.sd_batch_size} variations per UNet batch, one VAE encoding per item): "
          f"{t_batched:.2f} s -> {n / t_batched:.2f} variations/s -> {t_loop / t_batched:.2f}x")


def bench_text_stages(n_images: int) -> None:
    """``portray`` (rules) and ``caption`` (spaCy) on synthetic segmented images, COCO-like items and
    captions with repeats, timed through the stages' process + finish (records included)."""
    import random

    from portrayal_openai import run as run_openai
    from portrayal_openai import start_server

    from genemi.generation_pipeline.captioning import CaptionConfig
    from genemi.generation_pipeline.captioning.stage import CaptionStage
    from genemi.generation_pipeline.portrayal import PortrayConfig
    from genemi.generation_pipeline.portrayal.stage import PortrayStage
    from genemi.generation_pipeline.stage import StageContext
    from genemi.records import RLE, ItemMask, MaskRecord

    rng = random.Random(0)
    nouns = ["dog", "cat", "car", "bus", "man", "woman", "pizza", "chair", "bench", "horse", "umbrella", "table",
             "bird", "truck", "clock", "boat", "giraffe", "cup", "teddy bear", "traffic light", "fire hydrant"]
    adjectives = ["", "", "red ", "white ", "small ", "wooden ", "black "]
    places = ["on a street", "in a kitchen", "next to a building", "in a field", "on the beach", "near a window"]
    rle = RLE(size=[4, 4], counts=[0, 16])
    records = []
    for i in range(n_images):
        picks = rng.sample(nouns, 2)
        items = [rng.choice(adjectives) + n for n in picks]
        captions = [f"a {items[0]} next to a {items[1]} {rng.choice(places)}",
                    f"there is a {items[1]} and a {items[0]} {rng.choice(places)}"]
        records.append(MaskRecord(id=f"{i:06d}.jpg", image=f"{i:06d}.jpg", width=4, height=4, caption=captions[0],
                                  original_captions=captions[1:], items=[
            ItemMask(id=f"{i:06d}.jpg/item_{k:02d}", item=it, box=[0, 0, 4, 4], box_score=0.9, mask=rle,
                     mask_score=0.9, area=16, crop=[0, 0, 4, 4]) for k, it in enumerate(items)]))
    ctx = StageContext()
    portray = PortrayStage(PortrayConfig(), ctx)
    portray.check()
    start = time.perf_counter()
    plans = []
    for k in range(0, len(records), 64):
        plans += portray.apply(records[k : k + 64])
    t_portray = time.perf_counter() - start
    n_items = sum(len(r.items) for r in records)
    print(f"  portray (rules, K=4): {n_items} items in {t_portray:.2f} s -> {n_items / t_portray:,.0f} items/s")
    caption = CaptionStage(CaptionConfig(), ctx)
    caption.check()
    caption.apply(plans[:8])  # spaCy warm-up
    start = time.perf_counter()
    done = []
    for k in range(0, len(plans), 64):
        done += caption.apply(plans[k : k + 64])
    t_caption = time.perf_counter() - start
    n_caps = 2 * len(plans)
    n_written = sum(len(v.captions) for p in done for it in p.items for v in it.variations)
    fallback = sum(v.caption_fallback for p in done for it in p.items for v in it.variations)
    n_vars = sum(len(it.variations) for p in done for it in p.items)
    print(f"  caption (spaCy): {n_caps} source captions parsed and {n_written} rewritten captions written in "
          f"{t_caption:.2f} s -> {n_caps / t_caption:,.0f} source captions/s, {n_written / t_caption:,.0f} "
          f"rewritten/s (fallback for {fallback}/{n_vars} variations)")
    server = start_server(0.2)
    base = f"http://127.0.0.1:{server.server_address[1]}/v1"
    try:
        fast, done_fast = run_openai(base, 100, PortrayConfig().concurrency)
        slow, done_slow = run_openai(base, 25, 1)
    finally:
        server.shutdown()
    print(f"  portray (openai, fake server answering in 200 ms): default concurrency {fast:.1f} items/s "
          f"({done_fast}/200 portrayed), one request at a time {slow:.1f} items/s -> {fast / slow:.1f}x")


def bench_model_stages(args) -> None:

    from genemi.generation_pipeline import pipeline
    from genemi.generation_pipeline.grounding import GroundConfig
    from genemi.generation_pipeline.grounding.stage import GroundStage
    from genemi.generation_pipeline.segmentation import SegmentConfig
    from genemi.generation_pipeline.segmentation.stage import SegmentStage
    from genemi.generation_pipeline.stage import StageContext
    from genemi.generation_pipeline.tagging import TagConfig
    from genemi.records import DetectionRecord, TagRecord
    from genemi.images import load_rgb
    from genemi.manifest import read_records
    from genemi.models.tiny.detection import save_tiny_grounding_dino, save_tiny_sam

    tmp = Path(tempfile.mkdtemp(prefix="genemi-pipebench-"))
    images = make_images(tmp / "images", args.images)
    models = {**save_tiny_grounding_dino(tmp / "m"), **save_tiny_sam(tmp / "m")}
    cfg = pipeline.PipelineConfig(output_dir=str(tmp / "out"), input_dir=str(images), stages="tag:segment",
                                  annotation_file=str(images / "captions.json"), device=args.device,
                                  tag=TagConfig(batch_size=64),
                                  ground=GroundConfig(gd_model=str(models["grounding_dino"]), batch_size=args.batch),
                                  segment=SegmentConfig(sam_checkpoint=str(models["sam"]), batch_size=args.batch))
    context = StageContext(image_root=images, device=args.device)
    summary = pipeline.run_pipeline(cfg, progress=False)
    print(f"{args.images} images 320x240, tiny models, {args.device}, torch threads {torch.get_num_threads()}")
    print("  stage     images/s   outside model calls   (model load, excluded)")
    for name, s in summary["stages"].items():
        print(f"  {name:8s} {s['images_per_second']:9.1f}   {100 * s['overhead_fraction']:6.1f} %"
              f"              ({s['load_seconds']:.2f} s)")

    tags = read_records(tmp / "out" / "tags.jsonl", TagRecord)
    ground = GroundStage(cfg.ground, context)
    ground.load()
    pics = [load_rgb(images / t.image) for t in tags]
    det = ground.backend
    start = time.perf_counter()
    one = [det._detect([p], [t.tags])[0] for p, t in zip(pics, tags)]
    t_one = time.perf_counter() - start
    start = time.perf_counter()
    batched = []
    for i in range(0, len(pics), args.batch):
        batched += det.detect(pics[i : i + args.batch], [t.tags for t in tags[i : i + args.batch]])
    t_batched = time.perf_counter() - start
    same = sum(a.boxes == b.boxes and a.ungrounded == b.ungrounded for a, b in zip(one, batched))
    pairs = [(x, y) for a, b in zip(one, batched) if len(a.boxes) == len(b.boxes) for x, y in zip(a.boxes, b.boxes)]
    box_diff = max((max(abs(u - v) for u, v in zip(x.box, y.box)) for x, y in pairs), default=0.0)
    score_diff = max((abs(x.score - y.score) for x, y in pairs), default=0.0)
    print(f"  grounding: one image per call {t_one:.2f} s, batches of {args.batch} {t_batched:.2f} s -> "
          f"{t_one / t_batched:.2f}x (identical records for {same}/{len(one)} images; max box difference "
          f"{box_diff:.3f} px, max score difference {score_diff:.1e})")

    dets = [d for d in read_records(tmp / "out" / "detections.jsonl", DetectionRecord) if d.boxes]
    seg = SegmentStage(cfg.segment, context)
    seg.load()
    segment = seg.backend.segment
    arrays = [np.asarray(load_rgb(images / d.image)) for d in dets]
    boxes = [torch.tensor([b.box for b in d.boxes], dtype=torch.float32) for d in dets]
    start = time.perf_counter()
    single = [[segment(a, bx[k : k + 1])[0][0] for k in range(len(bx))] for a, bx in zip(arrays, boxes)]
    t_single = time.perf_counter() - start
    start = time.perf_counter()
    together = [segment(a, bx)[0] for a, bx in zip(arrays, boxes)]
    t_together = time.perf_counter() - start
    ious = [(x & y).sum() / max((x | y).sum(), 1) for s, t in zip(single, together) for x, y in zip(s, t)]
    n_boxes = sum(len(b) for b in boxes)
    print(f"  segmentation ({n_boxes} boxes): embedding + decoder per box {t_single:.2f} s, embedding once per image "
          f"+ boxes batched {t_together:.2f} s -> {t_single / t_together:.2f}x (mask IoU single vs batched: "
          f"min {min(ious):.4f}, mean {np.mean(ious):.5f})")


if __name__ == "__main__":
    main()
