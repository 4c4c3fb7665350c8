"""Training configuration: every option declared once (:func:`genemi.options.option`: flag, YAML key, default,
help, choices, bounds). Presets (``configs/train/*.yaml``) list differences.

The defaults reproduce the original GeNeMi trainer (``train.py --mode item_based``: Adam, lr 1e-6,
betas (0.9, 0.98), eps 1e-6, L2 weight decay 0.1 on every parameter, constant lr, 10 epochs, ViT-B/32 with
OpenAI weights), minus its bugs: fp32 master weights with optional autocast instead of training fp16
weights directly, typed flags, the variation image rather than the source image, a working
``image_based`` mode.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from genemi.errors import ConfigError
from genemi.options import Section, option, section
from genemi.precision import DTYPES
from genemi.score_filters import DEFAULT_IVA_SCOPE, DEFAULT_MIN_IVA, IVA_SCOPES
from genemi.training.datasets import DATASET_TYPES, check_dataset_type
from genemi.training.losses import LOSSES, LossConfig
from genemi.training.mining import MINING_MODES

Precision = Literal["auto", "fp32", "bf16", "fp16"]


@dataclass
class OptimConfig(Section):
    optimizer: Literal["adam", "adamw"] = option("adam", "optimizer (adam: L2 decay on the gradient, as the original)")
    lr: float = option(1e-6, "peak learning rate", above=0)
    betas: tuple[float, float] = option((0.9, 0.98), "Adam betas", parts=(("--beta-1", "Adam beta1"),
                                                                          ("--beta-2", "Adam beta2")))
    eps: float = option(1e-6, "Adam epsilon", flag="--adam-eps", aliases=("--eps",), above=0)
    weight_decay: float = option(0.1, "weight decay", at_least=0)
    #: False: open_clip's rule (no decay for 1-D parameters and names with bn/ln/bias/logit_scale)
    decay_all_params: bool = option(True, "weight decay on every parameter (the original); off: open_clip's rule "
                                    "(none for gains, biases, logit scale)")
    scheduler: Literal["constant", "cosine"] = option("constant", "lr schedule after warm-up")
    warmup_steps: int = option(0, "linear warm-up steps", flag="--warmup", aliases=("--warmup-steps",), at_least=0)
    min_lr: float = option(0.0, "lr at the end of --scheduler cosine", at_least=0)
    grad_clip: float | None = option(None, "clip the gradient norm to this value", above=0, none="none",
                                     default_text="off")
    accum_freq: int = option(1, "micro-batches per optimizer step", at_least=1)

    def validate(self) -> None:
        if not all(0 <= b < 1 for b in self.betas):
            raise ConfigError(f"--beta-1/--beta-2 must lie in [0, 1), got {tuple(self.betas)}")


@dataclass
class DataConfig(Section):
    dataset_type: str = option("variations", "format of --dataset: " + "; ".join(
        f"{name}: {description}" for name, (_, description) in DATASET_TYPES.items()), choices=tuple(DATASET_TYPES),
        metavar="TYPE")
    dataset: Path | None = option(None, "variation_annotation.json / variations .jsonl / negatives .jsonl / CSV / "
                                  "shards", metavar="PATH")
    image_root: Path | None = option(None, "folder the dataset's image paths are relative to (paths may not "
                                     "leave it)", metavar="DIR")
    coco_dataset: Path | None = option(None, "COCO Karpathy JSON whose pairs are mixed into each group",
                                       metavar="PATH")
    coco_image_dir: Path | None = option(None, "COCO image folder", aliases=("--coco-image_dir",), metavar="DIR")
    source_image_root: Path | None = option(
        None, "folder of unedited source images (--include-source; the triplets' image)", metavar="DIR",
        default_text="--coco-image-dir, else --image-root")
    itm_threshold: float | None = option(0.0, "keep variations with mean ITM > this; none = no filter", none="none")
    iva_threshold: float | None = option(DEFAULT_MIN_IVA, "keep variations with IVA (%%, of --iva-scope) > this; "
                                         "none = no filter", none="none")
    iva_scope: str = option(DEFAULT_IVA_SCOPE, "which IVA --iva-threshold compares: image (the original's) or "
                            "window", choices=IVA_SCOPES)
    include_source: bool = option(False, "add each group's unedited source image and caption (mining in both "
                                  "directions)")
    csv_img_key: str = option("filepath", "CSV image column")
    csv_caption_key: str = option("title", "CSV caption column")
    csv_separator: str = option("\t", "CSV separator")
    csv_neg_caption_key: str | None = option(None, "CSV column of a negative caption per row, e.g. neg_caption")
    csv_neg_image_key: str | None = option(None, "CSV column of that negative caption's picture, e.g. neg_image "
                                           "(for --loss triplet)")
    workers: int = option(2, "data loader processes", at_least=0)
    augment: bool = option(False, "random resized crops (off: the eval transform)")
    normalize_captions: bool = option(True, "the original's caption normalisation (pre_caption)")
    max_negatives: int | None = option(None, "hard negatives per caption to use", at_least=1, default_text="all")
    encoding: str = option("utf-8", "text encoding of the caption files (e.g. latin-1, cp1252)")
    train_num_samples: int | None = option(None, "webdataset: samples per epoch, split evenly over ranks",
                                           at_least=1, default_text="sizes.json, else counted in the shards")
    dataset_resampled: bool = option(False, "webdataset: draw shards with replacement per worker (any shard count "
                                     "works)")

    def validate(self) -> None:
        import codecs

        check_dataset_type(self.dataset_type)
        try:
            codecs.lookup(self.encoding)
        except LookupError as exc:
            raise ConfigError(f"--encoding {self.encoding!r}: unknown text encoding") from exc
        if self.dataset_type != "webdataset" and (self.train_num_samples is not None or self.dataset_resampled):
            raise ConfigError("--train-num-samples and --dataset-resampled apply to --dataset-type webdataset only "
                              f"(an epoch of {self.dataset_type} is one pass over its groups)")
        if self.csv_neg_image_key and not self.csv_neg_caption_key:
            raise ConfigError("--csv-neg-image-key needs --csv-neg-caption-key: a negative image is the picture of "
                              "the row's negative caption")

    def check_paths(self) -> None:
        """Every file and folder given exists (a ConfigError naming its flag), before anything loads."""
        files = [("--coco-dataset", self.coco_dataset)]
        if self.dataset_type != "webdataset":  # shards: brace patterns and URLs, checked by their reader
            files.insert(0, ("--dataset", self.dataset))
        for flag, path in files:
            if path is not None and not Path(path).exists():
                raise ConfigError(f"{flag} {path}: no such file; give the path of an existing one")
        for flag, path in (("--image-root", self.image_root), ("--coco-image-dir", self.coco_image_dir),
                           ("--source-image-root", self.source_image_root)):
            if path is not None and not Path(path).is_dir():
                problem = "is a file, not a folder" if Path(path).exists() else "no such folder"
                raise ConfigError(f"{flag} {path}: {problem}; give the folder the dataset's image paths are "
                                  "relative to")

    @property
    def source_root(self) -> Path | None:
        """Where unedited source images live: ``source_image_root``, else ``coco_image_dir``, else ``image_root``."""
        return self.source_image_root or self.coco_image_dir or self.image_root

    @property
    def has_negative_captions(self) -> bool:
        """Whether this dataset type (with these options) can carry hard-negative captions."""
        return self.dataset_type in ("text_negatives", "webdataset", "triplets") or (
            self.dataset_type == "csv" and bool(self.csv_neg_caption_key))

    @property
    def has_negative_images(self) -> bool:
        """Whether this dataset type (with these options) can carry negative images (TripletCLIP's I')."""
        return self.dataset_type in ("webdataset", "triplets") or (
            self.dataset_type == "csv" and bool(self.csv_neg_image_key))


def _mode_defaults(attribute: str) -> str:
    return "mode: " + "/".join(str(getattr(spec, attribute)).replace("True", "on").replace("False", "off")
                               for spec in MINING_MODES.values())


@dataclass
class MiningConfig(Section):
    mode: str = option("item_based", "batch composition", choices=tuple(MINING_MODES))
    groups_per_batch: int | None = option(None, "groups per step", at_least=1,
                                          default_text=_mode_defaults("groups_per_batch"))
    variations_per_group: int | None = option(None, "variations per group", at_least=1,
                                              default_text=_mode_defaults("variations_per_group"))
    coco_per_group: int | None = option(None, "COCO pairs per group", at_least=0,
                                        default_text=_mode_defaults("pool_per_group"))
    sample_by_score: bool | None = option(None, "score-weighted variation sampling (a bare --sample-by-score, the "
                                          "original's switch, means on)", words=True,
                                          default_text=_mode_defaults("sample_by_score"))
    batch_size: int = option(256, "pairs per step and process for flat datasets (coco, csv, text_negatives, "
                             "webdataset, triplets)", at_least=1)


@dataclass
class TrainConfig(Section):
    epochs: int = option(10, "number of epochs (counted from 0, as the original)", flag="--epoch",
                         aliases=("--epochs",), at_least=1)
    clip_model: str = option("ViT-B/32", "open_clip or OpenAI name, local-dir:<folder>, or config .json")
    pretrained: str | None = option("openai", "weights: a checkpoint file, a model folder, an open_clip tag cached "
                                    "locally, or none (random init)", none="none",
                                    default_text="openai; a local-dir: model's own weights")
    quick_gelu: bool | None = option(None, "QuickGELU activation; auto: decided from the weights", words=True,
                                     default_text="auto")
    save_path: Path = option(Path("runs/genemi"), "output folder for snapshots, metrics and config.yaml",
                             flag="--output-dir", aliases=("--save-path", "--save_path"), metavar="DIR")
    resume: Path | None = option(None, "snapshot model_{epoch}.pt to continue from, or latest (the newest in "
                                 "--output-dir)", aliases=("--model-checkpoint",), metavar="PATH")
    precision: Precision = option("auto", "autocast precision, weights stay fp32 (auto: bf16 on CUDA with bf16, "
                                  "else fp32)", aliases=("--dtype",), choices=DTYPES)
    device: str | None = option(None, "cpu, cuda or cuda:N", default_text="cuda when available")
    seed: int = option(0, "seed for data order and sampling")
    lock_image: bool = option(False, "freeze the image tower")
    lock_text: bool = option(False, "freeze the text tower")
    max_logit_scale: float | None = option(100.0, "clamp exp(logit_scale) after each step; none = no clamp",
                                           above=0, none="none")
    max_nonfinite_steps: int = option(10, "abort after this many non-finite losses in a row", at_least=1)
    max_steps: int | None = option(None, "stop after this many optimizer steps", at_least=1)
    log_every: int = option(10, "write metrics every N steps", at_least=1)
    save_open_clip: bool = option(True, "also write open_clip local-dir weights per epoch")
    tensorboard: bool = option(True, "TensorBoard logs, if the tensorboard package is installed")
    trust_pickle: bool = option(False, "allow checkpoints that need full unpickling (they can run code: only "
                                "for files you trust)")
    allow_changed_settings: bool = option(False, "with --resume: continue although settings differ from the run's "
                                          "config.yaml (otherwise refused)")
    optim: OptimConfig = section(OptimConfig, "optimisation (YAML section optim)")
    data: DataConfig = section(DataConfig, "data (YAML section data)")
    mining: MiningConfig = section(MiningConfig, "batch mining (YAML section mining)")
    loss: LossConfig = section(LossConfig, "loss (YAML section loss)")

    def validate(self) -> None:
        if self.loss.name in ("ceclip", "negclip") and not self.data.has_negative_captions:
            raise ConfigError(
                f"--loss {self.loss.name} needs hard-negative captions: use --dataset-type text_negatives "
                "(or webdataset shards with 'negatives' in their json, triplets, or csv with --csv-neg-caption-key)"
            )
        if getattr(LOSSES.get(self.loss.name), "needs_negative_images", False) and not self.data.has_negative_images:
            given = f"--dataset-type {self.data.dataset_type}"
            given += " without --csv-neg-image-key" if self.data.dataset_type == "csv" else ""
            raise ConfigError(
                f"--loss {self.loss.name} needs negative images (a picture of each negative caption), which {given} "
                "has none: use --dataset-type triplets (genemi generate export's triplets.jsonl), csv with "
                "--csv-neg-caption-key and --csv-neg-image-key, or webdataset shards with neg_image.* + neg_caption.txt"
            )
