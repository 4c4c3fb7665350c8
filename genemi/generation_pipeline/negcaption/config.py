"""Options of the ``negcaption`` stage (YAML section ``negcaption``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from genemi.errors import ConfigError
from genemi.generation_pipeline.backends import BackendRegistry
from genemi.generation_pipeline.negcaption.base import NEGATIVE_KINDS, NEGCAPTIONERS
from genemi.generation_pipeline.options import StageSection, option, require_positive


@dataclass
class NegCaptionConfig(StageSection):
    backends: ClassVar[BackendRegistry] = NEGCAPTIONERS
    llm_backends: ClassVar[tuple[str, ...]] = ("hf", "openai")  # use the run's chat model (section llm)
    backend: str = option("rules", "who writes the negative captions: rules (genemi negatives' typed edits, "
                          "offline, deterministic), hf (a local chat LM) or openai (an OpenAI-compatible server)",
                          flag="--negcaptioner")
    num_negatives: int = option(1, "negative captions per source caption (TripletCLIP used 1)", metavar="K")
    captions_per_image: int | None = option(None, "rewrite only each image's first N source captions (default: "
                                            "all of them)", metavar="N")
    kinds: str = option(",".join(NEGATIVE_KINDS), "comma list of the edits allowed: "
                        + "; ".join(f"{k}: {v}" for k, v in NEGATIVE_KINDS.items()), metavar="KINDS")
    prompt_file: str | None = option(None, "instruction prompt text file replacing genemi's own ({k} and {kinds} "
                                     "are filled in)", flag="--negcaption-prompt-file", backends=("hf", "openai"),
                                     metavar="FILE")
    batch_size: int = 64  # images per batch (--batch-size negcaption=N)

    @property
    def kind_list(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(k.strip() for k in self.kinds.split(",") if k.strip()))

    def validate(self) -> None:
        require_positive(self.num_negatives, "--num-negatives")
        if self.captions_per_image is not None:
            require_positive(self.captions_per_image, "--captions-per-image")
        unknown = [k for k in self.kind_list if k not in NEGATIVE_KINDS]
        if unknown or not self.kind_list:
            raise ConfigError(f"--kinds {self.kinds!r}: choose from {', '.join(NEGATIVE_KINDS)}")
