"""Inflection, vocabulary, parsing, word-order perturbations, WordNet and caption-file readers."""

import json
import random
from collections import Counter

import pytest

from genemi.caption_files import read_caption_entries
from genemi.errors import DataError, ManifestError
from genemi.text import vocabulary as vocab
from genemi.text.inflection import indefinite_article, inflect_verb, match_case, pluralize, singularize
from genemi.text.order import ORDER_PERTURBATIONS
from genemi.text.parsing import looks_english, parse_captions


def parse(text):
    return next(parse_captions([text]))


@pytest.mark.parametrize("singular,plural", [
    ("dog", "dogs"), ("bus", "buses"), ("man", "men"), ("woman", "women"), ("child", "children"),
    ("knife", "knives"), ("baby", "babies"), ("sheep", "sheep"), ("box", "boxes"), ("monkey", "monkeys"),
])  # fmt: skip
def test_plural_round_trip(singular, plural):
    assert pluralize(singular) == plural
    assert singularize(plural) == singular


@pytest.mark.parametrize("base,tag,form", [
    ("ride", "VBG", "riding"), ("run", "VBG", "running"), ("sit", "VBZ", "sits"), ("eat", "VBD", "ate"),
    ("carry", "VBZ", "carries"), ("lie", "VBG", "lying"), ("watch", "VBZ", "watches"), ("open", "VBG", "opening"),
    ("walk", "VBD", "walked"), ("drink", "VBN", "drunk"), ("hold", "VB", "hold"),
])  # fmt: skip
def test_verb_forms(base, tag, form):
    assert inflect_verb(base, tag) == form


def test_articles_and_case():
    assert indefinite_article("orange") == "an" and indefinite_article("red") == "a"
    assert indefinite_article("umbrella") == "an" and indefinite_article("unicycle") == "a"
    assert match_case("dog", "Cat") == "Dog" and match_case("dog", "CAT") == "DOG" and match_case("dog", "cat") == "dog"


def test_vocabulary_keeps_categories_and_prefers_opposites():
    assert "dog" not in vocab.noun_alternatives("dog") and "cat" in vocab.noun_alternatives("dog")
    assert set(vocab.noun_alternatives("dog")) <= set(vocab.NOUN_CATEGORIES["animal"])
    assert vocab.adjective_alternatives("big")[0] == "small"
    assert vocab.adjective_antonyms("small") == ("big", "large")
    assert "gray" not in vocab.adjective_alternatives("grey")  # aliases are the same colour
    assert vocab.relation_opposites("in front of") == ("behind",)
    assert vocab.relation_opposites("left of") == ("right of",)
    assert vocab.noun_alternatives("quasar") == ()
    # every word sits in exactly one noun category (a word in two would swap across categories)
    counts = Counter(n for nouns in vocab.NOUN_CATEGORIES.values() for n in nouns)
    assert [n for n, c in counts.items() if c > 1] == []


def test_parsing_keeps_whitespace_and_renders_token_edits():
    p = parse("A woman and a man, smiling.")
    assert p.render() == "A woman and a man, smiling."
    man = [i for i, t in enumerate(p.tokens) if t.text == "man"][0]
    assert p.render({man: "dog"}) == "A woman and a dog, smiling."
    assert [p.tokens[c.root].text for c in p.chunks] == ["woman", "man"]


@pytest.mark.parametrize("text,english", [
    ("A dog on a bed", True), ("Dogs", True), ("Der Hund spielt im Park.", False),
    ("Le chien joue dans le parc", False), ("一只狗在公园里", False), ("", False), ("!!!", False),
])  # fmt: skip
def test_language_check(text, english):
    assert looks_english(parse(text)) is english


def test_order_perturbations_keep_the_words_and_change_the_order():
    p = parse("A man riding a brown horse on the beach.")
    words = Counter(t.text for t in p.tokens if t.pos != "PUNCT")
    for name, perturb in ORDER_PERTURBATIONS.items():
        for seed in range(5):
            out = perturb(p, random.Random(seed))
            assert Counter(out.split()) == words, name
            assert out != "A man riding a brown horse on the beach", name
    assert ORDER_PERTURBATIONS["shuffle_nouns_adjs"](parse("A dog"), random.Random(0)) is None
    # nouns & adjectives stay put when shuffling the rest, and vice versa
    out = ORDER_PERTURBATIONS["shuffle_allbut_nouns_adjs"](p, random.Random(1)).split()
    assert [out[1], out[4], out[5], out[8]] == ["man", "brown", "horse", "beach"]


def test_wordnet_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("GENEMI_CACHE", str(tmp_path))
    from genemi.text.wordnet import load_wordnet

    load_wordnet.cache_clear()
    try:
        wn = load_wordnet()
        assert wn.synsets("dog", "n")[0].name() == "dog.n.01"
        assert (tmp_path / "nltk_data" / "corpora" / "wordnet" / ".complete").exists()
    finally:
        load_wordnet.cache_clear()


def test_caption_files_every_format(tmp_path):
    karpathy = tmp_path / "k.json"
    karpathy.write_text(json.dumps([{"image": "a.jpg", "caption": "a dog", "image_id": 1},
                                    {"image": "b.jpg", "caption": ["a cat", "two cats"]}]))
    coco = tmp_path / "captions_val2014.json"
    coco.write_text(json.dumps({"images": [{"id": 7, "file_name": "x.jpg"}],
                                "annotations": [{"id": 70, "image_id": 7, "caption": "a bus"}]}))
    jsonl = tmp_path / "c.jsonl"
    jsonl.write_text('{"image": "j.jpg", "caption": "a car", "id": "mine"}\n')
    tsv = tmp_path / "c.tsv"
    tsv.write_text("filepath\ttitle\nt.jpg\ta tree\n")
    k = read_caption_entries(karpathy)
    assert [(e.image, e.caption) for e in k] == [("a.jpg", "a dog"), ("b.jpg", "a cat"), ("b.jpg", "two cats")]
    assert k[0].image_id == 1 and len({e.id for e in k}) == 3
    assert read_caption_entries(karpathy) == k  # stable ids
    c = read_caption_entries(coco)
    assert c[0].id == "x.jpg#ann70" and c[0].image_id == 7 and c[0].caption == "a bus"
    assert read_caption_entries(jsonl)[0].id == "mine"
    assert read_caption_entries(tsv)[0].caption == "a tree"


def test_caption_files_bad_input(tmp_path):
    with pytest.raises(DataError, match="not found"):
        read_caption_entries(tmp_path / "missing.json")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"image": "a.jpg", "caption": "x"}\n{"image": "b.jpg"}\n{"image": "c.jpg", "caption": "y"}\n')
    with pytest.raises(ManifestError, match=r"bad.jsonl:2: neither 'caption' nor 'captions'"):
        read_caption_entries(bad)
    broken = tmp_path / "broken.json"
    broken.write_text('[{"image": "a.jpg",\n "caption": }]')
    with pytest.raises(ManifestError, match=r"broken.json:2: invalid JSON"):
        read_caption_entries(broken)
    coco = tmp_path / "coco.json"
    coco.write_text(json.dumps({"images": [], "annotations": [{"id": 1, "image_id": 3, "caption": "x"}]}))
    with pytest.raises(ManifestError, match="unknown image_id 3"):
        read_caption_entries(coco)
