"""``genemi generate regenerate``: repaint one variation alone, with its recorded seed and the run's settings.

The inpainting settings, device and precision come from the run's ``run_summary.json`` (flags override
them, e.g. ``--sd-checkpoint`` when the model moved; relative paths resolve from the folder the run was started
in, which the summary records as ``working_dir``). The result is written as a lossless PNG and compared
with the variation image the run wrote: with the same settings and device they agree up to floating-point
noise (and JPEG compression when the run wrote JPEGs).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Sequence

import numpy as np

from genemi.errors import ConfigError
from genemi.options import Section, option, resolve, tool_parser
from genemi.generation_pipeline.runs import recorded_path, run_config


@dataclass
class Regenerated:
    variation: str
    path: Path
    compared_with: Path | None
    max_abs_diff: int | None
    mean_abs_diff: float | None


def regenerate(output_dir: str | Path, variation_id: str, out: str | Path | None = None, *,
               input_dir: str | None = None, sd_checkpoint: str | None = None, sd_config: str | None = None,
               device: str | None = None) -> Regenerated:
    """Repaint ``variation_id`` of the run in ``output_dir``; write it as PNG to ``out``."""
    from genemi.generation_pipeline.inpainting.config import InpaintConfig
    from genemi.generation_pipeline.inpainting.stage import regenerate_variation
    from genemi.generation_pipeline.pipeline import _dtype
    from genemi.generation_pipeline.previews import safe_name
    from genemi.generation_pipeline.stage import StageContext
    from genemi.manifest import write_atomic

    root = Path(output_dir)
    if not root.is_dir():
        raise ConfigError(f"--output-dir {root} is not a folder")
    config = run_config(root, "regenerate needs the run that painted the variation (its run_summary.json holds "
                              "the inpainting settings)")
    if not isinstance(config.get("inpaint"), dict):
        raise ConfigError(f"{root / 'run_summary.json'} has no inpainting settings: the run did not include the "
                          "inpaint stage")
    known = {f.name for f in fields(InpaintConfig)}
    settings = {k: v for k, v in config["inpaint"].items() if k in known}
    for key, given in (("sd_checkpoint", sd_checkpoint), ("sd_config", sd_config)):
        if given:
            settings[key] = given
        elif settings.get(key):
            settings[key] = str(recorded_path(settings[key], root, key, "--" + key.replace("_", "-")))
    image_root = input_dir or (str(recorded_path(config["input_dir"], root, "input_dir", "--input-dir"))
                               if config.get("input_dir") else ".")
    device = device or config.get("device") or "cpu"
    _, dtype = _dtype(config.get("dtype") or "fp32", device)
    context = StageContext(image_root=Path(image_root), output_dir=root, device=device, dtype=dtype,
                           seed=int(config.get("seed") or 0))
    image = regenerate_variation(root, image_root, variation_id, InpaintConfig(**settings), context)
    target = Path(out) if out else root / "regenerated" / safe_name(variation_id, ".png")
    from io import BytesIO

    from PIL import Image

    buf = BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(target, buf.getvalue())
    except OSError as exc:
        raise ConfigError(f"cannot write {target}: {exc.strerror or exc}") from exc
    written = _written_image(root, variation_id)
    if written is None or not written.is_file():
        return Regenerated(variation_id, target, None, None, None)
    with Image.open(written) as img:
        old = np.asarray(img.convert("RGB"), dtype=np.int16)
    if old.shape != image.shape:
        raise ConfigError(f"{written} is {old.shape[1]}x{old.shape[0]} but the repaint is "
                          f"{image.shape[1]}x{image.shape[0]}: the run's inputs changed since it was painted")
    diff = np.abs(old - image.astype(np.int16))
    return Regenerated(variation_id, target, written, int(diff.max()), float(diff.mean()))


def _written_image(root: Path, variation_id: str) -> Path | None:
    """The image the run wrote for the variation (from ``variations.jsonl``), if any."""
    from genemi.generation_pipeline import registry
    from genemi.manifest import iter_json_lines

    path = root / registry.manifest("inpaint")
    if not path.is_file():
        return None
    for _, obj in iter_json_lines(path):
        if variation_id.startswith(str(obj.get("id")) + "/"):
            for item in obj.get("items") or ():
                for var in item.get("variations") or ():
                    if var.get("id") == variation_id and var.get("image"):
                        return root / var["image"]
    return None


@dataclass
class RegenerateOptions(Section):
    """``genemi generate regenerate``'s options."""

    output_dir: str | None = option(None, "the run's output folder (with run_summary.json, captions.jsonl and "
                                    "masks.jsonl)", metavar="DIR", required=True)
    variation: str | None = option(None, "variation id, e.g. 'COCO_train2014_000000000009.jpg/item_01/var_2'",
                                   metavar="ID", required=True)
    out: str | None = option(None, "PNG to write", metavar="PNG", default_text="OUTPUT_DIR/regenerated/<id>.png")
    input_dir: str | None = option(None, "source image root", metavar="DIR", default_text="the run's")
    sd_checkpoint: str | None = option(None, "inpainting model (a relative path resolves from the folder the run was "
                                       "started in)", metavar="PATH", default_text="the run's")
    sd_config: str | None = option(None, "configs folder of a single-file --sd-checkpoint", metavar="DIR",
                                   default_text="the run's")
    device: str | None = option(None, "cpu, cuda, cuda:1", default_text="the run's")


def build_parser() -> argparse.ArgumentParser:
    return tool_parser("genemi generate regenerate", __doc__, RegenerateOptions)


def _report(r: Regenerated) -> None:
    print(f"{r.variation}: {r.path}")
    if r.compared_with is not None:
        print(f"  vs {r.compared_with}: max |diff| {r.max_abs_diff}/255, mean {r.mean_abs_diff:.3f}")


def main(argv: Sequence[str] | None = None) -> int:
    from genemi.cli import run_tool

    def action(args):
        o = resolve(RegenerateOptions, args)
        return regenerate(o.output_dir, o.variation, o.out, input_dir=o.input_dir, sd_checkpoint=o.sd_checkpoint,
                          sd_config=o.sd_config, device=o.device)

    return run_tool("genemi generate regenerate", build_parser(), argv, action, _report)


if __name__ == "__main__":
    raise SystemExit(main())
