"""The ``tag2text`` tagger: self-made tiny checkpoint (fresh clone), the reference fixture (../shared), CUDA."""

import json
import shutil

import pytest
import torch
from PIL import Image

from genemi.errors import ConfigError
from genemi.generation_pipeline import pipeline
from genemi.generation_pipeline.stage import StageContext
from genemi.generation_pipeline.tagging import TagConfig
from genemi.generation_pipeline.tagging.tag2text import Tag2TextTagger
from genemi.manifest import read_records
from genemi.records import TagRecord


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from genemi.models.tiny import TINY_BUILDERS

    return TINY_BUILDERS["tag2text"](tmp_path_factory.mktemp("t2t"), 0)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("t2t_images")
    for k, colour in enumerate(["red", "blue", "green"]):
        img = Image.new("RGB", (80 + 10 * k, 64), colour)
        img.paste((250, 250, 250), (10, 10, 40, 40))
        img.save(root / f"{k}.png")
    (root / "broken.png").write_bytes(b"not a png")
    return root


def tagger(**kw):
    return Tag2TextTagger(TagConfig(backend="tag2text", **kw), StageContext())


def test_cli_runs_the_tag2text_tagger_batched(tiny, folder, tmp_path):
    out = tmp_path / "out"
    rc = pipeline.main(["--input-dir", str(folder), "--output-dir", str(out), "--device", "cpu", "--no-progress",
                        "--stages", "tag", "--tagger", "tag2text", "--tag2text-checkpoint", str(tiny["checkpoint"]),
                        "--batch-size", "tag=2"])
    assert rc == 0
    recs = {r.id: r for r in read_records(out / "tags.jsonl", TagRecord)}
    ok = [r for r in recs.values() if r.status == "ok"]
    assert len(ok) == 3 and all(r.backend == "tag2text" and r.tags and r.caption is not None for r in ok)
    assert all(len(r.tag_scores) == len(r.tags) and min(r.tag_scores) > 0.68 for r in ok)
    assert [r.status for r in recs.values()].count("failed") == 1


def test_threshold_really_applies_and_max_items(tiny, folder):
    imgs = [Image.open(p) for p in sorted(folder.glob("[0-9].png"))]
    t = tagger(tag2text_checkpoint=str(tiny["checkpoint"]), tag2text_threshold=0.0)
    t.check()
    t.load()
    low = t.tag(imgs, [[]] * 3)
    t = tagger(tag2text_checkpoint=str(tiny["checkpoint"]), tag2text_threshold=0.999, max_items=2)
    t.load()
    high = t.tag(imgs, [[]] * 3)
    assert all(len(a.items) > len(b.items) for a, b in zip(low, high))
    assert all(len(b.items) <= 2 for b in high)
    tag_list = tiny["tag_list"].read_text().splitlines()
    assert all(a.items == sorted(a.items, key=tag_list.index) for a in low)  # tag-list order


def test_original_prompt_mode_grounds_every_tag_and_generate_takes_swin_sizes(tiny, folder):
    """--gd-prompt original: the original passed every Tag2Text tag to Grounding DINO, so --max-items does not
    cut what that mode grounds (the record keeps every tag); genemi generate takes --swin-sizes as convert does."""
    from genemi.generation_pipeline.grounding import GroundConfig
    from genemi.generation_pipeline.grounding.stage import GroundStage

    imgs = [Image.open(p) for p in sorted(folder.glob("[0-9].png"))]
    t = tagger(tag2text_checkpoint=str(tiny["checkpoint"]), tag2text_threshold=0.0, max_items=2)
    t.load()
    first = t.tag(imgs, [[]] * 3)[0]
    tags, every = first.items, first.all_tags
    assert len(tags) == 2 and len(every) > 2 and set(tags) <= set(every)
    rec = TagRecord(id="0.png", image="0.png", tags=tags, tag_scores=first.scores, all_tags=every)
    stage = GroundStage.__new__(GroundStage)  # only the config matters for what it grounds
    stage.config = GroundConfig(gd_prompt="original")
    assert stage.items_of(rec) == every
    stage.config = GroundConfig()
    assert stage.items_of(rec) == tags
    sizes = '{"embed_dim": 96, "depths": [2, 2, 6, 2], "num_heads": [3, 6, 12, 24], "window_size": 7}'
    args = pipeline.build_parser().parse_args(["--gd-config", "c.py", "--gd-checkpoint", "c.pth", "--swin-sizes", sizes])
    assert pipeline.resolve_config(args).ground.swin_sizes == sizes
    with pytest.raises(ConfigError, match="--swin-sizes is not JSON"):
        GroundConfig(gd_checkpoint="c.pth", gd_config="c.py", swin_sizes="{embed_dim: 96")


def test_filter_rule_without_the_fixture():
    """Strictly greater than the class threshold; person (2701) / man (2828) / woman (1167) need > 0.70 whatever
    the base threshold; the number/misc tags are deleted (the fixture test checks real values)."""
    from genemi.generation_pipeline.tagging.tag2text import TAG2TEXT_DELETED_TAG_INDEX, filter_tags

    names = [f"t{i}" for i in range(3429)]
    probs = [0.0] * 3429
    for i, p in {10: 0.68, 11: 0.6801, 2701: 0.70, 2828: 0.7001, 1167: 0.69, 5: 0.65}.items():
        probs[i] = p
    for i in TAG2TEXT_DELETED_TAG_INDEX:
        probs[i] = 0.99
    assert filter_tags(names, probs) == ["t11", "t2828"]
    assert filter_tags(names, probs, 0.64) == ["t5", "t10", "t11", "t2828"]
    assert len(filter_tags(names, [1.0] * 3429, 0.0)) == 3429 - 7


def test_missing_files_are_config_errors(tiny, tmp_path):
    with pytest.raises(ConfigError, match="needs --tag2text-checkpoint"):
        tagger().check()
    with pytest.raises(ConfigError, match="file not found"):
        tagger(tag2text_checkpoint=str(tmp_path / "x.pth")).check()
    lone = tmp_path / "lone"
    lone.mkdir()
    shutil.copy(tiny["checkpoint"], lone / "t.pth")
    with pytest.raises(ConfigError, match="needs its tag list: give --tag2text-tag-list"):
        tagger(tag2text_checkpoint=str(lone / "t.pth")).check()
    with pytest.raises(ConfigError, match="vocab.txt"):
        tagger(tag2text_checkpoint=str(lone / "t.pth"), tag2text_tag_list=str(tiny["tag_list"])).check()
    t = tagger(tag2text_checkpoint=str(tiny["checkpoint"]), image_size=384)
    with pytest.raises(ConfigError, match="built for 64 px"):
        t.load()


def _fixture(shared_dir):
    folder = shared_dir / "fixtures" / "tag2text"
    if not folder.is_dir():
        pytest.skip("../shared/fixtures/tag2text is not present")
    return folder


def test_fixture_checkpoint_through_the_tagger(shared_dir):
    """configs/, tag list and vocab sit next to the fixture checkpoint, as the defaults expect."""
    f = _fixture(shared_dir)
    sc = json.loads((f / "outputs.json").read_text())["scenarios"]
    img = Image.open(f / "input.png")
    t = tagger(tag2text_checkpoint=str(f / "tag2text_tiny.pth"))
    t.check()
    t.load()
    res, = t.tag([img], [[]])
    assert " | ".join(res.items) == sc["default"]["tags"] and res.caption == sc["default"]["caption"]
    t = tagger(tag2text_checkpoint=str(f / "tag2text_tiny.pth"), tag2text_threshold=0.64)
    t.load()
    res, = t.tag([img, img], [[], []])[:1]
    expected = sc["ctor_threshold_0.64"]
    assert " | ".join(res.items) == expected["tags"] and res.caption == expected["caption"]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_tiny_tag2text_on_cuda_matches_the_cpu(tiny, dtype):
    """The self-made tiny checkpoint (no ../shared: the GPU machine has none), CUDA in each dtype against the
    CPU in fp32 in the same process; the fixture's values are checked on the CPU above."""
    from genemi.generation_pipeline.tagging.tag2text import TAG2TEXT_THRESHOLD

    image = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    cpu = tagger(tag2text_checkpoint=str(tiny["checkpoint"]))
    cpu.load()
    with torch.no_grad():
        ref = cpu.predictor.model.tag_logits(cpu.predictor.model.image_embeds(image)).float()
    expected = cpu.predictor.predict_tensor(image)[0]
    atol = {torch.float32: 1e-3, torch.float16: 0.05, torch.bfloat16: 0.3}[dtype]
    # every tag's logit is further from the threshold than the dtype's tolerance: equal tags are expected
    assert (ref - torch.logit(torch.tensor(TAG2TEXT_THRESHOLD))).abs().min() > atol and expected.tags
    t = Tag2TextTagger(TagConfig(backend="tag2text", tag2text_checkpoint=str(tiny["checkpoint"])),
                       StageContext(device="cuda", dtype=None if dtype == torch.float32 else dtype))
    t.load()
    model = t.predictor.model
    assert next(model.parameters()).dtype == dtype and next(model.parameters()).is_cuda
    with torch.no_grad():
        logits = model.tag_logits(model.image_embeds(image.cuda().to(dtype))).float().cpu()
    diff = (logits - ref).abs().max().item()
    print(f"{dtype} max |tag logit diff| = {diff:.2e}")
    assert diff < atol
    outs = t.predictor.predict_tensor(torch.cat([image] * 3))
    assert len({(o.tag_string, tuple(o.caption_ids)) for o in outs}) == 1  # batched rows agree
    assert outs[0].tag_string == expected.tag_string
    if dtype == torch.float32:
        assert outs[0].caption == expected.caption
    print(dtype, outs[0].tag_string, "|", outs[0].caption)
