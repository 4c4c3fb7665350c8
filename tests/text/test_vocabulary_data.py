"""The vocabulary data files (genemi/text/data/*.yaml) as genemi.text.vocabulary reads them.

Counts and table names are written by hand: a file that is missing, truncated, mis-indented or read with YAML's
type guessing fails here. (Every COCO category having a portrayal entry is checked in
tests/generation_pipeline/test_portrayal_rules.py.)
"""

from collections import Counter

import pytest

from genemi.text import vocabulary as vocab

FILES = {
    "vocabulary.yaml": {"nouns", "adjectives", "antonyms", "colour_aliases", "verbs", "relations"},
    "portrayal_vocabulary.yaml": {
        "nouns", "super_categories", "generic_nouns", "mass_nouns", "pluralia_tantum", "colours", "materials",
        "textures", "sizes", "counts_for_singular", "counts_for_plural", "profiles", "default_profile",
        "material_nouns", "count_words", "extra_colours",
    },
}  # fmt: skip


def _leaves(value):
    if isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _leaves(item)
    elif isinstance(value, tuple):
        for item in value:
            yield from _leaves(item)
    else:
        yield value


def _word_lists(value):
    """Every list of words in a table (the pairs of antonyms and relations are lists too)."""
    if isinstance(value, dict):
        for item in value.values():
            yield from _word_lists(item)
    elif isinstance(value, tuple):
        if all(isinstance(item, str) for item in value):
            yield value
        else:
            for item in value:
                yield from _word_lists(item)


@pytest.mark.parametrize("name", sorted(FILES))
def test_each_file_holds_exactly_the_tables_the_module_reads(name):
    data = vocab.read_vocabulary_file(name)
    assert set(data) == FILES[name]


@pytest.mark.parametrize("name", sorted(FILES))
def test_every_word_is_a_clean_string_and_no_list_repeats_one(name):
    data = vocab.read_vocabulary_file(name)
    for word in _leaves(data):
        assert isinstance(word, str), (name, word)
        if word:  # the empty word set of a profile's count edit
            assert word == word.strip().lower() and "  " not in word, (name, word)
    for words in _word_lists(data):
        repeated = [w for w, c in Counter(words).items() if c > 1]
        assert repeated == [], (name, words)


def test_negatives_vocabulary_shape():
    assert list(vocab.NOUN_CATEGORIES) == [
        "animal", "person", "vehicle", "furniture", "food", "tableware", "electronics", "sports", "clothing",
        "carried", "place", "structure", "shape", "nature", "fixture"]  # fmt: skip
    assert len(vocab.all_nouns()) == sum(len(n) for n in vocab.NOUN_CATEGORIES.values()) == 221
    assert list(vocab.ADJECTIVE_CATEGORIES) == ["colour", "size", "material", "state", "pattern"]
    assert list(vocab.VERB_GROUPS) == ["posture", "motion", "handling", "eating", "attention", "using"]
    assert len(vocab.ANTONYMS) == 26 and len(vocab.RELATION_OPPOSITES) == 22
    assert all(len(pair) == 2 for pair in (*vocab.ANTONYMS, *vocab.RELATION_OPPOSITES))
    assert vocab.RELATION_OPPOSITES[0] == ("on", "under")  # YAML 1.1 would have read `on` as True
    assert vocab.COLOUR_ALIASES == {"grey": "gray", "gold": "golden"}
    adjectives = {a for words in vocab.ADJECTIVE_CATEGORIES.values() for a in words}
    assert {a for pair in vocab.ANTONYMS for a in pair} <= adjectives
    assert set(vocab.COLOUR_ALIASES.values()) <= set(vocab.ADJECTIVE_CATEGORIES["colour"])
    assert isinstance(vocab.NOUN_CATEGORIES["animal"], tuple) and isinstance(vocab.ANTONYMS[0], tuple)


def test_portrayal_vocabulary_shape():
    # docs/generation_pipeline.md quotes these numbers
    assert len(vocab.PORTRAY_NOUNS) == 34
    assert sum(len(bases) for bases in vocab.PORTRAY_NOUNS.values()) == 424
    assert list(vocab.PORTRAY_PROFILES) == list(vocab.PORTRAY_NOUNS)
    bases = [b for pool in vocab.PORTRAY_NOUNS.values() for b in pool]
    assert [b for b, c in Counter(bases).items() if c > 1] == []  # a base belongs to one category
    assert vocab.GENERIC_NOUNS <= set(bases) and len(vocab.GENERIC_NOUNS) == 18
    assert (len(vocab.MASS_NOUNS), len(vocab.PLURALIA_TANTUM), len(vocab.COUNT_WORDS)) == (75, 43, 24)
    assert isinstance(vocab.MASS_NOUNS, frozenset) and not vocab.MASS_NOUNS & vocab.PLURALIA_TANTUM
    assert set(vocab.SUPER_CATEGORIES["food"]) <= set(vocab.PORTRAY_NOUNS)
    tables = {"material": vocab.PORTRAY_MATERIALS, "texture": vocab.PORTRAY_TEXTURES, "size": vocab.PORTRAY_SIZES}
    for category, (palette, edits) in (*vocab.PORTRAY_PROFILES.items(), ("default", vocab.DEFAULT_PROFILE)):
        assert palette in vocab.PORTRAY_COLOURS, category
        assert edits and isinstance(edits, tuple), category
        for kind, word_set in edits:
            assert word_set == "" if kind == "count" else word_set in tables[kind], (category, kind, word_set)
    assert set(vocab.MATERIAL_NOUNS) <= {w for words in vocab.PORTRAY_MATERIALS.values() for w in words} | {"golden"}
    assert vocab.COUNTS_FOR_SINGULAR == ("two", "three", "four", "a pair of")
    assert vocab.COUNTS_FOR_PLURAL == ("a single", "one", "a lone")
