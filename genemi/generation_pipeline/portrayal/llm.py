"""The chat-model portrayers (``hf``, ``openai``): prompts in, parsed portrayals out, through the run's chat
client (:mod:`genemi.generation_pipeline.chat`).

Per image one conversation (system = the instructions, user = its items and caption); a batch of images is
completed at once. Items the answer does not portray are asked for again once, in one new conversation per
image listing only those items; what is still missing is recorded as failed with the model's raw text.
"""

from __future__ import annotations

from typing import Sequence

from genemi.generation_pipeline.chat import Conversation, build_chat
from genemi.generation_pipeline.portrayal.answers import format_request, load_instructions, parse_answer
from genemi.generation_pipeline.seeds import derive_seed
from genemi.generation_pipeline.portrayal.base import ItemPortrayals, PortrayalRequest
from genemi.records import Failure


class ChatPortrayer:
    """A portrayer backed by the run's chat client of the same name (``hf`` or ``openai``)."""

    name: str

    def __init__(self, config, context):
        self.config, self.context = config, context
        self.chat = build_chat(self.name, context.llm, context, f"--portrayer {self.name}")
        self._instructions: dict[int, str] = {}

    def instructions(self, k: int) -> str:
        """The system prompt for K portrayals per item (read once per K)."""
        if k not in self._instructions:
            self._instructions[k] = load_instructions(self.config.prompt_file, k, self.config.answer_format)
        return self._instructions[k]

    def check(self) -> None:
        self.chat.check()
        self.instructions(self.config.num_portrayals)

    def load(self) -> None:
        self.chat.load()

    def offload(self) -> None:
        self.chat.offload()

    def conversation(self, items: Sequence[str], caption: str | None, k: int) -> Conversation:
        return [{"role": "system", "content": self.instructions(k)},
                {"role": "user", "content": format_request(items, caption)}]

    def portray(self, requests: Sequence[PortrayalRequest]) -> list[dict[str, ItemPortrayals]]:
        results: list[dict[str, ItemPortrayals]] = [{} for _ in requests]
        todo = [i for i, r in enumerate(requests) if r.items]
        missing = self._ask(requests, todo, {i: requests[i].items for i in todo}, results, retry=False)
        self._ask(requests, list(missing), missing, results, retry=True)
        return results

    def _ask(self, requests: Sequence[PortrayalRequest], todo: list[int], items: dict[int, Sequence[str]],
             results: list[dict[str, ItemPortrayals]], retry: bool) -> dict[int, list[str]]:
        """Complete one conversation per request in ``todo``, fill ``results`` with what parsed (everything,
        when ``retry``) and return request index -> items still missing."""
        if not todo:
            return {}
        convs = [self.conversation(items[i], requests[i].caption, requests[i].k) for i in todo]
        seeds = [derive_seed(requests[i].seed, "retry") if retry else requests[i].seed for i in todo]
        answers = self.chat.complete(convs, seeds, json_answer=self.config.answer_format == "json")
        missing: dict[int, list[str]] = {}
        for i, answer in zip(todo, answers, strict=True):
            if isinstance(answer, Exception):
                failure = Failure.from_exception("portray", answer)
                results[i].update({item: ItemPortrayals(error=failure) for item in items[i]})
                continue
            parsed, reasons = parse_answer(answer, items[i], requests[i].k)
            for item in items[i]:
                if item in parsed:
                    results[i][item] = ItemPortrayals(portrayals=list(parsed[item]))
                elif not retry:
                    missing.setdefault(i, []).append(item)
                else:
                    reason = reasons.get(item) or "the answer has no portrayals for this item"
                    failure = Failure(stage="portray", type="unparseable_answer", message=reason)
                    results[i][item] = ItemPortrayals(error=failure, raw=answer)
        return missing


class HFPortrayer(ChatPortrayer):
    name = "hf"


class OpenAIPortrayer(ChatPortrayer):
    name = "openai"
