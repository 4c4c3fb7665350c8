"""Items from captions: the noun phrases a tagger turns into items to edit, one per object.

An item is a noun phrase (spaCy's noun chunks) whose head names an object: not a spatial, quantity, depiction or
time word ("the left", "a group", "a picture", "night": ``genemi/text/data/non_objects.yaml``), not a colour or
other attribute standing alone ("a small purple"). A known noun of genemi's vocabulary that spaCy tagged as
something else right after the chunk ("a small cyan *square* right of", "square" read as an adjective) is taken as
the head, and so is one that spaCy left outside every chunk after a determiner and its modifiers ("a small cyan
square right of ...", parsed with no noun at all). Markup (``<img src=x onerror=...>``) is no caption text and is
removed first. Determiners, pronouns, numbers and non-alphabetic tokens are left out of the item; one item per head
lemma, in order.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Sequence

from genemi.text.parsing import Chunk, ParsedCaption, Token, parse_captions
from genemi.text.vocabulary import adjective_category, noun_category, read_vocabulary_file

_MARKUP = re.compile(r"<[^<>]*>")


@lru_cache(maxsize=1)
def non_object_words() -> frozenset[str]:
    """Every word of ``non_objects.yaml`` (all its lists)."""
    return frozenset(w for words in read_vocabulary_file("non_objects.yaml").values() for w in words)


def strip_markup(text: str) -> str:
    """``text`` without HTML/XML tags (each replaced by a space)."""
    return _MARKUP.sub(" ", text)


def _known_noun(tok: Token) -> bool:
    return noun_category(tok.lemma) is not None or noun_category(tok.text) is not None


def _known_noun_word(tok: Token) -> bool:
    """A word that is itself a known noun (not by its lemma: "parked" is no "park"), for a mis-tagged head."""
    return noun_category(tok.text) is not None or noun_category(tok.text.lower()) is not None


def _names_object(tok: Token) -> bool:
    """Whether ``tok`` can head an item: a noun that is no non-object word and no lone attribute."""
    word, lemma = tok.text.lower(), tok.lemma.lower()
    if not tok.text.isalpha() or word in non_object_words() or lemma in non_object_words():
        return False
    if _known_noun(tok):
        return True
    return tok.pos in ("NOUN", "PROPN") and adjective_category(word) is None


def _chunks(parsed: ParsedCaption) -> list[Chunk]:
    """spaCy's noun chunks, plus ``determiner + modifiers + known noun`` spans it left outside every chunk (the
    noun mis-tagged, so no chunk was built), in order."""
    tokens = parsed.tokens
    covered = {i for c in parsed.chunks for i in range(c.start, c.end)}
    extra = []
    for i, tok in enumerate(tokens):
        if i in covered or not _known_noun_word(tok):
            continue
        j = i - 1
        while j >= 0 and j not in covered and tokens[j].pos in ("ADJ", "PROPN", "NOUN", "VERB") and \
                tokens[j].dep in ("amod", "compound", "nmod"):
            j -= 1
        if j >= 0 and j not in covered and tokens[j].pos == "DET" and j < i - 1:
            extra.append(Chunk(j, i + 1, i))
            covered.update(range(j, i + 1))
    return sorted([*parsed.chunks, *extra], key=lambda c: c.start)


def object_phrases(parsed: ParsedCaption) -> list[tuple[str, str]]:
    """``(head lemma, item phrase)`` of every noun chunk of ``parsed`` that names an object, in order."""
    tokens, out = parsed.tokens, []
    for chunk in _chunks(parsed):
        end = chunk.end
        while end < len(tokens) and tokens[end].pos in ("ADJ", "VERB", "NOUN", "PROPN") and \
                _known_noun_word(tokens[end]):
            end += 1  # a known noun spaCy tagged otherwise, right after the chunk, is its real head
        heads = [i for i in range(chunk.start, end) if _names_object(tokens[i])]
        if not heads:
            continue
        head = heads[-1]
        words = [t.text.lower() for t in tokens[chunk.start : head + 1]
                 if t.pos not in ("DET", "PRON", "NUM") and t.text.isalpha()]
        out.append((tokens[head].lemma.lower(), " ".join(words)))
    return out


def noun_phrases(texts: Sequence[str], max_items: int) -> list[list[str]]:
    """Items from captions (see the module docstring): at most ``max_items`` per text, one per head lemma."""
    out = []
    for parsed in parse_captions([strip_markup(t) for t in texts]):
        items, heads = [], set()
        for lemma, phrase in object_phrases(parsed):
            if lemma not in heads and phrase:
                heads.add(lemma)
                items.append(phrase)
        out.append(items[:max_items])
    return out
