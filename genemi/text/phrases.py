"""Items from captions: the noun phrases a tagger turns into items to edit."""

from __future__ import annotations

from typing import Sequence

from genemi.text.parsing import parse_captions


def noun_phrases(texts: Sequence[str], max_items: int) -> list[list[str]]:
    """Items from captions: noun phrases without determiners, one per head noun, in order of appearance."""
    out = []
    for parsed in parse_captions(texts):
        items, heads = [], set()
        for chunk in parsed.chunks:
            root = parsed.tokens[chunk.root]
            if root.pos not in ("NOUN", "PROPN") or root.lemma in heads:
                continue
            words = [t.text.lower() for t in parsed.tokens[chunk.start : chunk.end]
                     if t.pos not in ("DET", "PRON", "NUM") and t.text.isalpha()]
            if words:
                heads.add(root.lemma)
                items.append(" ".join(words))
        out.append(items[:max_items])
    return out
