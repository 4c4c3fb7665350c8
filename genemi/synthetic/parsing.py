"""Shapes-world captions read back into scenes: the world's own grammar, the inverse of
:func:`~genemi.synthetic.scenes.caption`, :func:`~genemi.synthetic.scenes.clause` and
:func:`~genemi.synthetic.scenes.captions`.

A caption is clauses joined by ``and``. A clause either relates two objects in one of the world's relation
templates (``a {s} {r} a {o}``, ``there is a {s} {r} a {o}``, ``the {s} is {r} the {o}``, with every relation
wording, e.g. ``to the left of``, ``under``, and the unambiguous :data:`SYNONYMS` such as ``underneath``) or
names one object (``a {s}``, ``a picture of a {s}``, ``a {s} on a grey background``, ``the {s}``) or several
copies of one (``two {s}``, ``a picture of three {s}``, ``there are four {s}``, plural: ``two red circles``). An
object phrase is ``[small|large] [striped] <colour> <shape>``; a phrase without a size is ``large`` (the world's
default). Case, a final full stop, ``an`` and ``gray`` are accepted.

Objects are numbered as the world numbers them: the subject of a relation clause is always a new object (the
world's scenes never name one subject twice), the object of a relation clause is the earlier object with the
same phrase (one that was already a relation's object first: the world's anchor), else a new one. So
``caption(scene)`` parses back to the scene's objects, in order, with its relations.

A caption says nothing of where on the 3x3 grid the objects are, only how they relate; :func:`parse_caption`
places them with a seeded random layout (as :func:`~genemi.synthetic.scenes.random_scene` does) such that every
stated relation holds on the geometry (:func:`~genemi.synthetic.scenes.relation_holds`) and no two objects
overlap. A caption outside the grammar, or whose relations no layout satisfies, raises
:class:`CaptionParseError` naming why.
"""

from __future__ import annotations

import random
import re
from dataclasses import replace

from genemi.errors import DataError
from genemi.synthetic.scenes import (COLOURS, COUNT_WORDS, GRID, RELATION_WORDS, SHAPES, SIZES, Relation, Scene,
                                     SceneObject, _place, layout, relation_holds)
from genemi.text.inflection import pluralize

#: layouts tried before a caption's relations are declared impossible on the grid
ATTEMPTS = 200
_INVERSE = {"left of": "right of", "right of": "left of", "above": "below", "below": "above"}
_TEXTURES = ("striped", "plain")
#: words allowed before the object phrase in a prompt's first part ("a photo of a", "close-up photo of an")
PROMPT_LEAD_WORDS = frozenset({"a", "an", "the", "photo", "picture", "image", "of", "close-up", "closeup"})


class CaptionParseError(DataError):
    """A caption that is not in the shapes world's grammar, or whose relations no layout satisfies."""


def _alternation(words) -> str:
    return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))


_PHRASE = (rf"(?:({_alternation(SIZES)}) )?(?:({_alternation(_TEXTURES)}) )?({_alternation(COLOURS)}) "
           rf"({_alternation(SHAPES)})")
#: other wordings a rewritten caption may use (``genemi negatives``' relation vocabulary) whose meaning on the
#: grid is one of the world's relations; ambiguous ones (next to, near, behind) stay outside the grammar
SYNONYMS = {"underneath": "below", "beneath": "below", "over": "above", "on": "on top of",
            "on the left of": "left of", "on the right of": "right of"}
_WORDING = {**SYNONYMS, **{w: rel for rel, words in RELATION_WORDS.items() for w in words}}
_REL = f"({_alternation(_WORDING)})"
_DET = "(?:a|an|the)"
_RELATION_CLAUSES = (
    re.compile(rf"(?:there is )?{_DET} {_PHRASE} {_REL} {_DET} {_PHRASE}"),
    re.compile(rf"{_DET} {_PHRASE} is {_REL} {_DET} {_PHRASE}"),
)
_OBJECT_CLAUSE = re.compile(rf"(?:there is |a picture of )?{_DET} {_PHRASE}(?: on a grey background)?")
_PLURALS = {pluralize(shape): shape for shape in SHAPES}
_NUMBERS = {word: n for n, word in COUNT_WORDS.items()}
_COUNTED_CLAUSE = re.compile(rf"(?:there are |a picture of )?({_alternation(_NUMBERS)}) "
                             rf"{_PHRASE.replace(_alternation(SHAPES), _alternation(_PLURALS))}"
                             rf"(?: on a grey background)?")


def wordings() -> dict[str, str]:
    """Every relation wording the grammar reads (the world's own and :data:`SYNONYMS`) -> its relation."""
    return dict(_WORDING)


def normalise(text: str) -> str:
    """Lower case, single spaces, no final full stop, ``there's`` spelled out, ``gray`` as ``grey``."""
    text = " ".join(text.lower().replace("there's", "there is").split()).rstrip(" .")
    return re.sub(r"\bgray\b", "grey", text)


def _object(groups) -> SceneObject:
    size, texture, colour, shape = groups
    return SceneObject(shape, colour, size or "large", texture or "plain")


def parse_objects(text: str) -> tuple[list[SceneObject], list[Relation]]:
    """The objects (attributes only, no placement) and relations a caption states (CaptionParseError if it is
    not in the world's grammar)."""
    clauses = re.split(r"(?:^| )and(?: |$)", normalise(text))
    if not text.strip() or not all(clauses):
        raise CaptionParseError(f"caption {text!r}: empty, or an 'and' with nothing on one side")
    objects: list[SceneObject] = []
    relations: list[Relation] = []
    anchors: list[int] = []  # objects that were a relation's object, in order

    def refer(obj: SceneObject, subject: int) -> int:
        same = [i for i, o in enumerate(objects) if i != subject and o.attributes() == obj.attributes()]
        preferred = [a for a in anchors if a in same] + same
        if preferred:
            return preferred[0]
        objects.append(obj)
        return len(objects) - 1

    for clause in clauses:
        for pattern in _RELATION_CLAUSES:
            m = pattern.fullmatch(clause)
            if m:
                objects.append(_object(m.groups()[:4]))
                subject = len(objects) - 1
                target = refer(_object(m.groups()[5:9]), subject)
                relations.append(Relation(subject, _WORDING[m.group(5)], target))
                if target not in anchors:
                    anchors.append(target)
                break
        else:
            m = _OBJECT_CLAUSE.fullmatch(clause)
            if m is not None:
                objects.append(_object(m.groups()))
                continue
            m = _COUNTED_CLAUSE.fullmatch(clause)
            if m is None:
                raise CaptionParseError(f"caption {text!r}: {clause!r} is not a shapes-world clause (e.g. 'a large "
                                        f"red circle left of a small blue square', 'a striped green star')")
            size, texture, colour, shapes = m.groups()[1:]
            objects += [_object((size, texture, colour, _PLURALS[shapes]))] * _NUMBERS[m.group(1)]
    if len(objects) > GRID * GRID:
        raise CaptionParseError(f"caption {text!r}: {len(objects)} objects do not fit the {GRID}x{GRID} grid")
    return objects, relations


def parse_caption(text: str, seed: int = 0) -> Scene:
    """The scene a shapes-world caption describes, laid out at random from ``seed`` so that every relation it
    states holds (see the module docstring); the same caption and seed always give the same scene."""
    objects, relations = parse_objects(text)
    rng = random.Random(seed)
    for _ in range(ATTEMPTS):
        scene = _try_layout(objects, relations, rng)
        if scene is not None:
            return scene
    stated = "; ".join(f"{objects[r.subject].phrase()} {r.relation} {objects[r.object].phrase()}" for r in relations)
    raise CaptionParseError(f"caption {text!r}: no layout on the {GRID}x{GRID} grid makes all of its relations hold "
                            f"({stated})")


def _free(rng: random.Random, used: set) -> tuple[int, int] | None:
    cells = [(c, r) for r in range(GRID) for c in range(GRID) if (c, r) not in used]
    return rng.choice(cells) if cells else None


def _stacks_on(on_top: dict[int, int], base: int, top: int) -> bool:
    """Whether ``top`` is already under ``base``'s stack (stacking ``top`` on ``base`` would close a loop)."""
    seen = base
    while seen in on_top:
        seen = on_top[seen]
        if seen == top:
            return True
    return base == top


def _try_layout(objects: list[SceneObject], relations: list[Relation], rng: random.Random) -> Scene | None:
    """One random layout, or None when its draws broke a relation (the caller draws again)."""
    cells: dict[int, tuple[int, int]] = {}
    on_top: dict[int, int] = {}
    used: set = set()

    def put(i: int, cell: tuple[int, int] | None) -> bool:
        if cell is None or cell in used or not (0 <= cell[0] < GRID and 0 <= cell[1] < GRID):
            return False
        cells[i] = cell
        used.add(cell)
        return True

    for rel in relations:
        s, o, how = rel.subject, rel.object, rel.relation
        if s not in cells and o not in cells and not put(o, _free(rng, used)):
            return None
        if how == "on top of":
            if s in on_top or _stacks_on(on_top, o, s):
                return None
            on_top[s] = o
            if s not in cells and not put(s, (cells[o][0], cells[o][1] - 1)):
                return None
            if o not in cells and not put(o, (cells[s][0], cells[s][1] + 1)):
                return None
        elif s not in cells:
            if not put(s, _place(rng, cells[o], how, used)):
                return None
        elif o not in cells and not put(o, _place(rng, cells[s], _INVERSE[how], used)):
            return None
    for i in range(len(objects)):
        if i not in cells and not put(i, _free(rng, used)):
            return None
    scene = Scene(tuple(replace(obj, cell=cells[i], on_top_of=on_top.get(i)) for i, obj in enumerate(objects)),
                  tuple(relations))
    if not all(relation_holds(scene, r.subject, r.relation, r.object) for r in relations):
        return None
    return scene if boxes_apart(layout(scene)) else None


def boxes_apart(boxes, tol: float = 1e-6) -> bool:
    """Every box inside the image and no two overlapping (touching, as a stack does, is fine)."""
    for k, (x0, y0, x1, y1) in enumerate(boxes):
        if x0 < -tol or y0 < -tol or x1 > 1 + tol or y1 > 1 + tol:
            return False
        for a0, b0, a1, b1 in boxes[k + 1:]:
            if min(x1, a1) - max(x0, a0) > tol and min(y1, b1) - max(y0, b0) > tol:
                return False
    return True


def prompt_object(prompt: str):
    """The :class:`~genemi.synthetic.scenes.SceneObject` attributes a portrayal prompt names (its first
    comma-separated part: lead words, then one object phrase and nothing else); CaptionParseError otherwise."""
    head = prompt.split(",", 1)[0].strip().lower()
    words = head.split()
    for start in range(len(words)):
        if not set(words[:start]) <= PROMPT_LEAD_WORDS:
            break
        try:
            objects, relations = parse_objects("a " + " ".join(words[start:]))
        except CaptionParseError:
            continue
        if len(objects) == 1 and not relations:
            return objects[0]
    raise CaptionParseError(f"prompt {prompt!r}: {head!r} names no object the shapes world draws (e.g. 'a small "
                            "striped red circle')")
