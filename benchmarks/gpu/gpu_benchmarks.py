"""The GPU benchmarks of the one-command GPU check (``benchmarks/gpu/run.sh``), each with its baseline in
the same process, each under a time budget (a timing loop stops early rather than overrun; a section still
running at its budget + ``OVERRUN_GRACE_S`` is interrupted and the next one runs), all with random weights
built from configs (nothing is downloaded). In the order they run, the figure the docs need most first:

* ``sd2_inpaint``: the Stable Diffusion 2 inpainting UNet (in_channels 9), OpenCLIP ViT-H text encoder and
  VAE, bf16, 512 px, 4 and 8 variations with classifier-free guidance (UNet batch 8 / 16): s per step,
  variations/s at 50 and 100 steps, achieved TFLOP/s (1.61 TFLOP per CFG step per variation) as a fraction
  of the card's bf16 dense peak;
* ``train_ViT-B-32`` (and ``train_ViT-L-14``, fifth): one optimizer step, bf16 autocast, batch 256 / 64: genemi
  ``clip`` and ``ceclip`` (K = 4 negatives) against open_clip's own ``ClipLoss`` step (images/s, ratios);
* ``eval_sugarcrepe``: a SugarCrepe-sized synthetic run (7,511 items over 1,560 images) on ViT-B-32 through
  genemi's batched harness, and one item at a time (the official scripts' way) on a subset (items/s); fewer
  image-loading workers where /dev/shm is small; then, budget permitting, the same run as a user starts it
  (``genemi eval`` in a fresh process, defaults), wall time from process start (goal: under 60 s);
* ``grounding_dino``: Grounding DINO Swin-T (transformers config, BERT-base text) through genemi's backend,
  fp32 and bf16 (images/s: preprocessing, model forward, whole ``detect``);
* ``sam_vit_h``: SAM ViT-H (segment_anything's registry, no checkpoint) through genemi's segmenter, fp32;
* ``t2i_unets`` (stage ``t2i``): an SDXL-Turbo-sized UNet (4 steps, no guidance) and an SD-2.1-sized one (50
  steps, classifier-free guidance), random weights, bf16, 512 px, 8 images per batch, each with the SD VAE
  decoder: s per step, images/s, achieved TFLOP/s (1.589 TFLOP per SDXL UNet call per image, 0.804 per SD-2.1
  UNet call per image, counted on the meta device) as a fraction of the card's bf16 dense peak;
* ``offload_24gb``: peak GPU memory of each stage model at inference, and whether the chain fits a 24 GB
  card with ``--offload`` (one stage's models on the GPU at a time) or without it.

Writes ``OUT/gpu_summary.json`` and ``OUT/gpu_summary.md`` (gpu_summary.py) when each benchmark starts and
ends (a run cut short still leaves what it measured; ``gpu_summary.py finish``, which run.sh always calls,
completes it). Without CUDA it writes a summary saying so and exits 2. ``--dry-run``: CPU, tiny models of the
same architectures, one step each, no budgets; ``$GPU_TINY_MODELS``: a folder of tiny models as
:mod:`genemi.models.tiny` saves them (``grounding_dino/``) that a dry run reads instead of building its own (the
test suite passes the ones its session built).

    python benchmarks/gpu/gpu_benchmarks.py --out OUT            # on a CUDA machine (run.sh calls this)
    python benchmarks/gpu/gpu_benchmarks.py --out OUT --dry-run  # CPU, about a minute
"""

from __future__ import annotations

import time

PROCESS_START = time.perf_counter()  # the total budget counts imports and CUDA start-up too

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import traceback  # noqa: E402
from concurrent.futures import ThreadPoolExecutor  # noqa: E402
from datetime import datetime, timezone  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gpu_summary import BENCHMARKS, fmt, nvidia_smi, read_junit, shm_free_bytes, shm_info, versions  # noqa: E402
from gpu_summary import write_summaries  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
GiB = 2**30

#: seconds each section may take on the GPU, model builds included, in run order (gpu_summary.BENCHMARKS)
BUDGETS = {"sd2_inpaint": 45, "train_ViT-B-32": 30, "eval_sugarcrepe": 30, "grounding_dino": 20, "sam_vit_h": 15,
           "train_ViT-L-14": 20, "t2i_unets": 15, "offload_24gb": 5}
#: seconds for the whole benchmark process from its start: imports, CUDA start-up and meta (STARTUP_S), then
#: the sections (a section gets at most what is left); run.sh's timeout adds OVERRUN_GRACE_S and a margin
TOTAL_BUDGET = 200
STARTUP_S = 20
#: a section still running this long after its budget is interrupted (SIGALRM), keeping its figures so far
OVERRUN_GRACE_S = 10

SD_TFLOP_PER_CFG_STEP = 1.61  # one variation, 512 px (64x64 latents), UNet on the conditional + unconditional half
#: one UNet call for one image at 512 px (64x64 latents), torch's flop counter on the meta device
T2I_TFLOP_PER_UNET_CALL = {"sdxl-turbo": 1.589, "sd-2.1": 0.804}
#: (substring of torch.cuda.get_device_name, bf16 dense tensor TFLOP/s from the datasheet), first match wins
BF16_PEAKS = (("H100 PCIe", 756.0), ("H100 NVL", 835.0), ("GH200", 989.0), ("H200", 989.0), ("H100", 989.0),
              ("H800", 989.0), ("B200", 2250.0), ("A100", 312.0), ("A800", 312.0), ("L40S", 362.0), ("L40", 181.0),
              ("L4", 121.0), ("A10G", 70.0), ("A10", 125.0), ("RTX 4090", 165.0))
#: SugarCrepe's subsets and their sizes (7,511 items over 1,560 COCO val2017 images)
SUGARCREPE_SIZES = {"replace_obj": 1652, "replace_att": 788, "replace_rel": 1406, "swap_obj": 245, "swap_att": 666,
                    "add_obj": 2062, "add_att": 692}
SUGARCREPE_IMAGES = 1560

GD_RUN = (48, (640, 480), 8, 5)  # images, their size, batch, timed batches (Grounding DINO)

SD2_INPAINT_UNET = dict(  # stabilityai/stable-diffusion-2-inpainting, unet/config.json
    sample_size=64, in_channels=9, out_channels=4, center_input_sample=False, flip_sin_to_cos=True, freq_shift=0,
    down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    block_out_channels=(320, 640, 1280, 1280), layers_per_block=2, downsample_padding=1, mid_block_scale_factor=1,
    act_fn="silu", norm_num_groups=32, norm_eps=1e-5, cross_attention_dim=1024, attention_head_dim=(5, 10, 20, 20),
    use_linear_projection=True)
SD2_VAE = dict(in_channels=3, out_channels=3, latent_channels=4, layers_per_block=2, norm_num_groups=32,
               act_fn="silu", sample_size=512, block_out_channels=(128, 256, 512, 512),
               down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4)
SD2_TEXT = dict(vocab_size=49408, hidden_size=1024, intermediate_size=4096, num_hidden_layers=23,
                num_attention_heads=16, max_position_embeddings=77, hidden_act="gelu", projection_dim=512)
SDXL_UNET = dict(  # stabilityai/sdxl-turbo, unet/config.json (sample_size 64: trained at 512 px)
    sample_size=64, in_channels=4, out_channels=4, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D",
                                                                     "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"), block_out_channels=(320, 640, 1280),
    layers_per_block=2, transformer_layers_per_block=(1, 2, 10), attention_head_dim=(5, 10, 20),
    cross_attention_dim=2048, use_linear_projection=True, addition_embed_type="text_time", addition_time_embed_dim=256,
    projection_class_embeddings_input_dim=2816, norm_num_groups=32)
SD21_UNET = {**SD2_INPAINT_UNET, "in_channels": 4, "sample_size": 96}  # stabilityai/stable-diffusion-2-1 (768 px)
TINY_UNET = dict(sample_size=16, in_channels=9, out_channels=4, layers_per_block=1, block_out_channels=(32, 64),
                 down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                 up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=32,
                 attention_head_dim=(4, 8), use_linear_projection=True, norm_num_groups=32)
TINY_SDXL_UNET = dict(sample_size=16, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(32, 64),
                      down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                      up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=32,
                      attention_head_dim=(4, 8), use_linear_projection=True, norm_num_groups=32,
                      addition_embed_type="text_time", addition_time_embed_dim=8,
                      projection_class_embeddings_input_dim=80)
TINY_VAE = dict(in_channels=3, out_channels=3, latent_channels=4, layers_per_block=1, norm_num_groups=32,
                sample_size=32, block_out_channels=(32, 64), down_block_types=("DownEncoderBlock2D",) * 2,
                up_block_types=("UpDecoderBlock2D",) * 2)
TINY_TEXT = dict(vocab_size=49408, hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=2,
                 max_position_embeddings=77, hidden_act="gelu", projection_dim=16)

NOUNS = ["dog", "cat", "car", "bus", "man", "woman", "pizza", "chair", "bench", "horse", "umbrella", "table", "bird",
         "truck", "clock", "boat", "giraffe", "cup", "bear", "train", "kite", "plate", "bike", "sign"]
ADJECTIVES = ["red", "white", "small", "wooden", "black", "large", "blue", "old", "green", "yellow"]
RELATIONS = ["next to", "on top of", "behind", "in front of", "under", "near", "beside"]


# --- bookkeeping --------------------------------------------------------------------------------------------


class SectionTimeout(BaseException):
    """Raised in the main thread when a section runs past its budget + grace (a BaseException, so that the
    ``except Exception`` fallbacks inside the benchmarks do not swallow it)."""


class Section:
    """One benchmark's entry: its figures (value + unit), notes, status and time budget."""

    def __init__(self, run: "Run", name: str):
        self.run, self.name = run, name
        self.budget = min(BUDGETS[name], max(run.time_left(), 0.0)) if not run.dry_run else BUDGETS[name]
        self.start = time.perf_counter()
        self.deadline = self.start + self.budget
        self.entry = {"status": "running", "budget_s": round(self.budget, 1), "wall_s": None, "figures": {},
                      "notes": []}
        self.stopped_early = False

    def expired(self) -> bool:
        return not self.run.dry_run and time.perf_counter() > self.deadline

    def left(self) -> float:
        return self.deadline - time.perf_counter()

    def fig(self, key: str, value, unit: str) -> None:
        if isinstance(value, float):
            value = round(value, 4) if abs(value) < 100 else round(value, 1)
        self.entry["figures"][key] = {"value": value, "unit": unit}

    def note(self, text: str) -> None:
        self.entry["notes"].append(text)


class Run:
    def __init__(self, args, t0: float | None = None):
        self.args, self.dry_run = args, args.dry_run
        self.device = torch.device(args.device)
        self.cuda = self.device.type == "cuda"
        self.out = Path(args.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.t0 = time.perf_counter() if t0 is None else t0
        self.total_budget = args.total_budget
        self.tmp = Path(tempfile.mkdtemp(prefix="genemi-gpucheck-"))
        self.stage_memory: dict[str, dict] = {}  # stage model -> weights / peak GiB (for offload_24gb)
        self.summary = {"meta": self.meta(), "cuda_tests": None, "benchmarks": {}, "attached": {}}

    def time_left(self) -> float:
        return self.total_budget - (time.perf_counter() - self.t0)

    # -- environment
    def meta(self) -> dict:
        meta = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "dry_run": self.dry_run,
                "device": str(self.device), "python": platform.python_version(), "host": platform.node(),
                "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(), "versions": versions(),
                "tf32_matmul": torch.backends.cuda.matmul.allow_tf32, "tf32_cudnn": torch.backends.cudnn.allow_tf32,
                "shm": shm_info()}
        if self.cuda:
            name = torch.cuda.get_device_name(self.device)
            props = torch.cuda.get_device_properties(self.device)
            free, total = torch.cuda.mem_get_info(self.device)
            peak = next((p for key, p in BF16_PEAKS if key.lower() in name.lower()), None)
            meta.update({
                "card": name, "card_memory_gib": round(total / GiB, 2), "multiprocessors": props.multi_processor_count,
                "capability": f"{props.major}.{props.minor}", "cuda": torch.version.cuda,
                "cudnn": torch.backends.cudnn.version(), "memory_used_at_start_gib": round((total - free) / GiB, 3),
                "bf16_peak_tflops": peak,
                "bf16_peak_assumption": (f"{peak:g} TFLOP/s: datasheet bf16 dense peak for '{name}'" if peak else
                                         f"unknown card '{name}': no bf16 peak assumed, no fraction of peak"),
                "nvidia_smi": nvidia_smi(),
            })
        else:
            meta.update({"card": "CPU (dry run)" if self.dry_run else "CPU", "bf16_peak_tflops": None,
                         "bf16_peak_assumption": "CPU: no bf16 peak assumed", "nvidia_smi": nvidia_smi()})
        return meta

    # -- output
    def write(self) -> None:
        self.summary["meta"]["wall_s"] = round(time.perf_counter() - self.t0, 1)
        write_summaries(self.out, self.summary)

    def run_section(self, name: str, fn) -> None:
        """Run one benchmark under its budget; its failure is recorded and costs the others nothing. Outside a
        dry run, a section still running ``OVERRUN_GRACE_S`` after its budget is interrupted (SIGALRM raises
        :class:`SectionTimeout` in it) with status ``timeout``: its figures so far stay, the next section runs."""
        sec = Section(self, name)
        self.summary["benchmarks"][name] = sec.entry
        print(f"\n== {name} (budget {sec.budget:.0f} s)", flush=True)
        self.write()  # a process killed from outside leaves this section "running" (gpu_summary.py finish: "killed")
        limit = sec.budget + OVERRUN_GRACE_S
        alarm = (not self.dry_run and hasattr(signal, "setitimer")
                 and threading.current_thread() is threading.main_thread())
        previous = None

        def overran(signum, frame):
            raise SectionTimeout()

        try:
            try:
                if sec.budget < 3 and not self.dry_run:
                    sec.entry["status"] = "skipped"
                    sec.note("no time left in the run's total budget")
                else:
                    if alarm:
                        previous = signal.signal(signal.SIGALRM, overran)
                        signal.setitimer(signal.ITIMER_REAL, limit)
                    fn(sec)
                    sec.entry["status"] = "partial" if sec.stopped_early else "ok"
                    if sec.stopped_early:
                        sec.note("stopped early at its time budget: fewer iterations or variants than planned")
            finally:
                if alarm:
                    signal.setitimer(signal.ITIMER_REAL, 0)
        except SectionTimeout:
            sec.entry["status"] = "timeout"
            sec.entry["error"] = (f"still running {OVERRUN_GRACE_S} s after its {sec.budget:.0f} s budget: "
                                  f"interrupted at {limit:.0f} s")
            sec.note("figures recorded before the interruption are kept")
            print(f"   {name}: {sec.entry['error']}", flush=True)
        except Exception as exc:  # noqa: BLE001
            sec.entry["status"] = "error"
            sec.entry["error"] = f"{type(exc).__name__}: {exc}"[:2000]
            sec.entry["traceback"] = traceback.format_exc()[-4000:]
            traceback.print_exc()
        finally:
            if previous is not None:
                signal.signal(signal.SIGALRM, previous)
            sec.entry["wall_s"] = round(time.perf_counter() - sec.start, 1)
            free_memory()
            for key, f in sec.entry["figures"].items():
                print(f"   {key:<66} {fmt(f['value']):>12} {f['unit']}", flush=True)
            print(f"   -> {sec.entry['status']} in {sec.entry['wall_s']} s", flush=True)
            self.write()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def free_memory() -> None:
    if torch.cuda.is_available():  # on the CPU (dry run) there is no cache to give back: skip the slow collect
        import gc

        gc.collect()
        torch.cuda.empty_cache()


def reset_peak(run: Run) -> None:
    if run.cuda:
        sync(run.device)
        free_memory()
        torch.cuda.reset_peak_memory_stats(run.device)


def peak_gib(run: Run) -> tuple[float | None, float | None]:
    """(max allocated, max reserved) since the last reset, GiB; None on the CPU."""
    if not run.cuda:
        return None, None
    sync(run.device)
    return (torch.cuda.max_memory_allocated(run.device) / GiB, torch.cuda.max_memory_reserved(run.device) / GiB)


def weights_gib(*modules) -> float:
    return sum(t.numel() * t.element_size() for m in modules for t in list(m.parameters()) + list(m.buffers())) / GiB


def build(fn, device: torch.device):
    """Build a randomly initialised module directly on ``device`` (fast init of huge models), else on the CPU."""
    try:
        with torch.device(device):
            module = fn()
    except Exception:  # noqa: BLE001 - some constructors insist on CPU tensors
        module = fn()
    return module.to(device)


def timed_loop(fn, run: Run, sec: Section, warmup: int, iters: int, min_iters: int = 1) -> list[float]:
    """Seconds per call after ``warmup`` calls (synchronised around each call); stops at the section's budget
    once ``min_iters`` calls are timed. A dry run times one call, without warm-up."""
    if run.dry_run:
        warmup, iters = 0, 1
    for _ in range(warmup):
        fn()
        if sec.expired():
            break
    sync(run.device)
    times: list[float] = []
    while len(times) < iters:
        start = time.perf_counter()
        fn()
        sync(run.device)
        times.append(time.perf_counter() - start)
        if len(times) >= min_iters and len(times) < iters and sec.expired():
            sec.stopped_early = True
            break
    return times


# --- training step ------------------------------------------------------------------------------------------


def bench_train(run: Run, sec: Section, model_name: str, batch: int, negatives: int = 4) -> None:
    from open_clip.loss import ClipLoss as OpenClipLoss

    from genemi.distributed import DistEnv
    from genemi.models.clip import ContrastiveForward, build_clip, build_tokenizer, resolve_model_spec
    from genemi.training.config import TrainConfig
    from genemi.training.data import Batch
    from genemi.training.loop import TrainStep, build_optimizer
    from genemi.training.losses import LossConfig, build_loss

    device = run.device
    if run.dry_run:
        from genemi.models.tiny.clip import tiny_clip_config

        cfg, batch, precision = tiny_clip_config(), 4, "fp32"
        sec.note(f"dry run: tiny CLIP instead of {model_name}, batch 4, fp32, one step each")
    else:
        cfg, precision = resolve_model_spec(model_name).model_cfg, "bf16"
    torch.manual_seed(0)
    model = build(lambda: build_clip(cfg), device).train()
    size = cfg["vision_cfg"]["image_size"]
    images = torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(0)).to(device)
    tok = build_tokenizer(model_name, cfg)
    words = "a man riding a red bike next to a small dog on the wet street near two parked cars".split()
    sentences = [" ".join(words[: 8 + i % 9]) for i in range(batch * (1 + negatives))]
    tokens = tok(sentences).to(device)
    texts, negs = tokens[:batch], tokens[batch:].view(batch, negatives, -1)
    valid = torch.ones(batch, negatives, dtype=torch.bool, device=device)
    train_cfg = TrainConfig(precision=precision, max_logit_scale=100.0)
    train_cfg.optim.optimizer = "adamw"
    optimizer = build_optimizer(model, train_cfg.optim)
    dtype = {"fp32": None, "bf16": torch.bfloat16}[precision]
    open_clip_loss = OpenClipLoss()

    def baseline():  # open_clip's own step: forward under autocast, ClipLoss, backward, AdamW
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            img_f, txt_f, scale = model(images, texts)[:3]
            loss = open_clip_loss(img_f, txt_f, scale)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, 4.6052)

    env = DistEnv()
    clip_step = TrainStep(ContrastiveForward(model), build_loss(LossConfig(name="clip")), optimizer, train_cfg, device,
                          env)
    ceclip_step = TrainStep(ContrastiveForward(model), build_loss(LossConfig(name="ceclip")), optimizer, train_cfg,
                            device, env)
    plain, hard = Batch(images, texts, None, None, 0), Batch(images, texts, negs, valid, 0)
    names = ["open_clip ClipLoss", "genemi clip", f"genemi ceclip K={negatives}"]
    fns = [baseline, lambda: clip_step([plain], 1e-5), lambda: ceclip_step([hard], 1e-5)]
    reset_peak(run)
    rounds, warmup, iters = (1, 1, 1) if run.dry_run else (3, 2, 5)
    results: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds):  # interleaved so drift hits the three alike
        for name, fn in zip(names, fns):
            results[name] += timed_loop(fn, run, sec, warmup if r == 0 else 1, iters)
        if r < rounds - 1 and sec.expired():
            sec.stopped_early = True
            break
    med = {n: statistics.median(v) for n, v in results.items()}
    base = med[names[0]]
    sec.fig("model", model_name if not run.dry_run else "tiny", "")
    sec.fig("batch", batch, "image-caption pairs")
    sec.fig("precision", "bf16 autocast" if dtype is not None else "fp32", "")
    for name in names:
        sec.fig(f"{name}: step time (median of {len(results[name])})", 1000 * med[name], "ms/step")
        sec.fig(f"{name}: throughput", batch / med[name], "images/s")
    sec.fig("ratio genemi clip / open_clip", med[names[1]] / base, "x (step time)")
    sec.fig(f"ratio genemi ceclip K={negatives} / open_clip", med[names[2]] / base, "x (step time)")
    alloc, reserved = peak_gib(run)
    sec.fig("peak GPU memory allocated", alloc, "GiB")
    sec.fig("peak GPU memory reserved", reserved, "GiB")


# --- evaluation ---------------------------------------------------------------------------------------------


def write_image(path: Path, seed: int, size: tuple[int, int]) -> None:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
    img = Image.fromarray(small).resize(size, Image.BICUBIC)
    img.save(path, quality=90)


def write_sugarcrepe(root: Path, n_images: int, sizes: dict[str, int],
                     image_size: tuple[int, int]) -> tuple[Path, Path]:
    """SugarCrepe's layout (``<subset>.json`` of ``{filename, caption, negative_caption}``), synthetic captions
    and smooth random JPEGs named like COCO val2017 files; items spread over the images as in SugarCrepe."""
    import random

    ann, images = root / "annotations", root / "val2017"
    ann.mkdir(parents=True, exist_ok=True)
    images.mkdir(parents=True, exist_ok=True)
    names = [f"{139 + 7 * k:012d}.jpg" for k in range(n_images)]
    with ThreadPoolExecutor(min(16, os.cpu_count() or 1)) as pool:
        list(pool.map(lambda k: write_image(images / names[k], k, image_size), range(n_images)))
    rng = random.Random(0)
    order = names[:]
    rng.shuffle(order)
    counter = 0
    for subset, n in sizes.items():
        data = {}
        for i in range(n):
            a, b = rng.sample(NOUNS, 2)
            ja, jb = rng.sample(ADJECTIVES, 2)
            rel = rng.choice(RELATIONS)
            caption = f"a {ja} {a} {rel} a {jb} {b}"
            negative = f"a {jb} {a} {rel} a {ja} {b}" if subset.endswith("att") else f"a {ja} {b} {rel} a {jb} {a}"
            data[str(i)] = {"filename": order[counter % n_images], "caption": caption, "negative_caption": negative}
            counter += 1
        (ann / f"{subset}.json").write_text(json.dumps(data))
    return ann, images


def subset_files(root: Path, n_images: int, out: Path) -> Path:
    """Every item whose image is among the first ``n_images`` file names (SugarCrepe's ratio of items to images)."""
    files = {f.name: json.loads(f.read_text()) for f in sorted(root.glob("*.json"))}
    keep = set(sorted({v["filename"] for data in files.values() for v in data.values()})[:n_images])
    out.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (out / name).write_text(json.dumps({k: v for k, v in data.items() if v["filename"] in keep}))
    return out


def loader_workers(wanted: int, batch_bytes: int, free: int | None = None) -> tuple[int, str | None]:
    """How many image-loading workers /dev/shm can carry (``free`` bytes; default: measured): each worker keeps
    up to 2 collated batches there (DataLoader's prefetch_factor) and the main process one more, with a 25 %
    margin; a Docker default of 64 MiB holds not even one 256-image batch (147 MiB at 224 px): 0 workers."""
    free = shm_free_bytes() if free is None else free
    if wanted <= 0 or free is None:
        return wanted, None
    fits = max(0, int((free / 1.25 / batch_bytes - 1) // 2))
    if fits >= wanted:
        return wanted, None
    return fits, (f"/dev/shm has {free / GiB:.2f} GiB free: {fits} image-loading workers instead of {wanted} "
                  f"(each keeps up to 2 batches of {batch_bytes / 2**20:.0f} MiB there)")


def with_loader_fallback(fn, embedder, sec: Section):
    """``fn()``; if its image-loading workers die for want of shared memory, once more in the main process."""
    try:
        return fn()
    except RuntimeError as exc:
        text = str(exc)
        if embedder.workers == 0 or not any(k in text for k in ("shared memory", "DataLoader worker", "shm")):
            raise
        sec.note(f"image-loading workers failed ({text.strip().splitlines()[0][:200]}): ran again with 0 workers")
        print(f"   loader workers failed, again with 0 workers: {text.strip().splitlines()[0][:200]}", flush=True)
        embedder.workers = 0
        return fn()


def bench_eval(run: Run, sec: Section) -> None:
    from genemi.evaluation.benchmarks.sugarcrepe import SugarCrepe
    from genemi.evaluation.runner import evaluate
    from genemi.evaluation.scoring import ClipEmbedder
    from genemi.images import load_rgb
    from genemi.models.clip import create_clip

    device = run.device
    if run.dry_run:
        from genemi.models.tiny.clip import tiny_clip_config

        sizes = {k: max(2, v // 250) for k, v in SUGARCREPE_SIZES.items()}
        n_images, image_size, n_sub, batch, workers = 12, (96, 72), 4, 16, 0
        config = run.tmp / "tiny-clip.json"
        config.write_text(json.dumps({"model_cfg": tiny_clip_config()}))
        torch.manual_seed(0)
        bundle = create_clip(str(config), None)
        model_name = "tiny"
        sec.note("dry run: tiny CLIP, a few items on 12 small images")
    else:
        sizes, n_images, image_size, n_sub = SUGARCREPE_SIZES, SUGARCREPE_IMAGES, (640, 480), 150
        batch, workers = 256, min(8, os.cpu_count() or 1)
        torch.manual_seed(0)
        bundle = create_clip("ViT-B-32", None)
        model_name = "ViT-B-32"
    start = time.perf_counter()
    ann, images = write_sugarcrepe(run.tmp / "sugarcrepe", n_images, sizes, image_size)
    sec.fig("synthetic images written (untimed setup)", time.perf_counter() - start, "s")
    px = bundle.preprocess_cfg.get("size", 224)
    px = px[0] if isinstance(px, (list, tuple)) else px
    workers, shm_note = loader_workers(workers, batch * 3 * px * px * 4)
    if shm_note:
        sec.note(shm_note)
        print(f"   {shm_note}", flush=True)
    embedder = ClipEmbedder(bundle, device, batch, workers, progress=False)
    full = SugarCrepe(ann, images)
    small = SugarCrepe(subset_files(ann, n_sub, run.tmp / "subset"), images)
    n_full = sum(len(v) for v in full.items.values())
    n_small = sum(len(v) for v in small.items.values())
    reset_peak(run)
    if not run.dry_run:  # warm-up: loader workers, kernels, autotuning
        with_loader_fallback(lambda: evaluate(embedder, [small]), embedder, sec)
    start = time.perf_counter()
    batched = with_loader_fallback(lambda: evaluate(embedder, [small]), embedder, sec)["sugarcrepe"].metrics
    t_small = time.perf_counter() - start
    start = time.perf_counter()
    with_loader_fallback(lambda: evaluate(embedder, [full]), embedder, sec)
    t_full = time.perf_counter() - start

    # one item at a time (SugarCrepe's main_eval.py): image, its two captions, compare; same autocast as above
    model, transform = bundle.model, bundle.transform(False)
    done, correct, single = 0, {}, {}
    start = time.perf_counter()
    with torch.no_grad(), embedder._autocast():
        for subset, items in small.items.items():
            if not items:
                continue
            for _, filename, pos, neg in items:
                img = transform(load_rgb(images / filename))[None].to(device)
                i = torch.nn.functional.normalize(model.encode_image(img).float(), dim=-1)
                t = torch.nn.functional.normalize(model.encode_text(bundle.tokenizer([pos, neg]).to(device)).float(),
                                                  dim=-1)
                s = (i @ t.T)[0]
                correct[subset] = correct.get(subset, 0) + bool(s[0] > s[1])
                done += 1
                if sec.expired() and done >= 20:
                    break
            else:
                single[subset] = 100 * correct.get(subset, 0) / len(items)
                continue
            sec.stopped_early = True
            break
    sync(device)
    t_single = time.perf_counter() - start
    sec.fig("model", model_name + " (random weights)", "")
    sec.fig("precision", "bf16 autocast" if embedder.dtype is not None else "fp32", "")
    sec.fig("full run: items", n_full, "items")
    sec.fig("full run: images", len({f for v in full.items.values() for _, f, _, _ in v}), "images")
    sec.fig("full run: genemi batched harness, wall", t_full, "s")
    sec.fig("full run: genemi batched harness", n_full / t_full, "items/s")
    sec.fig(f"subset ({n_sub} images): items", n_small, "items")
    sec.fig("subset: genemi batched harness", n_small / t_small, "items/s")
    sec.fig("subset: one item at a time (official way), items timed", done, "items")
    sec.fig("subset: one item at a time (official way)", done / t_single, "items/s")
    sec.fig("speed-up batched / one at a time", (n_small / t_small) / (done / t_single), "x")
    if not sec.stopped_early and single:
        diff = max(abs(batched[s] - single[s]) for s in single)
        sec.fig("max accuracy difference batched vs one at a time, same autocast", diff, "percentage points")
    alloc, reserved = peak_gib(run)
    sec.fig("peak GPU memory allocated", alloc, "GiB")
    sec.fig("peak GPU memory reserved", reserved, "GiB")
    sec.fig("image-loading workers", embedder.workers, "processes")
    sec.fig("batch size", batch, "images or captions")
    eval_command_line(run, sec, str(config) if run.dry_run else model_name, ann, images)


def eval_command_line(run: Run, sec: Section, clip_model: str, ann: Path, images: Path) -> None:
    """The whole SugarCrepe run as a user starts it (``genemi eval`` in a fresh process with its default
    batch, workers and precision): wall time including imports, CUDA start-up and model build (goal: under 60 s
    on an H100 for ViT-B-32). Skipped when the section's budget has no room for it."""
    import subprocess
    import sys

    if not run.dry_run and sec.deadline - time.perf_counter() < 20:
        sec.note("genemi eval command line: skipped, budget spent")
        return
    out = run.tmp / "eval-cli"
    command = [sys.executable, "-m", "genemi.evaluation.eval_autogmentation", "--model-name", "e2e",
               "--clip-model", clip_model, "--baseline", "random=", "--benchmarks", "sugarcrepe",
               "--sugarcrepe-root", str(ann), "--coco-val2017", str(images), "--device", str(run.device),
               "--no-progress", "--output-dir", str(out)]
    timeout = None if run.dry_run else max(5.0, sec.deadline - time.perf_counter() + OVERRUN_GRACE_S / 2)
    start = time.perf_counter()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, "HF_HUB_OFFLINE": "1"})
    except subprocess.TimeoutExpired:
        sec.note(f"genemi eval command line: still running after {timeout:.0f} s, stopped")
        return
    wall = time.perf_counter() - start
    if done.returncode != 0:
        last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        sec.note(f"genemi eval command line failed (exit {done.returncode}): {last[0][:200]}")
        return
    sec.fig("genemi eval command line, whole SugarCrepe run, wall (process start to exit)", wall, "s")


# --- generation pipeline stages -----------------------------------------------------------------------------


def pipeline_images(n: int, size: tuple[int, int]):
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    out = []
    for k in range(n):
        small = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
        out.append(Image.fromarray(small).resize(size, Image.BICUBIC))
    return out


def tiny_model_folder(run: Run, name: str) -> Path:
    """A dry run's tiny model folder ``name`` (as :mod:`genemi.models.tiny` saves it): from ``$GPU_TINY_MODELS``
    when that folder holds it (the test suite's, built once per session), else built into the run's tmp."""
    shared = os.environ.get("GPU_TINY_MODELS")
    if shared and (Path(shared) / name).is_dir():
        return Path(shared) / name
    from genemi.models.tiny import detection

    return {"grounding_dino": detection.save_tiny_grounding_dino}[name](run.tmp / "tiny")[name]


def bench_grounding(run: Run, sec: Section) -> None:
    from genemi.generation_pipeline.grounding import GroundConfig
    from genemi.generation_pipeline.grounding.grounding_dino import GroundingDino, load_grounding_model
    from genemi.generation_pipeline.stage import StageContext

    device = run.device
    if run.dry_run:
        folder = tiny_model_folder(run, "grounding_dino")
        model, processor = load_grounding_model(folder)
        n_img, size, batch, iters = 4, (96, 72), 2, 1
        sec.note(f"dry run: tiny Grounding DINO (98 px, {folder}), 4 images")
    else:
        from transformers import (AutoProcessor, BertTokenizer, GroundingDinoConfig, GroundingDinoForObjectDetection,
                                  GroundingDinoImageProcessor, GroundingDinoProcessor, SwinConfig)

        from genemi.models.tiny.detection import bert_vocab

        backbone = SwinConfig(embed_dim=96, depths=[2, 2, 6, 2], num_heads=[3, 6, 12, 24], window_size=7,
                              out_features=["stage2", "stage3", "stage4"], out_indices=[2, 3, 4])
        cfg = GroundingDinoConfig(backbone_config=backbone)  # grounding-dino-tiny: Swin-T + BERT-base, 900 queries
        torch.manual_seed(0)
        model = build(lambda: GroundingDinoForObjectDetection(cfg), device).eval()
        # no download: a WordPiece vocabulary with BERT's special ids (the model's embeddings stay 30,522 rows)
        tok = BertTokenizer(vocab=bert_vocab(), do_lower_case=True, model_max_length=cfg.max_text_len)
        # saved and loaded back as genemi loads a model folder's processor (800 px short side, 1333 max)
        GroundingDinoProcessor(GroundingDinoImageProcessor(), tok).save_pretrained(run.tmp / "gd_processor")
        processor = AutoProcessor.from_pretrained(run.tmp / "gd_processor", local_files_only=True)
        n_img, size, batch, iters = GD_RUN
    images = pipeline_images(n_img, size)
    items = [["red square", "blue box", "green block"]] * n_img
    sec.fig("model", "Grounding DINO Swin-T + BERT-base (random weights)" if not run.dry_run else "tiny", "")
    sec.fig("images", f"{size[0]}x{size[1]}, batches of {batch}", "")
    weights = {}
    for label, dtype in (("fp32", None), ("bf16", torch.bfloat16)):
        if sec.expired():
            sec.stopped_early = True
            sec.note(f"{label}: skipped, budget spent")
            continue
        det = GroundingDino(GroundConfig(batch_size=batch), StageContext(device=str(device), dtype=dtype),
                            model=model, processor=processor)
        det.load()
        reset_peak(run)
        batches = [images[i : i + batch] for i in range(0, n_img, batch)]
        prompts = ["red square . blue box . green block ."] * batch
        start = time.perf_counter()
        inputs = processor(images=batches[0], text=prompts, return_tensors="pt", padding="max_length",
                           max_length=getattr(model.config, "max_text_len", 256), truncation=True)
        t_pre = time.perf_counter() - start
        inputs = inputs.to(device)
        if dtype is not None:
            inputs["pixel_values"] = inputs["pixel_values"].to(dtype)
        sec.fig(f"{label}: processor alone (CPU)", batch / t_pre, "images/s")
        with torch.no_grad():
            times = timed_loop(lambda: model(**inputs), run, sec, warmup=2, iters=iters)
            # Random weights score every query alike: keep the ~10 best per image (real models keep a few),
            # so that box post-processing costs what it costs on real detections.
            best = model(**inputs).logits.float().sigmoid().max(-1).values  # [B, queries]
            det.box_threshold = float(best.topk(min(10, best.shape[1]), dim=1).values[:, -1].min()) - 1e-6
        sec.fig(f"{label}: model forward alone, input {tuple(inputs['pixel_values'].shape[-2:])}",
                batch / statistics.median(times), "images/s")
        sec.fig(f"{label}: box threshold used (keeps ~10 queries per image)", det.box_threshold, "")
        k = iter(range(10**9))

        def detect_one():
            j = next(k) % len(batches)
            return det.detect(batches[j], items[:batch])

        times = timed_loop(detect_one, run, sec, warmup=1, iters=iters)
        sec.fig(f"{label}: detect (preprocess + forward + boxes), batch {batch}", batch / statistics.median(times),
                "images/s")
        boxes = [len(d.boxes) for d in det.detect(batches[0], items[:batch])]
        sec.fig(f"{label}: boxes kept per image (random weights)", sum(boxes) / len(boxes), "boxes")
        alloc, reserved = peak_gib(run)
        sec.fig(f"{label}: peak GPU memory allocated", alloc, "GiB")
        sec.fig(f"{label}: peak GPU memory reserved", reserved, "GiB")
        weights[label] = weights_gib(model)
        run.stage_memory[f"ground ({label})"] = {"weights_gib": weights[label], "peak_allocated_gib": alloc,
                                                 "peak_reserved_gib": reserved}
    sec.fig("weights fp32", weights.get("fp32"), "GiB")


def bench_sam(run: Run, sec: Section) -> None:
    import numpy as np
    from segment_anything import SamPredictor

    from genemi.generation_pipeline.segmentation import SegmentConfig
    from genemi.generation_pipeline.segmentation.sam import SamSegmenter
    from genemi.generation_pipeline.stage import StageContext

    device = run.device
    if run.dry_run:
        from genemi.models.tiny.detection import tiny_sam_modules

        sam, n_img, size, iters = tiny_sam_modules(), 3, (96, 72), 1
        sec.note("dry run: tiny SAM (64 px)")
    else:
        from segment_anything import sam_model_registry

        torch.manual_seed(0)
        sam = build(lambda: sam_model_registry["vit_h"](checkpoint=None), device).eval()
        n_img, size, iters = 16, (640, 480), 12
    seg = SamSegmenter(SegmentConfig(), StageContext(device=str(device)))
    seg.predictor = SamPredictor(sam)
    seg.load()
    arrays = [np.asarray(im) for im in pipeline_images(n_img, size)]
    w, h = size
    boxes = torch.tensor([[0.1 * w, 0.1 * h, 0.4 * w, 0.5 * h], [0.3 * w, 0.2 * h, 0.9 * w, 0.8 * h],
                          [0.5 * w, 0.5 * h, 0.7 * w, 0.9 * h]], dtype=torch.float32)
    reset_peak(run)
    k = iter(range(10**9))
    times = timed_loop(lambda: seg.segment(arrays[next(k) % n_img], boxes), run, sec, warmup=2, iters=iters)
    sec.fig("model", "SAM ViT-H (random weights), fp32 as genemi runs it" if not run.dry_run else "tiny SAM", "")
    sec.fig("images", f"{w}x{h}, 3 boxes each, embedding once per image", "")
    sec.fig(f"segment: embedding + 3 boxes (median of {len(times)})", 1 / statistics.median(times), "images/s")
    alloc, reserved = peak_gib(run)
    sec.fig("peak GPU memory allocated", alloc, "GiB")
    sec.fig("peak GPU memory reserved", reserved, "GiB")
    sec.fig("weights fp32", weights_gib(sam), "GiB")
    run.stage_memory["segment"] = {"weights_gib": weights_gib(sam), "peak_allocated_gib": alloc,
                                   "peak_reserved_gib": reserved}


def count_tflop(fn) -> float | None:
    try:
        from torch.utils.flop_counter import FlopCounterMode

        with FlopCounterMode(display=False) as counter:
            fn()
        return counter.get_total_flops() / 1e12
    except Exception:  # noqa: BLE001 - a figure for cross-checking only
        return None


def matmul_ceiling(run: Run, n: int = 8192, reps: int = 10) -> float | None:
    """bf16 n x n x n matrix product rate on this card (TFLOP/s, random data, mean of ``reps`` after 3 warm-ups)."""
    if not run.cuda:
        return None
    a = torch.randn(n, n, device=run.device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=run.device, dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(reps):
        a @ b
    end.record()
    end.synchronize()
    return 2 * n**3 * reps / (start.elapsed_time(end) / 1000) / 1e12


def bench_sd(run: Run, sec: Section) -> None:
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from diffusers.utils import logging as diffusers_logging
    from transformers import CLIPTextConfig, CLIPTextModel

    diffusers_logging.set_verbosity_error()

    device, dry = run.device, run.dry_run
    dtype = torch.bfloat16 if run.cuda else torch.float32
    unet_cfg, vae_cfg, text_cfg = (TINY_UNET, TINY_VAE, TINY_TEXT) if dry else (SD2_INPAINT_UNET, SD2_VAE, SD2_TEXT)
    torch.manual_seed(0)
    unet = build(lambda: UNet2DConditionModel(**unet_cfg), device).to(dtype).eval()
    vae = build(lambda: AutoencoderKL(**vae_cfg), device).to(dtype).eval()
    text = build(lambda: CLIPTextModel(CLIPTextConfig(**text_cfg)), device).to(dtype).eval()
    latent = unet_cfg["sample_size"]
    pixels = latent * 2 ** (len(vae_cfg["block_out_channels"]) - 1)
    steps_timed, guidance = (1, 7.5) if dry else (8, 7.5)
    sec.fig("models", ("tiny UNet / VAE / text encoder" if dry else
                       "SD-2-inpainting UNet (9 input channels) + VAE + OpenCLIP ViT-H text encoder (random weights)"),
            "")
    sec.fig("precision", str(dtype).replace("torch.", ""), "")
    sec.fig("image size", pixels, "px")
    sec.fig("UNet parameters", sum(p.numel() for p in unet.parameters()) / 1e6, "M")
    peak = run.summary["meta"].get("bf16_peak_tflops")
    ceiling = matmul_ceiling(run)
    if ceiling:
        sec.fig("bf16 matmul 8192x8192x8192 on this card (measured ceiling)", ceiling, "TFLOP/s")
    gen = torch.Generator(device=device).manual_seed(0)
    per_variation = {}
    with torch.inference_mode():
        for b in (4, 8):
            if sec.expired():
                sec.stopped_early = True
                sec.note(f"batch {b}: skipped, budget spent")
                continue
            reset_peak(run)
            ids = torch.randint(0, text_cfg["vocab_size"], (2 * b, 77), device=device, generator=gen)
            masked_image = torch.rand(b, 3, pixels, pixels, device=device, generator=gen, dtype=dtype) * 2 - 1
            mask = (torch.rand(b, 1, latent, latent, device=device, generator=gen) > 0.5).to(dtype)
            latents = torch.randn(b, 4, latent, latent, device=device, generator=gen, dtype=dtype)
            t = torch.tensor(500, device=device)

            def encode_text():
                return text(ids).last_hidden_state

            def encode_image():
                return vae.encode(masked_image).latent_dist.sample(generator=gen) * 0.18215

            emb = encode_text()
            masked_latents = encode_image()
            cond = torch.cat([mask, masked_latents], 1).repeat(2, 1, 1, 1)

            def unet_step():  # one denoising step with classifier-free guidance: UNet batch 2b
                nonlocal latents
                x = torch.cat([torch.cat([latents, latents]), cond], 1)
                out = unet(x, t, encoder_hidden_states=emb).sample
                uncond, cond_out = out.chunk(2)
                latents = latents - 0.01 * (uncond + guidance * (cond_out - uncond))  # stand-in scheduler update

            def decode():
                return vae.decode(latents / 0.18215).sample

            times = timed_loop(unet_step, run, sec, warmup=2, iters=steps_timed, min_iters=2 if not dry else 1)
            step = statistics.median(times)
            t_text = statistics.median(timed_loop(encode_text, run, sec, warmup=1, iters=2 if not dry else 1))
            t_enc = statistics.median(timed_loop(encode_image, run, sec, warmup=1, iters=2 if not dry else 1))
            t_dec = statistics.median(timed_loop(decode, run, sec, warmup=1, iters=2 if not dry else 1))
            counted = count_tflop(unet_step)
            sec.fig(f"batch {b} (UNet batch {2 * b}): s per CFG step (median of {len(times)})", step, "s")
            for n in (50, 100):
                sec.fig(f"batch {b}: UNet only, {n} steps", b / (n * step), "variations/s")
                sec.fig(f"batch {b}: text encoder + VAE encode + {n} UNet steps + VAE decode",
                        b / (t_text + t_enc + n * step + t_dec), "variations/s")
            sec.fig(f"batch {b}: VAE encode + decode per variation", 1000 * (t_enc + t_dec) / b, "ms")
            if counted is not None:
                sec.fig(f"batch {b}: counted FLOPs per CFG step per variation (torch flop counter)", counted / b,
                        "TFLOP")
                sec.fig(f"batch {b}: achieved (counted FLOPs)", counted / step, "TFLOP/s")
            if not dry:
                achieved = SD_TFLOP_PER_CFG_STEP * b / step
                sec.fig(f"batch {b}: achieved (1.61 TFLOP per CFG step per variation)", achieved, "TFLOP/s")
                if peak:
                    sec.fig(f"batch {b}: fraction of bf16 dense peak ({peak:g} TFLOP/s)", achieved / peak, "")
                if ceiling:
                    sec.fig(f"batch {b}: fraction of the measured matmul ceiling", achieved / ceiling, "")
            alloc, reserved = peak_gib(run)
            sec.fig(f"batch {b}: peak GPU memory allocated (UNet + VAE + text encoder resident)", alloc, "GiB")
            sec.fig(f"batch {b}: peak GPU memory reserved", reserved, "GiB")
            per_variation[b] = (alloc, reserved)
            run.stage_memory[f"inpaint (batch {b})"] = {"weights_gib": weights_gib(unet, vae, text),
                                                        "peak_allocated_gib": alloc, "peak_reserved_gib": reserved}
    sec.fig("weights UNet + VAE + text encoder", weights_gib(unet, vae, text), "GiB")
    sec.note("UNet steps use a stand-in scheduler update (one axpy); text encoder and VAE run once per batch; the "
             "1.61 TFLOP figure is per variation and CFG step at 512 px (both halves of the guidance batch)")


def bench_t2i(run: Run, sec: Section) -> None:
    """Stage ``t2i``'s denoising at 512 px: the UNet of each family at its preset's steps and guidance, then the
    VAE decoder, 8 images per batch (text encoders left out: one call per batch, small next to the UNet)."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from diffusers.utils import logging as diffusers_logging

    diffusers_logging.set_verbosity_error()
    device, dry = run.device, run.dry_run
    dtype = torch.bfloat16 if run.cuda else torch.float32
    peak = run.summary["meta"].get("bf16_peak_tflops")
    b, steps_timed = (2, 1) if dry else (8, 4)
    sec.fig("precision, images per batch", f"{str(dtype).replace('torch.', '')}, {b}", "")
    torch.manual_seed(0)
    vae = build(lambda: AutoencoderKL(**(TINY_VAE if dry else SD2_VAE)), device).to(dtype).eval()
    gen = torch.Generator(device=device).manual_seed(0)
    # name, UNet config, steps (the t2i preset's), classifier-free guidance, width of the text embeddings
    models = (("sdxl-turbo", TINY_SDXL_UNET if dry else SDXL_UNET, 4, False),
              ("sd-2.1", TINY_UNET | {"in_channels": 4} if dry else SD21_UNET, 50, True))
    for name, cfg, steps, cfg_guidance in models:
        if sec.expired():
            sec.stopped_early = True
            sec.note(f"{name}: skipped, budget spent")
            continue
        reset_peak(run)
        unet = build(lambda: UNet2DConditionModel(**cfg), device).to(dtype).eval()
        latent = 16 if dry else 64  # 512 px through the VAE's 8x (tiny: 32 px, 2x)
        rows = 2 * b if cfg_guidance else b
        context = torch.randn(rows, 77, cfg["cross_attention_dim"], device=device, generator=gen, dtype=dtype)
        extra = {}
        if cfg.get("addition_embed_type") == "text_time":
            pooled = cfg["projection_class_embeddings_input_dim"] - 6 * cfg["addition_time_embed_dim"]
            extra["added_cond_kwargs"] = {
                "text_embeds": torch.randn(rows, pooled, device=device, generator=gen, dtype=dtype),
                "time_ids": torch.tensor([[512.0, 512.0, 0.0, 0.0, 512.0, 512.0]], device=device,
                                         dtype=dtype).repeat(rows, 1)}
        latents = torch.randn(b, 4, latent, latent, device=device, generator=gen, dtype=dtype)
        t = torch.tensor(500, device=device)

        def unet_step():  # one denoising step (with guidance: the UNet on both halves)
            nonlocal latents
            x = torch.cat([latents, latents]) if cfg_guidance else latents
            out = unet(x, t, encoder_hidden_states=context, **extra).sample
            if cfg_guidance:
                uncond, cond = out.chunk(2)
                out = uncond + 7.5 * (cond - uncond)
            latents = latents - 0.01 * out  # stand-in scheduler update

        def decode():
            return vae.decode(latents / 0.18215).sample

        with torch.inference_mode():
            times = timed_loop(unet_step, run, sec, warmup=2, iters=steps_timed, min_iters=2 if not dry else 1)
            step = statistics.median(times)
            t_dec = statistics.median(timed_loop(decode, run, sec, warmup=1, iters=2 if not dry else 1))
            counted = count_tflop(unet_step) if dry or sec.left() > 3 else None
        guided = f"{steps} steps{', guidance (UNet batch ' + str(rows) + ')' if cfg_guidance else ', no guidance'}"
        sec.fig(f"{name}: UNet parameters", sum(p.numel() for p in unet.parameters()) / 1e6, "M")
        sec.fig(f"{name}: s per step, batch {b} (median of {len(times)})", step, "s")
        sec.fig(f"{name}: UNet only, {guided}", b / (steps * step), "images/s")
        sec.fig(f"{name}: {guided} + VAE decode", b / (steps * step + t_dec), "images/s")
        if counted is not None:
            sec.fig(f"{name}: achieved (torch flop counter)", counted / step, "TFLOP/s")
        if not dry:
            achieved = T2I_TFLOP_PER_UNET_CALL[name] * rows / step
            sec.fig(f"{name}: achieved ({T2I_TFLOP_PER_UNET_CALL[name]} TFLOP per UNet call per image)", achieved,
                    "TFLOP/s")
            if peak:
                sec.fig(f"{name}: fraction of bf16 dense peak ({peak:g} TFLOP/s)", achieved / peak, "")
        alloc, reserved = peak_gib(run)
        sec.fig(f"{name}: peak GPU memory allocated (UNet + VAE resident)", alloc, "GiB")
        sec.fig(f"{name}: weights UNet + VAE", weights_gib(unet, vae), "GiB")
        unet = None  # the next model gets the memory
        free_memory()
    sec.note("random weights built from the models' configs; UNet steps use a stand-in scheduler update (one axpy); "
             "text encoders are not timed (one call per batch); dry run: tiny UNets of the same kinds at 32 px")


def bench_offload(run: Run, sec: Section) -> None:
    """Whether the chain fits a 24 GB card: with --offload only one stage's models are on the GPU at a time."""
    mem = run.stage_memory
    if not mem:
        sec.note("no stage measured")
        return
    sec.note("per stage model at inference, measured alone (as --offload runs them)")
    for name, m in mem.items():
        sec.fig(f"{name}: weights", m["weights_gib"], "GiB")
        sec.fig(f"{name}: peak allocated", m["peak_allocated_gib"], "GiB")
        sec.fig(f"{name}: peak reserved", m["peak_reserved_gib"], "GiB")
    if not run.cuda:
        sec.note("CPU run: no GPU memory figures, no verdict")
        return
    budget = 24e9 / GiB  # a "24 GB" card: 22.35 GiB
    free_memory()
    free, total = torch.cuda.mem_get_info(run.device)
    # memory the caching allocator does not hold: CUDA context, cuBLAS/cuDNN modules, other processes
    context = max((total - free - torch.cuda.memory_reserved(run.device)) / GiB,
                  run.summary["meta"].get("memory_used_at_start_gib") or 0.0)
    sec.fig("GPU memory outside PyTorch's allocator (CUDA context, libraries)", context, "GiB")
    largest = max(mem.items(), key=lambda kv: kv[1]["peak_reserved_gib"])
    stages = {}
    for name, m in mem.items():  # the largest variant of each stage (ground fp32 vs bf16: the one the run uses)
        key = name.split(" ")[0]
        stages[key] = max(stages.get(key, 0.0), m["weights_gib"])
    resident = sum(stages.values()) + (largest[1]["peak_reserved_gib"] - largest[1]["weights_gib"])
    sec.fig("largest stage", largest[0], "")
    sec.fig("largest stage: peak reserved + memory outside the allocator",
            largest[1]["peak_reserved_gib"] + context, "GiB")
    sec.fig("fits 24 GB with --offload", largest[1]["peak_reserved_gib"] + context < budget, "bool")
    sec.fig("all stage models resident (no --offload), estimate: sum of weights + largest activations",
            resident + context, "GiB")
    sec.fig("fits 24 GB without --offload (estimate)", resident + context < budget, "bool")
    sec.note("24 GB = 22.35 GiB; each verdict adds the memory outside PyTorch's allocator (CUDA context and "
             "libraries, measured after the benchmarks) to the stage's peak reserved memory")


# --- the run ------------------------------------------------------------------------------------------------


def sections(run: Run) -> dict:
    """Each benchmark's function, by name (run order: gpu_summary.BENCHMARKS)."""
    return {
        "sd2_inpaint": lambda s: bench_sd(run, s),
        "train_ViT-B-32": lambda s: bench_train(run, s, "ViT-B-32", 256),
        "eval_sugarcrepe": lambda s: bench_eval(run, s),
        "grounding_dino": lambda s: bench_grounding(run, s),
        "sam_vit_h": lambda s: bench_sam(run, s),
        "train_ViT-L-14": lambda s: bench_train(run, s, "ViT-L-14", 64),
        "t2i_unets": lambda s: bench_t2i(run, s),
        "offload_24gb": lambda s: bench_offload(run, s),
    }


def not_run(note: str) -> dict:
    return {"status": "not run", "budget_s": None, "wall_s": None, "figures": {}, "notes": [note]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="folder for gpu_summary.json / gpu_summary.md")
    ap.add_argument("--dry-run", action="store_true", help="CPU, tiny models, one step each")
    ap.add_argument("--device", default=None, help="default: cuda (cpu with --dry-run)")
    ap.add_argument("--only", default=None, help=f"comma-separated subset of {','.join(BENCHMARKS)}")
    ap.add_argument("--total-budget", type=float, default=float(os.environ.get("GPU_CHECK_BUDGET_S", TOTAL_BUDGET)),
                    help=f"seconds for all benchmarks together [{TOTAL_BUDGET}]")
    ap.add_argument("--tests-junit", default=None, help="JUnit XML of the CUDA tests, to include")
    ap.add_argument("--tests-log", default=None, help="pytest output of the CUDA tests, to include")
    ap.add_argument("--tests-rc", type=int, default=None)
    args = ap.parse_args(argv)
    args.device = args.device or ("cpu" if args.dry_run else "cuda")
    no_cuda = args.device.startswith("cuda") and not torch.cuda.is_available()
    if no_cuda:
        args.device = "cpu"  # only for the summary's meta: nothing runs
    if args.dry_run:
        torch.set_num_threads(min(2, torch.get_num_threads()))
    run = Run(args, t0=PROCESS_START if argv is None else None)
    if args.tests_junit or args.tests_rc is not None:
        run.summary["cuda_tests"] = read_junit(Path(args.tests_junit or "/nonexistent"), args.tests_rc,
                                               Path(args.tests_log) if args.tests_log else None)
    if no_cuda:
        run.summary["meta"]["card"] = "no CUDA device"
        for name in BENCHMARKS:
            run.summary["benchmarks"][name] = not_run("no CUDA device: torch.cuda.is_available() is False (see the "
                                                      "versions step); --dry-run runs the code on the CPU")
        run.write()
        shutil.rmtree(run.tmp, ignore_errors=True)
        print("no CUDA device: run with --dry-run on a CPU machine (summaries written)", file=sys.stderr)
        return 2
    run.write()
    meta = run.summary["meta"]
    print(f"card: {meta['card']}; {meta['bf16_peak_assumption']}")
    print("versions: " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()))
    wanted = set(args.only.split(",")) if args.only else set(BENCHMARKS)
    plan = sections(run)
    try:
        for name in BENCHMARKS:
            if name not in wanted:
                run.summary["benchmarks"][name] = {"status": "skipped", "budget_s": 0, "wall_s": 0, "figures": {},
                                                   "notes": ["not selected (--only)"]}
                continue
            run.run_section(name, plan[name])
    finally:
        shutil.rmtree(run.tmp, ignore_errors=True)
    run.write()
    statuses = {n: e["status"] for n, e in run.summary["benchmarks"].items()}
    print(f"\nsummaries: {run.out / 'gpu_summary.json'}, {run.out / 'gpu_summary.md'}")
    print("statuses: " + ", ".join(f"{n} {s}" for n, s in statuses.items()))
    return 1 if any(s in ("error", "timeout") for s in statuses.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
