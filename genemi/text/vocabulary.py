"""genemi's curated vocabularies: visually distinct, COCO-frequent words grouped by category.

One module for every rule-based edit: the text hard negatives (``genemi negatives``) draw replacements
and additions from here, and so does the rule-based portrayal backend. Nouns are singular lemmas, verbs
base forms (inflected by :mod:`genemi.text.inflection`), relations lower-case phrases.

Replacements stay inside a category (a dog becomes another animal, red another colour) so that a negative
describes a *plausible* different image, the property SugarCrepe showed matters.
"""

from __future__ import annotations

from functools import lru_cache

NOUN_CATEGORIES: dict[str, tuple[str, ...]] = {
    "animal": (
        "dog", "cat", "horse", "cow", "sheep", "elephant", "bear", "zebra", "giraffe", "bird", "duck",
        "goat", "pig", "lion", "tiger", "monkey", "deer", "rabbit", "squirrel", "fox", "chicken", "pigeon",
        "seagull", "owl", "parrot", "camel", "panda", "puppy", "kitten", "pony",
    ),
    "person": (
        "man", "woman", "boy", "girl", "child", "person", "lady", "guy", "kid", "baby", "player",
        "skier", "surfer", "skateboarder", "chef", "soldier", "worker", "tourist",
    ),
    "vehicle": (
        "car", "truck", "bus", "bicycle", "motorcycle", "train", "boat", "airplane", "scooter", "van",
        "taxi", "tractor", "bike", "jeep", "helicopter", "trolley",
    ),
    "furniture": ("chair", "table", "couch", "bed", "bench", "desk", "shelf", "sofa", "stool", "cabinet", "dresser"),
    "food": (
        "pizza", "sandwich", "cake", "banana", "apple", "orange", "donut", "broccoli", "carrot", "burger",
        "salad", "bread", "pasta", "cookie", "pie", "steak", "egg", "muffin", "tomato", "lemon",
    ),
    "tableware": ("cup", "bowl", "plate", "glass", "bottle", "mug", "fork", "knife", "spoon", "pan", "pot", "vase", "jar", "tray"),
    "electronics": ("laptop", "phone", "television", "keyboard", "computer", "camera", "remote", "monitor", "radio", "tablet"),
    "sports": ("ball", "frisbee", "kite", "skateboard", "surfboard", "racket", "bat", "glove", "snowboard", "ski"),
    "clothing": ("shirt", "hat", "jacket", "dress", "tie", "scarf", "helmet", "coat", "sweater", "cap", "shoe", "boot", "skirt", "vest"),
    "carried": ("backpack", "suitcase", "handbag", "umbrella", "box", "basket", "bag", "purse", "book", "newspaper"),
    "place": (
        "kitchen", "bathroom", "bedroom", "office", "restaurant", "street", "beach", "park", "field",
        "forest", "lake", "river", "mountain", "city", "yard", "garden", "road", "desert", "airport", "market",
    ),
    "structure": ("building", "house", "tower", "bridge", "church", "fence", "wall", "barn", "tent", "shed", "statue", "fountain"),
    "shape": ("square", "circle", "triangle", "rectangle", "star", "hexagon", "diamond", "heart", "oval", "cross"),
    "nature": ("tree", "flower", "rock", "cloud", "grass", "plant", "bush", "hill", "wave", "leaf"),
    "fixture": (
        "sink", "toilet", "window", "door", "mirror", "lamp", "clock", "sign", "bathtub", "refrigerator",
        "oven", "microwave", "stove", "faucet", "pole", "bin",
    ),
}  # fmt: skip

#: adjective categories; replacements keep the category, antonyms (below) come first
ADJECTIVE_CATEGORIES: dict[str, tuple[str, ...]] = {
    "colour": (
        "red", "blue", "green", "yellow", "black", "white", "brown", "orange", "pink", "purple", "gray",
        "silver", "golden", "beige",
    ),
    "size": ("big", "small", "large", "tiny", "huge", "little", "tall", "short", "long", "wide", "narrow", "thick", "thin"),
    "material": ("wooden", "metal", "plastic", "stone", "leather", "brick", "glass", "paper", "ceramic", "concrete", "wicker"),
    "state": (
        "open", "closed", "empty", "full", "wet", "dry", "old", "new", "young", "clean", "dirty", "hot",
        "cold", "bright", "dark", "fresh", "messy", "neat", "crowded", "broken", "sunny", "cloudy", "snowy",
        "happy", "sad", "modern", "busy", "quiet",
    ),
    "pattern": ("striped", "spotted", "checkered", "plain", "floral", "round", "square", "curved", "straight"),
}  # fmt: skip

#: symmetric antonym pairs: the preferred replacement of either word
ANTONYMS: tuple[tuple[str, str], ...] = (
    ("big", "small"), ("large", "small"), ("huge", "tiny"), ("little", "big"), ("tall", "short"),
    ("long", "short"), ("wide", "narrow"), ("thick", "thin"), ("open", "closed"), ("empty", "full"),
    ("wet", "dry"), ("old", "new"), ("young", "old"), ("clean", "dirty"), ("hot", "cold"),
    ("bright", "dark"), ("messy", "neat"), ("crowded", "empty"), ("sunny", "cloudy"), ("happy", "sad"),
    ("modern", "old"), ("busy", "quiet"), ("black", "white"), ("striped", "plain"), ("round", "square"),
    ("curved", "straight"),
)  # fmt: skip

#: colour spellings treated as the same colour (never a replacement for each other)
COLOUR_ALIASES = {"grey": "gray", "gold": "golden"}

#: verb groups (base forms); replacements stay in the group when it has another member
VERB_GROUPS: dict[str, tuple[str, ...]] = {
    "posture": ("sit", "stand", "lie", "lay", "kneel", "lean", "crouch", "pose"),
    "motion": ("walk", "run", "ride", "drive", "jump", "climb", "swim", "fly", "skate", "surf", "ski", "cross"),
    "handling": (
        "hold", "carry", "throw", "catch", "kick", "push", "pull", "hit", "swing", "cut", "wash", "brush",
        "open", "close", "grab", "drop", "feed", "pet", "slice", "pour",
    ),
    "eating": ("eat", "drink", "bite", "lick", "chew", "taste", "cook", "bake"),
    "attention": ("look", "watch", "read", "talk", "smile", "laugh", "play", "sleep", "wait", "sing", "wave", "point"),
    "using": ("wear", "hold", "carry", "use", "show", "fix", "sell", "buy"),
}  # fmt: skip

#: spatial relations with their preferred opposite; multi-word phrases are matched as token sequences
RELATION_OPPOSITES: tuple[tuple[str, str], ...] = (
    ("on", "under"), ("above", "below"), ("over", "under"), ("in front of", "behind"),
    ("left of", "right of"), ("inside", "outside"), ("into", "out of"), ("near", "far from"),
    ("next to", "across from"), ("on top of", "underneath"), ("beside", "behind"), ("in", "on"),
    ("toward", "away from"), ("with", "without"), ("up", "down"), ("along", "across"),
    ("at", "near"), ("by", "behind"), ("beneath", "above"), ("around", "through"),
    ("to the left of", "to the right of"), ("on the left of", "on the right of"),
)  # fmt: skip


@lru_cache(maxsize=None)
def _noun_index() -> dict[str, str]:
    return {noun: cat for cat, nouns in NOUN_CATEGORIES.items() for noun in nouns}


@lru_cache(maxsize=None)
def _adjective_index() -> dict[str, str]:
    return {adj: cat for cat, adjs in ADJECTIVE_CATEGORIES.items() for adj in adjs}


@lru_cache(maxsize=None)
def _verb_index() -> dict[str, str]:
    index: dict[str, str] = {}
    for group, verbs in VERB_GROUPS.items():
        for verb in verbs:
            index.setdefault(verb, group)
    return index


def _opposites(pairs: tuple[tuple[str, str], ...]) -> dict[str, tuple[str, ...]]:
    """Each word of symmetric pairs -> its partners, in pair order."""
    index: dict[str, list[str]] = {}
    for a, b in pairs:
        index.setdefault(a, []).append(b)
        index.setdefault(b, []).append(a)
    return {k: tuple(v) for k, v in index.items()}


@lru_cache(maxsize=None)
def _antonym_index() -> dict[str, tuple[str, ...]]:
    return _opposites(ANTONYMS)


@lru_cache(maxsize=None)
def _relation_index() -> dict[str, tuple[str, ...]]:
    return _opposites(RELATION_OPPOSITES)


def noun_category(lemma: str) -> str | None:
    return _noun_index().get(lemma.lower())


def adjective_category(word: str) -> str | None:
    word = COLOUR_ALIASES.get(word.lower(), word.lower())
    return _adjective_index().get(word)


def verb_group(base: str) -> str | None:
    return _verb_index().get(base.lower())


def canonical_adjective(word: str) -> str:
    return COLOUR_ALIASES.get(word.lower(), word.lower())


def noun_alternatives(lemma: str) -> tuple[str, ...]:
    """Other nouns of the same category (empty for words outside the vocabulary)."""
    cat = noun_category(lemma)
    return tuple(n for n in NOUN_CATEGORIES[cat] if n != lemma.lower()) if cat else ()


def adjective_alternatives(word: str) -> tuple[str, ...]:
    """Antonyms first, then the other adjectives of the same category."""
    word = canonical_adjective(word)
    cat = _adjective_index().get(word)
    if cat is None:
        return ()
    antonyms = _antonym_index().get(word, ())
    rest = tuple(a for a in ADJECTIVE_CATEGORIES[cat] if a != word and a not in antonyms)
    return antonyms + rest


def adjective_antonyms(word: str) -> tuple[str, ...]:
    return _antonym_index().get(canonical_adjective(word), ())


def relation_opposites(phrase: str) -> tuple[str, ...]:
    return _relation_index().get(phrase.lower(), ())


def verb_alternatives(base: str) -> tuple[str, ...]:
    """Other verbs of the same group (then none: a verb outside the vocabulary has no curated swap)."""
    base = base.lower()
    group = _verb_index().get(base)
    return tuple(v for v in VERB_GROUPS[group] if v != base) if group else ()


def relation_alternatives(phrase: str) -> tuple[str, ...]:
    """The opposite(s) of a spatial relation phrase first, then the other relations."""
    phrase = phrase.lower()
    index = _relation_index()
    if phrase not in index:
        return ()
    opposites = index[phrase]
    rest = tuple(sorted(r for r in index if r != phrase and r not in opposites))
    return opposites + rest


@lru_cache(maxsize=None)
def relation_phrases_by_first_word() -> dict[str, tuple[tuple[str, ...], ...]]:
    """Relations as token tuples keyed by their first word, longest first (for greedy matching)."""
    index: dict[str, list[tuple[str, ...]]] = {}
    for phrase in sorted((tuple(p.split()) for p in _relation_index()), key=len, reverse=True):
        index.setdefault(phrase[0], []).append(phrase)
    return {k: tuple(v) for k, v in index.items()}


def all_nouns() -> tuple[str, ...]:
    return tuple(_noun_index())


def nouns_in(category: str) -> tuple[str, ...]:
    return NOUN_CATEGORIES[category]


def adjectives_in(category: str) -> tuple[str, ...]:
    return ADJECTIVE_CATEGORIES[category]
