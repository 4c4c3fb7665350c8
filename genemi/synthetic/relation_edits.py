"""Edits of a shapes-world scene aimed at relations and word order: what a bag-of-words model cannot tell apart.

Each edit keeps every object's own attributes in the scene and changes how they are arranged or which object
carries which attribute, so the edited scene's captions use the same words as the original's in another order
(or with one relation word changed):

* ``swap_objects``: two objects exchange places (all their attributes swap; for the two sides of a relation the
  subject and the object swap; ``stack_order`` when one is stacked on the other: the stacking order reverses);
* ``swap_colour`` / ``swap_shape`` / ``swap_size``: two related objects exchange one attribute;
* ``relation``: a relation's subject moves so that another relation holds (left of -> above, ...), the rest of
  the scene unchanged;
* ``count``: a scene without relations that shows copies of one object gets another number of copies ("a red
  circle" -> "three red circles"; copies removed, or added on free cells). Made only where asked (``kinds``):
  the world makes them when it has counted scenes.

:func:`relation_edits` draws up to ``count`` distinct edits of a scene, kinds in turn, none creating a held-out
element of the split (geometrically: :meth:`~genemi.synthetic.scenes.SplitSpec.novel`), every stated relation
holding on the geometry and no two objects overlapping.
"""

from __future__ import annotations

import random
from dataclasses import replace

from genemi.synthetic.scenes import (GRID, MAX_COUNT, RELATIONS, Relation, Scene, SplitSpec, layout, relation_holds,
                                     with_count)

KINDS = ("swap_objects", "stack_order", "swap_colour", "swap_shape", "swap_size", "relation", "count")
#: the kinds of a world without counted scenes (no number words anywhere)
ARRANGEMENT_KINDS = KINDS[:-1]
_STEP = {"left of": (-1, 0), "right of": (1, 0), "above": (0, -1), "below": (0, 1)}
_ATTRIBUTES = ("shape", "colour", "size", "texture")


def swap_objects(scene: Scene, i: int, j: int) -> Scene:
    """Objects ``i`` and ``j`` exchange places: each takes the other's attributes, the layout stays."""
    a, b = scene.objects[i], scene.objects[j]
    return scene.with_object(i, **{k: getattr(b, k) for k in _ATTRIBUTES}).with_object(
        j, **{k: getattr(a, k) for k in _ATTRIBUTES})


def swap_attribute(scene: Scene, i: int, j: int, key: str) -> Scene:
    """Objects ``i`` and ``j`` exchange one attribute (``shape``, ``colour``, ``size`` or ``texture``)."""
    a, b = scene.objects[i], scene.objects[j]
    return scene.with_object(i, **{key: getattr(b, key)}).with_object(j, **{key: getattr(a, key)})


def change_relation(scene: Scene, index: int, rng: random.Random) -> Scene | None:
    """Relation ``index``'s subject moved so that another relation (drawn at random among those a free cell
    allows) holds; None when no other relation fits on the grid."""
    rel = scene.relations[index]
    s, o = rel.subject, rel.object
    if any(obj.on_top_of == s for obj in scene.objects):
        return None  # something stands on the subject: moving it would move that too
    used = {obj.cell for k, obj in enumerate(scene.objects) if k != s}
    anchor = scene.objects[o].cell
    options = []
    for new in RELATIONS:
        if new == rel.relation or relation_holds(scene, s, new, o):
            continue
        if new == "on top of":
            cell = (anchor[0], anchor[1] - 1)
            stacked = any(obj.on_top_of == o for k, obj in enumerate(scene.objects) if k != s)
            if anchor[1] >= 1 and cell not in used and not stacked and scene.objects[o].on_top_of is None:
                options.append((new, cell, o))
            continue
        dx, dy = _STEP[new]
        for k in (1, 2):
            cell = (anchor[0] + dx * k, anchor[1] + dy * k)
            if 0 <= cell[0] < GRID and 0 <= cell[1] < GRID and cell not in used:
                options.append((new, cell, None))
    rng.shuffle(options)
    for new, cell, on in options:
        objects = list(scene.objects)
        objects[s] = replace(objects[s], cell=cell, on_top_of=on)
        relations = list(scene.relations)
        relations[index] = Relation(s, new, o)
        changed = Scene(tuple(objects), tuple(relations))
        if _valid(changed):
            return changed
    return None


def _valid(scene: Scene) -> bool:
    from genemi.synthetic.parsing import boxes_apart

    return all(relation_holds(scene, r.subject, r.relation, r.object) for r in scene.relations) and \
        boxes_apart(layout(scene))


def candidate_edits(scene: Scene, rng: random.Random) -> dict[str, list[Scene]]:
    """Every swap of the scene, one relation change per relation, and (a counted scene) every other number of
    copies, by kind (scene order)."""
    out: dict[str, list[Scene]] = {k: [] for k in KINDS}
    have = scene.count()
    if have is not None:
        out["count"] = [with_count(scene, n, rng) for n in range(1, MAX_COUNT + 1) if n != have]
    objs = scene.objects
    for i in range(len(objs)):
        for j in range(i + 1, len(objs)):
            if objs[i].phrase() != objs[j].phrase():
                stacked = objs[i].on_top_of == j or objs[j].on_top_of == i
                out["stack_order" if stacked else "swap_objects"].append(swap_objects(scene, i, j))
    for r in scene.relations:
        for key in ("colour", "shape", "size"):
            if getattr(objs[r.subject], key) != getattr(objs[r.object], key):
                out[f"swap_{key}"].append(swap_attribute(scene, r.subject, r.object, key))
    for k in range(len(scene.relations)):
        changed = change_relation(scene, k, rng)
        if changed is not None:
            out["relation"].append(changed)
    return out


def relation_edits(scene: Scene, count: int, spec: SplitSpec, rng: random.Random,
                   kinds=ARRANGEMENT_KINDS) -> list[tuple[str, Scene]]:  # fmt: skip
    """Up to ``count`` distinct edits of ``scene`` of the given ``kinds`` (kinds in a shuffled turn, then the next
    of each kind), each free of held-out elements and different from the scene and from each other."""
    if not scene.relations and not ("count" in kinds and scene.count() is not None):
        return []
    found = candidate_edits(scene, rng)
    for edits in found.values():
        rng.shuffle(edits)
    kinds = [k for k in KINDS if found[k] and k in kinds]
    rng.shuffle(kinds)
    out: list[tuple[str, Scene]] = []
    seen = {scene}
    while kinds and len(out) < count:
        for kind in list(kinds):
            if not found[kind]:
                kinds.remove(kind)
                continue
            changed = found[kind].pop()
            if changed not in seen and not spec.novel(changed):
                seen.add(changed)
                out.append((kind, changed))
                if len(out) == count:
                    break
    return out
