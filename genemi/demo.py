"""``make demo`` / ``genemi demo``: the main jobs on built-in data, offline, on the CPU.

1. Writes the compositional shapes world (``genemi.synthetic.write_world``: scenes of 1-3 objects with
   captions, exact boxes and masks, ground-truth variations and held-out benchmark exports) and tiny random models
   of the real architectures in their real on-disk formats (Grounding DINO, SAM, SD inpainting, BLIP ITM, CLIP).
2. Runs the whole generation pipeline (tag -> ground -> segment -> portray -> caption -> inpaint -> score, and
   the whole-image negatives negcaption -> t2i -> negscore) on the source images, exports the training set and
   builds the gallery. By default (``--models world``) the world perceives and paints itself: the ground-truth
   tagger, grounder and segmenter (the scene's own objects, boxes and masks), ``rules`` portrayals and the
   ``render`` inpainter (the scene re-rendered with the item edited), so the gallery shows real edits; a portrayal
   the world cannot draw ("a golden hexagon") fails its variation, as it should. ``--models tiny`` runs the tiny
   random Grounding DINO, SAM and SD inpainting instead: the plumbing of the real models, with noise pictures.
3. Writes typed text hard negatives for the captions (``genemi negatives``).
4. Trains the tiny CLIP (OpenAI-format start, as a real run) on the exported variations in ``item_based`` mode.
5. Evaluates the snapshots against the starting weights (GeNeMi test-set metrics on the world's ground-truth
   variations, whose IVA is computed on their pixels).
Each step goes through the same entry point users call. BLIP ITM and CLIP are tiny random models in both modes, so
the scores are meaningless (the score filters are off for the demo): it shows the workflow, not results.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from genemi.options import Section, option


def write_demo_inputs(out: Path):
    """The shapes world under ``out/data`` and the tiny models under ``out/tiny_models``: ``(world, models)``
    with ``models`` holding the CLIP files and the Grounding DINO, SAM, SD inpainting and BLIP ITM paths."""
    from genemi.models.tiny import (save_tiny_blip_itm, save_tiny_clip, save_tiny_grounding_dino, save_tiny_sam,
                                    save_tiny_sd_inpainting)
    from genemi.synthetic import write_world

    folder = out / "tiny_models"
    data = write_world(out / "data", num_train=24, num_test=8, size=64, vga_pairs=1, vga_per_pair=4)
    models = {"clip": save_tiny_clip(folder / "clip"), "grounding_dino": save_tiny_grounding_dino(folder)["grounding_dino"],
              "sam": save_tiny_sam(folder)["sam"], "sd_inpainting": save_tiny_sd_inpainting(folder)["sd_inpainting"],
              "blip_itm": save_tiny_blip_itm(folder)["blip_itm"]}
    return data, models


#: --models: who perceives and paints in the demo's generation run
DEMO_MODELS = ("world", "tiny")


@dataclass
class DemoConfig(Section):
    output_dir: str = option("demo_output", "folder for the data, the tiny models, the generation run, the "
                             "training run and the evaluation", aliases=("--output",), metavar="DIR")
    mode: str = option("item_based", "mining mode of the training step",
                       choices=("allinone", "item_based", "image_based"))
    epochs: int = option(2, "training epochs", aliases=("--epoch",), at_least=1)
    models: str = option("world", "world: the world's ground-truth perception and its render inpainter (real edits "
                         "in the gallery); tiny: tiny random Grounding DINO, SAM and SD inpainting (noise)",
                         choices=DEMO_MODELS)


def generation_argv(data, models: dict, gen: Path, kind: str = "world") -> list[str]:
    """The demo's ``genemi generate`` command line: every stage on 8 of the world's train images (the whole-image
    negatives painted by the world's own renderer, with the edits it can draw). ``kind`` ``world``: ground-truth
    tag/ground/segment and the ``render`` inpainter (real edits); ``tiny``: the tiny random Grounding DINO, SAM
    and SD inpainting (noise)."""
    if kind not in DEMO_MODELS:
        raise ValueError(f"demo models {kind!r}: expected one of {', '.join(DEMO_MODELS)}")
    if kind == "world":
        perception = ["--tagger", "ground_truth", "--grounder", "ground_truth", "--segmenter", "ground_truth",
                      "--inpainter", "render", "--paste", "crop"]
    else:
        perception = ["--gd-model", str(models["grounding_dino"]), "--sam-checkpoint", str(models["sam"]),
                      "--sd-checkpoint", str(models["sd_inpainting"]), "--sd-num-steps", "4"]
    return ["--annotation-file", str(data.coco_train), "--root-dir", str(data.images), "--stages", "all",
            "--painter", "render", "--kinds", "swap_obj,swap_att", *perception,
            "--blip-model", str(models["blip_itm"]), "--output-dir", str(gen), "--limit", "8", "--device", "cpu",
            "--save-annotated-image", "--no-progress"]  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    from genemi.cli import guarded, parse_command
    from genemi.options import add_options, command_parser, resolve, setup_logging

    parser = command_parser("genemi demo", __doc__)
    add_options(parser, DemoConfig, "demo")
    args = parse_command(parser, argv)
    if isinstance(args, int):
        return args

    def checked():
        setup_logging(args)
        return resolve(DemoConfig, args)

    code, cfg = guarded("genemi demo", "rerun it", checked)
    if code:
        return code
    import warnings

    from transformers.utils import logging as hf_logging

    warnings.filterwarnings("ignore", category=FutureWarning, module=r"torch\.jit")  # the tiny TorchScript CLIP
    hf_logging.disable_progress_bar()  # weight loading/saving bars of the tiny models

    from genemi.evaluation import eval_autogmentation
    from genemi.generation_pipeline import pipeline
    from genemi.negatives import command as negatives
    from genemi.training import train

    out = Path(cfg.output_dir)
    data, models = write_demo_inputs(out)
    model = models["clip"]
    gen = out / "generation"
    print(f"demo data: shapes world with {data.counts['train']} train and {data.counts['test']} held-out scenes in "
          f"{data.root}; tiny random models in {out / 'tiny_models'}")

    if cfg.models == "world":
        who = ("the world's ground-truth tags, boxes and masks; variations and negatives drawn exactly by its renderer "
               "(undrawable portrayals fail); tiny RANDOM BLIP ITM: meaningless scores")
    else:
        who = ("tiny RANDOM Grounding DINO, SAM, SD inpainting and BLIP ITM: noise variations, meaningless scores; the "
               "negatives are drawn exactly by the world's renderer")
    print("\n== 1/4 generation pipeline: tag -> ground -> segment -> portray -> caption -> inpaint -> score, and the "
          f"whole-image negatives negcaption -> t2i -> negscore; export, gallery\n   ({who})")
    rc = pipeline.main(generation_argv(data, models, gen, cfg.models))
    rc = rc or pipeline.main(["export", "--output-dir", str(gen), "--no-filter"])
    rc = rc or pipeline.main(["gallery", "--output-dir", str(gen)])
    print("\n== 2/4 text hard negatives")
    rc = rc or negatives.main(["--input", str(data.coco_train), "--output", str(out / "negatives.jsonl"),
                               "--sources", "vocabulary", "--no-progress"])  # fmt: skip
    print("\n== 3/4 training on the exported variations")
    rc = rc or train.main([
        "--clip-model", str(model["config"]), "--pretrained", str(model["openai_state_dict"]), "--quick-gelu", "on",
        "--dataset", str(gen / "export" / "dataset.jsonl"), "--image-root", str(gen),
        "--itm-threshold", "none", "--iva-threshold", "none",  # random scores: the demo does not filter
        "--coco-dataset", str(data.coco_train), "--coco-image_dir", str(data.images),
        "--mode", cfg.mode, "--groups-per-batch", "8", "--epoch", str(cfg.epochs),
        "--lr", "1e-4", "--output-dir", str(out / "run"), "--workers", "0", "--device", "cpu",
    ])  # fmt: skip
    print("\n== 4/4 evaluation of the snapshots")
    rc = rc or eval_autogmentation.main([
        "--model-name", "demo", "--clip-model", str(model["config"]), "--quick-gelu", "on",
        "--snapshot_folder", str(out / "run"),
        "--baseline", f"start={model['openai_state_dict']}", "--evaluation-filepath", str(data.variations_jsonl),
        "--evaluation-image-folder", str(data.images), "--output-dir", str(out / "evaluation"), "--device", "cpu",
        "--workers", "0", "--no-progress", "--save-item-scores",
    ])  # fmt: skip
    if rc == 0:
        print(f"\ngallery of the generated variations: {gen / 'gallery' / 'index.html'}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
