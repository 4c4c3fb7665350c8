"""``genemi convert groundingdino``: an original Grounding DINO ``.pth`` + ``.py`` config -> a transformers folder.

The folder (``save_pretrained`` model + processor, plus a marker that tells genemi to use the original image
preprocessing) loads with ``--gd-model DIR`` much faster than converting the ``.pth`` on every run.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Sequence

from genemi.errors import ConfigError

TARGETS = ("groundingdino",)


def convert_groundingdino(gd_config: str, gd_checkpoint: str, output: str, text_encoder: str | None = None,
                          swin: dict | None = None) -> Path:
    """Write the converted model + processor to ``output``; returns the folder."""
    from genemi.generation_pipeline.grounding.grounding_dino import ORIGINAL_MARKER
    from genemi.models import grounding_dino_original as gdo
    from genemi.models.hf import quiet_loading

    out = Path(output).expanduser()
    if out.exists() and any(out.iterdir()):
        raise ConfigError(f"--output-dir {out} exists and is not empty")
    files = gdo.convert_original(gd_config, gd_checkpoint, text_encoder, swin)
    model = gdo.build_model(files)
    processor = gdo.build_processor(files.text_encoder)
    out.mkdir(parents=True, exist_ok=True)
    with quiet_loading():
        model.save_pretrained(out)
        processor.save_pretrained(out)
    (out / ORIGINAL_MARKER).write_text(json.dumps({
        "converted_from": {"config": str(Path(gd_config).resolve()), "checkpoint": str(Path(gd_checkpoint).resolve()),
                           "text_encoder": str(files.text_encoder.resolve())},
        "backbone": files.config["backbone"], "dropped_keys": sorted(files.conversion.dropped),
        "preprocessing": "original (shorter side 800, longer side <= 1333 with the original rounding, PIL bilinear)",
    }, indent=1) + "\n")
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="genemi convert", description="convert an original Grounding DINO .pth + .py "
                                "config into a transformers folder (load it with --gd-model DIR)")
    p.add_argument("target", choices=TARGETS, help="what to convert")
    p.add_argument("--gd-config", required=True, metavar="PY", help="original .py config (parsed, never executed)")
    p.add_argument("--gd-checkpoint", required=True, metavar="PTH", help="original .pth ({'model': state_dict})")
    p.add_argument("--text-encoder", metavar="DIR",
                   help="local BERT folder (config.json + vocab.txt); default: the config's text_encoder_type, "
                        "relative to the config file")
    p.add_argument("--swin-sizes", metavar="JSON",
                   help='Swin sizes for a backbone outside the original table, e.g. \'{"embed_dim": 96, "depths": '
                        '[2, 2, 6, 2], "num_heads": [3, 6, 12, 24], "window_size": 7}\'')
    p.add_argument("--output-dir", "--output", dest="output", required=True, metavar="DIR", help="new folder for the transformers model")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    from genemi.cli import run_tool

    def action(args):
        from genemi.models.grounding_dino_original import parse_swin_sizes

        return convert_groundingdino(args.gd_config, args.gd_checkpoint, args.output, args.text_encoder,
                                     parse_swin_sizes(args.swin_sizes))

    return run_tool("genemi convert", build_parser(), argv, action,
                    lambda out: print(f"wrote {out} (load it with --gd-model {out})"))


if __name__ == "__main__":
    raise SystemExit(main())
