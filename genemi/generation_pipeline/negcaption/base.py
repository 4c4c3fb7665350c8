"""The negative-caption protocol: source captions in, K rewrites each out; backends registered by name."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

from genemi.generation_pipeline.backends import BackendRegistry
from genemi.records import Failure

#: name -> "module:Class" (each class: ``Class(NegCaptionConfig, StageContext)``)
NEGCAPTIONERS = BackendRegistry("negcaption", "--negcaptioner", {
    "rules": "genemi.generation_pipeline.negcaption.rules:RulesNegCaptioner",
    "hf": "genemi.generation_pipeline.negcaption.llm:HFNegCaptioner",
    "openai": "genemi.generation_pipeline.negcaption.llm:OpenAINegCaptioner",
})

#: the edits a negative caption may make, named as ``genemi negatives``' types, with what each does
NEGATIVE_KINDS: dict[str, str] = {
    "swap_obj": "two objects exchange their places or roles (a dog chasing a cat -> a cat chasing a dog)",
    "swap_att": "an attribute moves to the other object (a red car and a blue bike -> a blue car and a red bike)",
    "replace_rel": "a relation or position changes (a cup on a table -> a cup under a table)",
    "change_count": "how many there are changes (two dogs -> three dogs)",
    "replace_att": "one attribute changes: colour, material, size, ... (a wooden chair -> a metal chair)",
    "replace_obj": "one object becomes another (a dog on a sofa -> a cat on a sofa)",
}


@dataclass(frozen=True)
class RewriteRequest:
    """One source caption to rewrite ``k`` times with the allowed ``kinds``."""

    key: str  # the source caption's id: <image id>/cap_<c>
    caption: str
    k: int
    kinds: tuple[str, ...]
    seed: int  # per source caption, for sampling backends and the rules' choices


@dataclass
class Rewrite:
    """One negative caption, or why there is none (with the model's raw answer)."""

    caption: str | None = None
    kind: str | None = None
    error: Failure | None = None
    raw: str | None = None


class NegCaptioner(Protocol):
    name: str

    @property
    def model(self) -> str:
        """What writes the captions, recorded on every negative: ``rules``, a model folder's name, a served model."""

    def check(self) -> None: ...

    def load(self) -> None: ...

    def offload(self) -> None: ...

    def rewrite(self, requests: Sequence[RewriteRequest]) -> list[list[Rewrite]]:
        """Exactly ``k`` rewrites per request, in order; an unusable one carries its error."""
