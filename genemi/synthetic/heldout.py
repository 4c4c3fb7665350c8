"""Which held-out elements of a :class:`~genemi.synthetic.scenes.SplitSpec` a *text* names, in any wording.

Training text must never name what the test split holds out: no held-out (shape, colour) pair ("a blue
hexagon", also inside a hard negative) and no held-out arrangement, however it is worded: a stated relation
implies others on the grid ("a square right of a circle" states "circle left of square"; "a star on top of a
cross" states "star above cross"), and the text names a held-out arrangement when any relation it implies is
one. Clauses are read leniently (any text, not only the world's grammar: hard negatives from other
vocabularies): in each ``and``-separated clause the first two shape words with a relation wording between
them are a stated relation, and a colour word right before a shape word (a plural shape too) is a pair.
"""

from __future__ import annotations

import re
from functools import lru_cache

from genemi.synthetic.scenes import COLOURS, SHAPES, SplitSpec

#: what a stated relation implies on the grid: (subject, relation, object) facts, "s"/"o" the two sides
_IMPLIES = {
    "left of": (("s", "left of", "o"), ("o", "right of", "s")),
    "right of": (("s", "right of", "o"), ("o", "left of", "s")),
    "above": (("s", "above", "o"), ("o", "below", "s")),
    "below": (("s", "below", "o"), ("o", "above", "s")),
    "on top of": (("s", "on top of", "o"), ("s", "above", "o"), ("o", "below", "s")),
}


@lru_cache(maxsize=1)
def _patterns() -> tuple[re.Pattern, re.Pattern, dict[str, str]]:
    from genemi.synthetic.parsing import wordings

    words = wordings()
    alt = lambda ws: "|".join(re.escape(w) for w in sorted(ws, key=len, reverse=True))  # noqa: E731
    shape = rf"\b({alt(SHAPES)})(?:e?s)?\b"
    pair = re.compile(rf"\b({alt(COLOURS)}) {shape}")
    token = re.compile(rf"{shape}|\b({alt(words)})\b")
    return pair, token, words


def stated_relations(text: str) -> list[tuple[str, str, str]]:
    """(subject shape, relation, object shape) of every clause that relates two shapes (see the module)."""
    from genemi.synthetic.parsing import normalise

    _, token, words = _patterns()
    out = []
    for clause in re.split(r"\band\b", normalise(text)):
        shapes, relation = [], None
        for m in token.finditer(clause):
            if m.group(1):
                shapes.append(m.group(1))
                if len(shapes) == 2:
                    break
            elif shapes and relation is None:
                relation = words[m.group(2)]
        if len(shapes) == 2 and relation is not None:
            out.append((shapes[0], relation, shapes[1]))
    return out


def named_pairs(text: str) -> list[tuple[str, str]]:
    """(shape, colour) of every colour word right before a shape word."""
    from genemi.synthetic.parsing import normalise

    pair, _, _ = _patterns()
    return [(m.group(2), m.group(1)) for m in pair.finditer(normalise(text))]


def heldout_named(text: str, spec: SplitSpec) -> list[str]:
    """The held-out elements ``text`` names (``pair:shape/colour``, ``arrangement:s/rel/o``; empty: none)."""
    out = [f"pair:{s}/{c}" for s, c in named_pairs(text) if (s, c) in spec.heldout_pairs]
    held = set(spec.heldout_arrangements)
    for s, rel, o in stated_relations(text):
        for a, r, b in _IMPLIES[rel]:
            key = ({"s": s, "o": o}[a], r, {"s": s, "o": o}[b])
            if key in held:
                out.append(f"arrangement:{'/'.join(key)}")
    return list(dict.fromkeys(out))
