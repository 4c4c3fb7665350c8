"""``--sources corpus``: replacements drawn from the captions file's own vocabulary, so negatives stay in its
domain (no word the corpus never writes), category kept where genemi's vocabulary knows it."""

import json
import re

from genemi.errors import ConfigError
from genemi.negatives import command
from genemi.negatives.sources import CorpusSource, CorpusVocabulary, build_sources

import pytest

CAPTIONS = ["a large red circle left of a small blue square", "a small green star above a large red triangle",
            "the yellow square is right of the blue star", "a striped white hexagon on a grey background",
            "there is a small purple cross below a large red circle"]


def _words(text):
    return set(re.findall(r"[a-z]+", text.lower()))


def test_corpus_negatives_use_only_the_corpus_words(tmp_path):
    src = tmp_path / "captions.json"
    src.write_text(json.dumps([{"image": f"{i}.png", "caption": c, "image_id": str(i)} for i, c in enumerate(CAPTIONS)]))
    out = tmp_path / "neg.jsonl"
    assert command.main(["--input", str(src), "--output", str(out), "--types", "replace_obj,replace_att,replace_rel",
                         "--sources", "corpus", "--no-progress"]) == 0
    words = set().union(*map(_words, CAPTIONS)) | {"an"}  # the article follows the new word
    valid = [n for line in out.read_text().splitlines() for n in json.loads(line)["negatives"] if n["valid"]]
    assert len(valid) >= 12
    for neg in valid:
        assert _words(neg["text"]) <= words, neg
    # the same captions through genemi's curated vocabulary bring words the corpus never uses
    out2 = tmp_path / "neg_vocab.jsonl"
    command.main(["--input", str(src), "--output", str(out2), "--types", "replace_obj,replace_att,replace_rel",
                  "--sources", "vocabulary", "--no-progress"])
    texts = [n["text"] for line in out2.read_text().splitlines() for n in json.loads(line)["negatives"] if n["valid"]]
    assert any(_words(t) - words for t in texts)


def test_corpus_source_keeps_the_category():
    from genemi.text.parsing import parse_captions

    source = CorpusSource(CorpusVocabulary.from_captions(CAPTIONS))
    assert {"circle", "square", "star", "triangle", "cross"} <= set(source.corpus.nouns)
    assert "background" not in source.corpus.nouns  # not an object
    parsed = next(parse_captions(["a large red circle left of a small blue square"]))
    from genemi.negatives.edits import replacement_slots

    slots = {(s.kind, s.word): s for s in replacement_slots(parsed, ("replace_att", "replace_obj", "replace_rel"))}
    colours = source.candidates(parsed, slots["att", "red"])
    assert colours and set(colours) <= {"blue", "green", "yellow", "white", "purple", "grey"}
    assert source.candidates(parsed, slots["att", "large"]) == ["small"]
    shapes = source.candidates(parsed, slots["obj", "circle"])
    assert shapes and set(shapes) <= {"square", "star", "triangle", "hexagon", "cross"}
    assert source.candidates(parsed, slots["rel", "left of"])[0] == "right of"


def test_the_corpus_source_needs_its_file():
    with pytest.raises(ConfigError, match="corpus"):
        build_sources(["corpus"])
