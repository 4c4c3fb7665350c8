"""``make demo`` / ``genemi demo``: the main jobs on built-in data, offline, with tiny random models.

1. Writes the shapes dataset (source images with captions, their variations in the original GeNeMi format,
   a COCO-style pool) and tiny models in their real on-disk formats.
2. Runs the generation pipeline (tag -> ground -> segment -> portray -> caption) on the source images.
3. Writes typed text hard negatives for the captions (``genemi negatives``).
4. Trains the tiny CLIP (OpenAI-format start, as a real run) for two epochs in ``item_based`` mode.
5. Evaluates the snapshots against the starting weights on the variations (GeNeMi test-set metrics).
Each step goes through the same entry point users call.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="genemi demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--output", default="demo_output", help="folder for the data, model and run [demo_output]")
    parser.add_argument("--mode", default="item_based", choices=["allinone", "item_based", "image_based"])
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args(argv)

    from genemi.evaluation import eval_autogmentation
    from genemi.generation_pipeline import pipeline
    from genemi.negatives import command as negatives
    from genemi.models.tiny import save_tiny_clip, save_tiny_grounding_dino, save_tiny_sam
    from genemi.synthetic import write_shapes_dataset
    from genemi.training import train

    out = Path(args.output)
    data = write_shapes_dataset(out / "data", num_sources=24)
    model = save_tiny_clip(out / "tiny_models" / "clip")
    dino = save_tiny_grounding_dino(out / "tiny_models")["grounding_dino"]
    sam = save_tiny_sam(out / "tiny_models")["sam"]
    print(f"demo data: {data.num_sources} source images, {data.num_variations} variations in {data.root}")

    print("\n== 1/4 generation pipeline: tag -> ground -> segment -> portray -> caption (tiny random Grounding DINO"
          " and SAM, rule-based portrayals)")
    rc = pipeline.main(["--annotation-file", str(data.coco_json), "--root-dir", str(data.images),
                        "--gd-model", str(dino), "--sam-checkpoint", str(sam), "--output-dir", str(out / "generation"),
                        "--limit", "8", "--device", "cpu", "--save-annotated-image", "--no-progress"])  # fmt: skip
    print("\n== 2/4 text hard negatives")
    rc = rc or negatives.main(["--input", str(data.coco_json), "--output", str(out / "negatives.jsonl"),
                               "--sources", "vocabulary", "--no-progress"])  # fmt: skip
    print("\n== 3/4 training")
    rc = rc or train.main([
        "--clip-model", str(model["config"]), "--pretrained", str(model["openai_state_dict"]),
        "--dataset", str(data.variations_json), "--image-root", str(data.images),
        "--coco-dataset", str(data.coco_json), "--coco-image_dir", str(data.images),
        "--mode", args.mode, "--groups-per-batch", "8", "--epoch", str(args.epochs),
        "--lr", "1e-4", "--save-path", str(out / "run"), "--workers", "0", "--device", "cpu",
    ])  # fmt: skip
    print("\n== 4/4 evaluation of the snapshots")
    return rc or eval_autogmentation.main([
        "--model-name", "demo", "--clip-model", str(model["config"]), "--snapshot_folder", str(out / "run"),
        "--baseline", f"start={model['openai_state_dict']}", "--evaluation-filepath", str(data.variations_jsonl),
        "--evaluation-image-folder", str(data.images), "--output", str(out / "evaluation"), "--device", "cpu",
        "--workers", "0", "--no-progress",
    ])  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
