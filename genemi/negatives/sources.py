"""Where replacement words come from: curated vocabulary, WordNet, a masked language model, or the captions
file's own vocabulary (``corpus``: negatives stay in the corpus's domain, none rejected by an unseen word alone).

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


@dataclass
class CorpusVocabulary:
    """The words a caption corpus uses, by part of speech (spaCy), with their counts: object nouns (lemmas; not
    the spatial, depiction or quantity words of ``non_objects.yaml``), adjectives, verbs (lemmas) and the
    relation phrases of genemi's vocabulary that occur in it; ``surface``: every word form it writes."""

    nouns: dict[str, int]
    adjectives: dict[str, int]
    verbs: dict[str, int]
    relations: dict[str, int]
    surface: frozenset[str] = frozenset()

    @classmethod
    def from_captions(cls, texts: Sequence[str], spacy_model: str | None = None) -> "CorpusVocabulary":
        from collections import Counter

        from genemi.text.parsing import SPACY_MODEL, parse_captions
        from genemi.text.phrases import non_object_words

        skip = non_object_words()
        by_first = vocab.relation_phrases_by_first_word()
        nouns, adjectives, verbs, relations, surface = Counter(), Counter(), Counter(), Counter(), set()
        for parsed in parse_captions(dict.fromkeys(texts), model=spacy_model or SPACY_MODEL):
            lowered = [t.text.lower() for t in parsed.tokens]
            surface.update(lowered)
            for i, tok in enumerate(parsed.tokens):
                if not tok.text.isalpha():
                    continue
                if tok.pos == "NOUN" and noun_lemma(tok.text, tok.tag) not in skip:
                    nouns[noun_lemma(tok.text, tok.tag)] += 1
                elif tok.pos == "ADJ":
                    adjectives[lowered[i]] += 1
                elif tok.pos == "VERB":
                    verbs[verb_lemma(tok.text, tok.lemma)] += 1
                for phrase in by_first.get(lowered[i], ()):
                    if tuple(lowered[i : i + len(phrase)]) == phrase:
                        relations[" ".join(phrase)] += 1
        ranked = lambda c: dict(sorted(c.items(), key=lambda kv: (-kv[1], kv[0])))  # noqa: E731
        return cls(ranked(nouns), ranked(adjectives), ranked(verbs), ranked(relations), frozenset(surface))

    def writes(self, text: str) -> bool:
        """Whether every word of ``text`` is a form the corpus writes."""
        return all(w in self.surface for w in text.lower().split())


def _same_class(word: str, words: Sequence[str], classify) -> list[str]:
    """``words`` of ``word``'s class (``classify``: word -> class or None) when genemi's vocabulary knows it
    (none when the corpus holds no other of it: the chain goes on); else every word (the corpus's own words
    are in-domain by construction)."""
    own = classify(word)
    if own is not None:
        return [w for w in words if w != word and classify(w) == own]
    return [w for w in words if w != word]


class CorpusSource:
    """Replacements from the vocabulary of the captions file itself (:class:`CorpusVocabulary`), so every
    negative uses words the corpus uses: another object noun of the slot's category where genemi's vocabulary
    knows it (colour for colour, size for size among adjectives; the relation's opposite first; none when the
    corpus has no other of the class), else any of the corpus's words of the slot's part of speech, most
    frequent first. Built from a caption file
    (``corpus_file``; ``genemi negatives --sources corpus`` uses ``--input``) or from texts."""

    name = "corpus"

    def __init__(self, corpus: "CorpusVocabulary | str | Path", spacy_model: str | None = None):
        if not isinstance(corpus, CorpusVocabulary):
            from genemi.caption_files import read_caption_entries

            corpus = CorpusVocabulary.from_captions([e.caption for e in read_caption_entries(corpus)], spacy_model)
        self.corpus = corpus

    def prepare(self, requests: Sequence[tuple[ParsedCaption, Slot]]) -> None:
        return None

    def candidates(self, parsed: ParsedCaption, slot: Slot) -> list[str]:
        """Candidates (see the class) in the forms the corpus writes: an inflection it never uses is dropped."""
        return [w for w in self._lemmas(parsed, slot) if self.corpus.writes(w)]

    def _lemmas(self, parsed: ParsedCaption, slot: Slot) -> list[str]:
        c = self.corpus
        if slot.kind == "obj":
            alts = _same_class(noun_lemma(slot.word, slot.tag), list(c.nouns), vocab.noun_category)
            return [pluralize(a) if slot.plural else a for a in alts]
        if slot.kind == "att":
            return _same_class(slot.word.lower(), list(c.adjectives), vocab.adjective_category)
        if slot.kind == "act":
            lemma = verb_lemma(slot.word, parsed.tokens[slot.start].lemma)
            return [inflect_verb(v, slot.tag) for v in _same_class(lemma, list(c.verbs), vocab.verb_group)]
        if slot.kind == "rel":
            word = slot.word.lower()
            opposite = [r for r in vocab.relation_opposites(word) if r in c.relations]
            return opposite or [r for r in c.relations if r != word]
        if slot.kind == "add_obj":
            return list(c.nouns)
        if slot.kind == "add_att":
            return list(c.adjectives)
        return []


SOURCE_NAMES = ("vocabulary", "wordnet", "mlm", "corpus")


def build_sources(names: Sequence[str], mlm_model: str | Path | None = None, top_k: int = 5,
                  device: str = "cpu", batch_size: int = 64, corpus_file: str | Path | None = None,
                  spacy_model: str | None = None) -> list[ReplacementSource]:  # fmt: skip
    """Instantiate the named sources in order (``mlm`` needs ``mlm_model``, ``corpus`` the ``corpus_file``)."""
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
        elif name == "corpus":
            if corpus_file is None:
                raise ConfigError("source 'corpus' needs the captions file whose vocabulary it draws from "
                                  "(genemi negatives uses --input)")
            sources.append(CorpusSource(corpus_file, spacy_model))
        else:
            raise ConfigError(f"unknown replacement source {name!r}; choose from {', '.join(SOURCE_NAMES)}")
    if not sources:
        raise ConfigError("at least one replacement source is needed")
    return sources
