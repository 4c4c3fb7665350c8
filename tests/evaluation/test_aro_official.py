"""ARO COCO/Flickr-Order: the ``official`` protocol rebuilds ARO's caption options exactly, the ``strict`` one
never repeats the true caption, options files round-trip, and ties follow the rule in force.

Expected options come from hand derivation (MT19937 outputs stated below) or from an independent replay of
ARO's procedure with the *global* NumPy / Python generators, seeded once like ``main_aro.py``'s ``seed_all``;
never from the code under test.
"""

import json
import random

import numpy as np
import pytest
from PIL import Image

from genemi.errors import ConfigError, DataError, ManifestError
from genemi.evaluation.benchmarks import build_benchmarks
from genemi.evaluation.benchmarks.aro import OrderBenchmark, read_order_options
from genemi.evaluation.scoring import embed
from genemi.text.aro_perturbations import (
    TaggedCaption,
    official_options,
    pre_caption,
    tag_captions,
    word_tokenize,
)

# First 32-bit outputs of the generators (documented MT19937 values, used for the hand derivations):
#   NumPy  RandomState(0): 2357136044 (even), RandomState(1): 1791095845 (odd)
#   Python Random(0): 3626764237, 1654615998, 3255389356   Random(1): 577090037, 3079168767, ...
# np.random.permutation(2) draws one word w, j = w & 1, and swaps items 1 and j: seed 0 -> [1, 0], seed 1 -> [0, 1].
# random.shuffle(3 items) draws j = getrandbits(2) (top two bits, 3 is rejected) for i=2, then getrandbits(1) for i=1.


def test_mt19937_facts_the_hand_derivations_use():
    assert np.random.RandomState(0).permutation(2).tolist() == [1, 0]
    assert np.random.RandomState(1).permutation(2).tolist() == [0, 1]
    r = random.Random(0)
    assert [r.getrandbits(32) for _ in range(3)] == [3626764237, 1654615998, 3255389356]


# --- pre_caption and tokenization ----------------------------------------------------------------------


def test_pre_caption_is_aros():
    assert pre_caption("A  Dog (big)!\n") == "a dog big"
    assert pre_caption('Two men, one holding a "surf" board.') == "two men, one holding a surf board"  # comma kept
    assert pre_caption("a\tdog.") == "a\tdog"  # a lone tab is not a run of whitespace: kept, as in ARO
    assert pre_caption("a . dog") == "a dog"
    assert pre_caption(" ".join(f"w{i}" for i in range(31))) == " ".join(f"w{i}" for i in range(30))


def test_word_tokenize_without_punkt_data_splits_sentences_like_punkt():
    # word_tokenize = Punkt sentences, then the Treebank tokenizer per sentence (final period split off)
    assert word_tokenize("A man. He is walking.", "untrained-punkt") == ["A", "man", ".", "He", "is", "walking", "."]
    assert word_tokenize('one "surf" board', "untrained-punkt") == ["one", "``", "surf", "''", "board"]
    # the documented deviation: the untrained splitter knows no abbreviation (English Punkt keeps "Mr.")
    assert word_tokenize("Mr. Smith walks.", "untrained-punkt") == ["Mr", ".", "Smith", "walks", "."]
    with pytest.raises(ValueError, match="unknown sentence splitter"):
        word_tokenize("a", "whitespace")


# --- official options ----------------------------------------------------------------------------------


def test_a_dog_by_hand():
    """'A dog.': tokens A/DT dog/NN ./. ; NLTK words [A, dog, .] (one trigram).

    p1: one noun, no adjective: nothing moves -> 'a dog'. p2: the others (A, .) permuted by permutation(2):
    seed 0 swaps -> '. dog A' -> 'dog a'; seed 1 keeps -> 'a dog'. p3: shuffle of [A, dog, .]: seed 0 draws
    3626764237>>30 = 3 (rejected), 1654615998>>30 = 1 (swap 2,1), 3255389356>>31 = 1 (no swap) -> 'A . dog'
    -> 'a dog'; seed 1 -> [dog, ., A] -> 'dog a'. p4: one trigram, nothing to shuffle -> 'a dog'."""
    (tagged,) = tag_captions(["A dog."], splitter="untrained-punkt")
    assert tagged.tags == ("DT", "NN", ".") and tagged.words == ("A", "dog", ".")
    assert official_options([tagged], 0) == [["a dog", "a dog", "dog a", "a dog", "a dog"]]
    assert official_options([tagged], 1) == [["a dog", "a dog", "a dog", "dog a", "a dog"]]


class _Tok:
    def __init__(self, text, tag):
        self.text, self.tag_ = text, tag


class _FakeNLP:
    """A tagger with fixed tags (word/TAG), so the replay below does not depend on a spaCy model."""

    def __init__(self, tagged: dict):
        self.tagged = tagged

    def pipe(self, texts, batch_size=None):
        for t in texts:
            yield [_Tok(*w.rsplit("/", 1)) for w in self.tagged[t].split()]


def _aro_replay(captions, tokens, words, seed):
    """ARO's COCO_Order construction with the global generators (seed_all, then caption after caption)."""
    random.seed(seed)
    np.random.seed(seed)
    nouns, adjs = {"NN", "NNS", "NNP", "NNPS"}, {"JJ", "JJR", "JJS"}

    def tri(ws):
        out, cur = [], []
        for i, w in enumerate(ws):
            cur.append(w)
            if i % 3 == 2:
                out.append(cur)
                cur = []
        return out + ([cur] if cur else [])

    cases = []
    for cap in captions:
        toks = tokens[cap]
        text = np.array([t for t, _ in toks])
        text[[i for i, (_, g) in enumerate(toks) if g in nouns]] = np.random.permutation(
            text[[i for i, (_, g) in enumerate(toks) if g in nouns]])
        text[[i for i, (_, g) in enumerate(toks) if g in adjs]] = np.random.permutation(
            text[[i for i, (_, g) in enumerate(toks) if g in adjs]])
        p1 = " ".join(text)
        text = np.array([t for t, _ in toks])
        rest = np.array([g not in nouns | adjs for _, g in toks])
        text[rest] = np.random.permutation(text[rest])
        p2 = " ".join(text)
        t3 = tri(list(words[cap]))
        for t in t3:
            random.shuffle(t)
        p3 = " ".join(" ".join(t) for t in t3)
        t4 = tri(list(words[cap]))
        random.shuffle(t4)
        p4 = " ".join(" ".join(t) for t in t4)
        cases.append([pre_caption(c) for c in (cap, p1, p2, p3, p4)])
    return cases


TAGS = {
    "A small dog chasing a big red ball in the park.":
        "A/DT small/JJ dog/NN chasing/VBG a/DT big/JJ red/JJ ball/NN in/IN the/DT park/NN ./.",
    "Two men, one holding a surf board.": "Two/CD men/NNS ,/, one/CD holding/VBG a/DT surf/JJ board/NN ./.",
    "Green apples on tables near old chairs": "Green/JJ apples/NNS on/IN tables/NNS near/IN old/JJ chairs/NNS",
}


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_official_options_replay_aros_streams_in_file_order(seed):
    captions = list(TAGS)
    tagged = tag_captions(captions, nlp=_FakeNLP(TAGS), splitter="untrained-punkt")
    tokens = {c: [tuple(w.rsplit("/", 1)) for w in TAGS[c].split()] for c in captions}
    words = {c: word_tokenize(c, "untrained-punkt") for c in captions}
    expected = _aro_replay(captions, tokens, words, seed)
    assert official_options(tagged, seed) == expected
    # the streams run through the file: the last caption alone gets other options (for these seeds)
    alone = official_options(tagged[2:], seed)
    assert alone == _aro_replay(captions[2:], tokens, words, seed) and alone[0] != expected[2]


def test_official_options_end_to_end_with_spacy():
    """spaCy en_core_web_sm 3.8.0 tags, NLTK words, seed 0: strings from an independent replay of ARO's code."""
    captions = ["A small dog chasing a big red ball in the park.", 'Two men, one holding a "surf" board.\n', "A dog."]
    tagged = tag_captions(captions, splitter="untrained-punkt")
    assert official_options(tagged, 0) == [
        ["a small dog chasing a big red ball in the park", "a red park chasing a small big ball in the dog",
         "a small dog a chasing big red ball the park in", "a dog small big a chasing red ball in the park",
         "red ball in a small dog chasing a big the park"],
        ["two men, one holding a surf board", "two men , one holding a surf board",
         "holding men , two surf board a one", "men two , a one holding '' surf `` board",
         "one holding a board two men , `` surf ''"],
        ["a dog", "a dog", "dog a", "a dog", "a dog"],
    ]


def test_python_random_skip_discards_words_before_the_first_caption():
    (tagged,) = tag_captions(["A dog."], splitter="untrained-punkt")
    # skipping Random(0)'s first word: 1654615998>>30 = 1 (swap 2,1), 3255389356>>31 = 1 -> 'A . dog' again;
    # Random(1) skipping 577090037: 3079168767>>30 = 2 (no swap), next word decides i=1
    assert official_options([tagged], 0, python_random_skip=1)[0][3] == "a dog"
    r = random.Random(1)
    r.getrandbits(32)
    x = ["A", "dog", "."]
    r.shuffle(x)
    assert official_options([tagged], 1, python_random_skip=1)[0][3] == pre_caption(" ".join(x))


def test_tagged_caption_with_no_tokens():
    empty = TaggedCaption("", (), (), ())
    assert official_options([empty], 0) == [["", "", "", "", ""]]


# --- the benchmark: protocols, ties, ids ---------------------------------------------------------------


class VecEmbedder:
    """Image j is e_j; texts get the vectors given (default 0): s(image, text) = vec[j]."""

    key = "vec"

    def __init__(self, vecs, dim=4):
        self.vecs, self.dim = vecs, dim

    def embed_images(self, images):
        return np.eye(len(images), self.dim, dtype=np.float32), [None] * len(images)

    def embed_texts(self, texts):
        return np.array([self.vecs.get(t, [0.0] * self.dim) for t in texts], dtype=np.float32)


def _karpathy(tmp_path, captions):
    (tmp_path / "img").mkdir(exist_ok=True)
    Image.new("RGB", (8, 8)).save(tmp_path / "img" / "x.jpg")
    ann = tmp_path / "test.json"
    ann.write_text(json.dumps([{"image": "x.jpg", "caption": captions}]))
    return ann


def _score(bench, vecs):
    images, texts = bench.inputs()
    return bench.score(embed(VecEmbedder(vecs), images, texts))


def test_official_repeats_are_ties_right_under_first_wrong_under_strict(tmp_path):
    ann = _karpathy(tmp_path, ["A dog."])
    bench = OrderBenchmark("aro_coco_order", ann, tmp_path / "img", seeds=(0, 1))
    assert bench.official_ties == bench.ties == "first" and bench.protocol == "official"
    assert [it.options for it in bench.items[0]] == [("a dog", "a dog", "dog a", "a dog", "a dog")]
    assert [it.options for it in bench.items[1]] == [("a dog", "a dog", "a dog", "dog a", "a dog")]
    vecs = {"a dog": [1.0, 0, 0, 0], "dog a": [0.5, 0, 0, 0]}  # the true caption wins, but ties with its copies
    r = _score(bench, vecs)
    assert r.metrics["precision_at_1"] == 100.0 and r.ties == 2 and r.tie_rule == "first"
    assert r.metrics["items_repeating_true_caption"] == 100.0
    assert [(row["subset"], row["item_id"], row["chosen"], row["tie"]) for row in r.rows] == [
        ("seed_0", "0", 0, True), ("seed_1", "0", 0, True)]
    assert r.rows[0]["repeated_true_caption"] == 3 and r.rows[0]["caption_id"].startswith("x.jpg#")
    bench.ties = "strict"
    r = _score(bench, vecs)
    assert r.metrics["precision_at_1"] == 0.0 and r.ties == 2 and r.rows[0]["chosen"] == -1


def test_strict_protocol_drops_impossible_perturbations_and_empty_items(tmp_path):
    # "a dog" (normalised): nouns/adjectives 1, others 1, one trigram: only the within-trigram shuffle exists
    ann = _karpathy(tmp_path, ["A dog.", "Dogs.", "A small dog chasing a big red ball in the park."])
    bench = OrderBenchmark("aro_coco_order", ann, tmp_path / "img", seeds=(0,), protocol="strict")
    items = bench.items[0]
    assert [it.item_id for it in items] == ["0", "2"]  # "Dogs." has no possible perturbation: dropped
    assert items[0].options == ("a dog", "dog a")
    assert len(items[1].options) == 5 and items[1].options[0] == "a small dog chasing a big red ball in the park"
    assert all(o != it.options[0] for it in items for o in it.options[1:])
    r = _score(bench, {"a dog": [1.0, 0, 0, 0], "dog a": [1.0, 0, 0, 0]})
    assert "7 perturbation(s)" in bench.notes[0]  # 3 of "a dog", 4 of "dogs"
    assert "1 (caption, seed) pair(s)" in bench.notes[0]
    assert r.items == 2 and r.metrics["items_repeating_true_caption"] == 0.0
    assert [row["item_id"] for row in r.rows] == ["0", "2"] and r.rows[0]["tie"]  # an accidental tie: right under first
    assert bench.cache_key() != OrderBenchmark("aro_coco_order", ann, tmp_path / "img", seeds=(0,)).cache_key()


def test_options_file_round_trip(tmp_path):
    ann = _karpathy(tmp_path, ["A dog.", "A small dog chasing a big red ball in the park."])
    bench = OrderBenchmark("aro_coco_order", ann, tmp_path / "img", seeds=(0, 3))
    path = bench.export_options(tmp_path / "frozen" / "options.jsonl")
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(r["seed"], r["item_id"]) for r in lines] == [(0, "0"), (0, "1"), (3, "0"), (3, "1")]
    assert lines[0]["image"] == "x.jpg" and lines[0]["protocol"] == "official" and len(lines[0]["options"]) == 5
    again = OrderBenchmark("aro_coco_order", None, tmp_path / "img", options_file=path)
    assert again.items == bench.items and again.seeds == (0, 3) and again.protocol == "file"
    vecs = {o: [float(len(o)), 0, 0, 0] for items in bench.items.values() for it in items for o in it.options}
    a, b = _score(bench, vecs), _score(again, vecs)
    assert a.metrics == b.metrics and [r["scores"] for r in a.rows] == [r["scores"] for r in b.rows]
    assert "options from" in b.notes[-1] and "official" in b.notes[-1]
    # a JSON list of the same records is accepted too
    (tmp_path / "options.json").write_text(json.dumps(lines))
    assert OrderBenchmark("o", None, tmp_path / "img", options_file=tmp_path / "options.json").items == bench.items


def test_hand_written_options_file_fixes_the_options(tmp_path):
    f = tmp_path / "opts.jsonl"
    f.write_text('{"item_id": 5, "image": "x.jpg", "options": ["a red car", "a car red", "red a car"]}\n\n'
                 '{"item_id": "k", "image": "x.jpg", "options": ["b", "b"]}\n')
    items, protocols = read_order_options(f)
    assert list(items) == [0] and [it.item_id for it in items[0]] == ["5", "k"] and protocols == set()
    bench = OrderBenchmark("o", None, tmp_path / "img", options_file=f)
    (tmp_path / "img").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "img" / "x.jpg")
    r = _score(bench, {"a red car": [1.0, 0, 0, 0], "red a car": [2.0, 0, 0, 0], "b": [1.0, 0, 0, 0]})
    assert r.metrics["precision_at_1"] == 50.0 and r.metrics["seed_0"] == 50.0 and r.ties == 1
    assert r.metrics["items_repeating_true_caption"] == 50.0


@pytest.mark.parametrize("content, message", [
    ('{"item_id": 1, "image": "x.jpg", "options": ["a", "b"]}\n{"item_id": 2, "image": "x.jpg"',
     r"opts\.jsonl:2: invalid JSON"),
    ('{"item_id": 1, "image": "x.jpg"}\n', r"opts\.jsonl:1: no 'options'"),
    ('[1, 2]\n', r":1: expected a JSON object, got list"),
    ('{"item_id": 1, "image": "x.jpg", "options": "a"}\n', r":1: options must be a list of at least 2 strings"),
    ('{"item_id": 1, "image": "x.jpg", "options": ["a"]}\n', r"at least 2 strings"),
    ('{"item_id": 1, "image": "x.jpg", "options": ["a", 3]}\n', r"at least 2 strings"),
    ('{"item_id": true, "image": "x.jpg", "options": ["a", "b"]}\n', r"item_id must be"),
    ('{"item_id": 1, "image": "", "options": ["a", "b"]}\n', r"image must be"),
    ('{"item_id": 1, "seed": "0", "image": "x.jpg", "options": ["a", "b"]}\n', r"seed must be an integer"),
    ('{"item_id": 1, "image": "x.jpg", "options": ["a", "b"]}\n'
     '{"item_id": "1", "image": "y.jpg", "options": ["a", "b"]}\n',
     r"opts\.jsonl:2: item '1' of seed 0 is also at .*opts\.jsonl:1"),
    ("\n", r"no option records"),
])
def test_malformed_options_files(tmp_path, content, message):
    f = tmp_path / "opts.jsonl"
    f.write_text(content)
    with pytest.raises(ManifestError, match=message):
        read_order_options(f)


def test_options_file_errors(tmp_path):
    with pytest.raises(DataError, match="not found"):
        read_order_options(tmp_path / "none.jsonl")
    (tmp_path / "o.json").write_text('{"a": 1}')
    with pytest.raises(ManifestError, match="expected a JSON list"):
        read_order_options(tmp_path / "o.json")
    (tmp_path / "o.json").write_text('[{"item_id": 1, "image": "x.jpg"}]')
    with pytest.raises(ManifestError, match=r"o\.json: record 0: no 'options'"):
        read_order_options(tmp_path / "o.json")
    with pytest.raises(DataError, match="unknown protocol 'aro'"):
        OrderBenchmark("o", _karpathy(tmp_path, ["A dog."]), tmp_path / "img", protocol="aro")
    with pytest.raises(DataError, match="needs an annotation file"):
        OrderBenchmark("o", None, tmp_path / "img")


def test_registry_protocol_options_file_and_write_options(tmp_path):
    ann = _karpathy(tmp_path, ["A dog.", "Two red cars near a tree."])
    out = tmp_path / "written.jsonl"
    (bench,) = build_benchmarks(["aro"], {"aro": {"coco_order": {"annotations": ann, "images": tmp_path / "img",
                                                                  "write_options": out},
                                                   "order_protocol": "strict", "seeds": [2]}})
    assert bench.protocol == "strict" and bench.seeds == (2,) and out.is_file()
    (fixed,) = build_benchmarks(["aro"], {"aro": {"coco_order": {"options_file": out, "images": tmp_path / "img"}}},
                                ties="strict")
    assert fixed.items == bench.items and fixed.ties == "strict" and fixed.official_ties == "first"
    with pytest.raises(ConfigError, match="--aro-order-protocol 'x': choose official or strict"):
        build_benchmarks(["aro"], {"aro": {"coco_order": {"annotations": ann, "images": "i"}, "order_protocol": "x"}})
    with pytest.raises(ConfigError, match="--aro-python-random-skip must be at least 0, not -1"):
        build_benchmarks(["aro"], {"aro": {"coco_order": {"annotations": ann, "images": "i"},
                                           "python_random_skip": -1}})
    with pytest.raises(ConfigError, match=r"needs flickr_order.images .*\(or --flickr-order-images\)"):
        build_benchmarks(["aro"], {"aro": {"flickr_order": {"options_file": out}}})


def test_python_random_skip_flag_reaches_the_benchmark_and_the_results(tmp_path, capsys):
    """``--aro-python-random-skip`` (issue 24): was only a YAML key; the result records it."""
    from genemi.evaluation import eval_autogmentation as cli

    ann = _karpathy(tmp_path, ["A dog."])
    args = cli.build_parser().parse_args(["--coco-order-annotations", str(ann), "--coco-order-images",
                                          str(tmp_path / "img"), "--aro-python-random-skip", "1"])
    data = cli.data_config(args)
    assert data["aro"]["python_random_skip"] == 1
    (bench,) = build_benchmarks(["aro"], data)
    # Random(0) skipping one word: the trigram shuffle of "A dog ." gives "a dog" again (see above)
    assert bench.items[0][0].options[3] == "a dog"
    r = _score(bench, {"a dog": [1.0, 0, 0, 0]})
    assert r.settings["python_random_skip"] == 1 and r.settings["protocol"] == "official"
    assert r.settings["seeds"] == [0, 1, 2, 3, 4]
    (default,) = build_benchmarks(["aro"], {"aro": {"coco_order": {"annotations": ann, "images": tmp_path / "img"}}})
    assert default.cache_key() != bench.cache_key()
    assert _score(default, {}).settings["python_random_skip"] == 0
