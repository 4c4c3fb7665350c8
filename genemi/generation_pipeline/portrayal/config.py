"""Options of the ``portray`` stage (YAML section ``portray``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from genemi.generation_pipeline.backends import BackendRegistry
from genemi.generation_pipeline.portrayal.base import PORTRAYERS
from genemi.generation_pipeline.options import StageSection, option, require_positive


@dataclass
class PortrayConfig(StageSection):
    backends: ClassVar[BackendRegistry] = PORTRAYERS
    llm_backends: ClassVar[tuple[str, ...]] = ("hf", "openai")  # use the run's chat model (section llm)
    backend: str = option("rules", "who portrays the items: rules (offline vocabulary + WordNet, deterministic), "
                          "hf (a local chat LM folder) or openai (an OpenAI-compatible server such as vLLM)",
                          flag="--portrayer")
    num_portrayals: int = option(4, "portrayals per item (K): the original asked for 4", metavar="K")
    batch_size: int = 64  # images per batch (--batch-size portray=N)
    prompt_file: str | None = option(None, "instruction prompt text file replacing genemi's own (LLM backends); it "
                                     "must ask for the --portrayal-format answer", backends=("hf", "openai"),
                                     metavar="FILE")
    answer_format: str = option("text", "what the chat model is asked to answer: text (a numbered list per item, the "
                                "original's form) or json (one JSON object; with --api-json the server is told to "
                                "return JSON)", flag="--portrayal-format", choices=("text", "json"),
                                backends=("hf", "openai"))

    def validate(self) -> None:
        require_positive(self.num_portrayals, "--num-portrayals")
