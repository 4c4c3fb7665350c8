"""A compositional "shapes world" with known answers: scene specs, a deterministic renderer, captions, splits.

A :class:`Scene` holds 1-3 objects (shape, colour, size, texture) placed on a 3x3 grid of cells and the
spatial relations the captions state, or (a *counted* scene, no relations) 1-4 copies of one object, captioned
with a number ("two red circles"). Everything is a pure function of the scene spec:

* :func:`layout` gives each object's box in unit coordinates (the relation "on top of" stacks the subject
  on its object: the subject's bottom edge touches the object's top edge);
* :func:`render` draws the scene at any resolution, anti-aliased by supersampling (``supersample=1`` gives
  hard edges), and returns the image with one exact mask (pixels where the object is the visible,
  majority-covering surface) and one tight pixel box per object;
* :func:`captions` writes the scene in several templates (a scene without relations by its groups of identical
  objects: "a red circle", "three small blue squares"); :func:`relation_holds` checks a relation on the
  geometry, so hard negatives can be verified false.

Compositional splits (:class:`SplitSpec`): some (shape, colour) pairs and some (subject shape, relation,
object shape) arrangements never appear in the train split; every test scene contains at least one.
"""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import asdict, dataclass, field, replace
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw

from genemi.text.inflection import NUMBER_WORDS, pluralize

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40), "orange": (245, 140, 30), "yellow": (235, 215, 40), "green": (40, 170, 60),
    "cyan": (40, 200, 210), "blue": (40, 70, 220), "purple": (140, 50, 170), "white": (245, 245, 245),
}  # fmt: skip
SHAPES = ("circle", "square", "triangle", "diamond", "pentagon", "hexagon", "star", "cross")
SIZES = {"small": 0.20, "large": 0.29}  # side of the object's box as a fraction of the image side
RELATIONS = ("left of", "right of", "above", "below", "on top of")
BACKGROUND = (128, 128, 128)
GRID = 3  # cells per side
MAX_COUNT = 4  # copies in a counted scene
#: number words of a counted scene's caption (one copy is captioned with an article: "a red circle")
COUNT_WORDS = {n: NUMBER_WORDS[n] for n in range(2, MAX_COUNT + 1)}


@dataclass(frozen=True)
class SceneObject:
    shape: str
    colour: str
    size: str = "large"
    texture: str = "plain"
    cell: tuple[int, int] = (1, 1)  # (column, row) on the 3x3 grid
    on_top_of: int | None = None  # index of the object this one is stacked on (its cell is then ignored)

    def phrase(self, with_size: bool = True, count: int = 1) -> str:
        """``[size] [striped] colour shape``; ``count`` > 1: the plural phrase after its number word."""
        words = ([self.size] if with_size else []) + ([self.texture] if self.texture != "plain" else [])
        if count == 1:
            return " ".join(words + [self.colour, self.shape])
        return " ".join([COUNT_WORDS[count]] + words + [self.colour, pluralize(self.shape)])

    def attributes(self) -> tuple[str, str, str, str]:
        return self.shape, self.colour, self.size, self.texture


@dataclass(frozen=True)
class Relation:
    subject: int
    relation: str
    object: int


@dataclass(frozen=True)
class Scene:
    objects: tuple[SceneObject, ...]
    relations: tuple[Relation, ...] = ()

    def to_dict(self) -> dict:
        return {"objects": [asdict(o) for o in self.objects], "relations": [asdict(r) for r in self.relations]}

    @classmethod
    def from_dict(cls, data: dict) -> "Scene":
        objects = tuple(SceneObject(**{**o, "cell": tuple(o["cell"])}) for o in data["objects"])
        return cls(objects, tuple(Relation(**r) for r in data.get("relations", ())))

    def with_object(self, index: int, **changes) -> "Scene":
        objects = list(self.objects)
        objects[index] = replace(objects[index], **changes)
        return Scene(tuple(objects), self.relations)

    def with_item(self, index: int, **changes) -> "Scene":
        """Object ``index`` changed, and in a scene without relations every copy of it too: the caption's item
        is the group ("two red circles" -> "two blue circles"), not one copy."""
        if self.relations:
            return self.with_object(index, **changes)
        same = self.objects[index].attributes()
        objects = tuple(replace(o, **changes) if o.attributes() == same else o for o in self.objects)
        return Scene(objects, self.relations)

    def groups(self) -> list[tuple[int, int]]:
        """(first index, number of copies) of each group of identical objects (same shape, colour, size,
        texture), in order of first appearance."""
        first: dict[tuple, int] = {}
        counts: dict[int, int] = {}
        for k, o in enumerate(self.objects):
            head = first.setdefault(o.attributes(), k)
            counts[head] = counts.get(head, 0) + 1
        return list(counts.items())

    def count(self) -> int | None:
        """The number of copies of a counted scene (no relations, one group), else None."""
        groups = self.groups()
        return groups[0][1] if not self.relations and len(groups) == 1 else None


# --- geometry -----------------------------------------------------------------------------------------


def layout(scene: Scene) -> list[tuple[float, float, float, float]]:
    """Each object's box ``(x0, y0, x1, y1)`` in unit coordinates ([0, 1] of the image side)."""
    boxes: list[tuple[float, float, float, float] | None] = [None] * len(scene.objects)

    def place(i: int) -> tuple[float, float, float, float]:
        if boxes[i] is not None:
            return boxes[i]
        obj = scene.objects[i]
        side = SIZES[obj.size]
        if obj.on_top_of is None:
            col, row = obj.cell
            cx, cy = (col + 0.5) / GRID, (row + 0.5) / GRID
            box = (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)
        else:
            bx0, by0, bx1, _ = place(obj.on_top_of)
            cx = (bx0 + bx1) / 2
            box = (cx - side / 2, by0 - side, cx + side / 2, by0)
        boxes[i] = box
        return box

    return [place(i) for i in range(len(scene.objects))]


def relation_holds(scene: Scene, subject: int, relation: str, obj: int, tol: float = 1e-6) -> bool:
    """Whether ``subject <relation> obj`` is true of the scene's geometry (boxes, unit coordinates)."""
    boxes = layout(scene)
    return boxes_relate(boxes[subject], relation, boxes[obj], tol)


def boxes_relate(subject_box, relation: str, object_box, tol: float = 1e-6) -> bool:
    """Whether a box ``subject_box`` stands in ``relation`` to ``object_box`` (unit coordinates)."""
    sx0, sy0, sx1, sy1 = subject_box
    ox0, oy0, ox1, oy1 = object_box
    if relation == "left of":
        return sx1 <= ox0 + tol
    if relation == "right of":
        return sx0 >= ox1 - tol
    if relation == "above":
        return sy1 <= oy0 + tol
    if relation == "below":
        return sy0 >= oy1 - tol
    if relation == "on top of":
        return abs(sy1 - oy0) <= tol and min(sx1, ox1) > max(sx0, ox0)
    raise ValueError(f"unknown relation {relation!r}")


def _unit_polygon(shape: str) -> list[tuple[float, float]] | None:
    """The shape's outline, stretched to fill its unit box (None: an ellipse), so stacked shapes touch."""
    pts = _raw_polygon(shape)
    if pts is None:
        return None
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    return [((x - x0) / (x1 - x0), (y - y0) / (y1 - y0)) for x, y in pts]


def _raw_polygon(shape: str) -> list[tuple[float, float]] | None:
    if shape == "circle":
        return None
    if shape == "square":
        return [(0.1, 0.1), (0.9, 0.1), (0.9, 0.9), (0.1, 0.9)]
    if shape == "triangle":
        return [(0.5, 0.0), (1.0, 1.0), (0.0, 1.0)]
    if shape == "diamond":
        return [(0.5, 0.0), (1.0, 0.5), (0.5, 1.0), (0.0, 0.5)]
    if shape in ("pentagon", "hexagon"):
        n = 5 if shape == "pentagon" else 6
        start = -math.pi / 2 if n == 5 else 0.0
        return [(0.5 + 0.5 * math.cos(start + 2 * math.pi * k / n), 0.5 + 0.5 * math.sin(start + 2 * math.pi * k / n))
                for k in range(n)]  # fmt: skip
    if shape == "star":
        pts = []
        for k in range(10):
            r = 0.5 if k % 2 == 0 else 0.2
            a = -math.pi / 2 + math.pi * k / 5
            pts.append((0.5 + r * math.cos(a), 0.52 + r * math.sin(a)))
        return pts
    if shape == "cross":
        a, b = 0.3, 0.7
        return [(a, 0), (b, 0), (b, a), (1, a), (1, b), (b, b), (b, 1), (a, 1), (a, b), (0, b), (0, a), (a, a)]
    raise ValueError(f"unknown shape {shape!r}")


# --- rendering ----------------------------------------------------------------------------------------


@dataclass
class Rendered:
    image: Image.Image
    masks: list[np.ndarray]  # bool [H, W] per object: visible coverage >= 0.5
    boxes: list[list[int]]  # tight pixel box [x0, y0, x1, y1) (exclusive ends) per object; [] if fully hidden
    coverage: list[np.ndarray] = field(repr=False, default_factory=list)  # float [H, W] visible coverage


def _coverage(obj: SceneObject, box, size: int, ss: int) -> np.ndarray:
    """Fraction of each pixel the object covers, from a ``ss``x supersampled binary drawing."""
    big = size * ss
    canvas = Image.new("L", (big, big), 0)
    draw = ImageDraw.Draw(canvas)
    x0, y0, x1, y1 = (v * big for v in box)
    poly = _unit_polygon(obj.shape)
    # PIL draws pixel i for coordinate i (its corner), so shift by half a pixel: pixel i covers [i, i + 1).
    if poly is None:
        draw.ellipse((x0, y0, x1 - 1, y1 - 1), fill=255)
    else:
        draw.polygon([(x0 + px * (x1 - x0) - 0.5, y0 + py * (y1 - y0) - 0.5) for px, py in poly], fill=255)
    arr = np.asarray(canvas, dtype=np.float64) / 255.0
    return arr.reshape(size, ss, size, ss).mean(axis=(1, 3))


def _texture(obj: SceneObject, size: int) -> np.ndarray:
    """``[H, W, 3]`` float colour of the object's surface (stripes: diagonal bands of a darker shade)."""
    base = np.array(COLOURS[obj.colour], dtype=np.float64)
    surface = np.broadcast_to(base, (size, size, 3)).copy()
    if obj.texture == "striped":
        period = max(4, size // 10)
        yy, xx = np.mgrid[0:size, 0:size]
        band = ((xx + yy) // (period // 2)) % 2 == 1
        surface[band] = base * 0.45
    return surface


def render(scene: Scene, size: int = 64, supersample: int = 4) -> Rendered:
    """Draw the scene (objects in index order, later ones on top); deterministic for a spec and size."""
    if size < 8:
        raise ValueError("image size must be >= 8 px")
    canvas = np.broadcast_to(np.array(BACKGROUND, dtype=np.float64), (size, size, 3)).copy()
    covers = []
    for obj, box in zip(scene.objects, layout(scene)):
        alpha = _coverage(obj, box, size, max(1, supersample))
        canvas = canvas * (1 - alpha[..., None]) + _texture(obj, size) * alpha[..., None]
        covers.append(alpha)
    visible = []
    for i, alpha in enumerate(covers):
        vis = alpha.copy()
        for later in covers[i + 1:]:
            vis *= 1 - later
        visible.append(vis)
    masks = [v >= 0.5 for v in visible]
    boxes = []
    for m in masks:
        ys, xs = np.nonzero(m)
        boxes.append([int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1] if len(xs) else [])
    image = Image.fromarray(np.clip(np.rint(canvas), 0, 255).astype(np.uint8), "RGB")
    return Rendered(image, masks, boxes, visible)


def image_hash(image: Image.Image) -> str:
    """sha256 of the raw RGB pixels (independent of the PNG encoder)."""
    return hashlib.sha256(np.asarray(image.convert("RGB")).tobytes()).hexdigest()


# --- captions -----------------------------------------------------------------------------------------

RELATION_TEMPLATES = (
    "a {s} {r} a {o}",
    "there is a {s} {r} a {o}",
    "the {s} is {r} the {o}",
)
SINGLE_TEMPLATES = ("a {s}", "a picture of a {s}", "a {s} on a grey background")
COUNTED_TEMPLATES = ("{s}", "a picture of {s}", "{s} on a grey background")  # {s}: "two red circles"
RELATION_WORDS = {"left of": ("left of", "to the left of"), "right of": ("right of", "to the right of"),
                  "above": ("above",), "below": ("below", "under"), "on top of": ("on top of",)}  # fmt: skip


def clause(scene: Scene, rel: Relation, template: int = 0, wording: int = 0, with_size: bool = True) -> str:
    s = scene.objects[rel.subject].phrase(with_size)
    o = scene.objects[rel.object].phrase(with_size)
    words = RELATION_WORDS[rel.relation]
    return RELATION_TEMPLATES[template % len(RELATION_TEMPLATES)].format(s=s, r=words[wording % len(words)], o=o)


def caption(scene: Scene, template: int = 0, wording: int = 0, with_size: bool = True) -> str:
    """One caption of the scene; ``template`` / ``wording`` pick the sentence frame and relation words. A scene
    without relations is named by its groups of identical objects, joined by ``and`` ("two red circles and a
    blue star"); the frame applies to the first."""
    if not scene.relations:
        parts = []
        for k, (index, count) in enumerate(scene.groups()):
            frames = SINGLE_TEMPLATES if count == 1 else COUNTED_TEMPLATES
            phrase = scene.objects[index].phrase(with_size, count)
            parts.append(frames[(template if k == 0 else 0) % len(frames)].format(s=phrase))
        return " and ".join(parts)
    parts = [clause(scene, r, template if k == 0 else 0, wording, with_size) for k, r in enumerate(scene.relations)]
    return " and ".join(parts)


def captions(scene: Scene) -> list[str]:
    """The scene's captions in several templates (first = canonical), all true of the scene."""
    out = [caption(scene, t, w) for t in range(3) for w in range(2)]
    return list(dict.fromkeys(out))[:5]


# --- splits -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SplitSpec:
    """What the test split holds out: (shape, colour) pairs and (subject shape, relation, object shape) arrangements."""

    heldout_pairs: tuple[tuple[str, str], ...]
    heldout_arrangements: tuple[tuple[str, str, str], ...]

    @classmethod
    def default(cls) -> "SplitSpec":
        # One held-out shape per colour, rotating, so every colour and every shape is still seen in training.
        colours = list(COLOURS)
        pairs = tuple((SHAPES[(3 * i + 1) % len(SHAPES)], c) for i, c in enumerate(colours))
        arrangements = (("circle", "left of", "square"), ("triangle", "above", "circle"),
                        ("star", "right of", "hexagon"), ("square", "below", "diamond"),
                        ("pentagon", "on top of", "cross"))  # fmt: skip
        return cls(pairs, arrangements)

    def novel(self, scene: Scene) -> list[str]:
        """The held-out elements the scene contains (empty for a train scene). Arrangements are held out
        *geometrically*: any two objects whose boxes stand in a held-out (shape, relation, shape) arrangement
        (:func:`relation_holds`), whatever the captions state or how they word it ("a square right of a
        circle" shows the held-out "circle left of square"), count."""
        out = [f"pair:{o.shape}/{o.colour}" for o in scene.objects if (o.shape, o.colour) in self.heldout_pairs]
        held = set(self.heldout_arrangements)
        boxes = layout(scene) if len(scene.objects) > 1 else []
        for i, a in enumerate(scene.objects):
            for j, b in enumerate(scene.objects):
                for rel in RELATIONS:
                    key = (a.shape, rel, b.shape)
                    if i != j and key in held and boxes_relate(boxes[i], rel, boxes[j]):
                        out.append(f"arrangement:{'/'.join(key)}")
        return list(dict.fromkeys(out))

    def to_dict(self) -> dict:
        return {"heldout_pairs": [list(p) for p in self.heldout_pairs],
                "heldout_arrangements": [list(a) for a in self.heldout_arrangements],
                "rule": "a scene is in the test split iff it contains at least one held-out (shape, colour) pair "
                        "or two objects whose boxes stand in a held-out (subject shape, relation, object shape) "
                        "arrangement, however (or whether) its captions word it"}  # fmt: skip


# --- sampling -----------------------------------------------------------------------------------------

_NEIGHBOUR = {"left of": (-1, 0), "right of": (1, 0), "above": (0, -1), "below": (0, 1)}


def _place(rng: random.Random, anchor: tuple[int, int], relation: str, used: set) -> tuple[int, int] | None:
    """A free cell in ``relation`` to ``anchor`` (same row for left/right, same column for above/below)."""
    dx, dy = _NEIGHBOUR[relation]
    options = []
    for k in (1, 2):
        c = (anchor[0] + dx * k, anchor[1] + dy * k)
        if 0 <= c[0] < GRID and 0 <= c[1] < GRID and c not in used:
            options.append(c)
    return rng.choice(options) if options else None


def random_object(rng: random.Random, texture_prob: float = 0.25) -> SceneObject:
    return SceneObject(rng.choice(SHAPES), rng.choice(list(COLOURS)), rng.choice(list(SIZES)),
                       "striped" if rng.random() < texture_prob else "plain")  # fmt: skip


def random_scene(rng: random.Random, num_objects: int | None = None, texture_prob: float = 0.25,
                 relations: Sequence[str] = RELATIONS, counted: float = 0.0,
                 count_rng: random.Random | None = None) -> Scene:  # fmt: skip
    """1-3 objects: the first relation is ``0 rel 1``; a third object adds ``2 rel 1``. A one-object scene
    becomes, with probability ``counted``, a counted scene of 2-4 copies (:func:`with_count`); those draws come
    from ``count_rng`` only, so the other scenes of a sample do not depend on ``counted``."""
    n = num_objects or rng.choice((1, 2, 2, 3))
    objs = [random_object(rng, texture_prob) for _ in range(n)]
    while True:
        anchor = (rng.randrange(GRID), rng.randrange(GRID))
        used = {anchor}
        objs[1 if n > 1 else 0] = replace(objs[1 if n > 1 else 0], cell=anchor)
        if n == 1:
            single = Scene((objs[0],))
            if counted > 0 and count_rng is not None and count_rng.random() < counted:
                return with_count(single, count_rng.randint(2, MAX_COUNT), count_rng)
            return single
        rels, ok = [], True
        stacked = False
        for subj in [0] + ([2] if n == 3 else []):
            rel = rng.choice([r for r in relations if not (r == "on top of" and (stacked or anchor[1] == 0))])
            if rel == "on top of":
                above = (anchor[0], anchor[1] - 1)
                if above in used:
                    ok = False
                    break
                used.add(above)
                stacked = True
                objs[subj] = replace(objs[subj], cell=above, on_top_of=1)
            else:
                cell = _place(rng, anchor, rel, used)
                if cell is None:
                    ok = False
                    break
                used.add(cell)
                objs[subj] = replace(objs[subj], cell=cell, on_top_of=None)
            rels.append(Relation(subj, rel, 1))
        if ok:
            return Scene(tuple(objs), tuple(rels))


def sample_split(spec: SplitSpec, split: str, count: int, seed: int, counted: float = 0.0, **kwargs) -> list[Scene]:
    """``count`` scenes of ``split`` ('train': no held-out element; 'test': at least one), deterministic; a
    share ``counted`` of the one-object scenes are counted scenes (drawn from their own stream)."""
    rng = random.Random(f"{seed}:{split}")
    count_rng = random.Random(f"{seed}:{split}:counts")
    out: list[Scene] = []
    while len(out) < count:
        scene = random_scene(rng, counted=counted, count_rng=count_rng, **kwargs)
        novel = spec.novel(scene)
        if split == "train" and not novel:
            out.append(scene)
        elif split == "test":
            if not novel:
                scene = _force_novel(scene, spec, rng)
            if spec.novel(scene):
                out.append(scene)
    return out


def _force_novel(scene: Scene, spec: SplitSpec, rng: random.Random) -> Scene:
    """Make one element held out: an arrangement (re-shaping the pair of a matching relation) or a pair."""
    if scene.relations and rng.random() < 0.5:
        r = rng.choice(scene.relations)
        matches = [a for a in spec.heldout_arrangements if a[1] == r.relation]
        if matches:
            s_shape, _, o_shape = rng.choice(matches)
            return scene.with_object(r.subject, shape=s_shape).with_object(r.object, shape=o_shape)
    k = rng.randrange(len(scene.objects))
    shape, colour = rng.choice(spec.heldout_pairs)
    return scene.with_item(k, shape=shape, colour=colour)


def with_count(scene: Scene, count: int, rng: random.Random) -> Scene:
    """A counted scene (no relations, one group of identical objects) with ``count`` copies (1 to
    :data:`MAX_COUNT`): copies removed from the end, or added on free cells of the grid drawn from ``rng``."""
    have = scene.count()
    if have is None:
        raise ValueError("with_count: the scene is not one group of identical objects without relations")
    if not 1 <= count <= MAX_COUNT:
        raise ValueError(f"with_count: count must be 1 to {MAX_COUNT}, not {count}")
    objects = list(scene.objects[:count])
    used = {o.cell for o in objects}
    free = [(c, r) for r in range(GRID) for c in range(GRID) if (c, r) not in used]
    rng.shuffle(free)
    while len(objects) < count:
        objects.append(replace(scene.objects[0], cell=free.pop(), on_top_of=None))
    return Scene(tuple(objects))
