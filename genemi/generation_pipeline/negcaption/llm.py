"""The chat-model backends (``hf``, ``openai``): one conversation per source caption through the run's chat
client (:mod:`genemi.generation_pipeline.chat`). A caption whose answer gives fewer than ``k`` usable rewrites
(unparseable, identical, a paraphrase, too long: :func:`~.answers.rejection`) is asked once more, in a new
conversation with its own seed; what is still missing is a failed rewrite carrying the model's raw answer."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from genemi.generation_pipeline.chat import Conversation, build_chat
from genemi.generation_pipeline.chat.prompts import load_prompt
from genemi.generation_pipeline.negcaption.answers import parse_answer, rejection
from genemi.generation_pipeline.negcaption.base import NEGATIVE_KINDS, Rewrite, RewriteRequest
from genemi.generation_pipeline.seeds import derive_seed
from genemi.records import Failure

INSTRUCTIONS_RESOURCE = "instructions.txt"


class ChatNegCaptioner:
    """Negative captions from the run's chat client of the same name."""

    name: str

    def __init__(self, config, context) -> None:
        self.config, self.context = config, context
        self.chat = build_chat(self.name, context.llm, context, f"--negcaptioner {self.name}")
        self._instructions: dict[tuple, str] = {}

    @property
    def model(self) -> str:
        llm = self.context.llm
        return (Path(llm.llm_model).name if self.name == "hf" else llm.api_model) or self.name

    def instructions(self, k: int, kinds: Sequence[str]) -> str:
        key = (k, tuple(kinds))
        if key not in self._instructions:
            listed = "\n".join(f"  {kind}: {NEGATIVE_KINDS[kind]}" for kind in kinds)
            self._instructions[key] = load_prompt(self.config.prompt_file, __package__, INSTRUCTIONS_RESOURCE,
                                                  k=k, kinds=listed)
        return self._instructions[key]

    def check(self) -> None:
        self.chat.check()
        self.instructions(self.config.num_negatives, self.config.kind_list)

    def load(self) -> None:
        self.chat.load()

    def offload(self) -> None:
        self.chat.offload()

    def conversation(self, req: RewriteRequest) -> Conversation:
        return [{"role": "system", "content": self.instructions(req.k, req.kinds)},
                {"role": "user", "content": f"Caption: {req.caption.strip()}"}]

    def rewrite(self, requests: Sequence[RewriteRequest]) -> list[list[Rewrite]]:
        results: list[list[Rewrite]] = [[] for _ in requests]
        raws: dict[int, str] = {}
        todo = list(range(len(requests)))
        for attempt in (0, 1):
            if not todo:
                break
            seeds = [derive_seed(requests[i].seed, "retry") if attempt else requests[i].seed for i in todo]
            answers = self.chat.complete([self.conversation(requests[i]) for i in todo], seeds,
                                         json_answer=True)  # its prompt asks for one JSON object
            for i, answer in zip(todo, answers, strict=True):
                if isinstance(answer, Exception):
                    results[i] = [Rewrite(error=Failure.from_exception("negcaption", answer))
                                  for _ in range(requests[i].k)]
                    continue
                raws[i] = answer
                self._take(requests[i], answer, results[i])
            todo = [i for i in todo if len(results[i]) < requests[i].k and i in raws]
        for i in todo:  # still short after the retry
            reasons = [why for _, why in self._reasons(requests[i], raws[i])] or ["no rewrite could be read"]
            failure = Failure(stage="negcaption", type="unparseable_answer", message="; ".join(reasons)[:500])
            results[i] += [Rewrite(error=failure, raw=raws[i]) for _ in range(requests[i].k - len(results[i]))]
        return results

    def _reasons(self, req: RewriteRequest, answer: str) -> list[tuple[str, str]]:
        return [(text, why) for _, text in parse_answer(answer) if (why := rejection(req.caption, text))]

    def _take(self, req: RewriteRequest, answer: str, found: list[Rewrite]) -> None:
        """Append the answer's usable rewrites to ``found`` (up to ``k``, no repeats)."""
        for kind, text in parse_answer(answer):
            if len(found) == req.k:
                return
            if rejection(req.caption, text) is None and all(f.caption != text for f in found):
                found.append(Rewrite(caption=text, kind=kind))


class HFNegCaptioner(ChatNegCaptioner):
    name = "hf"


class OpenAINegCaptioner(ChatNegCaptioner):
    name = "openai"
