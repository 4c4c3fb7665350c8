"""Options of the language model that LLM backends ask (YAML section ``llm``; ``--portrayer hf|openai`` and
``--negcaptioner hf|openai`` share them)."""

from __future__ import annotations

from dataclasses import dataclass

from genemi.errors import ConfigError
from genemi.generation_pipeline.options import option


@dataclass
class ChatConfig:
    # hf
    llm_model: str | None = option(None, "local causal LM folder with a chat template (transformers)",
                                   backends=("hf",), metavar="DIR")
    max_new_tokens: int = option(768, "tokens an answer may have", backends=("hf", "openai"))
    temperature: float = option(0.0, "sampling temperature; 0 = greedy (seeded per request when > 0)",
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
    json_mode: bool = option(True, "when a stage's prompt asks for a JSON answer (negcaption, --portrayal-format "
                             "json), tell the server (response_format json_object); falls back to plain text when "
                             "the server refuses it. Prompts asking for text are never sent with it",
                             flag="--api-json", backends=("openai",))

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ConfigError(f"--max-new-tokens must be at least 1, not {self.max_new_tokens}")
        if self.temperature < 0 or not 0 < self.top_p <= 1:
            raise ConfigError(f"--temperature must be >= 0 and --top-p in (0, 1], not {self.temperature} and "
                              f"{self.top_p}")
        if self.concurrency < 1 or self.retries < 0 or self.timeout <= 0:
            raise ConfigError("--api-concurrency must be >= 1, --api-retries >= 0 and --api-timeout > 0")
