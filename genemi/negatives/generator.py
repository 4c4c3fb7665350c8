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
from genemi.options import Section, option
from genemi.records import TextNegative, TextNegativeRecord
from genemi.negatives.edits import (
    EDIT_TYPES,
    EDITS,
    TYPE_SETS,
    EditContext,
    NotApplicable,
    Pick,
    replacement_slots,
    resolve_types,
)
from genemi.negatives.sources import SOURCE_NAMES, build_sources
from genemi.text.order import ORDER_PERTURBATIONS
from genemi.text.parsing import SPACY_MODEL, looks_english, parse_captions

#: word-order shuffles are meant to be ungrammatical: the fluency guard leaves them alone by default
DEFAULT_FLUENCY_TYPES = tuple(t for t in EDIT_TYPES if t not in ORDER_PERTURBATIONS)


@dataclass
class NegativesConfig(Section):
    """What shapes the negatives (recorded in ``<output>.settings.json``, so a resume never mixes settings)."""

    types: tuple[str, ...] = option(EDIT_TYPES, f"comma list of types and/or sets. Types: {', '.join(EDIT_TYPES)}. "
                                    f"Sets: {', '.join(f'{k} ({len(v)})' for k, v in TYPE_SETS.items())}",
                                    default_text="all")
    sources: tuple[str, ...] = option(("vocabulary", "wordnet"), "replacement sources tried in order",
                                      choices=SOURCE_NAMES)
    pick: Pick = option("random", "which acceptable candidate to use: random, best ranked, or the 4th ranked as "
                        "CE-CLIP (original)")
    mlm_model: str | None = option(None, "local masked-LM folder (e.g. distilroberta-base); only with --sources mlm",
                                   metavar="DIR")
    mlm_top_k: int = option(5, "masked-LM fills considered per slot (--sources mlm)", at_least=1)
    #: captions whose vocabulary --sources corpus draws from (genemi negatives: --input)
    corpus_file: str | None = option(None, "captions file whose vocabulary --sources corpus draws from",
                                     flag=False)
    fluency_model: str | None = option(None, "local masked or causal LM folder; turns the fluency guard on",
                                       metavar="DIR")
    fluency: bool | None = option(None, "the fluency guard (--no-fluency: off although --fluency-model is given)",
                                  default_text="on when --fluency-model is given")
    fluency_margin: float = option(1.0, "invalidate negatives scoring more than this many nats/token below the "
                                   "caption")
    fluency_types: tuple[str, ...] = option(DEFAULT_FLUENCY_TYPES, "types the fluency guard checks",
                                            default_text="all but the word-order shuffles, which are meant to be "
                                            "disfluent")
    seed: int = option(0, "random seed; output depends only on seed and caption ids")
    device: str = option("cpu", "device of the masked/causal LMs (cpu, cuda, cuda:1)")
    spacy_batch_size: int = option(256, "captions per spaCy batch", at_least=1)
    model_batch_size: int = option(64, "texts per masked/causal LM batch", at_least=1)
    spacy_model: str = option(SPACY_MODEL, "spaCy pipeline (installed package name or folder)")

    def validate(self) -> None:
        from genemi.errors import ConfigError

        self.types = resolve_types(self.types)
        self.fluency_types = resolve_types(self.fluency_types) if self.fluency_types else ()
        if self.fluency and not self.fluency_model:
            raise ConfigError("the fluency guard needs --fluency-model (a local masked or causal LM folder)")
        if self.mlm_model and "mlm" not in self.sources:
            raise ConfigError(f"--mlm-model {self.mlm_model} is used only by --sources mlm, not --sources "
                              f"{','.join(self.sources)}: add mlm (e.g. --sources mlm,{','.join(self.sources)}) or "
                              "drop --mlm-model")
        if self.corpus_file and "corpus" not in self.sources:
            raise ConfigError("corpus_file is used only by --sources corpus: add corpus to --sources or drop it")

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
