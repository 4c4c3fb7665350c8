"""Generation pipeline stages on the tiny models: images/s per stage, the fraction of wall time spent
outside model forward passes, and batched grounding / segmentation against one-at-a-time on the same
device with equal outputs. All in one process.

    python benchmarks/pipeline_stages.py                 # CPU, 128 synthetic 320x240 images
    python benchmarks/pipeline_stages.py --device cuda --images 256
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
    args = ap.parse_args()

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
    det = ground.detector
    start = time.perf_counter()
    one = [det._detect([p], [t.tags])[0] for p, t in zip(pics, tags)]
    t_one = time.perf_counter() - start
    start = time.perf_counter()
    batched = []
    for i in range(0, len(pics), args.batch):
        batched += det.detect(pics[i : i + args.batch], [t.tags for t in tags[i : i + args.batch]])
    t_batched = time.perf_counter() - start
    same = sum(a[0] == b[0] and a[1] == b[1] for a, b in zip(one, batched))
    pairs = [(x, y) for a, b in zip(one, batched) if len(a[0]) == len(b[0]) for x, y in zip(a[0], b[0])]
    box_diff = max((max(abs(u - v) for u, v in zip(x.box, y.box)) for x, y in pairs), default=0.0)
    score_diff = max((abs(x.score - y.score) for x, y in pairs), default=0.0)
    print(f"  grounding: one image per call {t_one:.2f} s, batches of {args.batch} {t_batched:.2f} s -> "
          f"{t_one / t_batched:.2f}x (identical records for {same}/{len(one)} images; max box difference "
          f"{box_diff:.3f} px, max score difference {score_diff:.1e})")

    dets = [d for d in read_records(tmp / "out" / "detections.jsonl", DetectionRecord) if d.boxes]
    seg = SegmentStage(cfg.segment, context)
    seg.load()
    segment = seg.segmenter.segment
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
