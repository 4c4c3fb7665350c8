"""``genemi convert``: files of the original projects and genemi's, one into the other.

* ``genemi convert groundingdino``: an original Grounding DINO ``.pth`` + ``.py`` config -> a transformers folder
  (``save_pretrained`` model + processor, plus a marker that tells genemi to use the original image
  preprocessing), which loads with ``--gd-model DIR`` much faster than converting the ``.pth`` on every run.
* ``genemi convert snapshot --to original``: a genemi ``model_N.pt`` -> the file the original GeNeMi trainer
  continues from (its Adam state in OpenAI's parameter order; :func:`genemi.training.resume.to_original_snapshot`).

Options are declared once (:class:`ConvertConfig`), as for every genemi command.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from genemi.errors import ConfigError
from genemi.options import Section, option

TARGETS = ("groundingdino", "snapshot")


@dataclass
class ConvertConfig(Section):
    target: str | None = option(None, "what to convert: groundingdino (an original .pth + .py config -> a "
                                "transformers folder for --gd-model) or snapshot (a genemi model_N.pt -> the file the "
                                "original trainer continues from)", positional=True, choices=TARGETS)
    gd_config: str | None = option(None, "original .py config (parsed, never executed)", metavar="PY",
                                   backends=("groundingdino",))
    gd_checkpoint: str | None = option(None, "original .pth ({'model': state_dict})", metavar="PTH",
                                       backends=("groundingdino",))
    text_encoder: str | None = option(None, "local BERT folder (config.json + vocab.txt)", metavar="DIR",
                                      backends=("groundingdino",),
                                      default_text="the config's text_encoder_type, relative to the config file")
    swin_sizes: str | None = option(None, "Swin sizes for a backbone outside the original table, e.g. "
                                    '\'{"embed_dim": 96, "depths": [2, 2, 6, 2], "num_heads": [3, 6, 12, 24], '
                                    '"window_size": 7}\'', metavar="JSON", backends=("groundingdino",))
    snapshot: str | None = option(None, "genemi snapshot model_N.pt to convert", metavar="PATH",
                                  backends=("snapshot",))
    to: str = option("original", "the layout to write: original (the GeNeMi trainer's, which its "
                     "--model-checkpoint continues from)", choices=("original",), backends=("snapshot",))
    output_dir: str | None = option(None, "folder to write: a new folder for the transformers model "
                                    "(groundingdino), or the folder for the converted model_N.pt (snapshot)",
                                    aliases=("--output",), metavar="DIR",
                                    default_text="groundingdino: required; snapshot: <snapshot's folder>/original")

    def validate(self) -> None:
        from genemi.options import flag_of

        if self.target is None:
            raise ConfigError(f"name what to convert: genemi convert {{{','.join(TARGETS)}}} (see --help)")
        needed = {"groundingdino": ("gd_config", "gd_checkpoint", "output_dir"), "snapshot": ("snapshot",)}
        fields = self.__dataclass_fields__
        missing = [flag_of(fields[k]) for k in needed[self.target] if not getattr(self, k)]
        if missing:
            raise ConfigError(f"genemi convert {self.target} needs {', '.join(missing)}")


def _check_target(cfg: ConvertConfig, given: set[str]) -> None:
    """Options of the other target are refused, naming the command they belong to."""
    from genemi.options import flag_of

    for name in sorted(given):
        f = cfg.__dataclass_fields__.get(name)
        targets = f.metadata.get("backends") if f is not None else None
        if targets and cfg.target not in targets:
            raise ConfigError(f"{flag_of(f)} belongs to `genemi convert {targets[0]}`, not `genemi convert "
                              f"{cfg.target}`; drop it")


def convert_groundingdino(gd_config: str, gd_checkpoint: str, output: str, text_encoder: str | None = None,
                          swin: dict | None = None) -> Path:
    """Write the converted model + processor to ``output``; returns the folder."""
    from genemi.generation_pipeline.grounding.grounding_dino import ORIGINAL_MARKER
    from genemi.manifest import check_writable_dir
    from genemi.models import grounding_dino_original as gdo
    from genemi.models.hf import quiet_loading

    out = check_writable_dir(Path(output).expanduser(), "--output-dir")
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


def convert_snapshot(snapshot: str | Path, output_dir: str | Path | None = None) -> tuple[Path, list[str]]:
    """Write ``snapshot`` (a genemi ``model_N.pt``) in the original trainer's layout to ``output_dir`` (default:
    ``original/`` beside it) under the same name; returns the file and notes on what the original cannot keep."""
    from genemi.manifest import check_writable_dir
    from genemi.training.resume import load_snapshot, to_original_snapshot, write_snapshot

    path = Path(snapshot)
    folder = Path(output_dir) if output_dir else path.parent / "original"
    target = folder / path.name
    if target.resolve() == path.resolve():
        raise ConfigError(f"--output-dir {folder}: would overwrite the snapshot itself; choose another folder")
    check_writable_dir(folder, "--output-dir")
    payload, notes = to_original_snapshot(load_snapshot(path), path)
    return write_snapshot(target, payload), notes


def build_parser():
    from genemi.options import add_options, command_parser

    p = command_parser("genemi convert", "Convert the original projects' files and genemi's into one another: "
                       "groundingdino (an original Grounding DINO .pth + .py config -> a transformers folder, load "
                       "it with --gd-model DIR) or snapshot (a genemi model_N.pt -> the file the original GeNeMi "
                       "trainer continues from, --to original).")
    add_options(p, ConvertConfig, "convert")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    from genemi.cli import run_tool
    from genemi.options import build, gather, given_keys, setup_logging

    def action(args):
        setup_logging(args)
        values = gather(ConvertConfig, args)
        cfg = build(ConvertConfig, values, args)
        _check_target(cfg, given_keys(values) - {"target"})
        if cfg.target == "snapshot":
            return convert_snapshot(cfg.snapshot, cfg.output_dir)
        from genemi.models.grounding_dino_original import parse_swin_sizes

        return convert_groundingdino(cfg.gd_config, cfg.gd_checkpoint, cfg.output_dir, cfg.text_encoder,
                                     parse_swin_sizes(cfg.swin_sizes)), []

    def report(done):
        out, notes = done
        if out.is_dir():
            print(f"wrote {out} (load it with --gd-model {out})")
        else:
            print(f"wrote {out}: the original trainer continues from it (--model-checkpoint {out}); genemi does too")
        for note in notes:
            print(f"  note: {note}")

    return run_tool("genemi convert", build_parser(), argv, action, report)


if __name__ == "__main__":
    raise SystemExit(main())
