"""``genemi generate gallery``: page structure, escaping, paging, where it writes, and (with chromium) what a
browser actually shows: the thumbnails in a screenshot and the score filter applied by the page's JS."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from genemi.errors import ConfigError
from genemi.generation_pipeline import gallery
from genemi.manifest import encode_line, iter_json_lines
from genemi.score_filters import DEFAULT_MIN_IVA
from tests.generation_pipeline.scored_run import COLOURS, write_large_run, write_scored_run

CHROMIUM = shutil.which("chromium")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (.ci/run installs it)")


class Cards(HTMLParser):
    """Variation cards (``div.var``) with their attributes, text and visible badges; every link's href."""

    def __init__(self, text: str):
        super().__init__()
        self.cards: list[dict] = []
        self.links: list[str] = []
        self._depth = 0
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "a" and "href" in a:
            self.links.append(a["href"])
        if tag != "div" and not self._depth:
            return
        if self._depth:
            self._depth += tag == "div"
            if tag == "span" and "badge" in (a.get("class") or "").split() and "hidden" not in a:
                self.cards[-1]["badges"].append(None)
        elif "var" in (a.get("class") or "").split():
            self.cards.append({"attrs": a, "classes": set(a["class"].split()), "text": "", "badges": []})
            self._depth = 1

    def handle_endtag(self, tag):
        if self._depth and tag == "div":
            self._depth -= 1

    def handle_data(self, data):
        if self._depth:
            card = self.cards[-1]
            card["text"] += data
            if card["badges"] and card["badges"][-1] is None:
                card["badges"][-1] = data

    @property
    def by_id(self) -> dict[str, dict]:
        return {c["attrs"].get("data-id"): c for c in self.cards}


@pytest.fixture
def run(tmp_path):
    return write_scored_run(tmp_path)


def build(run, **kw):
    return gallery.build_gallery(run.output_dir, run.input_dir, **kw)


def _files(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}


def test_pages_thumbnails_and_every_card(run):
    s = build(run)
    g = run.output_dir / "gallery"
    assert s.index == g / "index.html" and s.pages == 1 and s.items == 4 and s.failed_images == 1
    assert (s.variations, s.painted, s.failed_variations) == (16, 15, 1)
    assert s.passing == sum(itm >= 0 and iva >= DEFAULT_MIN_IVA for itm, iva in run.scores.values()) == 10
    for name in ("gallery.css", "gallery.js", "data/search-0001.js", "data/scores-0001.js", "thumbs.json",
                 "contact_sheet.png"):
        assert (g / name).is_file(), name
    with Image.open(g / "contact_sheet.png") as sheet:
        assert sheet.format == "PNG" and sheet.width >= 5 * gallery.CONTACT_CELL
    thumbs = sorted(p.name for p in (g / "thumbs").iterdir())
    assert len(thumbs) == 4 + 15 and all(n.endswith(".jpg") for n in thumbs)
    page = (g / "index.html").read_text()
    assert "export filters: mean ITM logit &gt; <b>0</b> · IVA (image) &gt; <b>2.25%</b>" in page
    assert 'id="min-itm" step="0.1" value="0.0"' in page and 'id="min-iva" step="1" value="2.25"' in page
    cards = Cards(page).by_id
    assert set(run.scores) | {run.failed_variation} == set(cards)
    for vid, (itm, iva) in run.scores.items():
        card = cards[vid]
        assert card["attrs"]["data-itm"] == repr(itm) and card["attrs"]["data-iva"] == repr(iva)
        assert Path(g / card_img(page, vid)).is_file()
        expected = [f"filtered ({k})" for k, bad in (("ITM", itm < 0), ("IVA", iva < DEFAULT_MIN_IVA)) if bad]
        assert card["badges"] == expected, vid
        assert ("filtered" in card["classes"]) == bool(expected)
    failed = cards[run.failed_variation]
    assert "failed" in failed["classes"]
    assert "inpaint / NonFiniteOutput" in failed["text"] and "the model returned NaN pixels" in failed["text"]
    assert "img_2.png" in page and "ground / no_boxes: no item grounded to a box" in page
    # the mean raw logit and the per-caption probabilities of a known card
    assert "ITM 1.50 · p 0.82" in cards["img_0.png/item_00/var_0"]["text"]
    assert "ITM 1.00" in cards["img_0.png/item_00/var_0"]["text"]


def card_img(page: str, vid: str) -> str:
    start = page.index(f'data-id="{vid}"')
    src = page.index('src="', start) + 5
    return page[src: page.index('"', src)]


def _edit_scores(run, edit) -> None:
    """Rewrite scores.jsonl after ``edit(records)`` (records as JSON objects)."""
    path = run.output_dir / "scores.jsonl"
    records = [obj for _, obj in iter_json_lines(path)]
    edit(records)
    path.write_text("".join(encode_line(r) + "\n" for r in records))


def _variation(records, vid: str) -> dict:
    return next(v for r in records for it in r.get("items", []) for v in it["variations"] if v["id"] == vid)


def test_data_text_is_html_escaped(run):
    def edit(records):
        var = records[0]["items"][0]["variations"][0]
        var["captions"][0] = '<script>alert("x")</script>'
        var["short"] = "<b>bold</b> & co"
        records[0]["caption"] = "<img src=x onerror=alert(1)>"

    _edit_scores(run, edit)
    build(run)
    page = (run.output_dir / "gallery" / "index.html").read_text()
    assert "<script>alert" not in page and "<b>bold</b>" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page  # markupsafe writes " as &#34;
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; co" in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert page.count("<script") == 1  # gallery.js


def test_paging_links_and_stale_pages(run):
    s = build(run, items_per_page=1)
    g = run.output_dir / "gallery"
    names = ["index.html", "page-0002.html", "page-0003.html", "page-0004.html"]
    assert s.pages == 4 and sorted(p.name for p in g.glob("*.html")) == sorted(names)
    for k, name in enumerate(names):
        page = (g / name).read_text()
        assert len(Cards(page).cards) == 4  # one item of 4 variations per page
        links = {text: href for href, text in re.findall(r'<a href="([^"]+)" data-page="[^"]+">([^<]+)</a>', page)}
        assert links.get("← prev") == (names[k - 1] if k > 0 else None)
        assert links.get("next →") == (names[k + 1] if k < 3 else None)
        assert {links[str(n + 1)] for n in range(4) if n != k} == set(names) - {name}
        assert f"page {k + 1} of 4" in page
    build(run, items_per_page=3)
    assert sorted(p.name for p in g.glob("*.html")) == ["index.html", "page-0002.html"]
    assert len(list((g / "thumbs").iterdir())) == 19


def test_writes_only_in_the_gallery_dir_and_reads_the_input_dir_from_the_run_summary(run, tmp_path, capsys):
    (run.output_dir / "run_summary.json").write_text(json.dumps({"config": {"input_dir": str(run.input_dir)}}))
    before = _files(tmp_path)
    out = tmp_path / "elsewhere" / "g"
    assert gallery.main(["--output-dir", str(run.output_dir), "--gallery-dir", str(out), "--items-per-page", "3",
                         "--thumb-size", "64"]) == 0
    printed = capsys.readouterr().out
    assert str(out / "index.html") in printed and "4 items on 2 page(s)" in printed
    after = _files(tmp_path)
    assert {k: v for k, v in after.items() if not k.startswith("elsewhere/g/")} == before
    assert all(max(Image.open(p).size) == 64 for p in (out / "thumbs").iterdir())


def test_errors_are_reported_not_raised(run, capsys):
    assert gallery.main(["--output-dir", str(run.output_dir)]) == 2
    assert "give --input-dir" in capsys.readouterr().err
    assert gallery.main(["--output-dir", str(run.output_dir), "--input-dir", str(run.input_dir),
                         "--items-per-page", "0"]) == 2
    assert "--items-per-page" in capsys.readouterr().err
    assert gallery.main(["--output-dir", str(run.output_dir), "--input-dir", str(run.input_dir),
                         "--threads", "0"]) == 2
    assert "--threads must be at least 1" in capsys.readouterr().err
    assert not (run.output_dir / "gallery").exists()


def test_threads_do_not_change_the_gallery(run, tmp_path):
    def files(folder: Path) -> dict[str, bytes]:
        return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()
                and p.name != "thumbs.json"}  # modification times

    one, three = tmp_path / "one", tmp_path / "three"
    (run.input_dir / "img_1.png").write_bytes(b"not an image")  # unreadable: reported once, in order
    a = gallery.build_gallery(run.output_dir, run.input_dir, one, items_per_page=3, threads=1)
    b = gallery.build_gallery(run.output_dir, run.input_dir, three, items_per_page=3, threads=3)
    assert files(one) == files(three) and len(files(one)) == 2 + 2 + 2 + 1 + 15 + 2
    assert a.unreadable == b.unreadable and a.unreadable[0].startswith("img_1.png: ") and len(a.unreadable) == 1


def test_unscored_run_and_missing_images_show_placeholders(run):
    (run.output_dir / "scores.jsonl").unlink()
    next((run.output_dir / "variations").rglob("var_0-*.png")).unlink()
    s = build(run)
    assert not s.scored and s.passing == 0 and len(s.unreadable) == 1
    page = (run.output_dir / "gallery" / "index.html").read_text()
    cards = Cards(page).cards
    assert len(cards) == 16 and not any(c["badges"] for c in cards)
    assert sum("not scored" in c["text"] for c in cards) == 15
    assert "run not scored: filters inactive" in page and 'id="min-itm" step="0.1" value="0.0" disabled' in page
    assert "variation image unreadable" in page


def _thumbs(g: Path) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in (g / "thumbs").iterdir()}


def test_the_first_page_lists_the_first_failed_images_and_counts_the_rest(run, monkeypatch):
    from genemi.generation_pipeline.gallery import rendering

    def edit(records):
        failed = next(r for r in records if r["status"] == "failed")
        records += [failed | {"id": f"img_{k}.png", "image": f"img_{k}.png"} for k in (3, 4, 5)]

    _edit_scores(run, edit)
    monkeypatch.setattr(rendering, "FAILED_IMAGES_LISTED", 2)
    assert build(run, items_per_page=2).failed_images == 4
    first, second = ((run.output_dir / "gallery" / n).read_text() for n in ("index.html", "page-0002.html"))
    listed = re.search(r'<details class="failed-images">.*?</details>', first).group(0)
    assert "4 image(s) failed before painting (the first 2 listed)" in listed and listed.count("<li>") == 2
    assert "<b>img_2.png</b>: ground / no_boxes: no item grounded to a box" in listed
    assert "failed-images" not in second


def test_thumbnails_are_drawn_once_and_reused_until_their_image_or_settings_change(run):
    g = run.output_dir / "gallery"
    first = build(run)
    assert (first.thumbnails, first.thumbnails_reused) == (19, 0)
    drawn, sheet = _thumbs(g), (g / "contact_sheet.png").stat().st_mtime_ns
    page = (g / "index.html").read_bytes()

    again = build(run)
    assert (again.thumbnails, again.thumbnails_reused) == (19, 19)
    assert _thumbs(g) == drawn  # not written again: same bytes, same modification times
    assert (g / "contact_sheet.png").stat().st_mtime_ns == sheet and (g / "index.html").read_bytes() == page

    # a variation image repainted: its thumbnail alone is drawn again (and the contact sheet, which shows it)
    vid = "img_0.png/item_01/var_2"
    painted = next((run.output_dir / "variations" / "img_0.png" / "item_01").glob("var_2-*.png"))
    Image.new("RGB", (96, 80), (250, 0, 250)).save(painted)
    name = gallery.thumb_name(vid)
    s = build(run)
    assert s.thumbnails_reused == 18
    now = _thumbs(g)
    assert now[name][0] != drawn[name][0] and {k: v for k, v in now.items() if k != name} == {
        k: v for k, v in drawn.items() if k != name}
    assert (g / "contact_sheet.png").stat().st_mtime_ns != sheet
    with Image.open(g / "thumbs" / name) as im:
        assert im.getpixel((im.width // 2, 10))[1] < 60  # magenta: the new image

    # a thumbnail changed on disk is drawn again, byte for byte as before
    other = gallery.thumb_name("img_1.png/item_01/var_0")
    (g / "thumbs" / other).write_bytes(b"not a jpeg")
    assert build(run).thumbnails_reused == 18
    assert (g / "thumbs" / other).read_bytes() == drawn[other][0]

    # an unreadable record is no record: everything is drawn again, the same bytes
    (g / "thumbs.json").write_text("{not json")
    assert build(run).thumbnails_reused == 0
    assert {k: v[0] for k, v in _thumbs(g).items()} == {k: v[0] for k, v in now.items()}

    # another thumbnail size: everything is drawn again; the record lists exactly the thumbnails in use
    s = build(run, thumb_size=64)
    assert s.thumbnails_reused == 0 and all(max(Image.open(p).size) == 64 for p in (g / "thumbs").iterdir())
    record = json.loads((g / "thumbs.json").read_text())
    assert set(record["thumbs"]) == {p.name for p in (g / "thumbs").iterdir()} and set(record["files"]) == {
        "contact_sheet.png"}


def test_thumbnails_of_a_variation_no_longer_in_the_run_are_removed(run):
    g = run.output_dir / "gallery"
    build(run)
    gone = "img_0.png/item_00/var_3"
    _edit_scores(run, lambda recs: recs[0]["items"][0]["variations"].pop())
    s = build(run)
    assert s.thumbnails == 18 and s.thumbnails_reused == 18
    assert not (g / "thumbs" / gallery.thumb_name(gone)).exists()
    assert gallery.thumb_name(gone) not in json.loads((g / "thumbs.json").read_text())["thumbs"]


def test_manifest_names_come_from_the_registry(run, monkeypatch):
    from genemi.generation_pipeline.gallery import loading

    names = {"score": "scored-renamed.jsonl", "inpaint": "painted-renamed.jsonl", "segment": "masks-renamed.jsonl"}
    monkeypatch.setattr(loading, "stage_spec", lambda name: SimpleNamespace(writes=names[name]))
    for old, new in (("scores.jsonl", "score"), ("variations.jsonl", "inpaint"), ("masks.jsonl", "segment")):
        (run.output_dir / old).rename(run.output_dir / names[new])
    s = build(run)
    assert s.scored and s.passing == 10
    assert "box score 0.90 · mask 0.95" in (run.output_dir / "gallery" / "index.html").read_text()
    for name in names.values():
        (run.output_dir / name).unlink()
    with pytest.raises(ConfigError, match="neither scored-renamed.jsonl nor painted-renamed.jsonl"):
        build(run)


def test_non_finite_scores_fail_every_threshold(run):
    def edit(records):
        _variation(records, "img_0.png/item_00/var_0")["itm_score"] = [float("inf"), 1.0]
        _variation(records, "img_0.png/item_00/var_1")["itm_score"] = [float("nan"), 1.0]
        _variation(records, "img_0.png/item_00/var_2")["iva_image"] = float("inf")

    _edit_scores(run, edit)
    s = build(run, min_itm=-1e9, min_iva=-1e9)
    assert s.passing == 15 - 3  # of the 15 painted, all but the three non-finite ones
    g = run.output_dir / "gallery"
    cards = Cards((g / "index.html").read_text()).by_id
    assert cards["img_0.png/item_00/var_0"]["badges"] == ["filtered (ITM)"]
    assert cards["img_0.png/item_00/var_0"]["attrs"]["data-itm"] == "Infinity"
    assert cards["img_0.png/item_00/var_1"]["attrs"]["data-itm"] == "NaN"
    assert cards["img_0.png/item_00/var_2"]["badges"] == ["filtered (IVA)"]
    assert "[Infinity,40.0]" in (g / "data" / "scores-0001.js").read_text()  # JS literals the page fails


def _shard_rows(g: Path, kind: str) -> list:
    rows = []
    for k, path in enumerate(sorted((g / "data").glob(f"{kind}-*.js")), 1):
        text = path.read_text()
        head = f'galleryShard("{kind}",{k},'
        assert text.startswith(head) and text.endswith(");\n"), path.name
        rows += json.loads(text[len(head):-3])
    return rows


def test_search_index_and_scores_are_sharded_on_demand_data(run, monkeypatch):
    from genemi.generation_pipeline.gallery import shards

    g = run.output_dir / "gallery"
    g.mkdir()
    (g / "run-scores.js").write_text("window.GALLERY_SCORES=[];")  # what an earlier version wrote
    monkeypatch.setattr(shards, "SHARD_BYTES", 400)
    build(run, items_per_page=3)
    search = sorted(p.name for p in (g / "data").glob("search-*.js"))
    assert len(search) == 4 and not (g / "run-scores.js").exists()
    rows = _shard_rows(g, "search")
    assert [(r[0], r[1], r[2], r[3]) for r in rows] == [
        (1, "img_0.png/item_00", "img_0.png", "cat"), (1, "img_0.png/item_01", "img_0.png", "dog"),
        (1, "img_1.png/item_00", "img_1.png", "cat"), (2, "img_1.png/item_01", "img_1.png", "dog")]
    assert rows[0][4] == "a cat and a dog number 0"
    # a variation id under its item's id is stored relative to it
    assert rows[0][5][0] == ["/var_0", "red cube", "a red cube and a dog", "a red cube next to something"]
    assert sorted(map(tuple, _shard_rows(g, "scores"))) == sorted(run.scores.values())
    body = re.search(r"<body [^>]*>", (g / "index.html").read_text()).group(0)
    scores = len(list((g / "data").glob("scores-*")))
    assert 'data-search-shards="4"' in body and f'data-score-shards="{scores}"' in body
    assert 'data-run-pass="10" data-run-scored="15"' in body

    monkeypatch.setattr(shards, "SHARD_BYTES", 1 << 20)
    build(run)
    assert sorted(p.name for p in (g / "data").iterdir()) == ["scores-0001.js", "search-0001.js"]


def test_pager_links_reach_any_page():
    from genemi.generation_pipeline.gallery.rendering import pager_links, pager_pages

    assert pager_pages(1, 1) == [1]
    assert pager_pages(57, 200) == [1, 47, 55, 56, 57, 58, 59, 67, 157, 200]
    assert pager_pages(3, 2000) == [1, 2, 3, 4, 5, 13, 103, 1003, 2000]
    links = pager_links(57, 200)
    assert links[0] == ("link", "page-0056.html", "← prev") and links[-1] == ("link", "page-0058.html", "next →")
    assert ("cur", "", "57") in links and ("link", "page-0157.html", "157") in links
    assert ("link", "index.html", "1") in links
    assert [t for k, _, t in links if k == "off"] == ["…"] * 5  # gaps after 1, 47, 59, 67 and 157


def test_a_large_run_keeps_pages_small_and_loads_no_run_wide_file_on_every_page(tmp_path):
    inp, out = write_large_run(tmp_path, 120)
    s = gallery.build_gallery(out, inp, items_per_page=50, thumb_size=32, contact_sheet_rows=0)
    g = out / "gallery"
    assert s.pages == 3 and s.items == 120 and not (g / "contact_sheet.png").exists()
    for name in ("index.html", "page-0002.html"):
        page = (g / name).read_text()
        assert len(page.encode()) <= 300_000, name  # 50 items
        loaded = re.findall(r'<(?:script|link)[^>]* (?:src|href)="([^"]+)"', page)
        assert loaded == ["gallery.css", "gallery.js"], loaded
        assert len(Cards(page).cards) == 50 * 4
    assert all((g / f).stat().st_size <= 100_000 for f in ("gallery.css", "gallery.js"))
    assert '<a href="page-0003.html" data-page="page-0003.html">3</a>' in (g / "index.html").read_text()


# --- a real browser -------------------------------------------------------------------------------------


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / "chromium-profile"
    return subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           "--no-first-run", "--disable-extensions", "--disable-dev-shm-usage", f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=90, check=True)


def _colour_pixels(png: Path, tolerance: int = 28) -> list[int]:
    px = np.asarray(Image.open(png).convert("RGB")).astype(int)
    return [int((np.abs(px - np.array(c)) <= tolerance).all(-1).sum()) for c in COLOURS]


@needs_chromium
def test_browser_renders_the_thumbnails_and_fails_without_them(run, tmp_path):
    build(run)
    g = run.output_dir / "gallery"
    broken = tmp_path / "broken"
    shutil.copytree(g, broken)
    shutil.rmtree(broken / "thumbs")
    counts = {}
    for name, folder in (("ok", g), ("broken", broken)):
        shot = tmp_path / f"{name}.png"
        _chromium(tmp_path, f"--screenshot={shot}", "--window-size=1280,1600", (folder / "index.html").as_uri())
        assert shot.is_file()
        counts[name] = _colour_pixels(shot)
    # each colour is a 1/3 x 2/5 block of 3-4 visible variation thumbnails (~230 px wide each at this width)
    assert all(n > 6000 for n in counts["ok"]), counts
    assert all(n < 300 for n in counts["broken"]), counts


@needs_chromium
def test_browser_applies_the_score_filter_from_the_url(run, tmp_path):
    build(run, items_per_page=2)  # page 1: img_0's two items, 8 painted variations
    index = (run.output_dir / "gallery" / "index.html").as_uri()
    on_page = {vid: s for vid, s in run.scores.items() if vid.startswith("img_0.png/")}

    dom = Cards(_chromium(tmp_path, "--dump-dom", index + "?min_itm=0.9").stdout)
    assert len(dom.cards) == 8 and not any("hidden" in c["attrs"] for c in dom.cards)
    for vid, card in dom.by_id.items():
        itm, iva = on_page[vid]
        assert ("filtered" in card["classes"]) == (itm <= 0.9 or iva <= DEFAULT_MIN_IVA), vid
        assert card["badges"] == (["filtered (ITM)"] if itm <= 0.9 else []), vid
    # hide=1 hides what does not pass; the count covers the page and the whole run; links keep the filter
    query = "?min_itm=0.9&min_iva=0&hide=1"
    text = _chromium(tmp_path, "--dump-dom", index + query).stdout
    dom = Cards(text)
    hidden = {vid for vid, c in dom.by_id.items() if "hidden" in c["attrs"]}
    assert hidden == {vid for vid, (itm, _) in on_page.items() if itm <= 0.9}
    run_pass = sum(itm > 0.9 for itm, _ in run.scores.values())
    assert f"this page: 2 of 8 scored variations pass; 2 cards shown · run: {run_pass} of 15 pass" in text
    assert f"page-0002.html{query}" in dom.links


@needs_chromium
def test_browser_leaves_an_unscored_run_unfiltered(run, tmp_path):
    (run.output_dir / "scores.jsonl").unlink()
    build(run)
    index = (run.output_dir / "gallery" / "index.html").as_uri()
    text = _chromium(tmp_path, "--dump-dom", index + "?min_itm=5&hide=1").stdout
    dom = Cards(text)
    assert len(dom.cards) == 16 and not any("hidden" in c["attrs"] or c["badges"] for c in dom.cards)
    assert "run not scored: filters inactive" in text


def _dom(tmp_path: Path, url: str) -> str:
    """The DOM once the page's scripts, the data files they load and any jump they make are done."""
    return _chromium(tmp_path, "--virtual-time-budget=5000", "--dump-dom", url).stdout


def _data_loaded(dom: str) -> list[str]:
    return re.findall(r'<script src="(data/[^"]+)"', dom)


def _hits(dom: str) -> list[tuple[str, str]]:
    """``(href, text)`` of each search result."""
    found = re.findall(r'<a class="hit" href="([^"]+)">([^<]+)</a>', dom)
    return [(html.unescape(href), html.unescape(text)) for href, text in found]


@needs_chromium
def test_browser_search_finds_items_on_other_pages_and_links_them(run, tmp_path):
    teapot = "img_1.png/item_01/var_3"
    _edit_scores(run, lambda recs: _variation(recs, teapot)["captions"].__setitem__(
        1, "a zebra-striped teapot <img src=x onerror=alert(1)>"))
    build(run, items_per_page=1)  # 4 pages of one item
    g = run.output_dir / "gallery"
    index = (g / "index.html").as_uri()
    assert _data_loaded(_dom(tmp_path, index)) == []  # a page loads nothing run-wide until asked

    dom = _dom(tmp_path, index + "?q=Zebra%20TEAPOT")
    assert _data_loaded(dom) == ["data/search-0001.js"]
    assert "1 match for “Zebra TEAPOT”" in dom
    query = "?min_itm=0.0&min_iva=2.25"
    assert _hits(dom) == [(f"page-0004.html{query}#{teapot}", teapot)]
    assert '<img src="x"' not in dom and "teapot &lt;img src=x onerror=alert(1)&gt;" in dom  # shown as text
    target = _dom(tmp_path, f"{g.as_uri()}/page-0004.html{query}#{teapot}")
    assert 'data-page="4"' in target and "page 4 of 4" in target and teapot in Cards(target).by_id

    # image ids find their items, short labels their variations (the one on this page links its anchor)
    assert _hits(_dom(tmp_path, index + "?q=IMG_1.PNG")) == [
        (f"page-0003.html{query}#img_1.png/item_00", "img_1.png/item_00"),
        (f"page-0004.html{query}#img_1.png/item_01", "img_1.png/item_01")]
    stars = _hits(_dom(tmp_path, index + "?q=yellow+star"))
    assert [href.split("#")[0] for href, _ in stars] == ["", f"page-0002.html{query}", f"page-0003.html{query}",
                                                         f"page-0004.html{query}"]
    assert all(text.endswith("/var_3") for _, text in stars)
    assert _hits(_dom(tmp_path, index + "?q=item_01/var_2")) == [
        (f"page-0002.html{query}#img_0.png/item_01/var_2", "img_0.png/item_01/var_2"),
        (f"page-0004.html{query}#img_1.png/item_01/var_2", "img_1.png/item_01/var_2")]
    assert "no match for “dromedary”" in _dom(tmp_path, index + "?q=dromedary")


@needs_chromium
def test_browser_jumps_to_a_page_keeping_the_filter(run, tmp_path):
    build(run, items_per_page=1)
    index = (run.output_dir / "gallery" / "index.html").as_uri()
    dom = _dom(tmp_path, index + "?min_itm=0.9#page=3")
    assert 'data-page="3"' in dom and "page 3 of 4" in dom and "items 3–3 of 4" in dom
    assert set(Cards(dom).by_id) == {f"img_1.png/item_00/var_{j}" for j in range(4)}
    assert "page-0004.html?min_itm=0.9&min_iva=2.25" in Cards(dom).links  # the filter came along
    assert 'data-page="4"' in _dom(tmp_path, index + "#page=99")  # past the end: the last page


@needs_chromium
def test_browser_fails_non_finite_scores_at_any_threshold(run, tmp_path):
    bad = ["img_0.png/item_00/var_0", "img_0.png/item_00/var_1", "img_0.png/item_00/var_2"]

    def edit(records):
        _variation(records, bad[0])["itm_score"] = [float("inf"), 1.0]
        _variation(records, bad[1])["itm_score"] = [float("nan"), 1.0]
        _variation(records, bad[2])["iva_image"] = float("inf")

    _edit_scores(run, edit)
    build(run)
    dom = _dom(tmp_path, (run.output_dir / "gallery" / "index.html").as_uri() + "?min_itm=-100&min_iva=-100")
    cards = Cards(dom).by_id
    assert [vid for vid, c in cards.items() if "filtered" in c["classes"]] == bad
    assert "this page: 12 of 15 scored variations pass (1 failed); 16 cards shown · run: 12 of 15 pass" in dom
    assert _data_loaded(dom) == ["data/scores-0001.js"]  # the run-wide count at other thresholds
