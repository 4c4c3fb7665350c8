"""Tie rules, per-item tables, suites and the model comparison: hand-made scores with hand-derived expectations,
then the CLI end to end with the tiny CLIP."""

import csv
import json

import numpy as np
import pytest

from genemi.errors import ConfigError
from genemi.evaluation import eval_autogmentation as cli
from genemi.evaluation.benchmarks.base import ItemLog, picks, tied, tied_any
from genemi.evaluation.benchmarks.genemi_testset import row_metrics, row_ties
from genemi.evaluation.benchmarks.retention import ranks
from genemi.evaluation.comparison import compare, item_flips
from genemi.evaluation.item_scores import read_item_scores, write_item_scores
from genemi.evaluation.suites import SUITES, column_value, suite_table


def test_tie_rules_by_hand():
    # right option first, tied with the second: argmax-first picks it, strict does not
    assert picks([0.5, 0.5], 0, "first") and not picks([0.5, 0.5], 0, "strict")
    # right option second (ARO VG order [false, true]): a tie is wrong under both rules
    assert not picks([0.5, 0.5], 1, "first") and not picks([0.5, 0.5], 1, "strict")
    assert picks([0.2, 0.7, 0.1], 1, "strict") and picks([0.2, 0.7, 0.1], 1, "first")
    assert tied([0.3, 0.3, 0.1], 0) and not tied([0.3, 0.2, 0.1], 0) and tied([0.1, 0.3, 0.3], 2)
    assert tied_any([0.3, 0.5, 0.3], 0) and not tied([0.3, 0.5, 0.3], 0) and not tied_any([0.3, 0.2, 0.1], 0)
    with pytest.raises(ValueError, match="tie rule"):
        picks([1, 2], 0, "loose")


def test_item_log_rows_and_tie_count():
    log = ItemLog("first")
    assert log.choose("a", [0.4, 0.4], 0, subset="s") is True
    assert log.choose("b", [0.1, 0.9], 0, subset="s") is False
    # the right option equals a wrong one, but another wrong one is better: a tie, not the decisive one
    assert log.choose("c", [0.4, 0.9, 0.4], 0, subset="s") is False
    assert log.ties == 1 and log.ties_any == 2
    assert log.rows[0] == {"subset": "s", "item_id": "a", "scores": [0.4, 0.4], "right": 0, "chosen": 0,
                           "correct": True, "tie": True, "tie_any": True}
    assert log.rows[1]["chosen"] == 1 and log.rows[1]["tie"] is False and log.rows[1]["tie_any"] is False
    assert log.rows[2]["tie"] is False and log.rows[2]["tie_any"] is True
    strict = ItemLog("strict")
    assert strict.choose(7, [0.4, 0.4]) is False and strict.rows[0]["chosen"] == -1 and strict.rows[0]["item_id"] == "7"


def test_genemi_testset_rows_under_both_rules():
    # s[image, caption]; image 0 ties between captions 0 and 1; everything else clear
    s = np.array([[0.5, 0.5], [0.1, 0.9]])
    assert row_metrics(s, "strict") == ([False, True], [True, True], [False, True])
    assert row_metrics(s, "first") == ([True, True], [True, True], [True, True])
    assert row_ties(s) == (True, True) and row_ties(np.eye(2)) == (False, False)
    # caption 2 equals caption 0 on image 0 but caption 1 is better there: a tie with a wrong option, not the best
    s3 = np.array([[0.5, 0.7, 0.5], [0.1, 0.9, 0.0], [0.0, 0.0, 0.9]])
    assert row_ties(s3) == (False, True)


def test_retrieval_ranks_count_ties_below_and_flag_them():
    scores = np.array([[0.9, 0.9, 0.1], [0.2, 0.3, 0.8], [0.5, 0.9, 0.5]])
    r, t, t_any = ranks(scores, [{0}, {0, 2}, {0}])
    assert r.tolist() == [1, 0, 2] and t.tolist() == [True, False, False] and t_any.tolist() == [True, False, True]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_item_tables_round_trip(tmp_path, fmt):
    rows = [{"subset": "swap_obj", "item_id": "12", "scores": [0.25, 0.5], "right": 0, "chosen": 1,
             "correct": False, "tie": False},
            {"subset": "swap_obj", "item_id": "13", "scores": [0.5, 0.25], "right": 0, "chosen": 0,
             "correct": True, "tie": False, "text": [True, False]}]
    path = write_item_scores(tmp_path, "sugarcrepe", rows, "strict", fmt)
    assert path.name == f"sugarcrepe.{fmt}"
    back = read_item_scores(path)
    assert [r["item_id"] for r in back] == ["12", "13"]
    assert back[0]["score_0"] == 0.25 and back[0]["score_1"] == 0.5 and back[1]["correct"] is True
    assert back[0]["tie_rule"] == "strict" and json.loads(back[1]["text"]) == [True, False]
    if fmt == "csv":
        head = path.read_text().splitlines()[0].split(",")
        assert head[:4] == ["subset", "item_id", "score_0", "score_1"]


def _result(label, **metrics):
    benches = {}
    for key, value in metrics.items():
        bench, metric = key.split("__")
        benches.setdefault(bench, {"headline": [], "metrics": {}})
        benches[bench]["headline"].append(metric)
        benches[bench]["metrics"][metric] = value
    return {"label": label, "benchmarks": benches}


def test_paper_suite_columns_average_all_parts_or_stay_empty():
    full = _result("m", sugarcrepe__mean=80.0, aro_vg_relation__macro_accuracy=60.0,
                   aro_vg_attribution__macro_accuracy=64.0, aro_coco_order__precision_at_1=40.0,
                   aro_flickr_order__precision_at_1=44.0, valse__avg=70.0, winoground__group=9.0, zeroshot__top1=61.0)
    partial = _result("p", sugarcrepe__mean=70.0, aro_vg_relation__macro_accuracy=60.0)
    paper = SUITES["paper"]
    assert column_value(full, paper.columns[1]) == pytest.approx((60 + 64 + 40 + 44) / 4)
    assert column_value(partial, paper.columns[1]) is None  # ARO needs all four sets
    table = suite_table(paper, [full, partial]).splitlines()
    assert table[0] == ("| model | SugarCrepe (mean of 7) | ARO (mean of 4) | VALSE (mean) | Winoground group | "
                        "ImageNet ZS top-1 |")
    assert table[2] == "| m | 80.0 | 52.0 | 70.0 | 9.0 | 61.0 |"
    assert table[3] == "| p | 70.0 | – | – | – | – |"


def test_comparison_deltas_and_flips():
    a = _result("base", sugarcrepe__mean=70.0, winoground__group=8.0)
    b = _result("tuned", sugarcrepe__mean=75.5, winoground__group=6.0)
    rows_a = [{"subset": "swap_obj", "item_id": str(i), "correct": c} for i, c in enumerate([True, False, False, True])]
    rows_b = [{"subset": "swap_obj", "item_id": str(i), "correct": c} for i, c in enumerate([True, True, True, False])]
    flips = item_flips("sugarcrepe", rows_a, rows_b)
    assert flips.shared == 4 and flips.gained == [("swap_obj", "1"), ("swap_obj", "2")]
    assert flips.lost == [("swap_obj", "3")]
    text, flip_rows = compare([a, b], {"base": {"sugarcrepe": rows_a}, "tuned": {"sugarcrepe": rows_b}})
    assert "| sugarcrepe | mean | 70.0 | 75.5 (+5.5) |" in text
    assert "| winoground | group | 8.0 | 6.0 (-2.0) |" in text
    assert "| tuned | sugarcrepe | correct | 4 | 2 | 1 | swap_obj/1, swap_obj/2 | swap_obj/3 |" in text
    assert [(r["item_id"], r["change"]) for r in flip_rows] == [("1", "wrong->right"), ("2", "wrong->right"),
                                                                ("3", "right->wrong")]
    with pytest.raises(ConfigError, match="reference"):
        compare([a, b], {}, reference="nope")
    with pytest.raises(ConfigError, match="two"):
        compare([a], {})


def _gnm_rows(tmp_path):
    from tests.evaluation.test_eval_cli import _image

    rows = []
    for r in range(3):
        for k in (0, 1):
            _image(tmp_path / "imgs" / f"r{r}_{k}.png", 10 * r + k)
        rows.append({"num_sample": 2, "image_0": f"r{r}_0.png", "image_1": f"r{r}_1.png",
                     "caption_0": f"a red cube {r}", "caption_1": f"a blue ball {r}"})
    (tmp_path / "gnm.json").write_text(json.dumps(rows))
    return ["--evaluation-filepath", str(tmp_path / "gnm.json"), "--evaluation-image-folder", str(tmp_path / "imgs")]


def test_cli_item_scores_ties_suite_comparison_and_compare_tool(tmp_path, tiny_clip, capsys):
    out = tmp_path / "out"
    args = ["--model-name", "run", "--clip-model", f"local-dir:{tiny_clip['open_clip_dir']}",
            "--baseline", "folder=", "--baseline", f"oc={tiny_clip['open_clip_state_dict']}",
            *_gnm_rows(tmp_path), "--output", str(out), "--device", "cpu", "--workers", "0", "--no-progress",
            "--save-item-scores", "--suite", "full"]
    assert cli.main(args) == 0
    run = out / "run"
    folder = json.loads((run / "folder.json").read_text())
    # NAME= with a local-dir model evaluates (and records) the folder's own weights
    assert folder["weights"] == "model folder" and folder["checkpoint"].startswith(str(tiny_clip["open_clip_dir"]))
    bench = folder["benchmarks"]["genemi_testset"]
    assert bench["tie_rule"] == "strict" and bench["ties"] == 0 and bench["images_per_s"] > 0
    with open(run / "folder" / "items" / "genemi_testset.csv", newline="") as fh:
        items = list(csv.DictReader(fh))
    assert [r["item_id"] for r in items] == ["0", "1", "2"]
    assert {f"score_{i}" for i in range(4)} <= set(items[0])  # the 2x2 similarity matrix
    # the per-item decisions agree with the stored metric
    group_all = 100 * sum(json.loads(r["group"]) == [True, True] for r in items) / 3
    assert bench["metrics"]["group_all"] == pytest.approx(group_all)
    assert all(json.loads(r["correct"].lower()) == all(json.loads(r["group"])) for r in items)
    suite = (run / "suite_full.md").read_text().splitlines()
    assert suite[0] == ("| model | genemi_testset text_1 | genemi_testset image_1 | genemi_testset group_1 | "
                        "genemi_testset text_all | genemi_testset image_all | genemi_testset group_all |")
    comparison = (run / "comparison.md").read_text()
    # the folder's weights and the state dict are the same model: no deltas, no flips
    assert comparison.startswith("# Comparison against `folder`")
    group_1 = bench["metrics"]["group_1"]
    assert f"| genemi_testset | group_1 | {group_1:.1f} | {group_1:.1f} (+0.0) |" in comparison
    assert "| oc | genemi_testset | correct | 3 | 0 | 0 | – | – |" in comparison
    # rerun: already done; --ties strict is the same rule here, so still done; no tables -> redone
    assert cli.main(args) == 0
    assert capsys.readouterr().out.count("already evaluated") == 2
    (run / "oc" / "items" / "genemi_testset.csv").unlink()
    assert cli.main(args) == 0
    assert capsys.readouterr().out.count("already evaluated") == 1
    # the compare tool over the finished folder
    assert cli.main(["compare", str(run), "--reference", "oc"]) == 0
    assert (run / "comparison.md").read_text().startswith("# Comparison against `oc`")
    assert cli.main(["compare", str(run), "--models", "folder,ghost"]) == 2
    assert "no result JSON for ghost" in capsys.readouterr().err
    assert cli.main(["compare", str(tmp_path / "nowhere")]) == 2
    assert "results folder not found" in capsys.readouterr().err
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "run_summary.json").write_text("[1, 2]")
    assert cli.main(["compare", str(tmp_path / "other")]) == 2
    assert "no genemi eval results (per-model JSON files) in" in capsys.readouterr().err
    assert cli.main(args + ["--reference", "ghost"]) == 2
    err = capsys.readouterr().err
    assert "--reference 'ghost' is not among the models" in err


def test_shared_data_flags_fill_only_benchmarks_given_otherwise(tmp_path):
    parse = cli.build_parser().parse_args
    data = cli.data_config(parse(["--sugarcrepe-root", "sc", "--coco-val2017", "val2017"]))
    assert data == {"sugarcrepe": {"root": "sc", "images": "val2017"}}  # SugarCrepe++ / What'sUp not configured
    data = cli.data_config(parse(["--sugarcrepe-pp-root", "pp", "--whatsup-root", "wu", "--coco-val2017", "v"]))
    assert data["sugarcrepe_pp"] == {"root": "pp", "images": "v"} and data["whatsup"]["coco_images"] == "v"
    data = cli.data_config(parse(["--whatsup-root", "wu", "--whatsup-coco-images", "mine", "--coco-val2017", "v"]))
    assert data["whatsup"]["coco_images"] == "mine"  # the specific flag wins
    data = cli.data_config(parse(["--crepe-prod-root", "p", "--crepe-syst-root", "s", "--crepe-images", "vg",
                                  "--crepe-pretraining", "cc12m,laion"]))
    assert data["crepe_productivity"]["images"] == data["crepe_systematicity"]["images"] == "vg"
    with pytest.raises(ConfigError, match="--crepe-images is given but none of"):
        cli.data_config(parse(["--crepe-images", "vg"]))


def test_aro_order_flags_reach_the_data_config(capsys):
    parse = cli.build_parser().parse_args
    data = cli.data_config(parse(["--coco-order-annotations", "k.json", "--coco-order-images", "coco",
                                  "--coco-order-write-options", "opts.jsonl", "--aro-order-protocol", "strict",
                                  "--order-seeds", "3,4"]))
    assert data["aro"] == {"coco_order": {"annotations": "k.json", "images": "coco", "write_options": "opts.jsonl"},
                           "order_protocol": "strict", "seeds": [3, 4]}
    data = cli.data_config(parse(["--flickr-order-options", "f.jsonl", "--flickr-order-images", "f"]))
    assert data["aro"]["flickr_order"] == {"options_file": "f.jsonl", "images": "f"}
    with pytest.raises(SystemExit):
        parse(["--order-seeds", "1,x"])
    assert "expected comma-separated integers" in capsys.readouterr().err
