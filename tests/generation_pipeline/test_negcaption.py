"""Stage ``negcaption``: negative captions that change one thing, refused when they could still be true, written
per image with seeds from their ids; rules and chat-model backends; bad input in one line."""

from __future__ import annotations

import json
import shutil

import pytest

from genemi.generation_pipeline import pipeline
from genemi.generation_pipeline.negcaption.answers import parse_answer, rejection
from genemi.generation_pipeline.negcaption.base import NEGATIVE_KINDS, RewriteRequest
from genemi.generation_pipeline.negcaption.config import NegCaptionConfig
from genemi.generation_pipeline.negcaption.llm import OpenAINegCaptioner
from genemi.generation_pipeline.negcaption.rules import RulesNegCaptioner
from genemi.generation_pipeline.seeds import derive_seed
from genemi.generation_pipeline.chat import ChatConfig
from genemi.generation_pipeline.stage import StageContext
from genemi.manifest import read_records
from genemi.records import NegativePlan

CAPTIONS = {
    "a.png": ["A dog is chasing a red ball on the grass.", "Two cats sleep on a wooden bench."],
    "b.png": ["A man in a blue shirt rides a horse next to a white fence."],
    "c.png": ["some water"],  # nothing to edit
}


# --- what a usable negative is ------------------------------------------------------------------------


@pytest.mark.parametrize("rewrite, refused", [
    ("A dog is chasing a red ball on the grass.", "identical"),
    ("a dog is chasing a red ball on the grass", "identical"),  # case and final punctuation do not count
    ("The dog is chasing the red ball on grass.", "paraphrase"),  # only function words changed
    ("A dog chasing a red ball on the grass", "paraphrase"),
    ("", "empty"),
    ("A dog is chasing a red ball on the grass " + "and a cat " * 8, "much longer"),
    ("A red ball is chasing a dog on the grass.", None),  # swap: the same words, another order
    ("A dog is chasing a red ball under the grass.", None),  # a relation word changed
    ("Two dogs are chasing a red ball on the grass.", None),  # a count changed
    ("A dog is not chasing a red ball on the grass.", None),  # a negation is content
    ("A dog is chasing a blue ball on the grass.", None),
])
def test_rejection(rewrite, refused):
    why = rejection(CAPTIONS["a.png"][0], rewrite)
    assert (why is None) if refused is None else (why is not None and refused in why)


def test_answers_are_read_from_json_fences_lists_and_numbered_lines():
    kinds_and_texts = [("swap_att", "a red cat on a black sofa"), ("replace_rel", "a black cat under a red sofa")]
    obj = {"negatives": [{"kind": k, "caption": t} for k, t in kinds_and_texts]}
    assert parse_answer(json.dumps(obj)) == kinds_and_texts
    assert parse_answer("Sure! Here you go:\n```json\n" + json.dumps(obj) + "\n```\nHope it helps.") == kinds_and_texts
    assert parse_answer(json.dumps(obj["negatives"])) == kinds_and_texts
    assert parse_answer("1. [swap attributes] a red cat on a black sofa\n2) (relation) a black cat under a red sofa") \
        == kinds_and_texts
    assert parse_answer("2. count: three cats on a sofa") == [("change_count", "three cats on a sofa")]
    assert parse_answer('{"negatives": [{"kind": "weird", "caption": "x y"}]}') == [("other", "x y")]
    assert parse_answer("I cannot help with that.") == []


# --- backends -----------------------------------------------------------------------------------------


def _requests(k=2, kinds=tuple(NEGATIVE_KINDS)):
    return [RewriteRequest(key=f"{img}/cap_{n}", caption=c, k=k, kinds=kinds, seed=derive_seed(0, f"{img}/cap_{n}"))
            for img, caps in CAPTIONS.items() for n, c in enumerate(caps)]


def test_rules_change_one_thing_with_the_allowed_kinds_and_say_why_not():
    backend = RulesNegCaptioner(NegCaptionConfig(), StageContext())
    backend.check()
    reqs = _requests(k=2)
    answers = backend.rewrite(reqs)
    assert [len(a) for a in answers] == [2] * len(reqs)
    for req, rewrites in zip(reqs[:3], answers[:3]):
        assert all(rw.caption and rejection(req.caption, rw.caption) is None for rw in rewrites)
        assert len({rw.caption for rw in rewrites}) == 2 and all(rw.kind in NEGATIVE_KINDS for rw in rewrites)
    [water] = [a for r, a in zip(reqs, answers) if r.caption == "some water"]
    assert all(rw.caption is None and rw.error.type == "not_applicable" and "swap_obj" in rw.error.message
               for rw in water)
    assert backend.rewrite(reqs) == answers  # deterministic: from the request seeds only
    counted = {f"{n} cats sleep on a wooden bench." for n in ("Three", "Four", "Five", "Six")} | {
        f"Two cats sleep on {n} wooden benches." for n in ("two", "three")}
    for seed in range(6):
        only = backend.rewrite([RewriteRequest("x", CAPTIONS["a.png"][1], 1, ("change_count",), seed)])[0][0]
        assert only.kind == "change_count" and only.caption in counted


class ScriptedChat:
    """A chat client answering from a list per call; records what it was asked."""

    def __init__(self, *answers):
        self.answers, self.calls = list(answers), []

    def complete(self, conversations, seeds, json_answer=False):
        self.calls.append((conversations, seeds))
        script = self.answers.pop(0)
        return [script(c) if callable(script) else script for c in conversations]

    def check(self): ...

    def load(self): ...

    def offload(self): ...


def _chat_backend(chat):
    backend = OpenAINegCaptioner(NegCaptionConfig(backend="openai", num_negatives=2),
                                 StageContext(llm=ChatConfig(api_base="http://x/v1", api_model="served-model")))
    backend.chat = chat
    return backend


def test_chat_answers_are_checked_asked_again_once_and_kept_raw_when_unusable():
    req = RewriteRequest("a.png/cap_0", CAPTIONS["a.png"][0], 2, tuple(NEGATIVE_KINDS), 11)
    first = json.dumps({"negatives": [{"kind": "swap_obj", "caption": "A red ball is chasing a dog on the grass."},
                                      {"kind": "other", "caption": "The dog is chasing the red ball on grass."}]})
    second = json.dumps({"negatives": [{"kind": "replace_att", "caption": "A dog is chasing a blue ball on the grass."}]})
    chat = ScriptedChat(first, second)
    backend = _chat_backend(chat)
    [rewrites] = backend.rewrite([req])
    assert [(r.kind, r.caption) for r in rewrites] == [("swap_obj", "A red ball is chasing a dog on the grass."),
                                                       ("replace_att", "A dog is chasing a blue ball on the grass.")]
    assert len(chat.calls) == 2 and chat.calls[1][1] == [derive_seed(11, "retry")]  # the paraphrase was refused
    system = chat.calls[0][0][0][0]["content"]
    assert "2 different rewrites" in system and NEGATIVE_KINDS["change_count"] in system
    assert backend.model == "served-model"
    garbage = ScriptedChat("As an AI model I cannot do that.", "Still no.")
    [failed] = _chat_backend(garbage).rewrite([req])
    assert [r.error.type for r in failed] == ["unparseable_answer"] * 2 and failed[0].raw == "Still no."
    down = ScriptedChat(lambda c: ConnectionError("server gone"))
    [gone] = _chat_backend(down).rewrite([req])
    assert gone[0].error.type == "ConnectionError" and len(down.calls) == 1


def test_the_tiny_chat_lm_answers_garbage_and_every_negative_fails_with_its_raw_text(tmp_path):
    from genemi.generation_pipeline.negcaption.llm import HFNegCaptioner
    from genemi.models.tiny import save_tiny_chat_lm

    lm = save_tiny_chat_lm(tmp_path, seed=0)["chat_lm"]
    backend = HFNegCaptioner(NegCaptionConfig(backend="hf"), StageContext(llm=ChatConfig(llm_model=str(lm),
                                                                                         max_new_tokens=8)))
    backend.check()
    backend.load()
    [rewrites] = backend.rewrite(_requests(k=1)[:1])
    assert rewrites[0].caption is None and rewrites[0].raw is not None and backend.model == lm.name


# --- the stage --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    from PIL import Image

    root = tmp_path_factory.mktemp("negcaption_images")
    for name in CAPTIONS:
        Image.new("RGB", (32, 24), (120, 30, 200)).save(root / name)
    Image.new("RGB", (32, 24)).save(root / "uncaptioned.png")
    (root / "captions.json").write_text(json.dumps([{"image": k, "caption": v} for k, v in CAPTIONS.items()]))
    return root


def run(images, out, *extra) -> int:
    return pipeline.main(["--annotation-file", str(images / "captions.json"), "--root-dir", str(images),
                          "--output-dir", str(out), "--stages", "tag,negcaption", "--no-progress", *extra])


def test_stage_writes_one_record_per_image_with_ids_and_seeds(images, tmp_path):
    out = tmp_path / "run"
    assert run(images, out, "--num-negatives", "2", "--seed", "3") == 0
    plans = {p.id: p for p in read_records(out / "negcaptions.jsonl", NegativePlan)}
    assert sorted(plans) == sorted(CAPTIONS)
    a = plans["a.png"]
    assert [n.id for n in a.negatives] == ["a.png/cap_0/neg_0", "a.png/cap_0/neg_1", "a.png/cap_1/neg_0",
                                           "a.png/cap_1/neg_1"]
    assert all(n.seed == derive_seed(3, n.id) and n.model == "rules" and n.status == "ok" for n in a.negatives)
    assert [n.source for n in a.negatives] == [CAPTIONS["a.png"][0]] * 2 + [CAPTIONS["a.png"][1]] * 2
    # "some water" has no item for the captions tagger (tag failed: no_items) and no edit applies here either
    c = plans["c.png"]
    assert c.status == "failed" and c.error.type == "no_negatives" and c.negatives[0].error.type == "not_applicable"
    settings = json.loads((out / "negcaptions.jsonl.settings.json").read_text())["settings"]
    assert settings["num_negatives"] == 2 and settings["backend"] == "rules"
    again = tmp_path / "again"
    assert run(images, again, "--num-negatives", "2", "--seed", "3") == 0
    assert (again / "negcaptions.jsonl").read_bytes() == (out / "negcaptions.jsonl").read_bytes()


def test_an_image_without_captions_is_a_failed_record_and_a_missing_input_is_named(images, tmp_path, capsys):
    from genemi.records import TagRecord

    out = tmp_path / "folder"
    assert pipeline.main(["--input-dir", str(images), "--output-dir", str(out), "--stages", "negcaption",
                          "--no-progress"]) == 2
    assert "needs" in capsys.readouterr().err and not (out / "negcaptions.jsonl").exists()
    (out / "tags.jsonl").write_text(TagRecord(id="uncaptioned.png", image="uncaptioned.png", tags=["thing"],
                                              backend="blip").model_dump_json() + "\n")
    folder = tmp_path / "one"
    folder.mkdir()
    shutil.copy(images / "uncaptioned.png", folder)
    assert pipeline.main(["--input-dir", str(folder), "--output-dir", str(out), "--stages", "negcaption",
                          "--no-progress"]) == 1  # every image failed: exit 1 with the reason
    [plan] = read_records(out / "negcaptions.jsonl", NegativePlan)
    assert plan.status == "failed" and plan.error.type == "no_caption" and "--annotation-file" in plan.error.message


def test_resume_after_a_kill_is_exact(images, tmp_path, monkeypatch):
    from genemi.generation_pipeline.negcaption.stage import NegCaptionStage

    full, part = tmp_path / "full", tmp_path / "part"
    assert run(images, full, "--batch-size", "negcaption=1") == 0
    real, calls = NegCaptionStage.process, {"n": 0}

    def killed(self, items):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(self, items)

    monkeypatch.setattr(NegCaptionStage, "process", killed)
    assert run(images, part, "--batch-size", "negcaption=1") == 130
    assert len((part / "negcaptions.jsonl").read_text().splitlines()) == 1
    monkeypatch.setattr(NegCaptionStage, "process", real)
    assert run(images, part, "--batch-size", "negcaption=1") == 0
    assert (part / "negcaptions.jsonl").read_bytes() == (full / "negcaptions.jsonl").read_bytes()


@pytest.mark.parametrize("flags, message", [
    (["--num-negatives", "0"], "--num-negatives must be at least 1, not 0"),
    (["--num-negatives", "-2"], "--num-negatives must be at least 1, not -2"),
    (["--captions-per-image", "0"], "--captions-per-image must be at least 1"),
    (["--kinds", "swap_obj,teleport"], "--kinds 'swap_obj,teleport': choose from swap_obj"),
    (["--negcaptioner", "openai"], "--negcaptioner openai needs --api-base and --api-model"),
    (["--negcaptioner", "hf"], "--negcaptioner hf needs --llm-model"),
    (["--api-base", "http://localhost:1/v1"], "--api-base applies only to --negcaptioner openai, not --negcaptioner rules"),
])
def test_bad_input_is_one_line_before_any_work(images, tmp_path, capsys, flags, message):
    assert run(images, tmp_path / "bad", *flags) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert not list((tmp_path / "bad").glob("*.jsonl"))
