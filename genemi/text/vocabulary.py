"""genemi's curated vocabularies: visually distinct, COCO-frequent words grouped by category.

One module for every rule-based edit: the text hard negatives (``genemi negatives``) draw replacements
and additions from here, and so does the rule-based portrayal backend. Nouns are singular lemmas, verbs
base forms (inflected by :mod:`genemi.text.inflection`), relations lower-case phrases.

Replacements stay inside a category (a dog becomes another animal, red another colour) so that a negative
describes a *plausible* different image, the property SugarCrepe showed matters.

The words live in two data files of this package, read once when the module is imported:
``data/vocabulary.yaml`` (the categories above, shared with the tiny test models' tokenizers) and
``data/portrayal_vocabulary.yaml`` (the portrayal backend's and the LLM answer parser's tables). Each file
documents its tables; the names below hold them as tuples, dicts and frozensets.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import yaml

def _frozen(value):
    """Lists as tuples, recursively (the tables are read-only)."""
    if isinstance(value, dict):
        return {k: _frozen(v) for k, v in value.items()}
    if isinstance(value, list):
        return tuple(_frozen(v) for v in value)
    return value


def read_vocabulary_file(name: str) -> dict:
    """One data file of ``genemi/text/data``, every scalar a string (YAML's type guessing is off: ``on``, ``no``
    and ``null`` stay words); lists become tuples."""
    text = resources.files(__package__).joinpath("data").joinpath(name).read_text(encoding="utf-8")
    data = yaml.load(text, Loader=getattr(yaml, "CBaseLoader", yaml.BaseLoader))
    if not isinstance(data, dict):
        raise ValueError(f"genemi/text/data/{name}: expected a mapping of tables, got {type(data).__name__}")
    return _frozen(data)


def _profile(entry: dict) -> tuple[str, tuple[tuple[str, str], ...]]:
    return entry["palette"], entry["edits"]


_WORDS = read_vocabulary_file("vocabulary.yaml")

#: noun categories -> singular lemmas
NOUN_CATEGORIES: dict[str, tuple[str, ...]] = _WORDS["nouns"]
#: adjective categories; replacements keep the category, antonyms come first
ADJECTIVE_CATEGORIES: dict[str, tuple[str, ...]] = _WORDS["adjectives"]
#: symmetric antonym pairs: the preferred replacement of either word
ANTONYMS: tuple[tuple[str, str], ...] = _WORDS["antonyms"]
#: colour spellings treated as the same colour (never a replacement for each other)
COLOUR_ALIASES: dict[str, str] = _WORDS["colour_aliases"]
#: verb groups (base forms); replacements stay in the group when it has another member
VERB_GROUPS: dict[str, tuple[str, ...]] = _WORDS["verbs"]
#: spatial relations with their preferred opposite; multi-word phrases are matched as token sequences
RELATION_OPPOSITES: tuple[tuple[str, str], ...] = _WORDS["relations"]


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


# --- portrayal vocabulary ------------------------------------------------------------------------------------
# Tables of the rule-based portrayal backend and of the LLM answer parser (``classify_edit``). They are
# separate from the tables above, which ``genemi negatives`` draws from and which must not change with them.

#: at most this many words in a portrayal's short label
MAX_SHORT_WORDS = 4

_PORTRAY = read_vocabulary_file("portrayal_vocabulary.yaml")

#: category -> base noun -> its near synonyms and subtypes; the bases of a category are its swap pool
PORTRAY_NOUNS: dict[str, dict[str, tuple[str, ...]]] = _PORTRAY["nouns"]
#: coarse groups of categories: an edit inside a group still counts as a category edit (banana -> pizza)
SUPER_CATEGORIES: dict[str, tuple[str, ...]] = _PORTRAY["super_categories"]
#: bases naming a whole category: they are portrayed, but never chosen as another item's replacement
GENERIC_NOUNS = frozenset(_PORTRAY["generic_nouns"])
#: uncountable nouns (last word of a phrase suffices): no article, no plural, no count edit
MASS_NOUNS = frozenset(_PORTRAY["mass_nouns"])
#: nouns that exist in the plural only (no article, never pluralised again, no count edit)
PLURALIA_TANTUM = frozenset(_PORTRAY["pluralia_tantum"])
#: colour palettes, material, texture and size word sets
PORTRAY_COLOURS: dict[str, tuple[str, ...]] = _PORTRAY["colours"]
PORTRAY_MATERIALS: dict[str, tuple[str, ...]] = _PORTRAY["materials"]
PORTRAY_TEXTURES: dict[str, tuple[str, ...]] = _PORTRAY["textures"]
PORTRAY_SIZES: dict[str, tuple[str, ...]] = _PORTRAY["sizes"]
#: count edits: a singular item becomes several, a plural one becomes a single one
COUNTS_FOR_SINGULAR: tuple[str, ...] = _PORTRAY["counts_for_singular"]
COUNTS_FOR_PLURAL: tuple[str, ...] = _PORTRAY["counts_for_plural"]
#: per category: (colour palette, attribute edits that suit it as (kind, word set), best first).
#: kind "count" takes no word set; categories not listed get ``DEFAULT_PROFILE``.
PORTRAY_PROFILES: dict[str, tuple[str, tuple[tuple[str, str], ...]]] = {
    category: _profile(entry) for category, entry in _PORTRAY["profiles"].items()}
#: items outside the vocabulary: attribute edits only, colour first
DEFAULT_PROFILE: tuple[str, tuple[tuple[str, str], ...]] = _profile(_PORTRAY["default_profile"])
#: material adjective -> the noun descriptions use ("made of wood")
MATERIAL_NOUNS: dict[str, str] = _PORTRAY["material_nouns"]
#: words that mark a count in an LLM's short label
COUNT_WORDS = frozenset(_PORTRAY["count_words"])
_EXTRA_COLOURS: tuple[str, ...] = _PORTRAY["extra_colours"]


@dataclass(frozen=True)
class NounEntry:
    """A known noun phrase: its base noun (pool member), category, and number behaviour."""

    base: str
    category: str
    mass: bool
    plural_only: bool


@dataclass(frozen=True)
class ItemParts:
    """An item split into modifier words and head noun phrase (singular), with its vocabulary entry."""

    mods: tuple[str, ...]
    head: str
    plural: bool
    entry: NounEntry | None
    extra: tuple[str, ...] = ()  # a trailing "in"/"with" phrase ("man in red" -> ("in", "red"))
    surface: str = ""  # the head as the item writes it ("teddy bears"; with its portion: "slices of pizza")

    @property
    def portion(self) -> bool:
        """Whether the item is a portion of its head ("a slice of pizza", "glasses of wine"): countable."""
        return " of " in self.surface

    @property
    def category(self) -> str | None:
        return self.entry.category if self.entry else None

    @property
    def base(self) -> str | None:
        return self.entry.base if self.entry else None


def number_flags(phrase: str) -> tuple[bool, bool]:
    """(mass noun, plural-only noun) for a noun phrase: its last word decides, or the word before "of"."""
    words = phrase.split(" ")
    head = words[words.index("of", 1) - 1] if "of" in words[1:] else words[-1]
    return (phrase in MASS_NOUNS or head in MASS_NOUNS), (phrase in PLURALIA_TANTUM or head in PLURALIA_TANTUM)


@lru_cache(maxsize=None)
def portray_index() -> dict[str, NounEntry]:
    """Every known noun phrase (bases first, then synonyms; the first entry of a phrase wins)."""
    index: dict[str, NounEntry] = {}
    for category, bases in PORTRAY_NOUNS.items():
        for base in bases:
            index[base] = NounEntry(base, category, *number_flags(base))
    for category, bases in PORTRAY_NOUNS.items():
        for base, synonyms in bases.items():
            for syn in synonyms:
                index.setdefault(syn, NounEntry(base, category, *number_flags(syn)))
    return index


def noun_entry(phrase: str) -> NounEntry | None:
    return portray_index().get(phrase.lower())


def super_category(category: str | None) -> str | None:
    if category is None:
        return None
    return next((sup for sup, cats in SUPER_CATEGORIES.items() if category in cats), category)


def swap_pool(category: str) -> tuple[str, ...]:
    """The bases an item of ``category`` may be replaced by (generic nouns excluded)."""
    return tuple(b for b in PORTRAY_NOUNS[category] if b not in GENERIC_NOUNS)


def noun_synonyms(base: str) -> tuple[str, ...]:
    """Curated near synonyms and subtypes of a base noun (empty for unknown nouns)."""
    entry = noun_entry(base)
    return PORTRAY_NOUNS[entry.category].get(entry.base, ()) if entry else ()


def portray_profile(category: str | None) -> tuple[str, tuple[tuple[str, str], ...]]:
    return PORTRAY_PROFILES.get(category, DEFAULT_PROFILE) if category else DEFAULT_PROFILE


@lru_cache(maxsize=None)
def _attribute_index() -> dict[str, str]:
    """Attribute word -> kind (colour, material, texture, size, count)."""
    index: dict[str, str] = {}
    for kind, tables in (("colour", PORTRAY_COLOURS), ("material", PORTRAY_MATERIALS),
                         ("size", PORTRAY_SIZES), ("texture", PORTRAY_TEXTURES)):
        for words in tables.values():
            for word in words:
                index.setdefault(word, kind)
    for word in (*ADJECTIVE_CATEGORIES["colour"], *COLOUR_ALIASES, *_EXTRA_COLOURS):
        index.setdefault(word, "colour")
    for word in ADJECTIVE_CATEGORIES["material"]:
        index.setdefault(word, "material")
    for word in ADJECTIVE_CATEGORIES["size"]:
        index.setdefault(word, "size")
    for word in ADJECTIVE_CATEGORIES["pattern"]:
        index.setdefault(word, "texture")
    for word in COUNT_WORDS:
        index.setdefault(word, "count")
    return index


def attribute_kind(word: str) -> str | None:
    """colour, material, texture, size or count for an attribute word (numbers are counts), else None."""
    return "count" if word.isdigit() else _attribute_index().get(word.lower())


_TOKEN = re.compile(r"[a-z0-9][a-z0-9'\-]*")
_PREPOSITIONS = (" in ", " with ", " wearing ")


def _singular_forms(word: str) -> tuple[str, ...]:
    """Candidate singulars of a word (the rules mis-singularise some, e.g. cookies -> cooky)."""
    from genemi.text.inflection import singularize

    forms = [singularize(word)]
    if word.endswith("s") and not word.endswith("ss"):
        forms.append(word[:-1])
        if word.endswith("es"):
            forms.append(word[:-2])
    return tuple(f for f in dict.fromkeys(forms) if f and f != word)


def singularize_word(word: str) -> str:
    from genemi.text.inflection import singularize

    return singularize(word)


def _singular_phrases(phrase: str) -> tuple[str, ...]:
    """Singulars of a phrase: the word before "of" ("bars of soap") or the last word."""
    words = phrase.split(" ")
    at = words.index("of", 1) - 1 if "of" in words[1:] else len(words) - 1
    return tuple(" ".join(words[:at] + [s] + words[at + 1:]) for s in _singular_forms(words[at]))


@lru_cache(maxsize=65536)
def split_item(item: str) -> ItemParts:
    """Split an item ("small red teddy bears") into modifiers, head (singular) and number.

    The head is the longest known noun phrase ending the item (plural forms are recognised); an unknown
    item's head is its last word."""
    text = " ".join(_TOKEN.findall(item.lower()))
    extra: tuple[str, ...] = ()
    for prep in _PREPOSITIONS:
        if prep in f" {text} ":
            text, _, rest = f" {text} ".partition(prep)
            text, extra = text.strip(), (prep.strip(), *rest.split())
            break
    words = text.split()
    if not words:
        return ItemParts((), "", False, None, extra)
    index = portray_index()
    for size in range(min(4, len(words)), 0, -1):
        phrase = " ".join(words[-size:])
        mods = tuple(words[:-size])
        if len(mods) >= 2 and mods[-1] == "of":  # "glass of wine": a portion of it, not a "glass" modifier
            portion = mods[-2]
            plural = portion != singularize_word(portion) and portion not in ("glass",)
            if phrase in index:
                return ItemParts(mods[:-2], phrase, plural, index[phrase], extra, f"{portion} of {phrase}")
            continue
        if phrase in index:
            return ItemParts(mods, phrase, False, index[phrase], extra, phrase)
        for singular in _singular_phrases(phrase):
            if singular in index and not index[singular].mass:
                return ItemParts(mods, singular, True, index[singular], extra, phrase)
    head = words[-1]
    forms = _singular_forms(head)
    plural = bool(forms) and not head.endswith(("ss", "us", "is", "ous"))
    return ItemParts(tuple(words[:-1]), forms[0] if plural else head, plural, None, extra, head)


def classify_edit(item: str, short: str) -> str:
    """What a portrayal's short label changes about an item: the noun first (category: another noun of the same
    category, "white cat" for a dog; synonym: a near synonym or subtype, "golden retriever" or "white poodle"
    for a dog), then, with the same noun, colour (a colour word added), material, texture, size, count (such
    words added, or the number changed), else other."""
    a, b = split_item(item), split_item(short)
    added = [w for w in (*b.mods, *b.extra) if w not in a.mods and w not in a.extra]
    kinds = [attribute_kind(w) for w in added]
    if a.base and b.base and a.base != b.base and super_category(a.category) == super_category(b.category):
        return "category"
    same_base = a.base is not None and a.base == b.base
    if same_base and a.head != b.head:
        return "synonym"
    if "colour" in kinds and a.head == b.head:
        return "colour"
    for kind in ("material", "texture", "size", "count"):
        if kind in kinds:
            return kind
    if (same_base or a.head == b.head) and a.plural != b.plural:
        return "count"
    return "other"
