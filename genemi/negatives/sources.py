"""Where replacement words come from: curated vocabulary, WordNet, or a masked language model.

A source answers :class:`Slot` requests (replace this noun / adjective / verb / relation, or add an object
or attribute here) with candidate surface forms, best first, already inflected to fit the slot. Sources
chain (``--sources mlm,vocabulary``): a slot the first source has no acceptable word for goes to the next.
Batched sources (the masked LM) compute all slots of a chunk of captions in :meth:`prepare`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol, Sequence

from genemi.text import vocabulary as vocab
from genemi.text.inflection import inflect_verb, pluralize, singularize, verb_base
from genemi.text.parsing import ParsedCaption

SlotKind = Literal["obj", "att", "act", "rel", "add_obj", "add_att"]


@dataclass(frozen=True)
class Slot:
    """Tokens ``[start, end)`` of ``parsed`` to replace (or, for ``add_*``, the insertion point ``start``)."""

    kind: SlotKind
    start: int
    end: int
    word: str  # surface text of the span ("" for additions)
    tag: str  # Penn tag of the span's head (for inflection)

    @property
    def plural(self) -> bool:
        return self.tag in ("NNS", "NNPS")


class ReplacementSource(Protocol):
    name: str

    def prepare(self, requests: Sequence[tuple[ParsedCaption, Slot]]) -> None:
        """Precompute candidates for many slots at once (no-op for table lookups)."""

    def candidates(self, parsed: ParsedCaption, slot: Slot) -> list[str]:
        """Replacement texts for ``slot``, best first (may include unacceptable ones; the caller filters)."""


_ALL_VERBS = tuple(dict.fromkeys(v for group in vocab.VERB_GROUPS.values() for v in group))
_ADDABLE_NOUN_CATEGORIES = ("animal", "person", "vehicle", "carried", "furniture", "tableware", "sports", "food")
_ADDABLE_ADJECTIVE_CATEGORIES = ("colour", "material", "size", "pattern")


def noun_lemma(word: str, tag: str) -> str:
    return singularize(word.lower()) if tag in ("NNS", "NNPS") else word.lower()


def verb_lemma(word: str, lemma_hint: str | None = None) -> str:
    return verb_base(word, _ALL_VERBS) or (lemma_hint or word).lower()


class VocabularySource:
    """genemi's curated, category-preserving vocabulary (:mod:`genemi.text.vocabulary`)."""

    name = "vocabulary"

    def prepare(self, requests: Sequence[tuple[ParsedCaption, Slot]]) -> None:
        return None

    def candidates(self, parsed: ParsedCaption, slot: Slot) -> list[str]:
        if slot.kind == "obj":
            alts = vocab.noun_alternatives(noun_lemma(slot.word, slot.tag))
            return [pluralize(a) if slot.plural else a for a in alts]
        if slot.kind == "att":  # antonyms only when there are some ("big" -> "small"), else the category
            return list(vocab.adjective_antonyms(slot.word) or vocab.adjective_alternatives(slot.word))
        if slot.kind == "act":
            lemma = parsed.tokens[slot.start].lemma
            return [inflect_verb(v, slot.tag) for v in vocab.verb_alternatives(verb_lemma(slot.word, lemma))]
        if slot.kind == "rel":  # the opposite relation ("on" -> "under")
            return list(vocab.relation_opposites(slot.word))
        if slot.kind == "add_obj":
            return [n for cat in _ADDABLE_NOUN_CATEGORIES for n in vocab.nouns_in(cat)]
        if slot.kind == "add_att":
            return [a for cat in _ADDABLE_ADJECTIVE_CATEGORIES for a in vocab.adjectives_in(cat)]
        return []


class WordNetSource:
    """WordNet 3.0: co-hyponyms (siblings under the first sense's hypernyms) of nouns and verbs, antonyms
    of adjectives (colour adjectives: sibling colours). No relations or additions (the chain falls back)."""

    name = "wordnet"

    def __init__(self, max_candidates: int = 30):
        from genemi.text.wordnet import load_wordnet

        self.wn = load_wordnet()
        self.max_candidates = max_candidates

    def prepare(self, requests: Sequence[tuple[ParsedCaption, Slot]]) -> None:
        return None

    def _siblings(self, lemma: str, pos: str) -> list[str]:
        synsets = self.wn.synsets(lemma, pos)
        if not synsets:
            return []
        first = synsets[0]
        own = {name.lower() for name in first.lemma_names()}
        out: list[str] = []
        # sorted: nltk builds some of these lists from sets, whose order changes between processes
        for hyper in sorted(first.hypernyms(), key=lambda s: s.name()):
            for sibling in sorted(hyper.hyponyms(), key=lambda s: s.name()):
                if sibling == first:
                    continue
                for name in sibling.lemma_names():
                    if "_" not in name and name.islower() and name not in own and name not in out:
                        out.append(name)
        return out[: self.max_candidates]

    def candidates(self, parsed: ParsedCaption, slot: Slot) -> list[str]:
        if slot.kind == "obj":
            lemma = self.wn.morphy(slot.word.lower(), "n") or noun_lemma(slot.word, slot.tag)
            return [pluralize(s) if slot.plural else s for s in self._siblings(lemma, "n")]
        if slot.kind == "act":
            lemma = self.wn.morphy(slot.word.lower(), "v") or verb_lemma(slot.word)
            return [inflect_verb(s, slot.tag) for s in self._siblings(lemma, "v")]
        if slot.kind == "att":
            word = slot.word.lower()
            antonyms = [
                ant.name()
                for syn in self.wn.synsets(word, "a")[:4]
                for lem in syn.lemmas()
                if lem.name().lower() == word
                for ant in lem.antonyms()
            ]
            if antonyms:
                return sorted(set(antonyms))
            nouns = self.wn.synsets(word, "n")
            if nouns and any("color" in h.name() for h in nouns[0].hypernyms()):
                return self._siblings(word, "n")
        return []


class MaskedLMSource:
    """A masked LM from a local folder (e.g. ``distilroberta-base``): the span becomes one mask token and
    the top-k whole-word fills are the candidates, best first (CE-CLIP's generator)."""

    name = "mlm"

    def __init__(self, path: str | Path, top_k: int = 5, device: str = "cpu", batch_size: int = 64):
        from genemi.models.hf import load_masked_lm

        self.model, self.tokenizer = load_masked_lm(path, device)
        self.top_k, self.device, self.batch_size = top_k, device, batch_size
        self._cache: dict[tuple[str, int, int], list[str]] = {}

    @staticmethod
    def _key(parsed: ParsedCaption, slot: Slot) -> tuple[str, int, int]:
        return parsed.text, slot.start, slot.end

    def _masked(self, parsed: ParsedCaption, slot: Slot) -> str:
        mask = self.tokenizer.mask_token
        reps = {i: "" for i in range(slot.start + 1, slot.end)}
        reps[slot.start] = mask
        return parsed.render(reps)

    def prepare(self, requests: Sequence[tuple[ParsedCaption, Slot]]) -> None:
        from genemi.models.hf import fill_mask

        todo = [(p, s) for p, s in requests if s.kind in ("obj", "att", "act", "rel") and self._key(p, s) not in self._cache]
        if len(self._cache) > 100_000:
            self._cache.clear()
        texts = [self._masked(p, s) for p, s in todo]
        fills = fill_mask(self.model, self.tokenizer, texts, self.top_k, self.device, self.batch_size)
        for (p, s), words in zip(todo, fills):
            self._cache[self._key(p, s)] = words

    def candidates(self, parsed: ParsedCaption, slot: Slot) -> list[str]:
        if slot.kind not in ("obj", "att", "act", "rel"):
            return []
        key = self._key(parsed, slot)
        if key not in self._cache:
            self.prepare([(parsed, slot)])
        return list(self._cache[key])


SOURCE_NAMES = ("vocabulary", "wordnet", "mlm")


def build_sources(names: Sequence[str], mlm_model: str | Path | None = None, top_k: int = 5,
                  device: str = "cpu", batch_size: int = 64) -> list[ReplacementSource]:
    """Instantiate the named sources in order (``mlm`` needs ``mlm_model``)."""
    from genemi.errors import ConfigError

    sources: list[ReplacementSource] = []
    for name in names:
        if name == "vocabulary":
            sources.append(VocabularySource())
        elif name == "wordnet":
            sources.append(WordNetSource())
        elif name == "mlm":
            if mlm_model is None:
                raise ConfigError("source 'mlm' needs --mlm-model (a local folder such as distilroberta-base)")
            sources.append(MaskedLMSource(mlm_model, top_k, device, batch_size))
        else:
            raise ConfigError(f"unknown replacement source {name!r}; choose from {', '.join(SOURCE_NAMES)}")
    if not sources:
        raise ConfigError("at least one replacement source is needed")
    return sources
