"""Rule-based portrayals: offline, deterministic, from genemi's vocabulary with WordNet as a fallback.

For K = 4 an item gets, in order: another noun of its category (dog -> cat), a near synonym or subtype
(dog -> beagle), a colour change (dog -> golden dog) and one attribute edit that suits it (material,
texture, size or count). Other K cycle through these kinds with different picks. The item's number and
its attribute words are kept ("red cars" -> "red trucks"); a count edit is the one exception (it changes
the number on purpose: "dog" -> "two dogs", "dogs" -> "a single dog"). Items outside the vocabulary get
attribute edits only (colour, material, size, texture) and a note saying so.

Picks come from a random generator seeded by (request seed, image key, item), so an item's portrayals never
depend on which other items or images share the call.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

from genemi.errors import BackendUnavailable
from genemi.generation_pipeline.seeds import derive_seed
from genemi.generation_pipeline.portrayal.base import ItemPortrayals, PortrayalRequest
from genemi.records import Failure, Portrayal
from genemi.text import vocabulary as vocab
from genemi.text.inflection import indefinite_article, pluralize

MAX_SHORT_WORDS = vocab.MAX_SHORT_WORDS
KNOWN_CYCLE = ("category", "synonym", "colour", "attribute")
UNKNOWN_CYCLE = ("colour", "material", "size", "texture")

#: where a new attribute word goes among the modifiers (lower first): "two small fluffy white wooden ..."
_RANK = {"count": 0, "size": 1, "texture": 2, "colour": 3, "material": 4}

_TEMPLATES = (
    "{a}{short}, {detail}, photo",
    "a photo of {a}{short}, {detail}",
    "{a}{short}, {detail}, realistic, natural light",
    "close-up photo of {a}{short}, {detail}, sharp focus",
)
_DETAILS = {
    "person": ("natural pose", "realistic face and hands", "full figure in view"),
    "animal": ("natural pose", "lifelike anatomy", "calm and alert"),
    "vehicle": ("realistic proportions", "seen from the side", "clean bodywork"),
    "food": ("appetising and fresh", "fine texture detail", "served naturally"),
    "drink": ("freshly poured", "in a clear glass", "condensation on the glass"),
    "plant": ("natural growth", "detailed leaves", "healthy and lush"),
    "landscape": ("wide view", "natural scenery", "soft daylight"),
}
_DETAIL_GROUP = {"fruit": "food", "vegetable": "food", "dish": "food", "dessert": "food", "ground": "landscape",
                 "water": "landscape", "sky": "landscape", "road": "landscape"}  # fmt: skip
_DEFAULT_DETAILS = ("realistic proportions", "fine detail", "true to life")
_ATTRIBUTE_TABLES = {"material": vocab.PORTRAY_MATERIALS, "texture": vocab.PORTRAY_TEXTURES,
                     "size": vocab.PORTRAY_SIZES}


@dataclass(frozen=True)
class _Option:
    kind: str
    short: str
    word: str  # the new word (noun, colour, material, ...), for the description
    article: str  # "a ", "an " or ""


@dataclass(frozen=True)
class _Plan:
    """Everything about an item that does not depend on the seed (cached per item)."""

    known: bool
    category: str | None
    options: dict[str, tuple[_Option, ...]]  # kind -> candidates
    attributes: tuple[str, ...]  # attribute kinds that have candidates, best first
    head: str  # the vocabulary head, for the WordNet fallback
    plural: bool
    kept: tuple[str, ...]
    item: str


def _inflect(phrase: str, plural: bool) -> str:
    """Plural of a noun phrase ("bar of soap" -> "bars of soap"); mass and plural-only nouns stay as they are."""
    mass, plural_only = vocab.number_flags(phrase)
    if not plural or mass or plural_only:
        return phrase
    words = phrase.split(" ")
    at = words.index("of", 1) - 1 if "of" in words[1:] else len(words) - 1
    words[at] = pluralize(words[at])
    return " ".join(words)


def _article(short: str, noun: str, plural: bool) -> str:
    mass, plural_only = vocab.number_flags(noun)
    if plural or mass or plural_only:
        return ""
    return indefinite_article(short) + " "


def _fit(mods: Sequence[str], noun: str, suffix: Sequence[str] = (), must: str | None = None) -> str | None:
    """``mods noun suffix`` in at most four words, dropping modifiers (never ``must``) from the left."""
    mods = list(mods)
    while True:
        words = " ".join([*mods, noun, *suffix]).split()
        if len(words) <= MAX_SHORT_WORDS:
            return " ".join(words)
        droppable = [i for i, w in enumerate(mods) if w != must]
        if not droppable:
            return None
        del mods[droppable[0]]


def _with_attribute(mods: Sequence[str], word: str, kind: str) -> list[str]:
    """``mods`` with its words of ``kind`` replaced by ``word`` (placed by adjective order)."""
    out = [m for m in mods if vocab.attribute_kind(m) != kind]
    rank = _RANK[kind]
    at = next((i for i, m in enumerate(out) if _RANK.get(vocab.attribute_kind(m) or "", 5) > rank), len(out))
    return [*out[:at], word, *out[at:]]


def _options(kind: str, pairs, item: str, used: set[str]) -> tuple[_Option, ...]:
    """Options from (short, word, noun, plural) tuples: valid, distinct and different from the item."""
    out = []
    for short, word, noun, plural in pairs:
        if short and short != item and short not in used:
            used.add(short)
            out.append(_Option(kind, short, word, _article(short, noun, plural)))
    return tuple(out)


def _overlaps(a: str, b: str) -> bool:
    """Same noun or one names the other's head ("table" / "dining table"): no category swap between them."""
    return a == b or a.split()[-1] == b.split()[-1] or f" {a} " in f" {b} " or f" {b} " in f" {a} "


@lru_cache(maxsize=65536)
def _plan(item: str) -> _Plan:
    parts = vocab.split_item(item)
    mods, noun = list(parts.mods), parts.surface
    text = " ".join([*mods, noun, *parts.extra]) if parts.head else ""  # "" = nothing to portray
    entry = parts.entry
    mass = entry is not None and (entry.mass or entry.plural_only) and not parts.portion
    plural = parts.plural and not mass
    kept = tuple(m for m in mods if vocab.attribute_kind(m) in _RANK and vocab.attribute_kind(m) != "count")
    palette, profile = vocab.portray_profile(parts.category)
    used = {text}
    options: dict[str, tuple[_Option, ...]] = {}
    if entry is not None:
        pool = [t for t in vocab.swap_pool(entry.category) if not _overlaps(t, entry.base)]
        options["category"] = _options("category", (
            (_fit(kept, _inflect(t, plural)), t, t, plural) for t in pool), text, used)
        synonyms = [s for s in (*vocab.noun_synonyms(entry.base), entry.base) if s != parts.head]
        options["synonym"] = _options("synonym", (
            (_fit(kept, _inflect(s, plural)), s, s, plural) for s in synonyms), text, used)
    colours = set(m for m in mods if vocab.attribute_kind(m) == "colour")
    colours |= {vocab.canonical_adjective(c) for c in colours}
    if parts.category == "person":
        bare = [m for m in mods if vocab.attribute_kind(m) != "colour"]
        pairs = ((_fit(bare, noun, ("in", c)), c, noun, plural)
                 for c in vocab.PORTRAY_COLOURS[palette] if c not in colours)
    else:
        pairs = ((_fit(_with_attribute(mods, c, "colour"), noun, must=c), c, noun, plural)
                 for c in vocab.PORTRAY_COLOURS[palette] if c not in colours)
    options["colour"] = _options("colour", pairs, text, used)
    attributes = []
    for kind, table in profile:
        if kind == "count":
            if mass or parts.head == "" or (entry is not None and entry.plural_only):
                continue
            bare = [m for m in mods if vocab.attribute_kind(m) != "count"]
            counted = parts.head  # a portion is counted by its portion word: "two slices of pizza"
            if parts.portion:
                portion, _, rest = parts.surface.partition(" of ")
                counted = f"{vocab.singularize_word(portion)} of {rest}" if plural else parts.surface
            if plural:
                pairs = ((_fit([c, *bare], counted, must=c), c, parts.head, True) for c in vocab.COUNTS_FOR_PLURAL)
            else:
                pairs = ((_fit([c, *bare], _inflect(counted, True), must=c), c, parts.head, True)
                         for c in vocab.COUNTS_FOR_SINGULAR)
        else:
            words_of_kind = _ATTRIBUTE_TABLES[kind][table]
            pairs = ((_fit(_with_attribute(mods, w, kind), noun, must=w), w, noun, plural)
                     for w in words_of_kind if w not in mods and w[:3] != parts.head[:3])  # not "snowy snow"
        found = _options(kind, pairs, text, used)
        if found:
            options[kind] = found
            attributes.append(kind)
    return _Plan(entry is not None, parts.category, options, tuple(attributes), parts.head, plural, kept, text)


@lru_cache(maxsize=4096)
def _wordnet_synonyms(head: str) -> tuple[str, ...]:
    """Synonyms and hyponyms of the noun's first WordNet sense (lower-case, at most three words, sorted)."""
    try:
        from genemi.text.wordnet import load_wordnet

        wn = load_wordnet()
    except BackendUnavailable:
        return ()
    synsets = wn.synsets(head.replace(" ", "_"), "n")
    if not synsets:
        return ()
    first = synsets[0]
    names = list(first.lemma_names())
    for hypo in sorted(first.hyponyms(), key=lambda s: s.name()):
        names.extend(hypo.lemma_names())
    out = []
    for name in names:
        phrase = name.replace("_", " ")
        if phrase.islower() and phrase != head and len(phrase.split()) <= 3 and phrase not in out:
            out.append(phrase)
    return tuple(out)


def _wordnet_options(plan: _Plan) -> tuple[_Option, ...]:
    pairs = ((_fit(plan.kept, _inflect(s, plan.plural)), s, s, plan.plural) for s in _wordnet_synonyms(plan.head))
    return _options("synonym", pairs, plan.item, set())


def _describe(option: _Option, category: str | None, rng: random.Random) -> str:
    kind, word = option.kind, option.word
    if kind in ("category", "synonym"):
        detail = rng.choice(_DETAILS.get(_DETAIL_GROUP.get(category or "", category or ""), _DEFAULT_DETAILS))
    elif kind == "colour":
        detail = f"dressed in {word}" if category == "person" else f"vivid {word} colour"
    elif kind == "material":
        detail = f"made of {vocab.MATERIAL_NOUNS.get(word, word)}"
    elif kind == "texture":
        detail = f"visibly {word}"
    elif kind == "size":
        detail = f"noticeably {word}"
    else:
        detail = "on its own" if word in vocab.COUNTS_FOR_PLURAL else "side by side"
    return rng.choice(_TEMPLATES).format(a=option.article, short=option.short, detail=detail)


class _Picker:
    """Draws an item's options kind by kind: each kind's list rotated to a random start, no short twice."""

    def __init__(self, plan: _Plan, rng: random.Random):
        self.plan, self.rng = plan, rng
        self.state: dict[str, list] = {}  # kind -> [options in draw order, next position, WordNet added]
        self.used: set[str] = set()

    def take(self, kind: str) -> _Option | None:
        if kind not in self.state:
            opts = self.plan.options.get(kind, ())
            start = self.rng.randrange(len(opts)) if opts else 0
            self.state[kind] = [[*opts[start:], *opts[:start]], 0, False]
        state = self.state[kind]
        while True:
            order = state[0]
            while state[1] < len(order):
                option = order[state[1]]
                state[1] += 1
                if option.short not in self.used:
                    self.used.add(option.short)
                    return option
            if kind != "synonym" or not self.plan.known or state[2]:
                return None
            state[2] = True  # the curated synonyms are used up: WordNet's, in their fixed order
            order.extend(_wordnet_options(self.plan))


def portray_item(item: str, k: int, seed: int) -> ItemPortrayals:
    """K portrayals of one item, deterministic in (item, k, seed)."""
    if k < 1:
        return ItemPortrayals(error=Failure(stage="portray", type="bad_k", message=f"K must be >= 1, got {k}"))
    plan = _plan(item)
    if not plan.item:
        return ItemPortrayals(error=Failure(stage="portray", type="empty_item", message=f"no words in {item!r}"))
    if not plan.known and vocab.attribute_kind(plan.head):
        message = f"item {item!r} names an attribute, not a thing to repaint"
        return ItemPortrayals(error=Failure(stage="portray", type="not_a_noun", message=message))
    rng = random.Random(seed)
    picker = _Picker(plan, rng)
    cycle = KNOWN_CYCLE if plan.known else UNKNOWN_CYCLE
    attributes = list(plan.attributes)
    turn = rng.randrange(len(attributes)) if attributes else 0
    attributes = attributes[turn:] + attributes[:turn]  # which fitting attribute comes first: drawn
    picked: list[Portrayal] = []
    attribute_slots = 0
    for i in range(k):
        option = None
        for step in range(len(cycle)):  # the slot's kind, or the next kind that still has an option
            kind = cycle[(i + step) % len(cycle)]
            if kind == "attribute":
                turns = (attributes[(attribute_slots + j) % len(attributes)] for j in range(len(attributes)))
                option = next(filter(None, map(picker.take, turns)), None)
                attribute_slots += 1
            else:
                option = picker.take(kind)
            if option:
                break
        if option is None:
            message = f"only {len(picked)} distinct portrayals of {item!r}, {k} asked"
            return ItemPortrayals(error=Failure(stage="portray", type="too_few", message=message))
        picked.append(Portrayal(kind=option.kind, prompt=_describe(option, plan.category, rng), short=option.short))
    note = None if plan.known else f"{item!r} is not in genemi's vocabulary: attribute edits only"
    return ItemPortrayals(portrayals=picked, note=note)


class RulesPortrayer:
    """The ``rules`` backend: vocabulary + WordNet, no model, deterministic under the request seed."""

    name = "rules"

    def __init__(self, config, context) -> None:
        self.config, self.context = config, context

    def check(self) -> None:
        from genemi.text.wordnet import require_wordnet

        require_wordnet()  # raises BackendUnavailable with an install hint; loading it takes seconds: load()

    def load(self) -> None:
        from genemi.text.wordnet import load_wordnet

        load_wordnet()

    def offload(self) -> None:
        return None

    def portray(self, requests: Sequence[PortrayalRequest]) -> list[dict[str, ItemPortrayals]]:
        return [{item: portray_item(item, req.k, derive_seed(req.seed, f"portray/{req.key}/{item}"))
                 for item in req.items} for req in requests]
