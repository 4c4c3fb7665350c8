"""Training configuration: defaults live here, once. Presets (``configs/train/*.yaml``) list differences.

The defaults reproduce the original GeNeMi trainer (``train.py --mode item_based``: Adam, lr 1e-6,
betas (0.9, 0.98), eps 1e-6, L2 weight decay 0.1 on every parameter, constant lr, 10 epochs, ViT-B/32 with
OpenAI weights), minus its bugs: fp32 master weights with optional autocast instead of training fp16
weights directly, typed flags, the variation image rather than the source image, a working
``image_based`` mode.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from genemi.errors import ConfigError
from genemi.training.datasets import check_dataset_type
from genemi.training.losses import LOSSES, LossConfig
from genemi.training.mining import MINING_MODES
from genemi.score_filters import DEFAULT_IVA_SCOPE, DEFAULT_MIN_IVA

Precision = Literal["auto", "fp32", "bf16", "fp16"]


@dataclass
class OptimConfig:
    optimizer: Literal["adam", "adamw"] = "adam"
    lr: float = 1e-6
    betas: tuple[float, float] = (0.9, 0.98)
    eps: float = 1e-6
    weight_decay: float = 0.1
    #: False: open_clip's rule (no decay for 1-D parameters and names with bn/ln/bias/logit_scale)
    decay_all_params: bool = True
    scheduler: Literal["constant", "cosine"] = "constant"
    warmup_steps: int = 0
    min_lr: float = 0.0
    grad_clip: float | None = None
    accum_freq: int = 1

    def __post_init__(self) -> None:
        if self.lr <= 0:
            raise ConfigError(f"optim.lr must be > 0, got {self.lr}")
        if not all(0 <= b < 1 for b in self.betas):
            raise ConfigError(f"optim.betas must lie in [0, 1), got {self.betas}")
        if self.accum_freq < 1 or self.warmup_steps < 0:
            raise ConfigError("optim.accum_freq must be >= 1 and optim.warmup_steps >= 0")


@dataclass
class DataConfig:
    dataset_type: str = "variations"  # a name in genemi.training.datasets.DATASET_TYPES
    dataset: Path | None = None  # variation JSON/JSONL, text-negative JSONL, CSV, or webdataset shard pattern
    image_root: Path | None = None  # root of the images that ``dataset`` names
    coco_dataset: Path | None = None  # pool of ordinary pairs mixed into each group
    coco_image_dir: Path | None = None
    source_image_root: Path | None = None  # unedited source images (--include-source, triplets); default coco_image_dir
    itm_threshold: float | None = 0.0  # keep variations with mean BLIP-ITM > this (None: no filter)
    iva_threshold: float | None = DEFAULT_MIN_IVA  # keep variations with IVA > this (None: no filter; measured)
    iva_scope: str = DEFAULT_IVA_SCOPE  # which IVA iva_threshold compares: image (the original's) or window
    include_source: bool = False
    csv_img_key: str = "filepath"
    csv_caption_key: str = "title"
    csv_separator: str = "\t"
    csv_neg_caption_key: str | None = None  # CSV column of a negative caption per row (NegCLIP/TripletCLIP style)
    csv_neg_image_key: str | None = None  # CSV column of that caption's picture (TripletCLIP), with the above
    workers: int = 2
    augment: bool = False  # open_clip's random-resized-crop train transform instead of the eval transform
    normalize_captions: bool = True
    max_negatives: int | None = None  # hard negatives per caption to use (None: all in the data)
    encoding: str = "utf-8"  # text encoding of the caption files (JSON, JSONL, CSV, shard txt/json)
    train_num_samples: int | None = None  # webdataset: samples per epoch (None: sizes.json or counted)
    dataset_resampled: bool = False  # webdataset: draw shards with replacement (open_clip's --dataset-resampled)

    def __post_init__(self) -> None:
        import codecs

        check_dataset_type(self.dataset_type)
        if self.workers < 0:
            raise ConfigError("data.workers must be >= 0")
        try:
            codecs.lookup(self.encoding)
        except LookupError as exc:
            raise ConfigError(f"--encoding {self.encoding!r}: unknown text encoding") from exc
        if self.train_num_samples is not None and self.train_num_samples < 1:
            raise ConfigError(f"--train-num-samples must be at least 1, not {self.train_num_samples}")
        if self.dataset_type != "webdataset" and (self.train_num_samples is not None or self.dataset_resampled):
            raise ConfigError("--train-num-samples and --dataset-resampled apply to --dataset-type webdataset only "
                              f"(an epoch of {self.dataset_type} is one pass over its groups)")
        if self.csv_neg_image_key and not self.csv_neg_caption_key:
            raise ConfigError("--csv-neg-image-key needs --csv-neg-caption-key: a negative image is the picture of "
                              "the row's negative caption")

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


@dataclass
class MiningConfig:
    mode: str = "item_based"
    groups_per_batch: int | None = None  # None: the mode's default
    variations_per_group: int | None = None
    coco_per_group: int | None = None
    sample_by_score: bool | None = None
    batch_size: int = 256  # pairs per step for flat datasets (coco, csv, text_negatives, webdataset)

    def __post_init__(self) -> None:
        if self.mode not in MINING_MODES:
            raise ConfigError(f"mining.mode must be one of {', '.join(MINING_MODES)}, got {self.mode!r}")
        if self.batch_size < 1:
            raise ConfigError("mining.batch_size must be >= 1")


@dataclass
class TrainConfig:
    epochs: int = 10
    clip_model: str = "ViT-B/32"
    pretrained: str | None = "openai"  # open_clip tag (cached), checkpoint file, or None for random init
    quick_gelu: bool | None = None  # None: decided from the weights (see genemi.models.clip)
    save_path: Path = Path("runs/genemi")
    resume: Path | None = None  # a model_{epoch}.pt to continue from ('latest': newest in save_path)
    precision: Precision = "auto"  # auto: bf16 autocast on CUDA with bf16 support, else fp32
    device: str | None = None
    seed: int = 0
    lock_image: bool = False
    lock_text: bool = False
    max_logit_scale: float | None = 100.0  # clamp exp(logit_scale) after each step (None: no clamp)
    max_nonfinite_steps: int = 10  # abort after this many non-finite losses in a row
    max_steps: int | None = None  # stop after this many optimizer steps (smoke tests, benchmarks)
    log_every: int = 10
    save_open_clip: bool = True  # also write open_clip local-dir weights per epoch
    tensorboard: bool = True  # if the tensorboard package is installed
    trust_pickle: bool = False
    allow_changed_settings: bool = False  # resume although content-shaping settings differ from config.yaml
    optim: OptimConfig = field(default_factory=OptimConfig)
    data: DataConfig = field(default_factory=DataConfig)
    mining: MiningConfig = field(default_factory=MiningConfig)
    loss: LossConfig = field(default_factory=LossConfig)

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ConfigError(f"--epoch must be at least 1, not {self.epochs}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ConfigError(f"--max-steps must be at least 1, not {self.max_steps} (nothing would be trained)")
        if self.max_nonfinite_steps < 1:
            raise ConfigError("max_nonfinite_steps must be >= 1")
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
