"""Experiment v2: hard negatives aimed at what the model gets wrong (relations, word order), made by the pipeline
itself, with paired statistics that can tell an effect from seed noise. Documented in docs/experiments.md.

Per world seed (the data, written once and shared by every training seed):

1. the compositional shapes world (``genemi.synthetic.write_world``): train scenes, held-out test scenes (unseen
   (shape, colour) pairs and arrangements, held out geometrically), the benchmark exports built from held-out
   scenes only (>= 1,000 items per headline metric where the world allows), and two kinds of ground-truth
   variations of the train scenes: one object's colour/shape/size (``variations.jsonl``) and edits aimed at
   relations, order and number (``relation_variations.jsonl``: two objects swap places or one attribute, stacking
   order reversed, a relation changed, another number of copies). Half the one-object scenes are counted scenes
   ("three red circles", ``--counted``), and a counting test in VALSE's format (``--counting-items``) is built from
   dedicated held-out counted scenes;
2. text negatives from the corpus's own vocabulary (``genemi negatives --types ceclip --sources corpus``);
3. the pipeline arm: ``genemi generate`` on the train images with the ground-truth tag/ground/segment backends,
   ``rules`` portrayals, caption rewriting, the exact ``render`` inpainter, scoring (tiny BLIP: its ITM is noise,
   so only the IVA filter is on), ``genemi generate export``;
4. the whole-image arm (TripletCLIP): ``genemi generate`` tag -> negcaption (rules: swap_obj, swap_att,
   replace_rel) -> t2i (``--painter render``), exported as triplets.

No training text, negative or not, names a held-out pair or arrangement (``genemi.synthetic.heldout``: such
negatives are marked invalid, such triplets dropped, and their count reported).

Per (world seed, training seed), in parallel processes of one thread each: pre-train a small open_clip CLIP
from scratch on the train captions (once), fine-tune a copy of it in every setting with the same step budget,
batch size (64 image-caption pairs), lr and schedule, and evaluate every model with genemi's benchmark code,
keeping each item's outcome:

========================  ========================================================================================
``pretrained``            no fine-tuning (the start)
``clip``                  train captions, CLIP loss: the control (more steps on the same data)
``rel_items``             relation/order variations, ``item_based``: per group the source + 2 of its edits + 1
                          caption pair (16 groups), CLIP loss
``rel_plain``             the same images (the edits and their sources) as ordinary pairs in random groups of 3 +
                          1 caption pair: "same images, plain batches"
``attr_items``            colour/shape/size variations (the v1 data), ``item_based``, 2 + 2 caption pairs
``pipe_items``            the pipeline arm's variations (filters on), ``item_based``, 2 + 2 caption pairs
``ceclip_corpus``         captions + corpus-vocabulary negatives, CE-CLIP loss (5 texts per image)
``ceclip_corpus_cm``      the same, compute-matched: 1/5 of the steps, so as many text forward passes as ``clip``
``triplet_render``        whole-image negatives painted by the renderer, ``--loss triplet``
========================  ========================================================================================

Statistics (``statistics`` below): paired differences against ``clip`` per item and seed, 95 % bootstrap
intervals resampling training seeds and items within each world (stratified by VG-R relation), averaged over
worlds; two-sided bootstrap p-values, Holm-corrected over the whole table (every setting x primary and retention
metric). Primary metrics, named before the run: SugarCrepe swap_obj, swap_att, replace_rel, VG-R macro,
Winoground group, and (added with the count edits, before the run that reports it) counting; retention: held-out
retrieval R@1 i2t and t2i.

Writes ``results.json`` (every metric of every seed, losses, timings, the differences with their intervals),
``results.md`` (the table) and ``results.png``; ``--quick`` is a ~1-2 minute run of every code path whose
numbers are pinned by ``benchmarks/shapes_experiment_quick.json`` (``--record-quick`` rewrites it on purpose).

    python benchmarks/shapes_experiment.py                    # the documented run
    python benchmarks/shapes_experiment.py --quick            # every code path, small
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import multiprocessing as mp
import os
import platform
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

QUICK_RECORD = Path(__file__).with_name("shapes_experiment_quick.json")

#: setting -> how it is trained (None: not fine-tuned)
SETTINGS = {
    "pretrained": None,
    "clip": {"data": "captions", "loss": "clip"},
    "rel_items": {"data": "relations", "loss": "clip"},
    "rel_plain": {"data": "relations_plain", "loss": "clip"},
    "attr_items": {"data": "attributes", "loss": "clip"},
    "pipe_items": {"data": "pipeline", "loss": "clip"},
    "pipe_learned": {"data": "learned", "loss": "clip"},
    "ceclip_corpus": {"data": "negatives", "loss": "ceclip"},
    "ceclip_corpus_cm": {"data": "negatives", "loss": "ceclip", "compute_matched": True},
    "triplet_render": {"data": "triplets", "loss": "triplet"},
}
CONTROL = "clip"

#: (benchmark, metric) -> label; primary first (named before the run), then retention, then the rest
PRIMARY = [(("sugarcrepe", "swap_obj"), "SC swap_obj"), (("sugarcrepe", "swap_att"), "SC swap_att"),
           (("sugarcrepe", "replace_rel"), "SC replace_rel"), (("aro_vg_relation", "macro_accuracy"), "VG-R"),
           (("winoground", "group"), "Wino group"), (("valse", "counting-small-quant"), "Counting")]
RETENTION = [(("retrieval", "i2t_R@1"), "i2t R@1"), (("retrieval", "t2i_R@1"), "t2i R@1")]
SECONDARY = [*((("sugarcrepe", s), f"SC {s}") for s in ("replace_obj", "replace_att", "add_obj", "add_att")),
             (("winoground", "text"), "Wino text"), (("winoground", "image"), "Wino image"),
             (("aro_vg_attribution", "macro_accuracy"), "VG-A")]
TESTED = PRIMARY + RETENTION
#: the run's sizes recorded in results.json
SIZES = ("train_scenes", "test_scenes", "vga_per_pair", "counted", "counting_items", "triplet_kinds", "image_size",
         "patch", "width", "layers", "batch",
         "pretrain_steps", "finetune_steps", "pretrain_lr", "finetune_lr", "relation_variations", "variations_per_item",
         "bootstrap")

log = logging.getLogger("shapes_experiment")


# --- text ---------------------------------------------------------------------------------------------


class WordTokenizer:
    """Word-level tokenizer: 0 = pad, 1 = start, 2 = unknown, ..., last id = end (CLIP pools at the argmax id)."""

    def __init__(self, texts, context_length: int = 40):
        words = sorted({w for t in texts for w in self.words(t)})
        self.index = {w: i + 3 for i, w in enumerate(words)}
        self.eot = len(words) + 3
        self.vocab_size = self.eot + 1
        self.context_length = context_length

    @staticmethod
    def words(text: str) -> list[str]:
        return re.findall(r"[a-z]+", text.lower())

    def __call__(self, texts):
        import torch

        if isinstance(texts, str):
            texts = [texts]
        out = torch.zeros(len(texts), self.context_length, dtype=torch.long)
        for n, text in enumerate(texts):
            ids = [1] + [self.index.get(w, 2) for w in self.words(text)][: self.context_length - 2] + [self.eot]
            out[n, : len(ids)] = torch.tensor(ids)
        return out


# --- data (once per world seed) -----------------------------------------------------------------------


def _quiet_main(main, argv: list[str], what: str) -> None:
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
        rc = main(argv)
    if rc:
        raise SystemExit(f"{what} failed (exit {rc}):\n{buf.getvalue()[-3000:]}")


def _clean_negatives(path: Path, spec) -> dict:
    """Mark invalid every text negative that names a held-out pair or arrangement (counted)."""
    from genemi.synthetic.heldout import heldout_named

    lines, dropped, valid = [], 0, 0
    for line in path.read_text(encoding="utf-8").splitlines():
        rec = json.loads(line)
        for neg in rec["negatives"]:
            if neg["valid"] and heldout_named(neg["text"], spec):
                neg.update(valid=False, reason="names a held-out element of the split")
                dropped += 1
            valid += neg["valid"]
        lines.append(json.dumps(rec))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return {"valid": valid, "dropped_heldout": dropped}


def _clean_variations(run: Path, spec) -> dict:
    """``export/dataset_clean.jsonl``: the exported variations none of whose captions (all of the edited scene's)
    names a held-out pair or arrangement (the ``rules`` portrayals and the render inpainter can make one)."""
    from genemi.synthetic.heldout import heldout_named

    kept, dropped = [], 0
    for line in (run / "export" / "dataset.jsonl").read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        if any(heldout_named(c, spec) for c in json.loads(line)["captions"]):
            dropped += 1
        else:
            kept.append(line)
    (run / "export" / "dataset_clean.jsonl").write_text("\n".join(kept) + "\n", encoding="utf-8")
    return {"variations": len(kept), "dropped_heldout": dropped}


def _pipeline_arm(common: list[str], out: Path, inpainter: list[str], what: str) -> dict:
    """``genemi generate`` (ground-truth tag/ground/segment, ``rules`` portrayals, caption rewriting, the given
    inpainter, scoring) and ``genemi generate export`` (IVA filter on, ITM off); the export summary."""
    from genemi.generation_pipeline import pipeline

    _quiet_main(pipeline.main, [*common, "--stages", "variations", "--grounder", "ground_truth", "--segmenter",
                                "ground_truth", *inpainter, "--output-dir", str(out)], f"genemi generate ({what})")
    _quiet_main(pipeline.main, ["export", "--output-dir", str(out), "--min-itm", "none", "--format", "jsonl"],
                f"genemi generate export ({what})")
    return json.loads((out / "export" / "export_summary.json").read_text())


def _clean_triplets(run: Path, spec) -> dict:
    """Keep the triplets whose negative caption names nothing held out and whose drawn scene (the caption laid
    out with its recorded seed, as the ``render`` painter did) shows no held-out arrangement."""
    from genemi.synthetic.heldout import heldout_named
    from genemi.synthetic.parsing import parse_caption

    seeds = {}
    for line in (run / "negimages.jsonl").read_text(encoding="utf-8").splitlines():
        for neg in json.loads(line).get("negatives", []):
            if neg.get("image"):
                seeds[neg["image"]] = neg["seed"]
    src = run / "export" / "triplets.jsonl"
    kept, dropped = [], 0
    for line in src.read_text(encoding="utf-8").splitlines():
        rec = json.loads(line)
        drawn = parse_caption(rec["neg_caption"], seeds[rec["neg_image"]])
        if heldout_named(rec["neg_caption"], spec) or spec.novel(drawn):
            dropped += 1
        else:
            kept.append(line)
    out = run / "export" / "triplets_clean.jsonl"
    out.write_text("\n".join(kept) + "\n", encoding="utf-8")
    return {"triplets": len(kept), "dropped_heldout": dropped}


def prepare_world(args, world_seed: int) -> dict:
    """Write one world and everything derived from it under ``<output>/world_<seed>`` (reused when written with the
    same settings); returns the paths and counts."""
    from genemi.generation_pipeline import pipeline
    from genemi.models.tiny import save_tiny_blip_itm
    from genemi.negatives import command as negatives
    from genemi.synthetic import write_world
    from genemi.synthetic.scenes import SplitSpec

    root = Path(args.output) / f"world_{world_seed}"
    stamp = {"train": args.train_scenes, "test": args.test_scenes, "size": args.image_size, "seed": world_seed,
             "variations_per_item": args.variations_per_item, "relation_variations": args.relation_variations,
             "vga_per_pair": args.vga_per_pair, "counted": args.counted, "counting_items": args.counting_items,
             "triplet_kinds": args.triplet_kinds, "version": 3}  # fmt: skip
    stamp_file = root / "prepared.json"
    if stamp_file.exists() and json.loads(stamp_file.read_text())["stamp"] == stamp:
        return _finish_world(args, json.loads(stamp_file.read_text()))
    t0 = time.perf_counter()
    world = write_world(root / "data", num_train=args.train_scenes, num_test=args.test_scenes, size=args.image_size,
                        seed=world_seed, variations_per_item=args.variations_per_item,
                        relation_variations=args.relation_variations, vga_pairs=4, vga_per_pair=args.vga_per_pair,
                        counted=args.counted, counting_items=args.counting_items)
    spec = SplitSpec.default()
    timing = {"world": time.perf_counter() - t0}
    t0 = time.perf_counter()
    neg = root / "negatives.jsonl"
    neg.unlink(missing_ok=True)
    _quiet_main(negatives.main, ["--input", str(world.coco_train), "--output", str(neg), "--types", "ceclip",
                                 "--sources", "corpus", "--no-progress"], "genemi negatives")
    neg_counts = _clean_negatives(neg, spec)
    timing["negatives"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    blip = save_tiny_blip_itm(root / "models")["blip_itm"]
    gen = root / "pipeline"
    common = _generate_common(world, blip)
    export = _pipeline_arm(common, gen, ["--inpainter", "render", "--paste", "crop"], "render")
    timing["pipeline"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    tri = root / "triplets"
    _quiet_main(pipeline.main, [*common, "--stages", "tag,negcaption,t2i", "--painter", "render", "--kinds",
                                args.triplet_kinds, "--output-dir", str(tri)],
                "genemi generate (triplets)")
    _quiet_main(pipeline.main, ["export", "--output-dir", str(tri), "--no-filter"], "genemi generate export (triplets)")
    tri_counts = _clean_triplets(tri, spec)
    timing["triplets"] = time.perf_counter() - t0
    counts = {**world.counts, "negatives": neg_counts, "pipeline_export": export, "triplets": tri_counts}
    out = {"stamp": stamp, "root": str(world.root), "negatives": str(neg),
           "pipeline_root": str(gen),
           "triplets": str(tri / "export" / "triplets_clean.jsonl"), "triplets_root": str(tri),
           "counts": counts, "timing": {k: round(v, 1) for k, v in timing.items()}}  # fmt: skip
    stamp_file.write_text(json.dumps(out, indent=1, default=str))
    return _finish_world(args, out)


def _finish_world(args, prep: dict) -> dict:
    """The render arm's export without held-out names (``pipeline``, its counts in ``pipeline_clean``), then the
    learned-inpainter arm."""
    from genemi.synthetic.scenes import SplitSpec

    run = Path(prep["pipeline_root"])
    prep = {**prep, "pipeline": str(run / "export" / "dataset_clean.jsonl"),
            "pipeline_clean": _clean_variations(run, SplitSpec.default())}
    return prepare_learned(args, prep)


def _generate_common(world, blip: Path) -> list[str]:
    return ["--annotation-file", str(world.coco_train), "--root-dir", str(world.images), "--tagger", "ground_truth",
            "--blip-model", str(blip), "--device", "cpu", "--no-progress"]


def learned_folder(args, root: Path) -> Path | None:
    """The learned inpainter's diffusers folder: ``--learned-inpainter``; with ``--quick`` and none given, the
    untrained tiny random inpainting pipeline (so the quick run exercises the arm); None: the arm is skipped."""
    if args.learned_inpainter:
        return Path(args.learned_inpainter)
    if args.quick:
        from genemi.models.tiny import save_tiny_sd_inpainting

        saved = sorted((root / "models").glob("*/model_index.json"))
        return saved[0].parent if saved else save_tiny_sd_inpainting(root / "models", seed=0)["sd_inpainting"]
    return None


def prepare_learned(args, prep: dict) -> dict:
    """The learned-inpainter arm of one world (``<world>/learned``, reused when made with the same settings): the
    pipeline arm with ``--inpainter diffusers`` on the diffusers folder (mask paste, the training's mask dilation),
    on the first ``--learned-images`` train images. Adds ``learned`` / ``learned_root`` to ``prep``; without a
    folder, ``learned_skipped`` says why."""
    from genemi.models.tiny import save_tiny_blip_itm
    from genemi.synthetic.scenes import SplitSpec
    from genemi.synthetic.world import ShapesWorld

    root = Path(prep["root"]).parent
    folder = learned_folder(args, root)
    if folder is None or not (folder / "model_index.json").is_file():
        return {**prep, "learned_skipped": f"no learned inpainter ({folder or 'no --learned-inpainter'}): "
                "pipe_learned is skipped"}
    training = folder.parent / "training.json"
    dilate = json.loads(training.read_text())["config"].get("mask_dilate", 1) if training.is_file() else 1
    weights = sorted(folder.rglob("*.safetensors")) + sorted(folder.rglob("*.bin"))
    stamp = {"folder": str(folder.resolve()), "weights": [[str(w.relative_to(folder)), w.stat().st_size,
             hashlib.sha256(w.read_bytes()).hexdigest()[:16]] for w in weights], "images": args.learned_images,
             "steps": args.learned_steps, "mask_dilate": dilate, "version": 1}  # fmt: skip
    out_dir = root / "learned"
    stamp_file = out_dir / "prepared.json"
    if not (stamp_file.exists() and json.loads(stamp_file.read_text())["stamp"] == stamp):
        import shutil

        shutil.rmtree(out_dir, ignore_errors=True)
        t0 = time.perf_counter()
        world = ShapesWorld.at(prep["root"])
        common = [*_generate_common(world, save_tiny_blip_itm(root / "models")["blip_itm"]), "--limit",
                  str(args.learned_images)]
        inpainter = ["--inpainter", "diffusers", "--sd-checkpoint", str(folder), "--paste", "mask", "--mask-feather",
                     "0", "--mask-dilate", str(dilate), "--sd-num-steps", str(args.learned_steps), "--sd-size",
                     str(args.image_size)]  # fmt: skip
        export = _pipeline_arm(common, out_dir, inpainter, "learned inpainter")
        counts = _clean_variations(out_dir, SplitSpec.default())
        stamp_file.write_text(json.dumps({"stamp": stamp, "export": export, "clean": counts,
                                          "seconds": round(time.perf_counter() - t0, 1)}, indent=1, default=str))
    made = json.loads(stamp_file.read_text())
    return {**prep, "learned": str(out_dir / "export" / "dataset_clean.jsonl"), "learned_root": str(out_dir),
            "learned_counts": {"folder": str(folder), "export": made["export"], "clean": made["clean"]},
            "learned_seconds": made["seconds"]}


def training_texts(prep: dict) -> list[str]:
    from genemi.manifest import read_records
    from genemi.records import TextNegativeRecord, TripletRecord
    from genemi.synthetic.world import ShapesWorld

    world = ShapesWorld.at(prep["root"])
    texts = [e["caption"] for e in json.loads(world.coco_train.read_text())]
    for path in (world.variations_jsonl, world.relation_variations_jsonl, Path(prep["pipeline"])):
        texts += [c for line in path.read_text().splitlines() if line.strip() for c in json.loads(line)["captions"]]
    texts += [n.text for r in read_records(prep["negatives"], TextNegativeRecord) for n in r.negatives if n.valid]
    texts += [r.neg_caption for r in read_records(prep["triplets"], TripletRecord)]
    return texts


# --- tables per setting ---------------------------------------------------------------------------------


def build_table(setting: dict, prep: dict, batch: int, seed: int):
    """(pair table, mining spec) of a setting, from genemi's readers."""
    import random

    from genemi.training.data import (build_variation_table, filter_variations, read_coco_pairs,
                                      read_text_negative_pairs, read_triplet_pairs, read_variation_records,
                                      singleton_table)
    from genemi.training.datasets.base import PairTable
    from genemi.training.mining import Member, MiningSpec, mining_spec
    from genemi.synthetic.world import ShapesWorld

    world = ShapesWorld.at(prep["root"])
    kind = setting["data"]
    flat = MiningSpec((), 1, 0, batch, sample_by_score=False)
    captions = read_coco_pairs(world.coco_train, world.images)
    if kind == "captions":
        return singleton_table(captions), flat
    if kind == "negatives":
        return singleton_table(read_text_negative_pairs(prep["negatives"], world.images)), flat
    if kind == "triplets":
        pairs, groups = read_triplet_pairs(prep["triplets"], Path(prep["triplets_root"]), world.images)
        table = PairTable(pairs, groups)
        return table, MiningSpec((), 1, 0, batch, sample_by_score=False)
    groups4 = batch // 4
    if kind in ("attributes", "pipeline", "learned"):
        path, image_root = ((world.variations_jsonl, world.images) if kind == "attributes"
                            else (Path(prep[kind]), Path(prep[f"{kind}_root"])))
        records, _ = filter_variations(read_variation_records(path), None, None if kind == "attributes" else 2.25)
        spec = mining_spec("item_based", groups_per_batch=groups4, variations_per_group=2, pool_per_group=2,
                           sample_by_score=False)
        table = build_variation_table(records, spec, image_root)
        table.pool = captions
        return table, spec
    records, _ = filter_variations(read_variation_records(world.relation_variations_jsonl), None, None)
    spec = mining_spec("item_based", groups_per_batch=groups4, variations_per_group=2, pool_per_group=1,
                       sample_by_score=False)
    table = build_variation_table(records, spec, world.images, world.images, include_source=True)
    table.pool = captions
    if kind == "relations":
        return table, spec
    # relations_plain: the same images (every edit and every source) in random groups of 3 + 1 caption pair
    pairs = list(table.pairs) + list(table.sources.values())
    order = list(range(len(pairs)))
    random.Random(f"plain:{seed}").shuffle(order)
    groups = [[Member(i) for i in order[k : k + 3]] for k in range(0, len(order) - 2, 3)]
    plain = PairTable(pairs, groups)
    plain.pool = captions
    return plain, mining_spec("item_based", groups_per_batch=groups4, variations_per_group=3, pool_per_group=1,
                              sample_by_score=False)


# --- model, training, evaluation ----------------------------------------------------------------------


def model_config(args, vocab_size: int) -> dict:
    return {"embed_dim": args.width, "quick_gelu": False,
            "vision_cfg": {"image_size": args.image_size, "layers": args.layers, "width": args.width,
                           "head_width": 32, "patch_size": args.patch},
            "text_cfg": {"context_length": 40, "vocab_size": vocab_size, "width": args.width, "heads": args.width // 32,
                         "layers": args.layers}}  # fmt: skip


def transform(size: int):
    from open_clip.transform import PreprocessCfg, image_transform_v2

    return image_transform_v2(PreprocessCfg(size=size), is_train=False)


def train(model, table, spec, loss_name: str, steps: int, lr: float, batch_seed: int, tokenizer, size: int,
          warmup: int) -> dict:  # fmt: skip
    """``steps`` optimizer steps of genemi's TrainStep over genemi's mined batches; returns timings and losses."""
    import torch

    from genemi.distributed import DistEnv
    from genemi.models.clip import ContrastiveForward
    from genemi.training.config import OptimConfig, TrainConfig
    from genemi.training.data import MinedPairDataset, PairCollator
    from genemi.training.loop import TrainStep, build_optimizer
    from genemi.training.losses import LossConfig, build_loss
    from genemi.training.mining import MiningBatchSampler
    from genemi.training.schedule import lr_at

    loss_fn = build_loss(LossConfig(name=loss_name))
    needs = getattr(loss_fn, "needs_negatives", False)
    images = getattr(loss_fn, "needs_negative_images", False)
    k = table.num_negatives if needs else 0
    if needs and k == 0:
        raise SystemExit(f"{loss_name} needs negatives but the table has none")
    optim = OptimConfig(optimizer="adamw", lr=lr, weight_decay=0.1, decay_all_params=False, scheduler="cosine",
                        warmup_steps=warmup, min_lr=lr * 0.05)  # fmt: skip
    cfg = TrainConfig(precision="fp32", optim=optim, loss=LossConfig(name="clip"), pretrained=None)
    sampler = MiningBatchSampler(len(table.groups), len(table.pool), spec, batch_seed)
    if len(sampler) == 0:
        raise SystemExit(f"{len(table.groups)} groups make no batch of {spec.groups_per_batch}: more scenes or --batch")
    dataset = MinedPairDataset(table, sampler.spec, transform(size), normalize_captions=True, negative_images=images)
    loader = torch.utils.data.DataLoader(dataset, batch_sampler=sampler,
                                         collate_fn=PairCollator(tokenizer, k, negative_images=images), num_workers=0)
    model.train()
    step_fn = TrainStep(ContrastiveForward(model), loss_fn, build_optimizer(model, optim), cfg, torch.device("cpu"),
                        DistEnv())  # fmt: skip
    losses, step, epoch, pairs, texts, t0 = [], 0, 0, 0, 0, time.perf_counter()
    while step < steps:
        sampler.set_epoch(epoch)
        if epoch == 0:  # CE-CLIP's adaptive CMR thresholds start at 0 once per fine-tuning run
            loss_fn.on_epoch_start()
        for batch in loader:
            if step >= steps:
                break
            pairs += len(batch.texts)
            texts += len(batch.texts) + (batch.neg_texts.shape[0] * batch.neg_texts.shape[1]
                                         if batch.neg_texts is not None else 0)
            terms = step_fn([batch], lr_at(step, steps, optim))
            if terms is not None:
                losses.append(terms["loss"])
            step += 1
        epoch += 1
    model.eval()
    return {"seconds": round(time.perf_counter() - t0, 2), "steps": steps, "pairs": pairs, "text_passes": texts,
            "first_loss": float(np.mean(losses[:20])), "last_loss": float(np.mean(losses[-20:])), "epochs": epoch}


def benchmarks_of(prep: dict):
    from genemi.evaluation.benchmarks import build_benchmarks
    from genemi.synthetic.world import ShapesWorld

    world = ShapesWorld.at(prep["root"])
    if world.valse is None:
        raise SystemExit(f"{world.root}: no counting test (valse/): the world was written without counted scenes")
    return build_benchmarks(["sugarcrepe", "winoground", "aro", "retrieval", "valse"], {
        "sugarcrepe": {"root": world.sugarcrepe, "images": world.images}, "winoground": {"root": world.winoground},
        "aro": {"root": world.aro, "images": world.images},
        "retrieval": {"annotations": world.coco_test, "images": world.images},
        "valse": {"root": world.valse, "images": world.images}})  # fmt: skip


def item_outcomes(results: dict) -> dict[str, np.ndarray]:
    """Per tested metric, one outcome per item (0/1), in the benchmark's fixed item order; VG-R's relation of each
    item in ``aro_vg_relation/groups``."""
    rows = {name: res.rows for name, res in results.items()}
    out = {}
    for subset in ("swap_obj", "swap_att", "replace_rel"):
        out[f"sugarcrepe/{subset}"] = np.array([r["correct"] for r in rows["sugarcrepe"] if r["subset"] == subset])
    vgr = [r for r in rows["aro_vg_relation"]]
    out["aro_vg_relation/macro_accuracy"] = np.array([r["correct"] for r in vgr])
    out["aro_vg_relation/groups"] = np.array([r["subset"] for r in vgr])
    out["winoground/group"] = np.array([r["group"] for r in rows["winoground"]])
    out["valse/counting-small-quant"] = np.array([r["correct"] for r in rows["valse"]
                                                  if r["subset"] == "counting-small-quant"])
    for direction in ("i2t", "t2i"):
        hits = [r["correct"] for r in rows["retrieval"] if r["subset"] == direction]
        out[f"retrieval/{direction}_R@1"] = np.array(hits)
    return {k: (v.astype(np.uint8) if v.dtype == bool else v) for k, v in out.items()}


def _decode_once(embedder, pixels: dict) -> None:
    """Make ``embedder.embed_images`` decode and transform each image once per job: every setting's model sees the
    same benchmark images, so their pixels (and digests: identical inputs tie) are kept in ``pixels`` by image key
    and only the forward pass runs again."""
    import hashlib

    import torch

    from genemi.evaluation.scoring import load_image, share_identical

    def embed_images(images):
        for ref in images:
            if ref.key not in pixels:
                x = embedder.transform(load_image(ref))
                pixels[ref.key] = (x, hashlib.blake2b(x.numpy().tobytes(), digest_size=16).hexdigest())
        vecs = []
        with torch.no_grad():
            for start in range(0, len(images), embedder.batch_size):
                batch = torch.stack([pixels[r.key][0] for r in images[start : start + embedder.batch_size]])
                vecs.append(torch.nn.functional.normalize(embedder.model.encode_image(batch).float(), dim=-1))
        return share_identical(torch.cat(vecs).numpy(), [pixels[r.key][1] for r in images]), [None] * len(images)

    embedder.embed_images = embed_images


def evaluate(model, benches, tokenizer, size: int, key: str, pixels: dict) -> tuple[dict, dict]:
    from open_clip.transform import PreprocessCfg

    from genemi.evaluation.runner import evaluate as run
    from genemi.evaluation.scoring import ClipEmbedder
    from genemi.models.clip import ClipBundle

    pre = dict(vars(PreprocessCfg(size=size)))
    bundle = ClipBundle(model, "shapes", {}, pre, tokenizer, None, "n/a")
    embedder = ClipEmbedder(bundle, "cpu", batch_size=512, workers=0, precision="fp32", progress=False, key=key)
    _decode_once(embedder, pixels)
    results = run(embedder, benches)
    return {name: res.metrics for name, res in results.items()}, item_outcomes(results)


def fine_tune(args, model, start: dict, name: str, prep: dict, seed: int, tokenizer) -> dict | None:
    """Load ``start`` into ``model`` and fine-tune it in setting ``name`` (its training stats; None: not
    fine-tuned). The compute-matched variant takes 1 / (1 + negatives per caption) of the steps."""
    import torch

    model.load_state_dict(start)
    setting = SETTINGS[name]
    if setting is None:
        model.eval()
        return None
    table, spec = build_table(setting, prep, args.batch, seed)
    steps = args.finetune_steps
    if setting.get("compute_matched"):
        steps = max(1, round(steps / (1 + table.num_negatives)))
    torch.manual_seed(seed)
    return train(model, table, spec, setting["loss"], steps, args.finetune_lr, seed, tokenizer, args.image_size,
                 warmup=max(1, steps // 10))


@dataclass(frozen=True)
class Job:
    world_seed: int
    seed: int


def run_job(args, job: Job, prep: dict) -> dict:
    """Pre-train once, fine-tune and evaluate every setting; item outcomes to ``runs/w<w>_s<s>.npz``, the record to
    ``.json`` and the pre-trained start to ``.pt``. A job already run computes only the settings it lacks (from the
    saved start; each setting starts from it with the same seeds, so the numbers are those of a run in one go)."""
    import torch

    from genemi.models.clip import build_clip
    from genemi.training.data import read_coco_pairs, singleton_table
    from genemi.training.mining import MiningSpec
    from genemi.synthetic.world import ShapesWorld

    out = Path(args.output) / "runs" / f"w{job.world_seed}_s{job.seed}"
    record, items = {"world_seed": job.world_seed, "seed": job.seed, "settings": {}}, {}
    if out.with_suffix(".json").exists():
        record = json.loads(out.with_suffix(".json").read_text())
        items = dict(np.load(out.with_suffix(".npz"))) if record["settings"] else {}
    todo = [name for name in args.settings if name not in record["settings"]]
    if not todo:
        return {**record, "computed_now": []}
    torch.set_num_threads(1)
    logging.getLogger("genemi").setLevel(logging.WARNING)
    world = ShapesWorld.at(prep["root"])
    tokenizer = WordTokenizer(training_texts(prep))
    benches = benchmarks_of(prep)
    torch.manual_seed(job.seed)
    model = build_clip(model_config(args, tokenizer.vocab_size))
    pixels: dict = {}
    if "pretrain" in record and out.with_suffix(".pt").exists():
        model.load_state_dict(torch.load(out.with_suffix(".pt"), weights_only=True))
    else:
        flat = MiningSpec((), 1, 0, args.batch, sample_by_score=False)
        record["pretrain"] = train(model, singleton_table(read_coco_pairs(world.coco_train, world.images)), flat,
                                   "clip", args.pretrain_steps, args.pretrain_lr, 1000 + job.seed, tokenizer,
                                   args.image_size, warmup=args.pretrain_steps // 20)  # fmt: skip
        out.parent.mkdir(parents=True, exist_ok=True)
        torch.save(model.state_dict(), out.with_suffix(".pt"))
        out.with_suffix(".json").write_text(json.dumps(record, indent=1))
    start = {k: v.clone() for k, v in model.state_dict().items()}
    for name in todo:
        stats = fine_tune(args, model, start, name, prep, job.seed, tokenizer)
        t0 = time.perf_counter()
        metrics, outcomes = evaluate(model, benches, tokenizer, args.image_size, f"{name}-{job}", pixels)
        seconds = round(time.perf_counter() - t0, 2)
        record["settings"][name] = {"metrics": metrics, "train": stats, "eval_seconds": seconds}
        items |= {f"{name}|{k}": v for k, v in outcomes.items()}
        np.savez_compressed(out.with_suffix(".npz"), **items)  # after every setting: a stopped run resumes
        out.with_suffix(".json").write_text(json.dumps(record, indent=1))
    return {**record, "computed_now": todo}


def _job_entry(payload):
    args, job, prep = payload
    return run_job(args, job, prep)


def _prep_entry(payload):
    args, world_seed = payload
    import torch

    torch.set_num_threads(1)
    return prepare_world(args, world_seed)


# --- diagnosis ------------------------------------------------------------------------------------------


def sibling_accuracy(model, records, image_root: Path, tokenizer, size: int) -> dict:
    """Winoground-style scores on training relation groups: per edit kind, for (source, edit) image pairs and their
    first captions, the share where each image prefers its own caption (text), each caption its own image (image),
    and both (group). On the train split: whether a setting fits the relation edits it was shown at all."""
    import torch
    from PIL import Image

    pre = transform(size)
    out: dict[str, list] = {}
    with torch.no_grad():
        for start in range(0, len(records), 256):
            chunk = records[start : start + 256]
            images = torch.stack([pre(Image.open(image_root / p).convert("RGB")) for r in chunk
                                  for p in (r.source, r.save)])  # fmt: skip
            texts = tokenizer([c for r in chunk for c in (r.original_captions[0], r.captions[0])])
            img = torch.nn.functional.normalize(model.encode_image(images), dim=-1).view(len(chunk), 2, -1)
            txt = torch.nn.functional.normalize(model.encode_text(texts), dim=-1).view(len(chunk), 2, -1)
            sim = torch.einsum("nid,ntd->nit", img, txt)  # [pair, image, text]
            text = (sim[:, 0, 0] > sim[:, 0, 1]) & (sim[:, 1, 1] > sim[:, 1, 0])
            image = (sim[:, 0, 0] > sim[:, 1, 0]) & (sim[:, 1, 1] > sim[:, 0, 1])
            for r, t, i in zip(chunk, text.tolist(), image.tolist()):
                out.setdefault(r.kind, []).append((t, i, t and i))
    return {kind: {"n": len(v), **{name: 100 * float(np.mean([x[k] for x in v]))
                                   for k, name in enumerate(("text", "image", "group"))}}
            for kind, v in sorted(out.items())}  # fmt: skip


def diagnose_job(args, job: Job, prep: dict) -> dict:
    """Re-fine-tune ``--diagnose-settings`` from the job's saved start (the same numbers as the run: same seeds) and
    score each model on up to ``--diagnose-items`` training relation groups (:func:`sibling_accuracy`)."""
    import torch

    from genemi.models.clip import build_clip
    from genemi.training.data import filter_variations, read_variation_records
    from genemi.synthetic.world import ShapesWorld

    torch.set_num_threads(1)
    logging.getLogger("genemi").setLevel(logging.WARNING)
    world = ShapesWorld.at(prep["root"])
    tokenizer = WordTokenizer(training_texts(prep))
    records, _ = filter_variations(read_variation_records(world.relation_variations_jsonl), None, None)
    records = sorted(records, key=lambda r: r.id)[: args.diagnose_items]
    start = torch.load(Path(args.output) / "runs" / f"w{job.world_seed}_s{job.seed}.pt", weights_only=True)
    model = build_clip(model_config(args, tokenizer.vocab_size))
    out = {"world_seed": job.world_seed, "seed": job.seed, "settings": {}}
    for name in args.diagnose_settings:
        fine_tune(args, model, start, name, prep, job.seed, tokenizer)
        out["settings"][name] = sibling_accuracy(model, records, world.images, tokenizer, args.image_size)
    return out


def _diagnose_entry(payload):
    args, job, prep = payload
    return diagnose_job(args, job, prep)


def diagnosis_markdown(results: list[dict]) -> str:
    """Mean over the diagnosed jobs, per setting and edit kind: text / image / group, %."""
    settings = list(results[0]["settings"])
    kinds = list(results[0]["settings"][settings[0]])
    lines = [f"Training relation groups (source vs edit, first captions), mean over {len(results)} runs "
             "(world × training seed): text / image / group, %", "",
             "| setting | " + " | ".join(f"{k} (n={results[0]['settings'][settings[0]][k]['n']})" for k in kinds)
             + " |", "|---|" + "---|" * len(kinds)]  # fmt: skip
    for name in settings:
        cells = []
        for k in kinds:
            mean = {m: np.mean([r["settings"][name][k][m] for r in results]) for m in ("text", "image", "group")}
            cells.append(f"{mean['text']:.1f} / {mean['image']:.1f} / {mean['group']:.1f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


# --- statistics -----------------------------------------------------------------------------------------


def _metric_key(bench: str, metric: str) -> str:
    return f"{bench}/{metric}"


def paired_bootstrap(per_world: list[tuple[np.ndarray, np.ndarray | None]], replicates: int,
                     rng: np.random.Generator) -> tuple[float, np.ndarray]:  # fmt: skip
    """Observed effect and bootstrap replicates of the mean paired difference (in points), averaged over worlds.

    ``per_world``: per world, ``d`` [seeds, items] (setting - control, per item and training seed) and the items'
    strata (VG-R relations: the metric is the mean over strata; None: one stratum). Each replicate resamples the
    training seeds and, within each stratum, the items, with replacement, in every world."""
    observed, reps = [], np.zeros((len(per_world), replicates))
    for w, (d, strata) in enumerate(per_world):
        labels = np.zeros(d.shape[1], dtype=int) if strata is None else np.unique(strata, return_inverse=True)[1]
        groups = [np.flatnonzero(labels == g) for g in range(labels.max() + 1)]
        observed.append(np.mean([d[:, idx].mean() for idx in groups]))
        seed_w = rng.multinomial(d.shape[0], np.full(d.shape[0], 1 / d.shape[0]), size=replicates)  # [B, S]
        per_group = []
        for idx in groups:
            item_w = rng.multinomial(len(idx), np.full(len(idx), 1 / len(idx)), size=replicates)  # [B, I_g]
            per_group.append(np.einsum("bs,si,bi->b", seed_w, d[:, idx], item_w) / (d.shape[0] * len(idx)))
        reps[w] = np.mean(per_group, axis=0)
    return 100 * float(np.mean(observed)), 100 * reps.mean(axis=0)


def holm(pvalues: list[float]) -> list[float]:
    """Holm-adjusted p-values (step-down, monotone), in the input order."""
    m = len(pvalues)
    order = np.argsort(pvalues, kind="stable")
    adjusted, running = [0.0] * m, 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted


def statistics(args, records: list[dict], items: dict) -> list[dict]:
    """Every (setting, tested metric) against the control: effect, raw 95 % CI, p, Holm p and the interval at the
    level Holm tests that comparison at (1 - 0.05 / (m - rank + 1))."""
    rng = np.random.default_rng(args.bootstrap_seed)
    worlds = sorted({r["world_seed"] for r in records})
    rows = []
    for name in args.settings:
        if name == CONTROL:
            continue
        for (bench, metric), label in TESTED:
            key = _metric_key(bench, metric)
            per_world = []
            for w in worlds:
                seeds = sorted(r["seed"] for r in records if r["world_seed"] == w)
                d = np.stack([items[w, s][f"{name}|{key}"].astype(float) - items[w, s][f"{CONTROL}|{key}"]
                              for s in seeds])
                strata = items[w, seeds[0]].get(f"{name}|aro_vg_relation/groups") if bench == "aro_vg_relation" \
                    else None
                per_world.append((d, strata))
            effect, reps = paired_bootstrap(per_world, args.bootstrap, rng)
            p = min(1.0, 2 * min((np.sum(reps <= 0) + 1) / (len(reps) + 1), (np.sum(reps >= 0) + 1) / (len(reps) + 1)))
            rows.append({"setting": name, "metric": label, "primary": (bench, metric) in dict(PRIMARY),
                         "effect": effect, "ci95": [float(np.percentile(reps, 2.5)), float(np.percentile(reps, 97.5))],
                         "p": p, "reps": reps})  # fmt: skip
    adjusted = holm([r["p"] for r in rows])
    m = len(rows)
    for rank, i in enumerate(np.argsort([r["p"] for r in rows], kind="stable")):
        r = rows[i]
        alpha = 0.05 / (m - rank)
        r["p_holm"] = adjusted[i]
        r["ci_holm"] = [float(np.percentile(r["reps"], 100 * q)) for q in (alpha / 2, 1 - alpha / 2)]
        r["significant"] = adjusted[i] < 0.05
    for r in rows:
        del r["reps"]
    return rows


# --- report -------------------------------------------------------------------------------------------


def summarise(records: list[dict], settings: list[str]) -> dict:
    """setting -> label -> (mean, sample std, n) over all (world, seed) runs."""
    out = {}
    for name in settings:
        out[name] = {}
        for (bench, metric), label in TESTED + SECONDARY:
            values = [r["settings"][name]["metrics"][bench][metric] for r in records]
            out[name][label] = (float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
                                len(values))
    return out


def per_relation(items: dict, settings: list[str]) -> dict:
    """setting -> VG-R relation -> accuracy (%), pooled over all runs' items (the diagnosis of what is learned)."""
    out = {}
    for name in settings:
        hits: dict[str, list] = {}
        for run in items.values():
            for rel, ok in zip(run[f"{name}|aro_vg_relation/groups"], run[f"{name}|aro_vg_relation/macro_accuracy"]):
                hits.setdefault(str(rel), []).append(ok)
        out[name] = {rel: 100 * float(np.mean(v)) for rel, v in sorted(hits.items())}
    return out


def per_winoground_tag(items: dict, preps: dict, settings: list[str]) -> dict:
    """setting -> Winoground tag (``object``: the two objects swapped whole, an order/relation item; ``colour``:
    only their colours, a binding item) -> group score (%), pooled over all runs' items."""
    tags = {}
    for w, prep in preps.items():
        lines = (Path(prep["root"]) / "winoground" / "examples.jsonl").read_text(encoding="utf-8").splitlines()
        tags[w] = [json.loads(line)["tag"] for line in lines if line.strip()]
    out = {}
    for name in settings:
        hits: dict[str, list] = {}
        for (w, _), run in items.items():
            outcomes = run[f"{name}|winoground/group"]
            if len(outcomes) != len(tags[w]):
                raise SystemExit(f"world {w}: {len(outcomes)} Winoground outcomes for {len(tags[w])} items")
            for tag, ok in zip(tags[w], outcomes):
                hits.setdefault(tag, []).append(ok)
        out[name] = {tag: 100 * float(np.mean(v)) for tag, v in sorted(hits.items())}
    return out


def _breakdown(title: str, table: dict) -> list[str]:
    cols = list(next(iter(table.values())))
    return ["", title, "", "| setting | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols),
            *(f"| {name} | " + " | ".join(f"{acc[c]:.1f}" for c in cols) + " |" for name, acc in table.items())]


def markdown(summary: dict, rows: list[dict], meta: dict, relations: dict, wino_tags: dict) -> str:
    labels = [label for _, label in TESTED]
    lines = [f"Paired differences against `{CONTROL}` in points (95 % bootstrap CI over training seeds and items, "
             f"averaged over worlds {meta['world_seeds']}, training seeds {meta['seeds']}); **bold**: Holm-adjusted "
             f"p < 0.05 over all {len(rows)} comparisons. Cells: effect [interval at Holm's level for that "
             "comparison] (p_Holm).", "",
             "| setting | " + " | ".join(labels) + " |", "|---|" + "---|" * len(labels)]
    cell = {(r["setting"], r["metric"]): r for r in rows}
    for name in summary:
        if name == CONTROL:
            continue
        parts = []
        for label in labels:
            r = cell[name, label]
            text = f"{r['effect']:+.1f} [{r['ci_holm'][0]:+.1f}, {r['ci_holm'][1]:+.1f}] ({r['p_holm']:.2g})"
            parts.append(f"**{text}**" if r["significant"] else text)
        lines.append(f"| {name} | " + " | ".join(parts) + " |")
    all_labels = [label for _, label in TESTED + SECONDARY]
    runs = summary[CONTROL][labels[0]][2]
    lines += ["", f"Means ± sample std over all {runs} runs (world × training seed), %:", "",
              "| setting | " + " | ".join(all_labels) + " |", "|---|" + "---|" * len(all_labels)]
    for name, cols in summary.items():
        lines.append(f"| {name} | " + " | ".join(f"{cols[l][0]:.1f} ± {cols[l][1]:.1f}" for l in all_labels) + " |")
    lines += _breakdown("VG-R accuracy per relation, pooled over all runs' items, %:", relations)
    lines += _breakdown("Winoground group score per kind of pair (object: the two objects swapped whole, their order; "
                        "colour: only their colours), pooled over all runs' items, %:", wino_tags)
    return "\n".join(lines) + "\n"


def bar_chart(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [label for _, label in TESTED]
    settings = list(dict.fromkeys(r["setting"] for r in rows))
    cell = {(r["setting"], r["metric"]): r for r in rows}
    width = 0.8 / len(settings)
    fig, ax = plt.subplots(figsize=(13, 5))
    x = np.arange(len(labels))
    for n, name in enumerate(settings):
        eff = np.array([cell[name, l]["effect"] for l in labels])
        lo = np.array([cell[name, l]["ci_holm"][0] for l in labels])
        hi = np.array([cell[name, l]["ci_holm"][1] for l in labels])
        ax.bar(x + (n - (len(settings) - 1) / 2) * width, eff, width, yerr=[eff - lo, hi - eff], capsize=2, label=name)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(x, labels, rotation=20, ha="right")
    ax.set_ylabel(f"difference vs {CONTROL}, points (Holm-level CI)")
    ax.legend(ncol=4, fontsize=8)
    ax.set_title("shapes world, held-out split: paired differences against the control")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _earlier_timings(path: Path) -> list[dict]:
    """The wall times of the invocations that wrote ``path`` before (a rerun that reads every job back keeps the
    time the jobs took)."""
    if not path.exists():
        return []
    meta = json.loads(path.read_text())["meta"]
    keep = ("total_seconds", "data_seconds", "job_seconds", "load_average_at_end", "computed_by_this_invocation")
    return [*meta.get("earlier_invocations", []), {k: meta.get(k) for k in keep}]


def quick_digest(records: list[dict], rows: list[dict]) -> str:
    """sha256 of every per-seed metric of the run and every difference of the table (effect, Holm-level interval,
    Holm p), rounded to 4 decimals (what the quick record pins)."""
    flat = {f"w{r['world_seed']}s{r['seed']}/{name}/{bench}/{metric}": round(v, 4)
            for r in records for name, s in r["settings"].items() for bench, ms in s["metrics"].items()
            for metric, v in ms.items() if isinstance(v, (int, float)) and v == v}
    flat |= {f"diff/{r['setting']}/{r['metric']}": [round(x, 4) for x in (r["effect"], *r["ci_holm"], r["p_holm"])]
             for r in rows}
    return hashlib.sha256(json.dumps(flat, sort_keys=True).encode()).hexdigest()


# --- main ---------------------------------------------------------------------------------------------


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--output", default="runs/shapes_experiment",
                   help="folder for data, runs and results [runs/shapes_experiment]")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4], help="training seeds [0 1 2 3 4]")
    p.add_argument("--world-seeds", type=int, nargs="+", default=[0, 1], help="world seeds [0 1]")
    p.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    p.add_argument("--train-scenes", type=int, default=2000)
    p.add_argument("--test-scenes", type=int, default=2400, help="held-out scenes: benchmark items come from them")
    p.add_argument("--vga-per-pair", type=int, default=250, help="VG-A items per colour pair (4 pairs)")
    p.add_argument("--variations-per-item", type=int, default=3)
    p.add_argument("--relation-variations", type=int, default=4, help="relation/order edits per train scene")
    p.add_argument("--counted", type=float, default=0.5,
                   help="share of one-object scenes drawn as counted scenes (2-4 copies, 'three red circles') [0.5]")
    p.add_argument("--counting-items", type=int, default=1000, help="items of the world's counting test [1000]")
    p.add_argument("--triplet-kinds", default="swap_obj,swap_att,replace_rel",
                   help="the whole-image arm's negative-caption edits (genemi generate --kinds) "
                        "[swap_obj,swap_att,replace_rel]")
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--patch", type=int, default=8)
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--batch", type=int, default=64, help="image-caption pairs per optimizer step, every phase [64]")
    p.add_argument("--pretrain-steps", type=int, default=1000)
    p.add_argument("--finetune-steps", type=int, default=150)
    p.add_argument("--pretrain-lr", type=float, default=2e-3)
    p.add_argument("--finetune-lr", type=float, default=5e-4)
    p.add_argument("--learned-inpainter", metavar="FOLDER",
                   help="diffusers inpainting folder of the learned arm (benchmarks/learned_inpainter.py writes "
                        "runs/learned_inpainter/pipeline); without it pipe_learned is skipped (--quick: the untrained "
                        "tiny random inpainter stands in)")
    p.add_argument("--learned-images", type=int, default=300, help="train images the learned inpainter edits [300]")
    p.add_argument("--learned-steps", type=int, default=20, help="its denoising steps [20]")
    p.add_argument("--procs", type=int, default=2, help="parallel processes, one torch thread each [2]")
    p.add_argument("--bootstrap", type=int, default=4000, help="bootstrap replicates [4000]")
    p.add_argument("--bootstrap-seed", type=int, default=0)
    p.add_argument("--diagnose", action="store_true",
                   help="after the run: re-fine-tune --diagnose-settings from the saved starts and score them on "
                        "training relation groups (diagnosis.json/md)")
    p.add_argument("--diagnose-settings", nargs="+", default=["pretrained", "clip", "rel_items", "rel_plain"],
                   choices=list(SETTINGS))
    p.add_argument("--diagnose-items", type=int, default=1000, help="training relation groups scored [1000]")
    p.add_argument("--publish", metavar="DIR", help="also write results.json/md/png to DIR (docs/experiments)")
    p.add_argument("--quick", action="store_true", help="tiny sizes: every code path in about a minute")
    p.add_argument("--record-quick", action="store_true", help="with --quick: rewrite the pinned quick digest")
    args = p.parse_args(argv)
    if args.quick:
        args.train_scenes, args.test_scenes, args.vga_per_pair, args.counting_items = 60, 40, 25, 40
        args.pretrain_steps, args.finetune_steps, args.bootstrap, args.batch = 20, 10, 500, 16
        args.learned_images, args.learned_steps = 6, 2
        args.seeds, args.world_seeds = args.seeds[:2], args.world_seeds[:2]
    if CONTROL not in args.settings:
        p.error(f"--settings must include the control {CONTROL!r}")
    if not 0 < args.counted <= 1 or args.counting_items < 1:
        p.error("--counted must be a share in (0, 1] and --counting-items at least 1 (the counting test is a "
                "primary metric)")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    for noisy in ("genemi", "genemi.evaluation.scoring"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    ctx = mp.get_context("spawn")
    with ctx.Pool(min(args.procs, len(args.world_seeds))) as pool:
        preps = dict(zip(args.world_seeds, pool.map(_prep_entry, [(args, w) for w in args.world_seeds])))
    t_data = time.perf_counter() - started
    skipped = {w: p["learned_skipped"] for w, p in preps.items() if "learned_skipped" in p}
    if skipped and "pipe_learned" in args.settings:
        args.settings = [s for s in args.settings if s != "pipe_learned"]
        log.warning("pipe_learned skipped: %s", next(iter(skipped.values())))
    log.info("data ready in %.0fs: %s", t_data, {w: p["counts"].get("relation_variations") for w, p in preps.items()})
    jobs = [Job(w, s) for w in args.world_seeds for s in args.seeds]
    with ctx.Pool(args.procs) as pool:
        records = []
        for rec in pool.imap_unordered(_job_entry, [(args, j, preps[j.world_seed]) for j in jobs]):
            records.append(rec)
            log.info("w%d s%d done: pre-train %.0fs, %s", rec["world_seed"], rec["seed"], rec["pretrain"]["seconds"],
                     {k: round(v["metrics"]["winoground"]["group"], 1) for k, v in rec["settings"].items()})
    records.sort(key=lambda r: (r["world_seed"], r["seed"]))
    computed = {f"w{r['world_seed']}_s{r['seed']}": r.pop("computed_now") for r in records}
    items = {(r["world_seed"], r["seed"]): dict(np.load(out / "runs" / f"w{r['world_seed']}_s{r['seed']}.npz"))
             for r in records}
    rows = statistics(args, records, items)
    summary = summarise(records, args.settings)
    total = time.perf_counter() - started
    cpu = sum(r["pretrain"]["seconds"] + sum((s["train"] or {}).get("seconds", 0) + s["eval_seconds"]
                                             for s in r["settings"].values()) for r in records)
    meta = {"seeds": args.seeds, "world_seeds": args.world_seeds, "total_seconds": round(total, 1),
            "data_seconds": round(t_data, 1), "job_seconds": round(cpu, 1), "procs": args.procs,
            "load_average_at_end": os.getloadavg(),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, torch {__import__('torch').__version__}",
            "sizes": {k: getattr(args, k) for k in SIZES},
            "data": {w: {"counts": p["counts"], "timing": p["timing"], "pipeline_clean": p["pipeline_clean"],
                         "learned": p.get("learned_counts"), "learned_seconds": p.get("learned_seconds")}
                     for w, p in preps.items()},
            "settings": args.settings, "skipped": sorted(set(skipped.values())),
            "computed_by_this_invocation": computed,
            "earlier_invocations": _earlier_timings(out / "results.json"),
            "primary": [label for _, label in PRIMARY], "retention": [label for _, label in RETENTION]}  # fmt: skip
    digest = quick_digest(records, rows)
    relations = per_relation(items, args.settings)
    wino_tags = per_winoground_tag(items, preps, args.settings)
    (out / "results.json").write_text(json.dumps({"meta": meta, "runs": records, "differences": rows,
                                                  "summary": summary, "vgr_per_relation": relations,
                                                  "winoground_per_tag": wino_tags,
                                                  "digest": digest}, indent=1, default=str))
    text = markdown(summary, rows, meta, relations, wino_tags)
    (out / "results.md").write_text(text)
    bar_chart(rows, out / "results.png")
    names = ["results.json", "results.md", "results.png"]
    if args.diagnose:
        t0 = time.perf_counter()
        with ctx.Pool(args.procs) as pool:
            diag = list(pool.imap(_diagnose_entry, [(args, j, preps[j.world_seed]) for j in jobs]))
        (out / "diagnosis.json").write_text(json.dumps({"seconds": round(time.perf_counter() - t0, 1),
                                                        "runs": diag}, indent=1))
        (out / "diagnosis.md").write_text(diagnosis_markdown(diag))
        names += ["diagnosis.json", "diagnosis.md"]
        print(diagnosis_markdown(diag))
    if args.publish:
        import shutil

        Path(args.publish).mkdir(parents=True, exist_ok=True)
        for name in names:
            shutil.copyfile(out / name, Path(args.publish) / name)
    print(text)
    print(f"total {total:.0f}s (data {t_data:.0f}s, {cpu:.0f}s of job time in {args.procs} processes); digest {digest}")
    if args.quick and args.record_quick:
        note = ("the --quick run's per-seed metrics and differences (rounded to 4 decimals), hashed; rewrite on "
                "purpose with --quick --record-quick")
        QUICK_RECORD.write_text(json.dumps({"digest": digest, "note": note}, indent=1) + "\n")
        print(f"recorded {QUICK_RECORD}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
