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
    backend: str = option("rules", "who portrays the items: rules (offline vocabulary + WordNet, deterministic), "
                          "hf (a local chat LM folder) or openai (an OpenAI-compatible server such as vLLM)",
                          flag="--portrayer")
    num_portrayals: int = option(4, "portrayals per item (K): the original asked for 4", metavar="K")
    batch_size: int = 64  # images per batch (--batch-size portray=N)
    prompt_file: str | None = option(None, "instruction prompt text file replacing genemi's own (LLM backends)",
                                     backends=("hf", "openai"), metavar="FILE")
    # hf
    llm_model: str | None = option(None, "local causal LM folder with a chat template (transformers)",
                                   backends=("hf",), metavar="DIR")
    max_new_tokens: int = option(768, "tokens an answer may have", backends=("hf", "openai"))
    temperature: float = option(0.0, "sampling temperature; 0 = greedy (seeded per image when > 0)",
                                backends=("hf", "openai"))
    top_p: float = option(1.0, "nucleus sampling mass (with --temperature > 0)", backends=("hf", "openai"))
    # openai
    api_base: str | None = option(None, "base URL of an OpenAI-compatible chat-completions server, e.g. "
                                  "http://localhost:8000/v1", backends=("openai",), metavar="URL")
    api_model: str | None = option(None, "model name the server serves", backends=("openai",))
    api_key_env: str = option("OPENAI_API_KEY", "environment variable holding the API key (never logged or "
                              "written; unset = no key)", backends=("openai",), metavar="VAR", content=False)
    timeout: float = option(120.0, "seconds per request", flag="--api-timeout", backends=("openai",), content=False)
    retries: int = option(5, "retries on 429/5xx/timeouts, with exponential back-off", flag="--api-retries",
                          backends=("openai",), content=False)
    concurrency: int = option(16, "requests in flight at once", flag="--api-concurrency", backends=("openai",),
                              content=False)
    json_mode: bool = option(True, "ask for JSON output (response_format) and fall back to plain text when the "
                             "server refuses it", flag="--api-json", backends=("openai",))

    def validate(self) -> None:
        require_positive(self.num_portrayals, "--num-portrayals")
