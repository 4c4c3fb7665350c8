"""Turn captions into :class:`~genemi.records.TextNegativeRecord` s.

One negative per selected type and caption, in the order of ``types`` (the CE-CLIP four first by
default), valid or invalid with a reason, so every record has the same layout: exactly the validity mask
the CE-CLIP loss needs. Each (caption, type) draws from its own random stream seeded by
``(seed, caption id, type)``: output is independent of batching, worker count and the other types.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Sequence

from genemi.caption_files import CaptionEntry
from genemi.records import TextNegative, TextNegativeRecord
from genemi.negatives.edits import (
    EDIT_TYPES,
    EDITS,
    EditContext,
    NotApplicable,
    Pick,
    replacement_slots,
    resolve_types,
)
from genemi.negatives.sources import build_sources
from genemi.text.order import ORDER_PERTURBATIONS
from genemi.text.parsing import SPACY_MODEL, looks_english, parse_captions

#: word-order shuffles are meant to be ungrammatical: the fluency guard leaves them alone by default
DEFAULT_FLUENCY_TYPES = tuple(t for t in EDIT_TYPES if t not in ORDER_PERTURBATIONS)


@dataclass
class NegativesConfig:
    types: tuple[str, ...] = EDIT_TYPES
    sources: tuple[str, ...] = ("vocabulary", "wordnet")
    pick: Pick = "random"
    mlm_model: str | None = None
    mlm_top_k: int = 5
    corpus_file: str | None = None  # captions whose vocabulary --sources corpus draws from (genemi negatives: --input)
    fluency_model: str | None = None
    fluency: bool | None = None  # None: on when a fluency model is given
    fluency_margin: float = 1.0  # nats per token below the caption's score
    fluency_types: tuple[str, ...] = DEFAULT_FLUENCY_TYPES
    seed: int = 0
    device: str = "cpu"
    spacy_batch_size: int = 256
    model_batch_size: int = 64
    spacy_model: str = SPACY_MODEL

    def __post_init__(self) -> None:
        from genemi.errors import ConfigError

        self.types = resolve_types(self.types)
        self.fluency_types = resolve_types(self.fluency_types) if self.fluency_types else ()
        if self.fluency and not self.fluency_model:
            raise ConfigError("the fluency guard needs --fluency-model (a local masked or causal LM folder)")
        if self.pick not in ("random", "first", "original"):
            raise ConfigError(f"pick must be random, first or original, not {self.pick!r}")

    @property
    def fluency_on(self) -> bool:
        return bool(self.fluency_model) if self.fluency is None else self.fluency


@dataclass
class GenerationStats:
    captions: int = 0
    non_english: int = 0
    valid: Counter = field(default_factory=Counter)
    invalid: Counter = field(default_factory=Counter)
    fluency_dropped: Counter = field(default_factory=Counter)

    def add(self, other: "GenerationStats") -> None:
        self.captions += other.captions
        self.non_english += other.non_english
        self.valid.update(other.valid)
        self.invalid.update(other.invalid)
        self.fluency_dropped.update(other.fluency_dropped)

    def as_dict(self, types: Sequence[str]) -> dict:
        return {
            "captions": self.captions,
            "non_english": self.non_english,
            "per_type": {
                t: {"valid": self.valid[t], "invalid": self.invalid[t], "fluency_dropped": self.fluency_dropped[t]}
                for t in types
            },
        }


_NOT_ENGLISH = "caption does not look like English"


def _skip_reason(parsed) -> str | None:
    if not parsed.text.strip():
        return "empty caption"
    return None if looks_english(parsed) else _NOT_ENGLISH


class NegativeGenerator:
    """Parses captions with spaCy and applies every selected edit; models load once per instance."""

    def __init__(self, config: NegativesConfig):
        self.config = config
        self.sources = build_sources(config.sources, config.mlm_model, config.mlm_top_k, config.device,
                                     config.model_batch_size, config.corpus_file, config.spacy_model)
        self.context = EditContext(self.sources, config.pick)
        self.scorer = None
        if config.fluency_on:
            from genemi.negatives.fluency import load_fluency_scorer

            self.scorer = load_fluency_scorer(config.fluency_model, config.device, config.model_batch_size)

    def generate(self, entries: Sequence[CaptionEntry]) -> tuple[list[TextNegativeRecord], GenerationStats]:
        cfg = self.config
        stats = GenerationStats(captions=len(entries))
        parsed = list(parse_captions((e.caption for e in entries), cfg.spacy_batch_size, cfg.spacy_model))
        skip = [_skip_reason(p) for p in parsed]
        requests = [(p, s) for p, why in zip(parsed, skip) if why is None for s in replacement_slots(p, cfg.types)]
        for source in self.sources:
            source.prepare(requests)
        records = []
        for entry, p, why in zip(entries, parsed, skip):
            negatives = []
            for t in cfg.types:
                if why is not None:
                    negatives.append(TextNegative(type=t, text="", valid=False, reason=why))
                    continue
                rng = random.Random(f"{cfg.seed}:{entry.id}:{t}")
                try:
                    negatives.append(TextNegative(type=t, text=EDITS[t](p, rng, self.context)))
                except NotApplicable as exc:
                    negatives.append(TextNegative(type=t, text="", valid=False, reason=str(exc)))
            stats.non_english += why == _NOT_ENGLISH
            records.append(TextNegativeRecord(id=entry.id, image=entry.image, caption=entry.caption,
                                              image_id=entry.image_id, negatives=negatives))
        if self.scorer is not None:
            self._fluency_guard(records, stats)
        for rec in records:
            for neg in rec.negatives:
                (stats.valid if neg.valid else stats.invalid)[neg.type] += 1
        return records, stats

    def _fluency_guard(self, records: list[TextNegativeRecord], stats: GenerationStats) -> None:
        """Invalidate negatives scoring more than ``fluency_margin`` nats/token below their caption."""
        guarded = set(self.config.fluency_types)
        todo = [(r, n) for r in records for n in r.negatives if n.valid and n.type in guarded]
        if not todo:
            return
        texts = list(dict.fromkeys([r.caption for r, _ in todo] + [n.text for _, n in todo]))
        scores = dict(zip(texts, self.scorer.score(texts)))
        margin = self.config.fluency_margin
        for rec, neg in todo:
            cap, new = scores[rec.caption], scores[neg.text]
            if new < cap - margin:
                neg.valid = False
                neg.reason = f"less fluent than the caption ({new:.2f} vs {cap:.2f} nats/token, margin {margin})"
                stats.fluency_dropped[neg.type] += 1
