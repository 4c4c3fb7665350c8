"""``genemi eval``'s options, declared once (:func:`genemi.options.option`): flag, YAML key, default, help,
choices, bounds. The benchmarks' data options are declared by each benchmark next to its code
(:mod:`genemi.evaluation.benchmarks`) and live in the ``data`` section, one sub-section per benchmark."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from genemi.errors import ConfigError
from genemi.evaluation.item_scores import FORMATS
from genemi.evaluation.suites import SUITES
from genemi.options import Section, option
from genemi.precision import DTYPES

TIES = ("official", "strict", "first")


@dataclass
class ModelOptions(Section):
    """The models to evaluate."""

    model_name: str = option("genemi", "run name: results go to OUTPUT_DIR/MODEL_NAME/", aliases=("--model_name",))
    snapshot_file: list[str] = option(None, "a checkpoint to evaluate (repeatable); any format genemi reads",
                                      aliases=("--snapshot_file",), repeat=True, metavar="PATH",
                                      default_factory=list)
    snapshot_folder: str | None = option(None, "evaluate every *.pt/*.pth/*.bin/*.safetensors in it, in epoch order "
                                         "(model_3.pt, epoch_10.pt)", aliases=("--snapshot_folder",), metavar="DIR")
    baseline: list[str] = option(None, "a reference model, e.g. openai=/ckpt/ViT-B-32.pt (repeatable). NAME= (no "
                                 "path) evaluates the architecture's own weights: random for an open_clip name, the "
                                 "folder's weights for --clip-model local-dir:FOLDER", repeat=True,
                                 metavar="NAME=PATH", default_factory=list)
    clip_model: str = option("ViT-B/32", "architecture: open_clip name, OpenAI name, local-dir:FOLDER or config JSON")
    quick_gelu: bool | None = option(None, "QuickGELU activation; auto decides from the weights (OpenAI-derived "
                                     "weights need QuickGELU)", words=True, default_text="auto")
    force: bool = option(False, "re-evaluate models whose results already exist")


@dataclass
class EvalConfig(ModelOptions):
    benchmarks: list[str] | None = option(None, "comma list of benchmarks (see the description above)",
                                          default_text="every benchmark with data configured")
    suite: str | None = option(None, "a benchmark set and its summary table (suite_<name>.md): "
                               + "; ".join(f"{k}: {v.description}" for k, v in SUITES.items()), choices=tuple(SUITES))
    ties: str = option("official", "exact ties between the right and a wrong option: decided as each benchmark's "
                       "official scorer does (official), always counted wrong (strict), or won by the option listed "
                       "first, numpy argmax's way, as CLIP_benchmark scores Winoground (first); the tie count is in "
                       "the results", choices=TIES)
    data_config: str | None = option(None, "YAML with one section of paths per benchmark (configs/eval/); the same "
                                     "as a data: section of --config", metavar="FILE")
    output_dir: str = option("evaluation_results", "output folder (results go to OUTPUT_DIR/MODEL_NAME/)",
                             aliases=("--output", "--save-path"), metavar="DIR")
    hf_auth_token: str | None = option(None, "accepted for the original's scripts and ignored: genemi reads "
                                       "Winoground from local files (--winoground-root) and never contacts the hub",
                                       aliases=("--auth-token",), metavar="TOKEN")
    batch_size: int = option(256, "images/texts per forward pass", at_least=1)
    device: str | None = option(None, "cpu, cuda, cuda:1", default_text="cuda when available")
    precision: str = option("auto", "autocast precision (auto: bf16 on CUDA with bf16, fp32 on the CPU)",
                            aliases=("--dtype",), choices=DTYPES)
    workers: int | None = option(None, "image loading processes; on CPU genemi also runs torch with as many threads "
                                 "as cores are idle when embedding starts, unless OMP_NUM_THREADS is set "
                                 "(docs/performance.md)", at_least=0,
                                 default_text="0 on CPU; one per spare core, at most 8, on CUDA")
    cache_dir: str | None = option(None, "embedding cache folder (keyed by model and benchmark file hashes)",
                                   metavar="DIR")
    save_item_scores: str | None = option(None, "also write one row per item and benchmark (every option's score, "
                                          "decision, tie) to OUTPUT_DIR/MODEL_NAME/<model>/items/<benchmark>.csv, or "
                                          ".parquet with FORMAT=parquet; a bare flag means csv", choices=FORMATS,
                                          bare="csv", metavar="FORMAT")
    reference: str | None = option(None, "model the comparison (comparison.md, written when two or more models are "
                                   "evaluated) is measured against", metavar="LABEL", default_text="the first model")
    fail_on_missing: bool = option(False, "error out if any benchmark image is unreadable")
    #: one section per benchmark (its options: genemi.evaluation.benchmarks); flags and --data-config fill it
    data: dict[str, Any] = option(None, "benchmark data", flag=False, default_factory=dict)

    def validate(self) -> None:
        from genemi.evaluation.benchmarks import BENCHMARKS

        unknown = [name for name in self.data if name not in BENCHMARKS]
        if unknown:
            import difflib

            close = difflib.get_close_matches(unknown[0], list(BENCHMARKS), n=1)
            raise ConfigError(f"data config: unknown benchmark section {unknown[0]!r}"
                              + (f"; did you mean {close[0]!r}?" if close else f"; known: {', '.join(BENCHMARKS)}"))
