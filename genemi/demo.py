"""``make demo`` / ``genemi demo``: the whole training job on built-in data, offline.

Builds a tiny CLIP (saved as an OpenAI-format state dict, as a real run would start from), writes the
shapes dataset in the original GeNeMi variation format plus a COCO-style pool, and trains it for two
epochs in ``item_based`` mode through the same ``genemi train`` entry point users call.
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

    from genemi.models.tiny import save_tiny_clip
    from genemi.synthetic import write_shapes_dataset
    from genemi.training import train

    out = Path(args.output)
    data = write_shapes_dataset(out / "data", num_sources=24)
    model = save_tiny_clip(out / "tiny_models" / "clip")
    print(f"demo data: {data.num_sources} source images, {data.num_variations} variations in {data.root}")
    return train.main([
        "--clip-model", str(model["config"]), "--pretrained", str(model["openai_state_dict"]),
        "--dataset", str(data.variations_json), "--image-root", str(data.images),
        "--coco-dataset", str(data.coco_json), "--coco-image_dir", str(data.images),
        "--mode", args.mode, "--groups-per-batch", "8", "--epoch", str(args.epochs),
        "--lr", "1e-4", "--save-path", str(out / "run"), "--workers", "0", "--device", "cpu",
    ])  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
