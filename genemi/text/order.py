"""Word-order perturbations of ARO (Yuksekgonul et al., 2023) used by NegCLIP and by COCO/Flickr-Order.

Each takes a parsed caption and a ``random.Random`` and returns the perturbed text, or ``None`` when the
perturbation cannot change the caption (too few movable words). Final punctuation is dropped, as in ARO;
words are joined by single spaces.
"""

from __future__ import annotations

import random
from typing import Callable

from genemi.text.parsing import ParsedCaption

_CONTENT = ("NOUN", "PROPN", "ADJ")
_MAX_TRIES = 20


def _shuffled(positions: list[int], rng: random.Random) -> list[int] | None:
    """A permutation of ``positions`` that moves at least one of them, or None if impossible."""
    if len(positions) < 2:
        return None
    for _ in range(_MAX_TRIES):
        perm = positions[:]
        rng.shuffle(perm)
        if perm != positions:
            return perm
    return None


def _words(parsed: ParsedCaption) -> list[int]:
    return parsed.words()


def _permute_slots(parsed: ParsedCaption, rng: random.Random, movable: Callable[[int], bool]) -> str | None:
    words = _words(parsed)
    slots = [k for k, i in enumerate(words) if movable(i)]
    perm = _shuffled([words[k] for k in slots], rng)
    if perm is None:
        return None
    order = words[:]
    for k, token_index in zip(slots, perm):
        order[k] = token_index
    return _distinct(parsed, order, words)


def _distinct(parsed: ParsedCaption, order: list[int], words: list[int]) -> str | None:
    """Render ``order``; None if it reads the same as the unperturbed words (e.g. two equal nouns swapped)."""
    text = parsed.render(order=order)
    return None if text.lower() == parsed.render(order=words).lower() else text


def shuffle_nouns_and_adjectives(parsed: ParsedCaption, rng: random.Random) -> str | None:
    """Permute the nouns and adjectives among their own positions; every other word stays."""
    return _permute_slots(parsed, rng, lambda i: parsed.tokens[i].pos in _CONTENT)


def shuffle_all_but_nouns_and_adjectives(parsed: ParsedCaption, rng: random.Random) -> str | None:
    """Permute every word that is not a noun or adjective; nouns and adjectives stay."""
    return _permute_slots(parsed, rng, lambda i: parsed.tokens[i].pos not in _CONTENT)


def _trigrams(words: list[int]) -> list[list[int]]:
    return [words[k : k + 3] for k in range(0, len(words), 3)]


def shuffle_within_trigrams(parsed: ParsedCaption, rng: random.Random) -> str | None:
    """Split into consecutive trigrams and permute the words inside each."""
    words = _words(parsed)
    for _ in range(_MAX_TRIES):
        order = []
        for tri in _trigrams(words):
            tri = tri[:]
            rng.shuffle(tri)
            order += tri
        text = _distinct(parsed, order, words)
        if text is not None:
            return text
    return None


def shuffle_trigrams(parsed: ParsedCaption, rng: random.Random) -> str | None:
    """Split into consecutive trigrams and permute their order."""
    words = _words(parsed)
    tris = _trigrams(words)
    for _ in range(_MAX_TRIES):
        perm = _shuffled(list(range(len(tris))), rng)
        if perm is None:
            return None
        text = _distinct(parsed, [i for k in perm for i in tris[k]], words)
        if text is not None:
            return text
    return None


#: ARO's four perturbations in the order of its COCO/Flickr-Order files
ORDER_PERTURBATIONS: dict[str, Callable[[ParsedCaption, random.Random], str | None]] = {
    "shuffle_nouns_adjs": shuffle_nouns_and_adjectives,
    "shuffle_allbut_nouns_adjs": shuffle_all_but_nouns_and_adjectives,
    "shuffle_within_trigrams": shuffle_within_trigrams,
    "shuffle_trigrams": shuffle_trigrams,
}
