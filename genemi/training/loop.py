"""The training loop: ``fit()`` builds everything and loops over epochs; ``train_one_epoch()`` and
``TrainStep`` do one epoch and one optimizer step (autocast, accumulation, clipping, non-finite guard)."""

from __future__ import annotations

import contextlib
import csv
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from genemi.distributed import DistEnv, all_reduce_flag, all_reduce_sum, init_distributed, resolve_device
from genemi.errors import CheckpointError, ConfigError, TrainingError
from genemi.manifest import check_writable_dir
from genemi.models.clip import ContrastiveForward, create_clip, save_open_clip_dir
from genemi.presets import config_to_dict, save_config
from genemi.training.config import TrainConfig
from genemi.training.data import Batch, TrainData, build_train_data
from genemi.training.losses import build_loss
from genemi.training.mining import mining_spec
from genemi.training.resume import (latest_snapshot, load_snapshot, remap_original_optimizer_state, restore_rng_state,
                                    save_snapshot)
from genemi.training.schedule import lr_at

logger = logging.getLogger(__name__)


@dataclass
class TrainState:
    epoch: int = 0  # the epoch being trained (0-based)
    step: int = 0  # optimizer steps done
    nonfinite_in_row: int = 0
    nonfinite_total: int = 0
    skipped_images: int = 0


@dataclass
class FitResult:
    snapshots: list[Path] = field(default_factory=list)
    epoch_losses: list[float] = field(default_factory=list)
    steps: int = 0
    nonfinite_steps: int = 0
    skipped_images: int = 0
    data_wait_fraction: float = 0.0
    seconds: float = 0.0


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """``None`` = full fp32; weights always stay fp32 (autocast only)."""
    if precision == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return None
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def no_weight_decay(name: str, param: torch.nn.Parameter) -> bool:
    """open_clip's training rule, which CE-CLIP inherits: no decay for 1-D parameters (gains, biases, class
    embedding, logit scale) and names containing ``bn``, ``ln``, ``bias`` or ``logit_scale``. Positional and
    token embeddings and projections (2-D) are decayed, as in open_clip."""
    return param.ndim < 2 or "bn" in name or "ln" in name or "bias" in name or "logit_scale" in name


def build_optimizer(model: torch.nn.Module, cfg) -> torch.optim.Optimizer:
    """Adam (L2 on the gradient, the GeNeMi original, which decays every parameter) or AdamW; without
    ``decay_all_params`` the parameters :func:`no_weight_decay` names get none (logged)."""
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]

    def group(members, decay):  # the names travel in the snapshot's optimizer state (genemi convert snapshot)
        return {"params": [p for _, p in members], "param_names": [n for n, _ in members], "weight_decay": decay}

    if cfg.decay_all_params or cfg.weight_decay == 0:
        groups = [group(params, cfg.weight_decay)]
    else:
        excluded = [n for n, p in params if no_weight_decay(n, p)]
        logger.info("weight decay %g on %d parameters; none on %d (open_clip's rule): %s", cfg.weight_decay,
                    len(params) - len(excluded), len(excluded),
                    ", ".join(excluded[:8]) + (", ..." if len(excluded) > 8 else ""))
        groups = [group([(n, p) for n, p in params if not no_weight_decay(n, p)], cfg.weight_decay),
                  group([(n, p) for n, p in params if no_weight_decay(n, p)], 0.0)]
    cls = torch.optim.Adam if cfg.optimizer == "adam" else torch.optim.AdamW
    return cls(groups, lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps)


class TrainStep:
    """One optimizer step over ``accum_freq`` micro-batches."""

    def __init__(self, model, loss_fn, optimizer, cfg: TrainConfig, device: torch.device, env: DistEnv):
        self.model, self.loss_fn, self.optimizer, self.cfg, self.device, self.env = (
            model, loss_fn, optimizer, cfg, device, env,
        )  # fmt: skip
        self.dtype = autocast_dtype(cfg.precision, device)
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.dtype == torch.float16)

    def _autocast(self):
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)

    def forward_loss(self, batch: Batch) -> dict[str, torch.Tensor]:
        """One model forward for the batch: images and negative images together, captions and negative captions
        together (one pass per tower, so DDP syncs once); then the loss in fp32."""
        images, texts = batch.images, batch.texts
        b = texts.shape[0]
        all_texts = texts if batch.neg_texts is None else torch.cat([texts, batch.neg_texts.flatten(0, 1)])
        all_images = images if batch.neg_images is None else torch.cat([images, batch.neg_images])
        with self._autocast():
            image_features, text_features, logit_scale = self.model(all_images, all_texts)[:3]
        # The loss runs in fp32 whatever the autocast precision.
        image_features, text_features = image_features.float(), text_features.float()
        neg = None if batch.neg_texts is None else text_features[b:].view(b, batch.neg_texts.shape[1], -1)
        neg_images = None
        if batch.neg_images is not None:  # [B, D]: row i holds the picture of row i's negative (zeros if none)
            neg_images = image_features.new_zeros(b, image_features.shape[1])
            neg_images = neg_images.index_put((batch.neg_image_valid,), image_features[b:])
        return self.loss_fn(
            image_features[:b], text_features[:b], logit_scale.float(), neg_features=neg, neg_valid=batch.neg_valid,
            neg_image_features=neg_images, neg_image_valid=batch.neg_image_valid,
        )  # fmt: skip

    def __call__(self, micro_batches: list[Batch], lr: float) -> dict[str, float] | None:
        """Returns the logged terms, or ``None`` when the step was skipped (non-finite loss)."""
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.zero_grad(set_to_none=True)
        terms_sum: dict[str, float] = {}
        nonfinite = False
        for i, batch in enumerate(micro_batches):
            last = i == len(micro_batches) - 1
            sync = contextlib.nullcontext() if last or not hasattr(self.model, "no_sync") else self.model.no_sync()
            with sync:
                terms = self.forward_loss(batch)
                loss = terms["loss"]
                bad = all_reduce_flag(not bool(torch.isfinite(loss.detach()).item()), self.device)
                if bad:
                    nonfinite = True
                    break
                self.scaler.scale(loss / len(micro_batches)).backward()
            for key, value in terms.items():
                if key != "thresholds" and value.numel() == 1:
                    terms_sum[key] = terms_sum.get(key, 0.0) + float(value.detach()) / len(micro_batches)
        if nonfinite:
            self.optimizer.zero_grad(set_to_none=True)
            return None
        if self.cfg.optim.grad_clip is not None:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.optim.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self._clamp_logit_scale()
        return terms_sum

    def _clamp_logit_scale(self) -> None:
        if self.cfg.max_logit_scale is None:
            return
        inner = getattr(self.model, "module", self.model)
        inner = getattr(inner, "clip", inner)
        with torch.no_grad():
            inner.logit_scale.clamp_(max=math.log(self.cfg.max_logit_scale))


class MetricsLog:
    """Step metrics to ``metrics.csv`` (and TensorBoard when installed and enabled); main process only."""

    def __init__(self, folder: Path, enabled: bool, tensorboard: bool, resume_step: int = 0):
        self.enabled, self.path, self._fields, self._tb = enabled, folder / "metrics.csv", None, None
        if enabled:
            self._truncate(resume_step)
        if enabled and tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(str(folder / "tensorboard"))
            except ImportError:
                self._tb = None

    def _truncate(self, resume_step: int) -> None:
        """Keep the rows of steps up to ``resume_step`` (a run killed after its last snapshot logged steps that
        the resumed run does again; a fresh run keeps none)."""
        if not self.path.exists() or self.path.stat().st_size == 0:
            return
        lines = self.path.read_text(encoding="utf-8").splitlines(keepends=True)
        header = lines[0].strip().split(",")
        if "step" not in header or resume_step <= 0:
            self.path.unlink()
            return
        col = header.index("step")
        kept = [lines[0]]
        for line in lines[1:]:
            if not line.endswith("\n"):
                continue  # a line torn by the kill
            cells = line.rstrip("\n").split(",")
            try:
                if len(cells) > col and int(float(cells[col])) <= resume_step:
                    kept.append(line)
            except ValueError:
                continue
        from genemi.manifest import write_atomic

        write_atomic(self.path, "".join(kept).encode("utf-8"))

    def write(self, row: dict[str, Any]) -> None:
        if not self.enabled:
            return
        if self._fields is None:
            if self.path.exists() and self.path.stat().st_size > 0:  # resumed run: keep the file's columns
                with self.path.open() as fh:
                    self._fields = fh.readline().strip().split(",")
            else:
                self._fields = list(row)
                self.path.write_text(",".join(self._fields) + "\n")
        with self.path.open("a", newline="") as fh:
            csv.DictWriter(fh, fieldnames=self._fields, extrasaction="ignore").writerow(row)
        if self._tb is not None:
            for key, value in row.items():
                if isinstance(value, (int, float)) and key not in ("epoch", "step"):
                    self._tb.add_scalar(f"train/{key}", value, row["step"])

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()


def train_one_epoch(step_fn: TrainStep, data: TrainData, state: TrainState, total_steps: int,
                    log: MetricsLog, progress: bool) -> tuple[float, float]:  # fmt: skip
    """Returns (mean loss, fraction of time spent waiting for data)."""
    from tqdm import tqdm

    cfg, accum = step_fn.cfg, step_fn.cfg.optim.accum_freq
    steps_this_epoch = data.steps_per_epoch // accum if data.steps_per_epoch else None
    bar = tqdm(total=steps_this_epoch, desc=f"epoch {state.epoch}", disable=not progress, unit="step")
    losses: list[float] = []
    wait_total = step_total = 0.0
    iterator = iter(data.loader)
    pending: list[Batch] = []
    row = None
    t_last = time.perf_counter()
    while cfg.max_steps is None or state.step < cfg.max_steps:
        t0 = time.perf_counter()
        batch = next(iterator, None)
        wait = time.perf_counter() - t0
        if batch is None:
            break
        state.skipped_images += batch.skipped
        if all_reduce_flag(len(batch) == 0, step_fn.device):
            logger.warning("step %d: a batch had no usable image on some rank; skipped", state.step)
            continue
        pending.append(batch.to(step_fn.device))
        wait_total += wait
        if len(pending) < accum:
            continue
        lr = lr_at(state.step, total_steps, cfg.optim)
        terms = step_fn(pending, lr)
        pending = []
        now = time.perf_counter()
        step_time, t_last = now - t_last, now
        step_total += step_time
        if terms is None:
            state.nonfinite_in_row += 1
            state.nonfinite_total += 1
            logger.warning("step %d: non-finite loss, step skipped (%d in a row)", state.step, state.nonfinite_in_row)
            if state.nonfinite_in_row >= cfg.max_nonfinite_steps:
                raise TrainingError(
                    f"{state.nonfinite_in_row} non-finite losses in a row at epoch {state.epoch}, step {state.step}: "
                    "training diverged. Lower --lr, use --precision bf16/fp32, or set --grad-clip."
                )
            continue
        state.nonfinite_in_row = 0
        state.step += 1
        losses.append(terms["loss"])
        bar.update(1)
        bar.set_postfix(loss=f"{terms['loss']:.4f}", lr=f"{lr:.2e}")
        row = {"epoch": state.epoch, "step": state.step, "lr": lr, **terms, "step_seconds": step_time,
               "data_wait_seconds": wait, "skipped_images": state.skipped_images}  # fmt: skip
        if state.step % cfg.log_every == 0 or state.step == 1:
            log.write(row)
            row = None
    if losses and row is not None:  # the epoch's last step, if not logged yet
        log.write(row)
    bar.close()
    mean = all_reduce_sum(sum(losses), step_fn.device) / max(all_reduce_sum(len(losses), step_fn.device), 1)
    return mean, (wait_total / step_total if step_total else 0.0)


def _resume_path(cfg: TrainConfig) -> Path | None:
    if cfg.resume is None:
        return None
    if str(cfg.resume) == "latest":
        return latest_snapshot(cfg.save_path)  # nothing yet: fresh start
    return Path(cfg.resume)


#: settings a resumed run may change: where and how fast it runs, how long, what it logs
_RESUME_FREE = {"resume", "epochs", "max_steps", "device", "workers", "tensorboard", "log_every",
                "allow_changed_settings", "save_path", "trust_pickle"}


def _check_resumed_settings(cfg: TrainConfig, recorded: Path) -> None:
    """Refuse to resume a run with settings that shape training differently from the run's ``config.yaml``
    (naming them), unless ``--allow-changed-settings``."""
    import yaml

    from genemi.presets import config_to_dict

    if not recorded.is_file():
        return
    try:
        old = yaml.safe_load(recorded.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return
    new = yaml.safe_load(yaml.safe_dump(config_to_dict(cfg), sort_keys=False)) or {}

    def flat(d: dict, prefix: str = "") -> dict:
        out = {}
        for k, v in d.items():
            if isinstance(v, dict):
                out.update(flat(v, f"{prefix}{k}."))
            else:
                out[f"{prefix}{k}"] = v
        return out

    a, b = flat(old), flat(new)
    changed = [f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in sorted(set(a) | set(b))
               if k.split(".")[-1] not in _RESUME_FREE and a.get(k) != b.get(k)]
    if changed and not cfg.allow_changed_settings:
        raise ConfigError(f"--resume: the run in {recorded.parent} was trained with other settings "
                          f"({'; '.join(changed[:6])}{'; ...' if len(changed) > 6 else ''}); resume with the same "
                          "settings, or --allow-changed-settings to continue with the new ones")
    if changed:
        logger.warning("resuming with changed settings: %s", "; ".join(changed))


class ModelFunction:
    """The model's transform or tokenizer, handed to the data before the model is loaded (so the data files are
    checked first) and set once it is; called only when batches are drawn."""

    def __init__(self, what: str):
        self.what, self.fn = what, None

    def __call__(self, *args, **kwargs):
        if self.fn is None:
            raise TrainingError(f"the model's {self.what} was used before the model was loaded")
        return self.fn(*args, **kwargs)


def fit(cfg: TrainConfig, progress: bool = True) -> FitResult:
    """Train according to ``cfg``; writes snapshots, metrics and the resolved config to ``cfg.save_path``."""
    started = time.perf_counter()
    env = init_distributed(cfg.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    device = resolve_device(cfg.device, env)
    save_path = Path(cfg.save_path)
    if env.is_main:  # checked here, written only after every check below: a failed start leaves nothing behind
        check_writable_dir(save_path, "--output-dir")
        if cfg.resume is not None:
            _check_resumed_settings(cfg, save_path / "config.yaml")

    # 1. Data: every record file is read and checked before any weight loads; images and captions are
    # transformed and tokenized by the model's own functions when batches are drawn.
    cfg.data.check_paths()
    loss_fn = build_loss(cfg.loss).to(device)
    spec = mining_spec(cfg.mining.mode, cfg.mining.groups_per_batch, cfg.mining.variations_per_group,
                       cfg.mining.coco_per_group, cfg.mining.sample_by_score)  # fmt: skip
    transform, tokenizer = ModelFunction("transform"), ModelFunction("tokenizer")
    data = build_train_data(
        cfg.data, spec, transform, tokenizer, cfg.mining.batch_size,
        cfg.seed, env.rank, env.world_size, needs_negatives=getattr(loss_fn, "needs_negatives", False),
        pin_memory=device.type == "cuda", needs_negative_images=getattr(loss_fn, "needs_negative_images", False),
    )  # fmt: skip
    logger.info("data: %s", data.stats)

    # 2. Model: from the resume snapshot if there is one, else from --pretrained.
    resume = _resume_path(cfg)
    snapshot = load_snapshot(resume, cfg.trust_pickle) if resume else None
    bundle = create_clip(cfg.clip_model, resume or cfg.pretrained, quick_gelu=cfg.quick_gelu,
                         trust_pickle=cfg.trust_pickle)  # fmt: skip
    logger.info("model %s, QuickGELU=%s (%s)", bundle.name, bundle.quick_gelu, bundle.quick_gelu_reason)
    transform.fn, tokenizer.fn = bundle.transform(is_train=cfg.data.augment), bundle.tokenizer
    model = bundle.model.to(device).train()
    if cfg.lock_image:
        model.lock_image_tower()
    if cfg.lock_text:
        model.lock_text_tower()
    steps_per_epoch = (data.steps_per_epoch or 0) // cfg.optim.accum_freq
    # The schedule spans the whole run; max_steps only stops early (it sets the span only if an epoch is
    # shorter than one accumulated step).
    total_steps = steps_per_epoch * cfg.epochs if steps_per_epoch else (cfg.max_steps or 1)

    # 3. Optimizer and the rest of the state.
    optimizer = build_optimizer(model, cfg.optim)
    state = TrainState()
    ddp_model = ContrastiveForward(model)
    if env.is_distributed:
        ddp_model = torch.nn.parallel.DistributedDataParallel(
            ddp_model, device_ids=[device.index] if device.type == "cuda" else None
        )
    step_fn = TrainStep(ddp_model, loss_fn, optimizer, cfg, device, env)
    if snapshot is not None:
        _restore(snapshot, model, optimizer, step_fn, loss_fn, state, resume)
        if state.epoch >= cfg.epochs and str(cfg.resume) != "latest":
            raise ConfigError(f"{resume} already finished epoch {state.epoch - 1}; --epoch {cfg.epochs} counts every "
                              f"epoch from 0, so nothing is left to train: pass --epoch {state.epoch + 1} or more")
    if env.is_main:
        try:
            save_path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"--output-dir {save_path}: cannot create the run folder ({exc.strerror or exc})") from exc
        save_config(cfg, save_path / "config.yaml")

    # 4. Epochs.
    log = MetricsLog(save_path, env.is_main, cfg.tensorboard, resume_step=state.step)
    result = FitResult()
    wait_fractions = []
    try:
        for epoch in range(state.epoch, cfg.epochs):
            state.epoch = epoch
            data.sampler.set_epoch(epoch)
            loss_fn.on_epoch_start()
            mean_loss, wait_fraction = train_one_epoch(step_fn, data, state, total_steps, log,
                                                       progress and env.is_main)  # fmt: skip
            wait_fractions.append(wait_fraction)
            result.epoch_losses.append(mean_loss)
            if env.is_main:
                result.snapshots.append(_save_epoch(save_path, epoch, model, optimizer, mean_loss, cfg, bundle,
                                                    state, step_fn, loss_fn))  # fmt: skip
            if env.is_distributed:
                dist.barrier()
            if cfg.max_steps is not None and state.step >= cfg.max_steps:
                break
    finally:
        log.close()
    result.steps, result.nonfinite_steps = state.step, state.nonfinite_total
    result.skipped_images = int(all_reduce_sum(state.skipped_images, device))
    result.data_wait_fraction = sum(wait_fractions) / max(len(wait_fractions), 1)
    result.seconds = time.perf_counter() - started
    return result


def _save_epoch(folder, epoch, model, optimizer, mean_loss, cfg, bundle, state, step_fn, loss_fn) -> Path:
    genemi_state = {
        "config": config_to_dict(cfg),
        "model_name": bundle.name,
        "model_cfg": bundle.model_cfg,
        "preprocess_cfg": dict(bundle.preprocess_cfg),
        "step": state.step,
        "nonfinite_total": state.nonfinite_total,
        "skipped_images": state.skipped_images,
        "scaler": step_fn.scaler.state_dict(),
        "loss_state": loss_fn.state_dict(),
    }
    path = save_snapshot(folder / f"model_{epoch}.pt", epoch, model, optimizer, mean_loss, genemi_state)
    if cfg.save_open_clip:
        save_open_clip_dir(model, bundle.model_cfg, bundle.preprocess_cfg, folder / "open_clip" / f"epoch_{epoch}")
    return path


def _restore(snapshot: dict, model, optimizer, step_fn: TrainStep, loss_fn, state: TrainState, path: Path) -> None:
    """Continue after the snapshot's epoch with its optimizer, scaler, loss state, step and RNG."""
    state.epoch = int(snapshot["epoch"]) + 1
    extra = snapshot.get("genemi", {})
    state.step = int(extra.get("step", 0))
    state.nonfinite_total = int(extra.get("nonfinite_total", 0))
    state.skipped_images = int(extra.get("skipped_images", 0))
    if "optimizer_state_dict" in snapshot:
        opt_state = snapshot["optimizer_state_dict"]
        if "genemi" not in snapshot:  # the original trainer's: OpenAI parameter order, fp16 state
            opt_state = remap_original_optimizer_state(opt_state, model, optimizer, path)
        try:
            optimizer.load_state_dict(opt_state)
        except (ValueError, KeyError) as exc:
            raise CheckpointError(
                f"{path}: optimizer state does not fit this run's optimizer/parameter groups ({exc}); "
                "use the same --optimizer and weight-decay grouping, or start from it with --pretrained instead"
            ) from exc
    if "scaler" in extra and extra["scaler"]:
        step_fn.scaler.load_state_dict(extra["scaler"])
    if "loss_state" in extra:
        loss_fn.load_state_dict(extra["loss_state"])
    if "rng" in extra:
        restore_rng_state(extra["rng"])
    logger.info("resumed from %s: continuing at epoch %d, step %d", path, state.epoch, state.step)
