"""Does hard-negative training improve compositional understanding? A controlled answer on the shapes world.

1. Writes the compositional shapes world (``genemi.synthetic.write_world``): train scenes, held-out test
   scenes (unseen (shape, colour) pairs and relation arrangements), ground-truth variations of the train
   scenes (computed IVA, no ITM) and the benchmark exports (SugarCrepe 7 subsets, Winoground 2x2, ARO
   VG-R / VG-A, Karpathy test captions for retrieval), all built from the held-out scenes.
2. Writes typed text hard negatives with ``genemi negatives`` (CE-CLIP's 4 types, vocabulary source) for the
   train captions and for the variation captions.
3. Per seed: pre-trains a small open_clip CLIP from scratch on the train captions (plain CLIP loss), then
   fine-tunes a copy of it in every setting with the same step budget, batch size (pairs per step) and lr:

   ========================  ==========================================================================
   ``pretrained``            no fine-tuning (the starting point)
   ``clip``                  captions only, CLIP loss (the control: just more steps on the same data)
   ``allinone``              ground-truth variations, ``allinone`` mining (+ 1 caption pair per group)
   ``item_based``            ground-truth variations, ``item_based`` mining (2 variations + 6 pairs)
   ``image_based``           ground-truth variations, ``image_based`` mining (2 variations + 6 pairs)
   ``negclip``               captions + ``genemi negatives`` text negatives, NegCLIP loss
   ``ceclip``                captions + ``genemi negatives`` text negatives, CE-CLIP loss (ITC+IMC+CMR)
   ``item_based+ceclip``     ``item_based`` variations whose captions carry text negatives, CE-CLIP loss
   ========================  ==========================================================================

4. Evaluates every model with genemi's benchmark code on the held-out exports and writes
   ``results.json``, ``results.md`` (mean +- std over seeds) and ``results.png`` (bars with error bars).

The trainer pieces are genemi's (pair tables, mining sampler, dataset, collator, losses, ``TrainStep``,
optimizer, lr schedule); only the outer loop is here, so every setting shares one pre-trained start per seed
and ``variations + ceclip`` (which ``genemi train`` does not offer: its variation reader has no negatives)
can be assembled. Text goes through a word-level tokenizer over the world's vocabulary (a 49k-row BPE
embedding would dominate the cost of this small model); unknown words map to one UNK id.

    python benchmarks/shapes_experiment.py                    # the documented run (docs/experiments.md)
    python benchmarks/shapes_experiment.py --quick            # a 1-2 minute smoke run
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import re
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

SETTINGS = {
    "pretrained": None,
    "clip": {"data": "captions", "loss": "clip"},
    "allinone": {"data": "variations", "mode": "allinone", "loss": "clip"},
    "item_based": {"data": "variations", "mode": "item_based", "loss": "clip"},
    "image_based": {"data": "variations", "mode": "image_based", "loss": "clip"},
    "negclip": {"data": "negatives", "loss": "negclip"},
    "ceclip": {"data": "negatives", "loss": "ceclip"},
    "item_based+ceclip": {"data": "variations+negatives", "mode": "item_based", "loss": "ceclip"},
}

# (benchmark, metric) -> column label, in table order
COLUMNS = [
    *((("sugarcrepe", s), f"SC {s}") for s in ("replace_obj", "replace_att", "replace_rel", "swap_obj", "swap_att",
                                              "add_obj", "add_att")),
    (("sugarcrepe", "mean"), "SC mean"),
    (("winoground", "text"), "Wino text"),
    (("winoground", "image"), "Wino image"),
    (("winoground", "group"), "Wino group"),
    (("aro_vg_relation", "macro_accuracy"), "VG-R"),
    (("aro_vg_attribution", "macro_accuracy"), "VG-A"),
    (("retrieval", "i2t_R@1"), "i2t R@1"),
    (("retrieval", "t2i_R@1"), "t2i R@1"),
]  # fmt: skip

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

    def __call__(self, texts) -> torch.Tensor:
        if isinstance(texts, str):
            texts = [texts]
        out = torch.zeros(len(texts), self.context_length, dtype=torch.long)
        for n, text in enumerate(texts):
            ids = [1] + [self.index.get(w, 2) for w in self.words(text)][: self.context_length - 2] + [self.eot]
            out[n, : len(ids)] = torch.tensor(ids)
        return out


# --- data ---------------------------------------------------------------------------------------------


def prepare(args) -> dict:
    """The world, the text negatives and the vocabulary (reused when already written with the same settings)."""
    from genemi.negatives import command as negatives
    from genemi.synthetic import write_world

    out = Path(args.output)
    data = out / "data"
    stamp = {"train": args.train_scenes, "test": args.test_scenes, "size": args.image_size, "seed": args.world_seed,
             "variations_per_item": args.variations_per_item}  # fmt: skip
    stamp_file = data / "settings.json"
    t0 = time.perf_counter()
    if not (stamp_file.exists() and json.loads(stamp_file.read_text()) == stamp):
        world = write_world(data, num_train=args.train_scenes, num_test=args.test_scenes, size=args.image_size,
                            seed=args.world_seed, variations_per_item=args.variations_per_item,
                            vga_pairs=4, vga_per_pair=25)  # fmt: skip
        records = [json.loads(l) for l in world.variations_jsonl.read_text().splitlines()]
        var_caps = data / "variation_captions.json"
        var_caps.write_text(json.dumps([{"image": r["save"], "caption": r["captions"][0]} for r in records]))
        for src, dst in ((world.coco_train, data / "negatives.jsonl"), (var_caps, data / "variation_negatives.jsonl")):
            if dst.exists():
                dst.unlink()
            rc = negatives.main(["--input", str(src), "--output", str(dst), "--types", "ceclip",
                                 "--sources", "vocabulary", "--no-progress"])  # fmt: skip
            if rc:
                raise SystemExit(f"genemi negatives failed on {src}")
        stamp_file.write_text(json.dumps(stamp))
    from genemi.synthetic.world import ShapesWorld

    world = ShapesWorld(data, data / "images", data / "splits.json", data / "scenes_train.jsonl",
                        data / "scenes_test.jsonl", data / "coco_karpathy_train.json", data / "coco_karpathy_test.json",
                        data / "sugarcrepe", data / "winoground", data / "aro", data / "variations.jsonl",
                        {})  # fmt: skip
    return {"world": world, "negatives": data / "negatives.jsonl", "var_negatives": data / "variation_negatives.jsonl",
            "seconds": time.perf_counter() - t0}  # fmt: skip


def training_texts(prep) -> list[str]:
    from genemi.manifest import read_records
    from genemi.records import TextNegativeRecord

    world = prep["world"]
    texts = [e["caption"] for e in json.loads(world.coco_train.read_text())]
    texts += [c for l in world.variations_jsonl.read_text().splitlines() for c in json.loads(l)["captions"]]
    for path in (prep["negatives"], prep["var_negatives"]):
        texts += [n.text for r in read_records(path, TextNegativeRecord) for n in r.negatives if n.valid]
    return texts


def build_table(setting: dict, prep, batch: int):
    """(pair table, mining spec, needs negatives) for a setting, from genemi's readers."""
    from genemi.training.data import (PairSpec, build_variation_table, filter_variations, read_coco_pairs,
                                      read_text_negative_pairs, read_variation_records, singleton_table)
    from genemi.training.mining import MiningSpec, mining_spec

    world = prep["world"]
    kind = setting["data"]
    flat = MiningSpec((), 1, 0, batch, sample_by_score=False)
    if kind == "captions":
        return singleton_table(read_coco_pairs(world.coco_train, world.images)), flat
    if kind == "negatives":
        return singleton_table(read_text_negative_pairs(prep["negatives"], world.images)), flat
    mode = setting["mode"]
    if mode == "allinone":
        spec = mining_spec(mode, groups_per_batch=batch // 2, variations_per_group=1, pool_per_group=1)
    else:
        spec = mining_spec(mode, groups_per_batch=batch // 8, variations_per_group=2, pool_per_group=6)
    records, _ = filter_variations(read_variation_records(world.variations_jsonl), None, None)  # no ITM exists
    table = build_variation_table(records, spec, world.images)
    if kind == "variations":
        table.pool = read_coco_pairs(world.coco_train, world.images)
        return table, spec
    # variations whose (first) caption carries its text negatives; the pool likewise
    negs = {(p.image, p.captions[0]): p for p in read_text_negative_pairs(prep["var_negatives"], world.images)}
    table.pairs = [negs.get((p.image, p.captions[0]), PairSpec(p.image, p.captions[:1])) for p in table.pairs]
    table.pool = read_text_negative_pairs(prep["negatives"], world.images)
    return table, spec


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
    k = table.num_negatives if needs else 0
    if needs and k == 0:
        raise SystemExit(f"{loss_name} needs negatives but the table has none")
    optim = OptimConfig(optimizer="adamw", lr=lr, weight_decay=0.1, decay_all_params=False, scheduler="cosine",
                        warmup_steps=warmup, min_lr=lr * 0.05)  # fmt: skip
    cfg = TrainConfig(precision="fp32", optim=optim, loss=LossConfig(name="clip"), pretrained=None)
    sampler = MiningBatchSampler(len(table.groups), len(table.pool), spec, batch_seed)
    dataset = MinedPairDataset(table, sampler.spec, transform(size), normalize_captions=True)
    loader = torch.utils.data.DataLoader(dataset, batch_sampler=sampler, collate_fn=PairCollator(tokenizer, k),
                                         num_workers=0)  # fmt: skip
    model.train()
    step_fn = TrainStep(ContrastiveForward(model), loss_fn, build_optimizer(model, optim), cfg, torch.device("cpu"),
                        DistEnv())  # fmt: skip
    losses, step, epoch, t0 = [], 0, 0, time.perf_counter()
    while step < steps:
        sampler.set_epoch(epoch)
        if epoch == 0:  # CE-CLIP's adaptive CMR thresholds start at 0 once per fine-tuning run (the budget is in
            loss_fn.on_epoch_start()  # steps here, and passes over the data differ in length between settings)
        for batch in loader:
            if step >= steps:
                break
            terms = step_fn([batch], lr_at(step, steps, optim))
            if terms is not None:
                losses.append(terms["loss"])
            step += 1
        epoch += 1
    model.eval()
    return {"seconds": time.perf_counter() - t0, "first_loss": float(np.mean(losses[:20])),
            "last_loss": float(np.mean(losses[-20:])), "epochs": epoch}  # fmt: skip


def evaluate(model, prep, tokenizer, size: int, key: str) -> dict:
    from genemi.evaluation.benchmarks import build_benchmarks
    from genemi.evaluation.runner import evaluate as run
    from genemi.evaluation.scoring import ClipEmbedder
    from genemi.models.clip import ClipBundle

    from open_clip.transform import PreprocessCfg

    world = prep["world"]
    pre = {k: v for k, v in vars(PreprocessCfg(size=size)).items()}
    bundle = ClipBundle(model, "shapes", {}, pre, tokenizer, None, "n/a")
    embedder = ClipEmbedder(bundle, "cpu", batch_size=256, workers=0, precision="fp32", progress=False, key=key)
    benches = build_benchmarks(["sugarcrepe", "winoground", "aro", "retrieval"], {
        "sugarcrepe": {"root": world.sugarcrepe, "images": world.images}, "winoground": {"root": world.winoground},
        "aro": {"root": world.aro, "images": world.images},
        "retrieval": {"annotations": world.coco_test, "images": world.images}})  # fmt: skip
    results = run(embedder, benches)
    return {name: res.metrics for name, res in results.items()}


# --- report -------------------------------------------------------------------------------------------


def summarise(runs: dict) -> dict:
    """setting -> column -> (mean, std, n) over seeds."""
    out = {}
    for setting, per_seed in runs.items():
        out[setting] = {}
        for (bench, metric), label in COLUMNS:
            values = [r["metrics"][bench][metric] for r in per_seed.values()]
            values = [v for v in values if not math.isnan(v)]
            mean = statistics.fmean(values) if values else float("nan")
            std = statistics.stdev(values) if len(values) > 1 else 0.0
            out[setting][label] = (mean, std, len(values))
    return out


def markdown(summary: dict, meta: dict) -> str:
    labels = [label for _, label in COLUMNS]
    lines = ["| setting | " + " | ".join(labels) + " |", "|---|" + "---|" * len(labels)]
    for setting, cols in summary.items():
        lines.append(f"| {setting} | " + " | ".join(f"{cols[l][0]:.1f} ± {cols[l][1]:.1f}" for l in labels) + " |")
    head = (f"Mean ± std over seeds {meta['seeds']} (sample std, n = {len(meta['seeds'])}); accuracies and "
            f"recalls in %. Sizes: {json.dumps(meta['sizes'])}.")
    return head + "\n\n" + "\n".join(lines) + "\n"


def bar_chart(summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [label for _, label in COLUMNS]
    settings = list(summary)
    width = 0.8 / len(settings)
    fig, ax = plt.subplots(figsize=(max(12, len(labels) * 1.2), 5))
    x = np.arange(len(labels))
    for n, setting in enumerate(settings):
        means = [summary[setting][l][0] for l in labels]
        stds = [summary[setting][l][1] for l in labels]
        ax.bar(x + (n - (len(settings) - 1) / 2) * width, means, width, yerr=stds, capsize=2, label=setting)
    ax.set_xticks(x, labels, rotation=35, ha="right")
    ax.set_ylabel("% (mean ± std over seeds)")
    ax.set_ylim(0, 100)
    ax.legend(ncol=4, fontsize=8)
    ax.set_title("shapes world, held-out split")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--output", default="shapes_experiment", help="folder for data, results [shapes_experiment]")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    p.add_argument("--train-scenes", type=int, default=2000)
    p.add_argument("--test-scenes", type=int, default=300)
    p.add_argument("--variations-per-item", type=int, default=3)
    p.add_argument("--world-seed", type=int, default=0)
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--patch", type=int, default=8)
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--batch", type=int, default=64, help="pairs per optimizer step, every phase and setting [64]")
    p.add_argument("--pretrain-steps", type=int, default=1200)
    p.add_argument("--finetune-steps", type=int, default=150)
    p.add_argument("--pretrain-lr", type=float, default=2e-3)
    p.add_argument("--finetune-lr", type=float, default=5e-4)
    p.add_argument("--threads", type=int, default=1, help="torch threads [1: fastest on the shared 2-core box]")
    p.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run of every code path")
    args = p.parse_args(argv)
    if args.quick:
        args.train_scenes, args.test_scenes, args.pretrain_steps, args.finetune_steps = 200, 60, 40, 10
        args.seeds = args.seeds[:2]
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    for noisy in ("genemi", "genemi.evaluation.scoring"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    torch.set_num_threads(args.threads)
    started = time.perf_counter()

    prep = prepare(args)
    log.info("data ready in %.1fs", prep["seconds"])
    tokenizer = WordTokenizer(training_texts(prep))
    from genemi.models.clip import build_clip
    from genemi.training.data import read_coco_pairs, singleton_table
    from genemi.training.mining import MiningSpec

    world = prep["world"]
    tables = {name: build_table(s, prep, args.batch) for name, s in SETTINGS.items() if s and name in args.settings}
    runs: dict = {s: {} for s in args.settings}
    timing: dict = {"data": prep["seconds"], "pretrain": [], "finetune": {}, "eval": []}
    for seed in args.seeds:
        torch.manual_seed(seed)
        model = build_clip(model_config(args, tokenizer.vocab_size))
        pre_table = singleton_table(read_coco_pairs(world.coco_train, world.images))
        stats = train(model, pre_table, MiningSpec((), 1, 0, args.batch, sample_by_score=False), "clip",
                      args.pretrain_steps, args.pretrain_lr, 1000 + seed, tokenizer, args.image_size,
                      warmup=args.pretrain_steps // 20)  # fmt: skip
        timing["pretrain"].append(stats["seconds"])
        log.info("seed %d: pre-trained %d steps in %.0fs (loss %.3f -> %.3f)", seed, args.pretrain_steps,
                 stats["seconds"], stats["first_loss"], stats["last_loss"])  # fmt: skip
        start = {k: v.clone() for k, v in model.state_dict().items()}
        for name in args.settings:
            setting = SETTINGS[name]
            model.load_state_dict(start)
            stats = {}
            if setting is not None:
                table, spec = tables[name]
                torch.manual_seed(seed)
                stats = train(model, table, spec, setting["loss"], args.finetune_steps, args.finetune_lr, seed,
                              tokenizer, args.image_size, warmup=args.finetune_steps // 10)  # fmt: skip
                timing["finetune"].setdefault(name, []).append(stats["seconds"])
            t0 = time.perf_counter()
            metrics = evaluate(model, prep, tokenizer, args.image_size, key=f"{name}-{seed}")
            timing["eval"].append(time.perf_counter() - t0)
            runs[name][seed] = {"metrics": metrics, "train": stats}
            log.info("seed %d %-18s SC mean %.1f  Wino group %.1f  VG-R %.1f  VG-A %.1f  i2t R@1 %.1f  (%s)", seed,
                     name, metrics["sugarcrepe"]["mean"], metrics["winoground"]["group"],
                     metrics["aro_vg_relation"]["macro_accuracy"], metrics["aro_vg_attribution"]["macro_accuracy"],
                     metrics["retrieval"]["i2t_R@1"],
                     f"{stats['seconds']:.0f}s, loss {stats['first_loss']:.3f} -> {stats['last_loss']:.3f}"
                     if stats else "no fine-tuning")  # fmt: skip
    total = time.perf_counter() - started
    summary = summarise(runs)
    import platform

    meta = {"seeds": args.seeds, "total_seconds": round(total, 1), "threads": args.threads,
            "machine": f"{platform.machine()}, {__import__('os').cpu_count()} CPUs, torch {torch.__version__}",
            "sizes": {"train_scenes": args.train_scenes, "test_scenes": args.test_scenes, "image_px": args.image_size,
                      "patch": args.patch, "width": args.width, "layers": args.layers, "batch": args.batch,
                      "pretrain_steps": args.pretrain_steps, "finetune_steps": args.finetune_steps,
                      "pretrain_lr": args.pretrain_lr, "finetune_lr": args.finetune_lr,
                      "variations": (sum(len(g) for g in tables["item_based"][0].groups)
                                     if "item_based" in tables else None),
                      "vocab": tokenizer.vocab_size},
            "timing": {k: (round(sum(v), 1) if isinstance(v, list) else {s: round(sum(t), 1) for s, t in v.items()}
                           if isinstance(v, dict) else round(v, 1)) for k, v in timing.items()}}  # fmt: skip
    out = Path(args.output)
    (out / "results.json").write_text(json.dumps({"meta": meta, "runs": {s: {str(k): v for k, v in r.items()}
                                                                       for s, r in runs.items()},
                                                  "summary": summary}, indent=1))  # fmt: skip
    text = markdown(summary, meta)
    (out / "results.md").write_text(text)
    bar_chart(summary, out / "results.png")
    print(text)
    print(f"total {total:.0f}s ({json.dumps(meta['timing'])}); results in {out}/results.md, results.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
