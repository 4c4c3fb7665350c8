"""Text hard negatives: each edit type, sources, fluency guard, determinism, resume, CLI, CE-CLIP files."""

import json
import random

import numpy as np
import pytest
import torch

from genemi.caption_files import CaptionEntry, read_caption_entries
from genemi.errors import ConfigError, DataError
from genemi.records import TextNegativeRecord
from genemi.negatives import command
from genemi.negatives.edits import (
    EDIT_TYPES,
    EDITS,
    ORIGINAL_TYPES,
    EditContext,
    NotApplicable,
    resolve_types,
)
from genemi.negatives.generator import NegativeGenerator, NegativesConfig
from genemi.negatives.legacy import read_ceclip_npy
from genemi.negatives.run import generate_negatives
from genemi.negatives.sources import MaskedLMSource, VocabularySource
from genemi.manifest import read_records
from genemi.text.inflection import indefinite_article
from genemi.text.parsing import parse_captions

VOCAB = EditContext([VocabularySource()])
CAPTIONS = [
    "A man riding a brown horse on the beach next to a woman.",
    "Two dogs playing with a red frisbee in the park.",
    "A woman and a man sitting on a wooden bench.",
    "An orange cat sleeping under a small table",
    "A red car parked in front of a big building.",
]


def parse(text):
    return next(parse_captions([text]))


def edit(kind, text, seed=0, ctx=VOCAB):
    return EDITS[kind](parse(text), random.Random(seed), ctx)


def changed_words(a, b):
    wa, wb = a.split(), b.split()
    assert len(wa) == len(wb), (a, b)
    return [(x, y) for x, y in zip(wa, wb) if x != y]


@pytest.fixture(scope="module")
def lms(tmp_path_factory):
    from genemi.models.tiny import save_tiny_causal_lm, save_tiny_masked_lm

    root = tmp_path_factory.mktemp("lms")
    return {**save_tiny_masked_lm(root, seed=0), **save_tiny_causal_lm(root, seed=0)}


# --- edit types ----------------------------------------------------------------------------------------


def test_replace_obj_is_whole_token_man_inside_woman():
    for seed in range(20):
        out = edit("replace_obj", "A woman and a man.", seed)
        diff = changed_words("A woman and a man.", out)
        assert len(diff) == 1, out
        old, new = diff[0]
        assert old in ("woman", "man.") and new not in ("woman", "man", "man.") and "wo" + new != old


def test_replace_obj_keeps_plural_number():
    for seed in range(10):
        [(old, new)] = changed_words("Two dogs chasing cats", edit("replace_obj", "Two dogs chasing cats", seed))
        assert old in ("dogs", "cats")
        assert new.endswith("s") or new in ("men", "women", "children", "people", "sheep", "deer"), new


def test_replace_att_prefers_antonyms_and_keeps_category():
    assert edit("replace_att", "A wet dog on a bed") == "A dry dog on a bed"
    assert {edit("replace_att", "A big dog", s) for s in range(10)} == {"A small dog", "A little dog"}
    colours = {edit("replace_att", "A red car", s).split()[1] for s in range(10)}
    assert "red" not in colours and len(colours) > 1
    assert colours <= {"blue", "green", "yellow", "black", "white", "brown", "orange", "pink", "purple", "gray",
                       "silver", "golden", "beige"} | {"an"}


def test_replace_att_fixes_the_article():
    for seed in range(20):
        words = edit("replace_att", "A red car", seed).split()
        if words[1] == "orange":
            assert words[0] == "An"
        assert words[0].lower() == indefinite_article(words[1])


def test_replace_act_keeps_the_verb_form():
    for seed in range(10):
        [(old, new)] = changed_words("A man riding a horse", edit("replace_act", "A man riding a horse", seed))
        assert old == "riding" and new.endswith("ing") and new != "riding"
    with pytest.raises(NotApplicable, match="no verb"):
        edit("replace_act", "A red car")


def test_replace_rel_uses_opposites_and_multiword_relations():
    assert edit("replace_rel", "A cat in front of a house") == "A cat behind a house"
    assert edit("replace_rel", "A dog to the left of a car") == "A dog to the right of a car"
    assert {edit("replace_rel", "A cat on a table", s) for s in range(10)} <= {"A cat under a table", "A cat in a table"}
    with pytest.raises(NotApplicable, match="no spatial relation"):
        edit("replace_rel", "A red car")


def test_swap_obj_exchanges_noun_phrases_and_fixes_case():
    assert edit("swap_obj", "A man riding a horse") == "A horse riding a man"
    assert edit("swap_obj", "The woman sits on a bench.") == "A bench sits on the woman."
    with pytest.raises(NotApplicable, match="fewer than two"):
        edit("swap_obj", "A dog")
    with pytest.raises(NotApplicable, match="identical"):
        edit("swap_obj", "A dog and a dog")


def test_swap_att_exchanges_or_moves_adjectives():
    assert edit("swap_att", "A red car next to a blue bike") == "A blue car next to a red bike"
    assert edit("swap_att", "An orange cat on a red mat") == "A red cat on an orange mat"
    assert edit("swap_att", "A red car next to a bike") == "A car next to a red bike"
    with pytest.raises(NotApplicable):
        edit("swap_att", "A dog next to a cat")


def test_add_obj_and_add_att():
    for seed in range(10):
        out = edit("add_obj", "A man riding a horse", seed)
        assert " and a " in out or " and an " in out
        assert len(out.split()) == len("A man riding a horse".split()) + 3
        words = edit("add_att", "A car", seed).split()
        assert len(words) == 3 and words[2] == "car" and words[0].lower() == indefinite_article(words[1])
    # a phrase that already has a colour gets another kind of attribute
    for seed in range(10):
        new = [w for w in edit("add_att", "A red car", seed).split() if w not in ("A", "An", "red", "car")]
        from genemi.text.vocabulary import adjective_category

        assert adjective_category(new[0]) != "colour"


def test_add_att_goes_before_compound_modifiers():
    out = edit("add_att", "A tennis racket", 3)
    assert out.split()[2:] == ["tennis", "racket"]


@pytest.mark.parametrize("caption", CAPTIONS)
def test_every_valid_negative_differs_from_its_caption(caption):
    ctx = EditContext([VocabularySource()])
    for kind in EDIT_TYPES:
        for seed in range(3):
            try:
                out = edit(kind, caption, seed, ctx)
            except NotApplicable:
                continue
            assert " ".join(out.lower().split()) != " ".join(caption.lower().split()), kind


def test_type_sets_and_unknown_types():
    assert resolve_types("ceclip") == ORIGINAL_TYPES == ("swap_obj", "replace_att", "replace_obj", "replace_act")
    assert resolve_types("ceclip,order")[:4] == ORIGINAL_TYPES and len(resolve_types("all")) == len(EDIT_TYPES)
    with pytest.raises(ConfigError, match="unknown negative type 'replace_colour'"):
        resolve_types("replace_colour")


# --- generator -----------------------------------------------------------------------------------------


def entries(captions):
    return [CaptionEntry(f"id{i}", f"img{i}.jpg", c, i) for i, c in enumerate(captions)]


def test_generator_layout_empty_and_non_english_captions():
    gen = NegativeGenerator(NegativesConfig(sources=("vocabulary",)))
    records, stats = gen.generate(entries(["A dog", "", "Der Hund spielt im Park.", CAPTIONS[0]]))
    for rec in records:
        assert [n.type for n in rec.negatives] == list(EDIT_TYPES)  # same layout for every record
        assert all(n.valid == bool(n.text) for n in rec.negatives)
        assert all((n.reason is None) == n.valid for n in rec.negatives)
    assert {(n.valid, n.reason) for n in records[1].negatives} == {(False, "empty caption")}
    assert {n.reason for n in records[2].negatives} == {"caption does not look like English"}
    one_noun = {n.type: n for n in records[0].negatives}
    assert not one_noun["swap_obj"].valid and one_noun["add_obj"].valid and one_noun["replace_obj"].valid
    assert all(n.valid for n in records[3].negatives if n.type != "swap_att")
    assert stats.captions == 4 and stats.non_english == 1
    assert sum(stats.valid.values()) + sum(stats.invalid.values()) == 4 * len(EDIT_TYPES)


def test_generator_is_deterministic_and_independent_of_chunking_and_types():
    cfg = NegativesConfig(seed=3)
    gen = NegativeGenerator(cfg)
    whole, _ = gen.generate(entries(CAPTIONS))
    halves = gen.generate(entries(CAPTIONS)[:2])[0] + gen.generate(entries(CAPTIONS)[2:])[0]
    assert [r.model_dump() for r in whole] == [r.model_dump() for r in halves]
    again, _ = NegativeGenerator(NegativesConfig(seed=3)).generate(entries(CAPTIONS))
    assert [r.model_dump() for r in again] == [r.model_dump() for r in whole]
    other, _ = NegativeGenerator(NegativesConfig(seed=4)).generate(entries(CAPTIONS))
    assert [r.model_dump() for r in other] != [r.model_dump() for r in whole]
    # a type's negative does not depend on which other types are generated
    only_obj, _ = NegativeGenerator(NegativesConfig(seed=3, types=("replace_obj",))).generate(entries(CAPTIONS))
    assert [r.negatives[0] for r in only_obj] == [r.negatives[2] for r in whole]


# --- masked LM source and fluency guard -----------------------------------------------------------------


def test_masked_lm_source_fills_whole_words(lms):
    source = MaskedLMSource(lms["masked_lm"], top_k=5)
    p = parse("A man riding a horse")
    from genemi.negatives.sources import Slot

    cands = source.candidates(p, Slot("obj", 4, 5, "horse", "NN"))
    assert 0 < len(cands) <= 5 and all(c.isalpha() for c in cands)
    vocab = {t.lstrip("Ġ") for t in source.tokenizer.get_vocab()}
    assert set(cands) <= vocab
    ctx = EditContext([source], pick="original")
    out = EDITS["replace_obj"](p, random.Random(0), ctx)
    [(old, new)] = changed_words("A man riding a horse", out)
    assert new in [c for c in source.candidates(p, Slot("obj", 1, 2, "man", "NN"))] + cands


def test_mlm_generation_batches_through_prepare(lms):
    def run(batch_size):
        cfg = NegativesConfig(types=("ceclip",), sources=("mlm", "vocabulary"), mlm_model=str(lms["masked_lm"]),
                              pick="first", model_batch_size=batch_size)
        gen = NegativeGenerator(cfg)
        rows_per_forward = []
        gen.sources[0].model.register_forward_pre_hook(
            lambda module, args, kwargs: rows_per_forward.append(kwargs["input_ids"].shape[0]), with_kwargs=True)
        records, _ = gen.generate(entries(CAPTIONS))
        return rows_per_forward, records

    batched, records = run(4)
    filled = sum(batched)  # every masked caption goes through the model exactly once
    assert filled > 8
    # all slots of all captions are filled up front, in full batches of 4 (only the last may be smaller)
    assert batched == [4] * (filled // 4) + ([filled % 4] if filled % 4 else [])
    one_by_one, single = run(1)
    assert one_by_one == [1] * filled
    # padding in a batch does not change any fill: same negatives as one caption at a time
    assert [r.model_dump() for r in records] == [r.model_dump() for r in single]
    assert all(len(r.negatives) == 4 for r in records)


def test_causal_fluency_matches_a_manual_computation(lms):
    from genemi.negatives.fluency import CausalLMFluency

    scorer = CausalLMFluency(lms["causal_lm"], batch_size=2)
    texts = ["a dog on the table", "table the on dog a dog", "a red car"]
    got = scorer.score(texts)
    for text, score in zip(texts, got):
        ids = [scorer.tokenizer.bos_token_id] + scorer.tokenizer(text, add_special_tokens=False)["input_ids"]
        x = torch.tensor([ids])
        with torch.no_grad():
            logp = scorer.model(input_ids=x).logits.log_softmax(-1)[0]
        manual = sum(logp[t, ids[t + 1]].item() for t in range(len(ids) - 1)) / (len(ids) - 1)
        assert score == pytest.approx(manual, abs=1e-5)


def test_masked_pseudo_likelihood_matches_a_manual_computation(lms):
    from genemi.negatives.fluency import MaskedLMFluency

    scorer = MaskedLMFluency(lms["masked_lm"], batch_size=3)
    text = "a dog on the table"
    ids = scorer.tokenizer(text)["input_ids"]
    total = 0.0
    for pos in range(1, len(ids) - 1):
        masked = list(ids)
        masked[pos] = scorer.tokenizer.mask_token_id
        with torch.no_grad():
            logp = scorer.model(input_ids=torch.tensor([masked])).logits.log_softmax(-1)[0]
        total += logp[pos, ids[pos]].item()
    assert scorer.score([text, "a cat"])[0] == pytest.approx(total / (len(ids) - 2), abs=1e-5)


@pytest.mark.parametrize("margin,dropped", [(1e9, False), (-1e9, True)])
def test_fluency_guard_drops_by_margin_and_spares_shuffles(lms, margin, dropped):
    cfg = NegativesConfig(sources=("vocabulary",), fluency_model=str(lms["causal_lm"]), fluency_margin=margin)
    assert cfg.fluency_on
    records, stats = NegativeGenerator(cfg).generate(entries(CAPTIONS[:2]))
    for rec in records:
        for neg in rec.negatives:
            if neg.type.startswith("shuffle_"):
                assert neg.valid
            elif neg.text:
                assert neg.valid is not dropped
                if dropped:
                    assert neg.reason.startswith("less fluent than the caption")
    assert (sum(stats.fluency_dropped.values()) > 0) is dropped


def test_fluency_guard_is_exactly_the_margin_rule(lms):
    from genemi.negatives.fluency import load_fluency_scorer

    base = NegativeGenerator(NegativesConfig(sources=("vocabulary",), types=("sugarcrepe",)))
    plain, _ = base.generate(entries(CAPTIONS))
    scorer = load_fluency_scorer(lms["masked_lm"])
    cfg = NegativesConfig(sources=("vocabulary",), types=("sugarcrepe",), fluency_model=str(lms["masked_lm"]),
                          fluency_margin=0.05)
    guarded, stats = NegativeGenerator(cfg).generate(entries(CAPTIONS))
    for a, b in zip(plain, guarded):
        cap = scorer.score([a.caption])[0]
        for na, nb in zip(a.negatives, b.negatives):
            if na.valid:
                assert nb.valid == (scorer.score([na.text])[0] >= cap - 0.05)
    assert sum(stats.fluency_dropped.values()) == sum(
        na.valid and not nb.valid for a, b in zip(plain, guarded) for na, nb in zip(a.negatives, b.negatives))


def test_fluency_needs_a_model_and_hub_ids_fail_fast():
    with pytest.raises(ConfigError, match="fluency-model"):
        NegativesConfig(fluency=True)
    from genemi.errors import CheckpointError

    with pytest.raises(CheckpointError, match="not a local folder.*hub id"):
        NegativeGenerator(NegativesConfig(sources=("mlm",), mlm_model="distilbert/distilroberta-base"))


# --- files: resume, workers, CLI, CE-CLIP npy, training ------------------------------------------------


def _lines(path):
    return path.read_text().splitlines()


def test_resume_after_a_crash_equals_an_uninterrupted_run(tmp_path):
    cfg = NegativesConfig(sources=("vocabulary",))
    items = entries(CAPTIONS * 2 + ["A dog on a bed", "A bird on a branch"])
    full = tmp_path / "full.jsonl"
    generate_negatives(items, full, cfg, chunk_size=3, progress=False)
    part = tmp_path / "part.jsonl"
    generate_negatives(items, part, cfg, limit=5, chunk_size=3, progress=False)
    with open(part, "a") as fh:  # a crash mid-write leaves half a line
        fh.write(_lines(full)[5][:40])
    summary = generate_negatives(items, part, cfg, chunk_size=3, progress=False)
    assert summary.already_done == 5 and summary.written == len(items) - 5
    assert part.read_bytes() == full.read_bytes()
    again = generate_negatives(items, part, cfg, progress=False)  # nothing left: no duplicates
    assert again.written == 0 and part.read_bytes() == full.read_bytes()
    meta = json.loads((tmp_path / "part.jsonl.summary.json").read_text())
    assert meta["already_done"] == len(items)


def test_two_worker_processes_write_the_same_file(tmp_path):
    cfg = NegativesConfig(sources=("vocabulary", "wordnet"), types=("ceclip",))
    items = entries(CAPTIONS * 2)
    one, two = tmp_path / "one.jsonl", tmp_path / "two.jsonl"
    generate_negatives(items, one, cfg, chunk_size=3, progress=False)
    summary = generate_negatives(items, two, cfg, workers=2, chunk_size=3, progress=False)
    assert summary.workers == 2
    assert one.read_bytes() == two.read_bytes()


def test_cli_writes_records_the_trainer_reads(tmp_path, capsys):
    src = tmp_path / "captions.json"
    src.write_text(json.dumps([{"image": f"{i}.jpg", "caption": c} for i, c in enumerate(CAPTIONS)]))
    out = tmp_path / "neg.jsonl"
    assert command.main(["--input", str(src), "--output", str(out), "--types", "ceclip,replace_rel",
                         "--sources", "vocabulary", "--no-progress", "--seed", "1"]) == 0
    printed = capsys.readouterr().out
    assert "wrote 5 records" in printed and "replace_rel" in printed
    records = read_records(out, TextNegativeRecord)
    assert [n.type for n in records[0].negatives] == [*ORIGINAL_TYPES, "replace_rel"]
    assert command.main(["--input", str(tmp_path / "nope.json"), "--output", str(out)]) == 2
    assert "caption file not found" in capsys.readouterr().err


def test_a_folder_given_as_the_caption_file_is_named_a_folder(tmp_path, capsys):
    """Not "caption file not found": the path exists, it is a folder. One line, exit 2, from both commands."""
    from genemi.generation_pipeline import pipeline

    folder = tmp_path / "annotations"
    folder.mkdir()
    with pytest.raises(DataError, match="annotations is a folder, not a caption file"):
        read_caption_entries(folder)
    from genemi.caption_files import read_json

    with pytest.raises(DataError, match="annotations is a folder, not a file"):  # what benchmarks read as JSON
        read_json(folder)
    assert command.main(["--input", str(folder), "--output", str(tmp_path / "neg.jsonl")]) == 2
    err = capsys.readouterr().err
    assert "is a folder, not a caption file" in err and "not found" not in err and "Traceback" not in err
    (tmp_path / "images").mkdir()
    assert pipeline.main(["--input-dir", str(tmp_path / "images"), "--annotation-file", str(folder), "--output-dir",
                          str(tmp_path / "out"), "--stages", "tag", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [f"genemi generate: error: {folder} is a folder, not a caption file: give the "
                                        "annotation file itself (JSON: Karpathy or COCO, JSONL, CSV or TSV)"]
    assert not (tmp_path / "neg.jsonl").exists() and not (tmp_path / "out" / "tags.jsonl").exists()


def test_cli_preset(tmp_path, capsys):
    from pathlib import Path

    preset = Path(__file__).resolve().parents[2] / "configs" / "negatives" / "sugarcrepe.yaml"
    src = tmp_path / "c.jsonl"
    src.write_text("".join(json.dumps({"image": "a.jpg", "caption": c}) + "\n" for c in CAPTIONS))
    out = tmp_path / "o.jsonl"
    assert command.main(["--input", str(src), "--output", str(out), "--config", str(preset), "--no-progress"]) == 0
    types = [n.type for n in read_records(out, TextNegativeRecord)[0].negatives]
    assert types == ["replace_obj", "replace_att", "replace_rel", "swap_obj", "swap_att", "add_obj", "add_att"]


def _ceclip_npy(path):
    records = [
        {"image_id": 476220, "id": 314, "caption": "An empty kitchen with white and black appliances.",
         "relation_aug_caption": "###", "adj_aug_caption": "An interior kitchen with white and black appliances.",
         "noun_aug_caption": "An empty room with white and black appliances.", "verb_aug_caption": "###",
         "valid_caption": [1, 0, 1, 1, 0]},
        {"image_id": 9, "id": 15, "caption": "A dog and a dog.", "relation_aug_caption": "A dog and a dog.",
         "adj_aug_caption": "A big dog and a dog.", "noun_aug_caption": "A cat and a dog.",
         "verb_aug_caption": "A dog sits and a dog.", "valid_caption": [1, 1, 1, 1, 1]},
    ]  # fmt: skip
    np.save(path, np.array(records, dtype=object), allow_pickle=True)


def test_ceclip_npy_needs_trust_and_converts(tmp_path, capsys):
    npy = tmp_path / "processed_dataset0.npy"
    _ceclip_npy(npy)
    with pytest.raises(DataError, match="pickles"):
        read_ceclip_npy([npy])
    recs = read_ceclip_npy([tmp_path], trust_pickle=True)
    assert recs[0].image == "train2014/COCO_train2014_000000476220.jpg" and recs[0].id.endswith("#ann314")
    assert [n.valid for n in recs[0].negatives] == [False, True, True, False]
    assert [n.type for n in recs[0].negatives] == list(ORIGINAL_TYPES)
    assert recs[1].negatives[0].valid is False and "identical" in recs[1].negatives[0].reason
    out = tmp_path / "conv.jsonl"
    assert command.main(["--from-ceclip-npy", str(npy), "--output", str(out)]) == 2
    assert "--trust-pickle" in capsys.readouterr().err
    assert command.main(["--from-ceclip-npy", str(npy), "--output", str(out), "--trust-pickle"]) == 0
    assert command.main(["--from-ceclip-npy", str(npy), "--output", str(out), "--trust-pickle"]) == 0
    assert len(read_records(out, TextNegativeRecord)) == 2  # rerun adds no duplicates


def test_written_negatives_reach_the_ceclip_loss(tmp_path, shapes, tiny_clip, loss_calls):
    """The file's hard negatives are what the CE-CLIP loss contrasts: each step gets (batch, K, D) negative features
    with K = the file's negatives per caption, and the same run with every negative replaced by its own caption
    gives another loss at the first step."""
    from genemi.training import train
    from genemi.training.loop import fit

    out = tmp_path / "negatives.jsonl"
    generate_negatives(read_caption_entries(shapes.coco_json), out, NegativesConfig(types=("ceclip",)), progress=False)
    records = [json.loads(line) for line in out.read_text().splitlines()]
    per_caption = {len(r["negatives"]) for r in records}
    assert per_caption == {4}  # --types ceclip: CE-CLIP's four edit types, one negative each

    def run(dataset, folder):
        del loss_calls[:]
        cfg = train.resolve_config(train.build_parser().parse_args([
            "--clip-model", str(tiny_clip["config"]), "--pretrained", str(tiny_clip["openai_state_dict"]),
            "--dataset-type", "text_negatives", "--dataset", str(dataset), "--image-root", str(shapes.images),
            "--loss", "ceclip", "--output-dir", str(tmp_path / folder), "--workers", "0", "--no-progress",
            "--device", "cpu", "--batch-size", "8", "--epoch", "1", "--lr", "1e-4", "--max-steps", "2",
        ]))  # fmt: skip
        result = fit(cfg, progress=False)
        return result, list(loss_calls)

    result, calls = run(out, "run")
    assert result.steps == 2 and len(calls) == 2
    for call in calls:
        assert call["rows"] == 8 and call["neg"].shape[:2] == (8, 4) and call["neg_valid"].shape == (8, 4)
        assert call["neg_valid"].any()
    own = tmp_path / "own_caption.jsonl"  # the same records, each negative's text its own caption
    own.write_text("".join(json.dumps({**r, "negatives": [{**n, "text": r["caption"]} for n in r["negatives"]]})
                           + "\n" for r in records))
    _, same = run(own, "run_own")
    assert same[0]["loss"] != pytest.approx(calls[0]["loss"], rel=1e-6)
    assert torch.allclose(same[0]["texts"], calls[0]["texts"])  # same step, same captions: only negatives differ


def test_a_resumed_run_with_nothing_left_reports_no_nan(capsys):
    import json
    from dataclasses import asdict

    from genemi.negatives.command import _print_summary
    from genemi.negatives.run import NegativesSummary

    done = NegativesSummary(output="n.jsonl", captions_in_input=5, already_done=5, written=0, seconds=0.0, workers=1)
    assert done.captions_per_second is None
    json.dumps({**asdict(done), "captions_per_second": done.captions_per_second}, allow_nan=False)  # valid JSON
    _print_summary(done, ("ceclip",))
    out = capsys.readouterr().out
    assert "nan" not in out and "(nothing to do, 1 worker(s)); 5 already done" in out
    busy = NegativesSummary(output="n.jsonl", captions_in_input=5, already_done=0, written=5, seconds=2.0, workers=1)
    _print_summary(busy, ("ceclip",))
    assert "(2 captions/s, 1 worker(s))" in capsys.readouterr().out


@pytest.mark.parametrize("caption, expected", [
    ("A dog is running on the beach.", {"Two dogs are running on the beach.", "Three dogs are running on the beach."}),
    ("A man rides a horse", {"Two men ride a horse", "Three men ride a horse", "A man rides two horses",
                             "A man rides three horses"}),
    ("two cats sleep on a sofa", {f"{n} cats sleep on a sofa" for n in ("three", "four", "five", "six")}
     | {"two cats sleep on two sofas", "two cats sleep on three sofas"}),
])
def test_change_count_changes_the_number_and_keeps_agreement(caption, expected):
    import random

    from genemi.negatives.edits import EditContext, change_count
    from genemi.text.parsing import parse_captions

    parsed = next(parse_captions([caption]))
    seen = {change_count(parsed, random.Random(seed), EditContext([])) for seed in range(40)}
    assert seen and seen <= expected, seen - expected


def test_change_count_needs_a_counted_object():
    import random

    from genemi.negatives.edits import EditContext, NotApplicable, change_count
    from genemi.text.parsing import parse_captions

    with pytest.raises(NotApplicable, match="no counted object"):
        change_count(next(parse_captions(["some water in the sun"])), random.Random(0), EditContext([]))


def test_swap_att_exchanges_adjectives_of_one_kind():
    import random

    from genemi.negatives.edits import EditContext, swap_att
    from genemi.text.parsing import parse_captions

    parsed = next(parse_captions(["a big red car next to a small blue bike"]))
    seen = {swap_att(parsed, random.Random(seed), EditContext([])) for seed in range(30)}
    # never "a blue red car" / "a big small bike": size goes with size, colour with colour
    assert seen == {"a big blue car next to a small red bike", "a small red car next to a big blue bike"}
