"""Cost of the checks before work: every model backend's ``check()`` reads its model files' structure
(:mod:`genemi.models.files`) instead of loading weights. Prints wall time (median of several rounds, files
evicted from the page cache before each round) and bytes read against the files' total size.

(a) The demo's tiny models (Grounding DINO folder, SAM ``.pth``, SD inpainting folder, BLIP ITM folder), built
    by the same builders as ``make demo``.
(b) Full-size layouts, built on local disk without any real weight: stable-diffusion-2-inpainting (a diffusers
    folder: 9-channel SD2 UNet, VAE, OpenCLIP-H text encoder, fp32 safetensors whose headers are the real
    models' and whose data sections are sparse), SAM ViT-H (``torch.save`` of a zero state dict with
    ``sam_vit_h``'s keys and shapes: a real 2.5 GB torch zip) and BLIP-large ITM (blip-itm-large-coco's sizes,
    sparse fp32 safetensors). Baseline in the same process: ``torch.load`` of the SAM-H file, what loading it
    at the start of the stage costs.

    python benchmarks/model_file_checks.py                       # both parts (b builds ~10 GB, 2.5 GB of it on disk)
    python benchmarks/model_file_checks.py --only tiny
    python benchmarks/model_file_checks.py --work-dir /data/bench --rounds 7
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

SAFETENSORS_CODES = {torch.float32: "F32", torch.float16: "F16", torch.int64: "I64"}


def evict(paths) -> None:
    """Drop the files' pages from the page cache (written pages are flushed first), so a round reads from disk."""
    for root in map(Path, paths):
        for path in (p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]:
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def disk_size(paths) -> tuple[int, int]:
    """(apparent size, bytes allocated on disk) of files and folders."""
    apparent = allocated = 0
    for root in map(Path, paths):
        for path in (p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]:
            st = path.stat()
            apparent, allocated = apparent + st.st_size, allocated + st.st_blocks * 512
    return apparent, allocated


def time_checks(backends: dict, paths, rounds: int):
    """Per backend and in all: (first call, median of ``rounds`` later calls) in seconds, and the bytes the
    last round read and the total size of the files it read."""
    from genemi.models.files import counting_reads

    times = {name: [] for name in backends}
    for r in range(rounds + 1):
        evict(paths)
        with counting_reads() as log:
            for name, backend in backends.items():
                start = time.perf_counter()
                backend.check()
                times[name].append(time.perf_counter() - start)
    total = [sum(t[r] for t in times.values()) for r in range(rounds + 1)]
    rows = {name: (t[0], statistics.median(t[1:])) for name, t in times.items()}
    rows["all"] = (total[0], statistics.median(total[1:]))
    return rows, log


def report(title: str, rows: dict, log, paths) -> None:
    apparent, allocated = disk_size(paths)
    print(f"\n{title}")
    print(f"  {'check':16s} {'first call':>11s} {'median':>9s}")
    for name, (first, median) in rows.items():
        print(f"  {name:16s} {1000 * first:9.1f} ms {1000 * median:6.1f} ms")
    print(f"  bytes read: {log.bytes_read:,} of {log.total_size:,} in the {len(log.files)} files opened "
          f"({100 * log.bytes_read / log.total_size:.4f} %); model files in all: {apparent:,} bytes "
          f"({allocated:,} allocated on disk)")


def backends_for(ground=None, sam=None, sd=None, itm=None) -> dict:
    from genemi.generation_pipeline.grounding.config import GroundConfig
    from genemi.generation_pipeline.grounding.grounding_dino import GroundingDino
    from genemi.generation_pipeline.inpainting.config import InpaintConfig
    from genemi.generation_pipeline.inpainting.diffusers_backend import DiffusersInpainter
    from genemi.generation_pipeline.scoring.blip import BlipMatcher
    from genemi.generation_pipeline.scoring.config import ScoreConfig
    from genemi.generation_pipeline.segmentation.config import SegmentConfig
    from genemi.generation_pipeline.segmentation.sam import SamSegmenter
    from genemi.generation_pipeline.stage import StageContext

    ctx = StageContext()
    out = {}
    if ground:
        out["ground (GD)"] = GroundingDino(GroundConfig(gd_model=str(ground)), ctx)
    if sam:
        out["segment (SAM)"] = SamSegmenter(SegmentConfig(sam_checkpoint=str(sam)), ctx)
    if sd:
        out["inpaint (SD)"] = DiffusersInpainter(InpaintConfig(sd_checkpoint=str(sd)), ctx)
    if itm:
        out["score (BLIP)"] = BlipMatcher(ScoreConfig(blip_model=str(itm)), ctx)
    return out


def bench_tiny(work: Path, rounds: int) -> None:
    from genemi.models.tiny import save_tiny_blip_itm, save_tiny_grounding_dino, save_tiny_sam, save_tiny_sd_inpainting

    folder = work / "tiny"
    models = {"ground": save_tiny_grounding_dino(folder)["grounding_dino"], "sam": save_tiny_sam(folder)["sam"],
              "sd": save_tiny_sd_inpainting(folder)["sd_inpainting"], "itm": save_tiny_blip_itm(folder)["blip_itm"]}
    rows, log = time_checks(backends_for(**models), models.values(), rounds)
    report(f"(a) the demo's tiny models: every check, {rounds} rounds after a first call (imports already done by "
           "the builders)", rows, log, models.values())
    fresh = [json.loads(subprocess.run([sys.executable, __file__, "--fresh", json.dumps({k: str(v) for k, v in
                                                                                         models.items()})],
                                       check=True, capture_output=True, text=True).stdout) for _ in range(3)]
    first = {name: statistics.median(f[name] for f in fresh) for name in fresh[0]}
    print(f"  in a fresh process (median of 3): importing genemi's backends {first.pop('imports'):.2f} s, then the "
          "first checks (with the imports each makes): " + ", ".join(f"{k} {v:.2f} s" for k, v in first.items()))


def fresh_process(models: dict) -> None:
    """``--fresh``: the checks' first call in a new process, the imports of genemi's backends timed apart
    (printed as JSON: seconds per backend)."""
    start = time.perf_counter()
    backends = backends_for(**models)
    times = {"imports": time.perf_counter() - start}
    for name, backend in backends.items():
        start = time.perf_counter()
        backend.check()
        times[name] = time.perf_counter() - start
    print(json.dumps(times))


# --- full-size layouts ------------------------------------------------------------------------------------

def write_sparse_safetensors(path: Path, state: dict) -> None:
    """A safetensors file whose header is exactly what ``save_file(state)`` writes and whose data section is a
    hole in the file (``os.truncate``): the real layout, no weight."""
    header, offset = {}, 0
    for name in sorted(state):
        t = state[name]
        nbytes = t.numel() * t.element_size()
        header[name] = {"dtype": SAFETENSORS_CODES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(struct.pack("<Q", len(raw)) + raw)
    os.truncate(path, 8 + len(raw) + offset)


def _json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2))


def build_sd2_inpainting(out: Path) -> Path:
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    if (out / "model_index.json").is_file():
        return out
    with torch.device("meta"):
        unet = UNet2DConditionModel(
            sample_size=64, in_channels=9, out_channels=4, layers_per_block=2, block_out_channels=(320, 640, 1280, 1280),
            down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
            up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3, cross_attention_dim=1024,
            attention_head_dim=(5, 10, 20, 20), use_linear_projection=True)
        vae = AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(128, 256, 512, 512),
                            layers_per_block=2, down_block_types=("DownEncoderBlock2D",) * 4,
                            up_block_types=("UpDecoderBlock2D",) * 4, sample_size=512)
        text_cfg = CLIPTextConfig(vocab_size=49408, hidden_size=1024, intermediate_size=4096, num_attention_heads=16,
                                  num_hidden_layers=23, max_position_embeddings=77, projection_dim=512,
                                  hidden_act="gelu")
        text = CLIPTextModel(text_cfg)
    for name, model in (("unet", unet), ("vae", vae)):
        model.save_config(out / name)
        write_sparse_safetensors(out / name / "diffusion_pytorch_model.safetensors", model.state_dict())
    text_cfg.architectures = ["CLIPTextModel"]
    text_cfg.save_pretrained(out / "text_encoder")
    write_sparse_safetensors(out / "text_encoder" / "model.safetensors", text.state_dict())
    _json(out / "tokenizer" / "vocab.json", {"<|startoftext|>": 49406, "<|endoftext|>": 49407})
    (out / "tokenizer" / "merges.txt").write_text("#version: 0.2\n")
    _json(out / "tokenizer" / "tokenizer_config.json", {"tokenizer_class": "CLIPTokenizer", "model_max_length": 77})
    _json(out / "scheduler" / "scheduler_config.json",
          {"_class_name": "DDIMScheduler", "beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear",
           "num_train_timesteps": 1000, "steps_offset": 1, "prediction_type": "epsilon"})
    _json(out / "feature_extractor" / "preprocessor_config.json",
          {"image_processor_type": "CLIPImageProcessor", "crop_size": 224, "size": 224})
    _json(out / "model_index.json", {
        "_class_name": "StableDiffusionInpaintPipeline", "_diffusers_version": "0.8.0",
        "feature_extractor": ["transformers", "CLIPImageProcessor"], "requires_safety_checker": False,
        "safety_checker": [None, None], "scheduler": ["diffusers", "DDIMScheduler"],
        "text_encoder": ["transformers", "CLIPTextModel"], "tokenizer": ["transformers", "CLIPTokenizer"],
        "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"]})
    return out


def build_sam_h(path: Path) -> Path:
    """``torch.save`` of zero tensors with ``sam_vit_h_4b8939.pth``'s keys and shapes (a real 2.5 GB torch zip)."""
    from segment_anything import sam_model_registry

    if path.is_file():
        return path
    with torch.device("meta"):
        layout = sam_model_registry["vit_h"]().state_dict()
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({k: torch.zeros(v.shape, dtype=v.dtype) for k, v in layout.items()}, path)
    return path


def build_blip_large_itm(out: Path) -> Path:
    from transformers import BlipConfig, BlipForImageTextRetrieval

    if (out / "config.json").is_file():
        return out
    cfg = BlipConfig(
        text_config={"vocab_size": 30524, "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
                     "intermediate_size": 3072, "max_position_embeddings": 512, "encoder_hidden_size": 1024},
        vision_config={"hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16,
                       "intermediate_size": 4096, "image_size": 384, "patch_size": 16},
        projection_dim=256, image_text_hidden_size=256)
    with torch.device("meta"):
        model = BlipForImageTextRetrieval(cfg)
    cfg.architectures = ["BlipForImageTextRetrieval"]
    cfg.save_pretrained(out)
    write_sparse_safetensors(out / "model.safetensors", model.state_dict())
    (out / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]) + "\n")
    _json(out / "tokenizer_config.json", {"tokenizer_class": "BertTokenizer", "do_lower_case": True})
    _json(out / "preprocessor_config.json", {"image_processor_type": "BlipImageProcessor", "size": 384})
    return out


def bench_full(work: Path, rounds: int) -> None:
    folder = work / "full"
    start = time.perf_counter()
    models = {"sd": build_sd2_inpainting(folder / "stable-diffusion-2-inpainting"),
              "sam": build_sam_h(folder / "sam_vit_h_layout.pth"),
              "itm": build_blip_large_itm(folder / "blip-itm-large-coco")}
    print(f"\nfull-size layouts ready in {time.perf_counter() - start:.1f} s under {folder}")
    rows, log = time_checks(backends_for(**models), models.values(), rounds)
    report(f"(b) full-size layouts: SD-2-inpainting + SAM-H + BLIP-large ITM, {rounds} rounds after a first call",
           rows, log, models.values())
    evict([models["sam"]])
    start = time.perf_counter()
    torch.load(models["sam"], map_location="cpu", weights_only=True)
    load = time.perf_counter() - start
    check = rows["segment (SAM)"][1]
    print(f"  baseline: torch.load of the SAM-H file (page cache evicted) {load:.2f} s; its check {1000 * check:.1f} ms "
          f"({load / check:,.0f}x less)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=("tiny", "full"), default=None)
    ap.add_argument("--rounds", type=int, default=5, help="timed rounds after the first call (median reported)")
    ap.add_argument("--work-dir", default=None, help="where the models are built (default: a temporary folder; "
                    "give one to reuse the full-size files between runs)")
    ap.add_argument("--fresh", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.fresh:
        return fresh_process(json.loads(args.fresh))
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="genemi-model-file-checks-"))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs; models under {work}")
    if args.only in (None, "tiny"):
        bench_tiny(work, args.rounds)
    if args.only in (None, "full"):
        bench_full(work, args.rounds)


if __name__ == "__main__":
    main()
