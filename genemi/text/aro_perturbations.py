"""ARO's COCO/Flickr-Order caption options, rebuilt exactly as ARO's code builds them (the ``official`` protocol).

Read from ``mertyg/vision-language-models-are-bows`` at commit ``81fdd20`` (``dataset_zoo/perturbations.py``,
``dataset_zoo/aro_datasets.py``, ``dataset_zoo/retrieval.py``, ``main_aro.py``, ``misc/__init__.py``); this is
genemi's own implementation of the procedure described there:

* ``main_aro.py`` seeds Python's ``random`` and NumPy's global ``RandomState`` once with ``--seed`` (default 1)
  and then builds every test case of the Karpathy file, image after image, caption after caption.
* Each test case is ``[pre_caption(c), pre_caption(p1(c)), ..., pre_caption(p4(c))]`` for the **raw**
  caption ``c``; the perturbations see the caption before any normalisation and the 30-word truncation is
  applied afterwards.
* ``p1`` (nouns and adjectives): spaCy tokens of ``c``; the tokens tagged ``NN NNS NNP NNPS`` are permuted
  among their positions with ``np.random.permutation``, then those tagged ``JJ JJR JJS`` (second draw).
  ``p2`` (all but nouns and adjectives): one permutation of every other token (punctuation and spaCy's
  whitespace tokens included). Both join the tokens with single spaces.
* ``p3`` (within trigrams) and ``p4`` (trigrams): ``nltk.word_tokenize(c)`` cut into consecutive trigrams
  (the last may be shorter); ``p3`` applies ``random.shuffle`` to each trigram in turn, ``p4`` one
  ``random.shuffle`` to the list of trigrams.
* So per caption NumPy's stream is drawn for nouns, adjectives, the rest (in that order) and Python's for
  each trigram, then the trigram list; the streams never mix, so replaying them needs only the seed and
  the captions *in file order*: the options of a caption depend on every caption before it in the file.

Nothing forces a perturbation to differ from the caption: when it cannot move anything (one noun and no
adjective, a caption of two words...) the option equals the true caption, a guaranteed exact tie that
ARO's ``argmax`` (true caption first) counts as correct.

Deviations (the closest equivalents available offline):

* spaCy model: genemi's ``en_core_web_sm`` 3.8.0 (:data:`genemi.text.parsing.SPACY_MODEL`); ARO loaded
  whichever ``en_core_web_sm`` its environment had (``spacy>=3.1.1``, early 2023: a 3.4/3.5 model). Another
  model version can tag a word differently, and because the streams run through the file, a caption whose
  count of nouns, adjectives or other tokens changes shifts the draws of the captions after it: on 4,345
  COCO captions, en_core_web_sm 3.6.0 instead of 3.8.0 changes that count in 520 captions and the options
  of 66-93% of the items (seeds 0-4). The options are exact for a given tagger; to compare with another
  site, exchange an options file.
* ``nltk.word_tokenize`` splits sentences with NLTK's pretrained English Punkt model, which is data that
  cannot be downloaded here. genemi uses it when NLTK finds it (``punkt_tab``, e.g. after
  ``nltk.download("punkt_tab")`` or with ``NLTK_DATA``); otherwise sentences are split by an *untrained*
  Punkt tokenizer (NLTK's own algorithm with no learned abbreviations), then each sentence is tokenized by
  the same Treebank tokenizer ``word_tokenize`` uses. The two agree except after an abbreviation the English
  model knows ("Mr.", "St.", ...), where the untrained one starts a new sentence. Of 4,345 COCO captions
  (SugarCrepe's positives), 3 contain two sentences and none an abbreviation. :func:`sentence_splitter`
  says which is in use; it is part of the benchmark's cache key.
* ARO's own process may draw from Python's ``random`` between seeding and the first caption: in an
  environment where ``import spacy`` (done lazily, after seeding) imports ``rich`` (as with spaCy 3.8 and
  typer 0.29 here), rich's import draws one 32-bit word. ``python_random_skip`` discards that many words
  first (default 0: nothing drawn, the reading of ARO's code); it only changes ``p3``/``p4``, and in practice
  only of the first caption: ``random.shuffle``'s rejection sampling soon puts both streams on the same
  words again (skip 1 vs 0 changed item 0 alone, in 3 of seeds 0-4, on 4,345 captions).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable, Sequence

import numpy as np

NOUN_TAGS = frozenset({"NN", "NNS", "NNP", "NNPS"})
ADJECTIVE_TAGS = frozenset({"JJ", "JJR", "JJS"})
ARO_MAX_WORDS = 30

_DROPPED = re.compile(r"[.!\"()*#:;~]")
_RUNS = re.compile(r"\s{2,}")


def pre_caption(caption: str, max_words: int = ARO_MAX_WORDS) -> str:
    """ARO's (and BLIP's) ``pre_caption``: lower case, each of ``.!"()*#:;~`` becomes a space, runs of two or
    more whitespace characters become one space (a single newline or tab stays), trailing newlines and
    surrounding spaces go, and the first ``max_words`` space-separated words are kept.

    Unlike :func:`genemi.text.normalize.normalize_caption`, a lone ``\\n`` or ``\\t`` is kept as is.
    """
    text = _RUNS.sub(" ", _DROPPED.sub(" ", caption.lower())).rstrip("\n").strip(" ")
    words = text.split(" ")
    return " ".join(words[:max_words]) if len(words) > max_words else text


@lru_cache(maxsize=1)
def sentence_splitter() -> str:
    """``punkt`` when NLTK's pretrained English Punkt data is installed (exactly ``nltk.word_tokenize``),
    else ``untrained-punkt`` (see the module docstring)."""
    import nltk

    try:
        nltk.data.find("tokenizers/punkt_tab/english/")
        return "punkt"
    except LookupError:
        return "untrained-punkt"


@lru_cache(maxsize=1)
def _tokenizers():
    from nltk.tokenize import NLTKWordTokenizer
    from nltk.tokenize.punkt import PunktSentenceTokenizer

    return PunktSentenceTokenizer(), NLTKWordTokenizer()


def word_tokenize(text: str, splitter: str | None = None) -> list[str]:
    """``nltk.word_tokenize(text)`` with the English Punkt model, or with an untrained Punkt sentence
    splitter when that model is not installed (``splitter`` forces one: ``punkt`` / ``untrained-punkt``)."""
    splitter = splitter or sentence_splitter()
    if splitter == "punkt":
        import nltk

        return nltk.word_tokenize(text)
    if splitter != "untrained-punkt":
        raise ValueError(f"unknown sentence splitter {splitter!r}")
    sentences, words = _tokenizers()
    return [token for sentence in sentences.tokenize(text) for token in words.tokenize(sentence)]


@dataclass(frozen=True)
class TaggedCaption:
    """What the four perturbations read from one raw caption."""

    caption: str
    tokens: tuple[str, ...]  # spaCy token texts (whitespace tokens included)
    tags: tuple[str, ...]  # their fine-grained (Penn) tags
    words: tuple[str, ...]  # word_tokenize tokens (for the trigram perturbations)


def tag_captions(captions: Sequence[str], nlp=None, splitter: str | None = None,
                 batch_size: int = 256) -> list[TaggedCaption]:
    """spaCy tokens and tags (genemi's pipeline unless ``nlp`` is given) and NLTK words of raw captions.

    ``nlp.pipe`` batching gives the same tags as one ``nlp(caption)`` call per caption (checked on 4,345
    COCO captions)."""
    if nlp is None:
        from genemi.text.parsing import load_spacy

        nlp = load_spacy()
    out = []
    for caption, doc in zip(captions, nlp.pipe(captions, batch_size=batch_size)):
        out.append(TaggedCaption(caption, tuple(t.text for t in doc), tuple(t.tag_ for t in doc),
                                 tuple(word_tokenize(caption, splitter))))
    return out


class AroRandom:
    """The two random streams of one ARO run: ``np.random.seed(seed)`` and ``random.seed(seed)``, with
    ``python_random_skip`` 32-bit words of Python's stream drawn before the first caption."""

    def __init__(self, seed: int, python_random_skip: int = 0):
        self.numpy = np.random.RandomState(seed)
        self.python = random.Random(seed)
        for _ in range(python_random_skip):
            self.python.getrandbits(32)

    def permuted(self, values: list[str]) -> list[str]:
        """``np.random.permutation`` of ``values`` (the same draws as permuting an array of that length)."""
        return [values[i] for i in self.numpy.permutation(len(values))]


def _trigrams(words: Sequence[str]) -> list[list[str]]:
    return [list(words[k : k + 3]) for k in range(0, len(words), 3)]


def _join_trigrams(trigrams: list[list[str]]) -> str:
    return " ".join(" ".join(t) for t in trigrams)


def _permute_where(tokens: list[str], positions: list[int], rng: AroRandom) -> None:
    for position, value in zip(positions, rng.permuted([tokens[k] for k in positions])):
        tokens[position] = value


def perturb(tagged: TaggedCaption, rng: AroRandom) -> list[str]:
    """ARO's four perturbations of one caption (before ``pre_caption``), drawing from ``rng`` in ARO's order."""
    tags = tagged.tags
    nouns = [k for k, t in enumerate(tags) if t in NOUN_TAGS]
    adjectives = [k for k, t in enumerate(tags) if t in ADJECTIVE_TAGS]
    tokens = list(tagged.tokens)
    _permute_where(tokens, nouns, rng)
    _permute_where(tokens, adjectives, rng)
    first = " ".join(tokens)

    others = [k for k, t in enumerate(tags) if t not in NOUN_TAGS and t not in ADJECTIVE_TAGS]
    tokens = list(tagged.tokens)
    _permute_where(tokens, others, rng)
    second = " ".join(tokens)

    trigrams = _trigrams(tagged.words)
    for trigram in trigrams:
        rng.python.shuffle(trigram)
    third = _join_trigrams(trigrams)

    trigrams = _trigrams(tagged.words)
    rng.python.shuffle(trigrams)
    fourth = _join_trigrams(trigrams)
    return [first, second, third, fourth]


def official_options(tagged: Iterable[TaggedCaption], seed: int, max_words: int = ARO_MAX_WORDS,
                     python_random_skip: int = 0) -> list[list[str]]:
    """Every test case of one ARO run with ``--seed seed``: ``[true caption, p1..p4]`` per caption, all passed
    through ``pre_caption``. ``tagged`` must hold the captions in file order (the streams run through them)."""
    rng = AroRandom(seed, python_random_skip)
    return [[pre_caption(t.caption, max_words)] + [pre_caption(p, max_words) for p in perturb(t, rng)]
            for t in tagged]
