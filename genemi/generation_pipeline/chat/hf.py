"""``hf`` chat client: an instruction-tuned causal LM from a local folder (transformers, ``--llm-model``).

Greedy decoding (``--temperature 0``) runs a batch of prompts in one left-padded ``generate`` call. Sampling
runs one prompt per call under that conversation's seed, so a sampled answer depends on the request and the
global seed only, never on which requests shared its batch.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from genemi.errors import CheckpointError, ConfigError
from genemi.generation_pipeline.chat.base import Conversation
from genemi.generation_pipeline.stage import release_to_cpu
from genemi.models.hf import check_pretrained, load_pretrained


def has_chat_template(folder: Path) -> bool:
    """Whether a tokenizer folder defines a chat template (its own file or in ``tokenizer_config.json``)."""
    if (folder / "chat_template.jinja").is_file() or (folder / "chat_template.json").is_file():
        return True
    config = folder / "tokenizer_config.json"
    try:
        return bool(config.is_file() and json.loads(config.read_text()).get("chat_template"))
    except (OSError, ValueError):
        return False


class HFChat:
    """A local chat LM; ``config`` is the run's :class:`~genemi.generation_pipeline.chat.ChatConfig`."""

    def __init__(self, config, context, who: str):
        self.config, self.context, self.who = config, context, who
        self.model = self.tokenizer = None

    @property
    def what(self) -> str:
        return f"the chat LM of {self.who} (--llm-model)"

    @property
    def dtype(self) -> torch.dtype:
        if self.context.dtype is not None:
            return self.context.dtype
        return torch.bfloat16 if str(self.context.device).startswith("cuda") else torch.float32

    def check(self) -> None:
        """A causal LM folder whose config, weights (read as structure) and tokenizer are all there
        (:func:`genemi.models.hf.check_pretrained`), with a chat template."""
        if not self.config.llm_model:
            raise ConfigError(f"{self.who} needs --llm-model DIR: a local instruction-tuned causal LM folder "
                              "with a chat template")
        folder = check_pretrained(self.config.llm_model, "--llm-model",
                                  architectures=("ForCausalLM", "LMHeadModel"), kind="a causal LM (…ForCausalLM)").path
        if not has_chat_template(folder):
            raise CheckpointError(f"{self.what}: {folder} has no chat template (chat_template.jinja or "
                                  "tokenizer_config.json); use an instruction-tuned (chat) model")

    def load(self) -> None:
        if self.model is None:
            from transformers import AutoModelForCausalLM

            model, tok = load_pretrained(AutoModelForCausalLM, self.config.llm_model, self.what)
            if not getattr(tok, "chat_template", None):
                raise CheckpointError(f"{self.what}: the tokenizer of {self.config.llm_model} has no chat template")
            tok.padding_side = "left"
            if tok.pad_token is None:
                tok.pad_token = tok.eos_token
            self.model, self.tokenizer = model, tok
        self.model.to(self.context.device, dtype=self.dtype)

    def offload(self) -> None:
        if self.model is not None:
            release_to_cpu(self.model)

    def prompt(self, conversation: Conversation) -> str:
        """The chat-template text of a conversation, ready for the answer; templates that refuse a system
        turn get the instructions at the head of the first user turn instead."""
        from jinja2 import TemplateError

        try:
            return self._template(conversation)
        except TemplateError:
            if conversation[0]["role"] != "system" or len(conversation) < 2:
                raise
            system, user, *rest = conversation
            return self._template([{"role": user["role"], "content": f"{system['content']}\n\n{user['content']}"},
                                   *rest])

    def _template(self, conversation: Conversation) -> str:
        return self.tokenizer.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True)

    def complete(self, conversations: list[Conversation], seeds: list[int],
                 json_answer: bool = False) -> list[str | Exception]:
        """See :meth:`ChatClient.complete`; ``json_answer`` changes nothing here (the prompt asks for the format)."""
        if self.model is None:
            self.load()
        prompts = [self.prompt(c) for c in conversations]
        if self.config.temperature <= 0:
            return self.generate(prompts)
        device = self.model.device
        answers = []
        for prompt, seed in zip(prompts, seeds, strict=True):
            with torch.random.fork_rng(devices=[device.index or 0] if device.type == "cuda" else []):
                torch.manual_seed(seed)
                answers += self.generate([prompt])
        return answers

    @torch.no_grad()
    def generate(self, prompts: list[str]) -> list[str]:
        """Answers to chat-template texts, in one left-padded batch."""
        enc = self.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
        enc = enc.to(self.model.device)
        if self.config.temperature > 0:
            sampling = {"do_sample": True, "temperature": self.config.temperature, "top_p": self.config.top_p}
        else:
            sampling = {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
        ids = self.model.generate(**enc, max_new_tokens=self.config.max_new_tokens,
                                  pad_token_id=self.tokenizer.pad_token_id, **sampling)
        new = ids[:, enc["input_ids"].shape[1]:]
        return [text.strip() for text in self.tokenizer.batch_decode(new, skip_special_tokens=True)]
