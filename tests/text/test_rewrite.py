"""Caption rewriting for the ``caption`` stage, and its two parser backends (spaCy; stanza's error paths)."""

import sys
import types
from types import SimpleNamespace as NS

import pytest

from genemi.errors import BackendUnavailable, ConfigError
from genemi.generation_pipeline.captioning.base import CAPTION_PARSERS
from genemi.generation_pipeline.captioning.config import CaptionConfig
from genemi.generation_pipeline.captioning.spacy_parser import SpacyParser
from genemi.generation_pipeline.captioning.stanza_parser import StanzaParser, from_stanza
from genemi.generation_pipeline.stage import StageContext
from genemi.text.parsing import parse_captions
from genemi.text.rewrite import rewrite, rewrite_captions, with_article


def parse(text):
    return next(parse_captions([text]))


CASES = [
    # determiners stay; the label takes the phrase's number; of a counted phrase one instance becomes the label
    ("the dog sleeps", "dog", "bald eagle", "the bald eagle sleeps"),
    ("two dogs playing in the park", "dog", "bald eagle", "a dog and a bald eagle playing in the park"),
    ("his dog sleeps on the sofa", "dog", "eagle", "his eagle sleeps on the sofa"),
    ("several young men walk", "man", "robot", "several robots walk"),
    ("Three people riding bikes", "person", "robot", "Two people and a robot riding bikes"),
    ("A man and a woman ride horses", "horse", "camel", "A man and a woman ride camels"),
    ("3 cats on a bed", "cat", "dog", "2 cats and a dog on a bed"),
    ("a picture of three large cyan stars", "large cyan star", "large cyan triangle",
     "a picture of two large cyan stars and a large cyan triangle"),
    ("Two dogs", "dogs", "Dalmatian", "A dog and a dalmatian"),
    # plural short labels: singularised for singular phrases and for the one instance of a counted phrase
    ("three dogs on the grass", "dog", "pigeons", "two dogs and a pigeon on the grass"),
    ("two men on a bench", "man", "women", "a man and a woman on a bench"),
    ("a dog on the grass", "dogs", "pigeons", "a pigeon on the grass"),
    ("a man holding an umbrella", "umbrella", "red umbrellas", "a man holding a red umbrella"),
    # a / an, both ways, with the determiner's capital
    ("A dog runs", "dog", "eagle", "An eagle runs"),
    ("an apple on a table", "apple", "banana", "a banana on a table"),
    ("A skateboarder on a ramp", "skateboarder", "unicorn", "A unicorn on a ramp"),
    ("Some people and a dog in the snow", "dog", "hour glass", "Some people and an hour glass in the snow"),
    # no "a" before mass or plural-only labels
    ("A pizza on a plate", "pizza", "pasta", "Pasta on a plate"),
    ("A man in a t-shirt holding a glass of wine.", "shirt", "jeans", "A man in jeans holding a glass of wine."),
    # conjunctions: only the named conjunct changes
    ("A cat and a dog", "dog", "bald eagle", "A cat and a bald eagle"),
    ("A cat and dog on a bed.", "dog", "owl", "A cat and owl on a bed."),
    ("An old man and his dog", "dog", "parrot", "An old man and his parrot"),
    # whole tokens only: "man" is not in "woman", "cat" not in "catch", "dog" not in "hot dog stand"
    ("A woman and a man with a cat", "man", "robot", "A woman and a robot with a cat"),
    ("A woman trying to catch a ball", "man", "robot", None),
    ("A woman trying to catch a ball", "cat", "robot", None),
    ("a hot dog stand", "dog", "cat", None),
    ("a dog bowl next to a dog", "dog", "cat", "a dog bowl next to a cat"),
    ("the man's dog sleeps", "man", "robot", "the robot's dog sleeps"),
    # multi-word items; the item's modifiers pick among phrases with the same head
    ("A teddy bear sitting on a fire hydrant.", "teddy bear", "toy robot", "A toy robot sitting on a fire hydrant."),
    ("A teddy bear sitting on a fire hydrant.", "fire hydrant", "mailbox", "A teddy bear sitting on a mailbox."),
    ("A man in a t-shirt holding a glass of wine.", "t-shirt", "jacket", "A man in a jacket holding a glass of wine."),
    ("A man in a t-shirt holding a glass of wine.", "glass of wine", "cup of coffee",
     "A man in a t-shirt holding a cup of coffee."),
    ("a red square next to a blue square", "red square", "green circle", "a green circle next to a blue square"),
    ("a red square next to a blue square", "blue square", "green circle", "a red square next to a green circle"),
    ("a red square next to a blue square", "square", "green circle", "a green circle next to a blue square"),
    ("A red car parked next to a blue car.", "blue car", "yellow taxi", "A red car parked next to a yellow taxi."),
    # the phrase's adjectives go with it; the label is lower-case (acronyms kept) unless it starts the caption
    ("a big, fluffy dog", "dog", "Owl", "an owl"),
    ("a very large elephant in a field", "elephant", "rhino", "a rhino in a field"),
    ("A black and white cat sleeps", "cat", "TV", "A TV sleeps"),
    ("Dogs playing with a frisbee", "dog", "bald eagle", "Bald eagles playing with a frisbee"),
    # punctuation and whitespace kept; a leading article of the label dropped
    ("A dog, sitting.", "dog", "eagle", "An eagle, sitting."),
    ("A dog, sitting.", "dog", "a blue rock", "A blue rock, sitting."),
    ("A dog, sitting.", "dog", "the eagle", "An eagle, sitting."),
    ("A  dog  sits!", "dog", "owl", "An  owl  sits!"),
]  # fmt: skip


@pytest.fixture(scope="module")
def parsed():
    texts = list(dict.fromkeys(c[0] for c in CASES))
    return dict(zip(texts, parse_captions(texts)))


@pytest.mark.parametrize("caption,item,short,expected", CASES)
def test_rewrite(parsed, caption, item, short, expected):
    assert rewrite(parsed[caption], item, short) == expected


def test_rewrite_captions_keeps_order_and_deduplicates():
    texts = ["A dog runs across the field.", "A cat sleeps.", "A dog runs across the field.", "Two dogs play."]
    caps = list(parse_captions(texts))
    expected = ["An owl runs across the field.", "A dog and an owl play."]
    assert rewrite_captions(caps, "dog", "owl", texts[0]) == (expected, False)


@pytest.mark.parametrize("short,expected", [
    ("bald eagle", "a photo of a dog and a bald eagle"),
    ("owl", "a photo of a dog and an owl"),
    ("an owl", "a photo of a dog and an owl"),
    ("pigeons", "a photo of a dog and pigeons"),
    ("water", "a photo of a dog and water"),
])  # fmt: skip
def test_fallback_when_no_caption_names_the_item(short, expected):
    caps = list(parse_captions(["a photo of a dog", "a dog on grass"]))
    assert rewrite_captions(caps, "zebra", short, "a photo of a dog") == ([expected], True)


def test_fallback_keeps_final_punctuation_and_defaults_to_first_caption():
    caps = list(parse_captions(["A dog on a bench.", "a dog"]))
    assert rewrite_captions(caps, "zebra", "owl", None) == (["A dog on a bench and an owl."], True)


def test_no_caption_at_all():
    assert rewrite_captions([], "dog", "bald eagle", None) == (["a bald eagle"], True)
    assert rewrite_captions([], "dog", "pigeons", None) == (["pigeons"], True)
    assert with_article("the umbrella") == "an umbrella"


# --- parser backends ------------------------------------------------------------------------------------


def test_spacy_parser_through_the_registry():
    parser = CAPTION_PARSERS.build("spacy", CaptionConfig(), StageContext())
    assert isinstance(parser, SpacyParser) and parser.name == "spacy"
    parser.check()
    parser.load()
    out = parser.parse(["A dog runs across the field.", "two red cars"])
    parser.offload()
    assert [p.text for p in out] == ["A dog runs across the field.", "two red cars"]
    assert [(c.start, c.end, c.root) for c in out[1].chunks] == [(0, 3, 2)]
    assert rewrite(out[0], "dog", "eagle") == "An eagle runs across the field."


def test_stanza_without_stanza_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "stanza", None)  # as if not installed (import raises ImportError)
    parser = CAPTION_PARSERS.build("stanza", CaptionConfig(backend="stanza", stanza_dir=str(tmp_path)), StageContext())
    assert isinstance(parser, StanzaParser) and parser.name == "stanza"
    for call in (parser.check, lambda: parser.parse(["a dog"])):
        with pytest.raises(BackendUnavailable, match="pip install stanza") as err:
            call()
        assert "\n" not in str(err.value)


def test_stanza_model_folder_errors(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "stanza", types.ModuleType("stanza"))  # installed, models not checked yet
    for folder, message in [(None, "needs --stanza-dir"), (str(tmp_path / "missing"), "no such folder"),
                            (str(tmp_path), "holds no stanza English models")]:
        with pytest.raises(ConfigError, match=message) as err:
            StanzaParser(CaptionConfig(backend="stanza", stanza_dir=folder), StageContext()).check()
        assert "\n" not in str(err.value)
    (tmp_path / "resources.json").write_text("{}")
    (tmp_path / "en").mkdir()
    StanzaParser(CaptionConfig(backend="stanza", stanza_dir=str(tmp_path)), StageContext()).check()


def _tree(label, *children):
    return NS(label=label, children=children)


def _leaf(tag, word):
    return _tree(tag, _tree(word))


def test_stanza_document_conversion():
    """A hand-built stanza-shaped document: tokens, whitespace, lowest-NP chunks, then a rewrite on it."""
    text = "A red car and a dog."
    words = [("A", "DET", "DT", "a"), ("red", "ADJ", "JJ", "red"), ("car", "NOUN", "NN", "car"),
             ("and", "CCONJ", "CC", "and"), ("a", "DET", "DT", "a"), ("dog", "NOUN", "NN", "dog"),
             (".", "PUNCT", ".", ".")]
    tokens, at = [], 0
    for w, upos, xpos, lemma in words:
        start = text.index(w, at)
        at = start + len(w)
        tokens.append(NS(text=w, start_char=start, end_char=at, words=[NS(text=w, upos=upos, xpos=xpos, lemma=lemma)]))
    tree = _tree("ROOT", _tree("NP",
        _tree("NP", _leaf("DT", "A"), _leaf("JJ", "red"), _leaf("NN", "car")), _leaf("CC", "and"),
        _tree("NP", _leaf("DT", "a"), _leaf("NN", "dog")), _leaf(".", ".")))  # fmt: skip
    parsed = from_stanza(NS(sentences=[NS(tokens=tokens, constituency=tree)]), text)
    assert [(c.start, c.end, c.root) for c in parsed.chunks] == [(0, 3, 2), (4, 6, 5)]
    assert [t.ws for t in parsed.tokens] == [" ", " ", " ", " ", " ", "", ""]
    assert parsed.render() == text
    assert rewrite(parsed, "dog", "owl") == "A red car and an owl."
    assert rewrite(parsed, "red car", "bus") == "A bus and a dog."


@pytest.mark.parametrize("caption, item, short, expected", [
    ("a red square next to a blue circle", "red square", "three green squares", "three green squares next to a blue circle"),
    ("Two dogs on the grass.", "dogs", "a single cat", "A single cat on the grass."),
    ("the dog sleeps on a couch", "couch", "two couches", "the dog sleeps on two couches"),
    ("a man holding an umbrella", "umbrella", "a pair of umbrellas", "a man holding a pair of umbrellas"),
])
def test_a_label_with_its_own_count_replaces_the_determiner_and_keeps_its_number(caption, item, short, expected):
    assert rewrite(parse(caption), item, short) == expected


@pytest.mark.parametrize("caption, item, short, expected", [
    ("A cat and a dog sleep on the bed", "dog", "bald eagle", "A cat and a bald eagle sleep on the bed"),
    ("a cat and a dog play.", "dog", "puppy", "a cat and a puppy play."),
    ("a hot dog stand on the street", "dog", "cat", None),  # "dog" only modifies "hot dog stand"
])
def test_a_verb_the_parser_took_for_a_noun_does_not_hide_the_item(caption, item, short, expected):
    assert rewrite(parse(caption), item, short) == expected
