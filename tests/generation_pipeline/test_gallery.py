"""``genemi generate gallery``: page structure, escaping, paging, where it writes, and (with chromium) what a
browser actually shows: the thumbnails in a screenshot and the score filter applied by the page's JS."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from genemi.generation_pipeline import gallery
from genemi.manifest import encode_line, iter_json_lines
from tests.generation_pipeline.scored_run import COLOURS, write_scored_run

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
    assert s.passing == sum(itm >= 0 and iva >= 14 for itm, iva in run.scores.values()) == 10
    for name in ("gallery.css", "gallery.js", "data/search-0001.js", "data/scores-0001.js", "thumbs.json",
                 "contact_sheet.png"):
        assert (g / name).is_file(), name
    with Image.open(g / "contact_sheet.png") as sheet:
        assert sheet.format == "PNG" and sheet.width >= 5 * gallery.CONTACT_CELL
    thumbs = sorted(p.name for p in (g / "thumbs").iterdir())
    assert len(thumbs) == 4 + 15 and all(n.endswith(".jpg") for n in thumbs)
    page = (g / "index.html").read_text()
    assert "export filters: mean ITM logit &gt; <b>0</b> · IVA &gt; <b>14%</b>" in page
    assert 'id="min-itm" step="0.1" value="0.0"' in page and 'id="min-iva" step="1" value="14.0"' in page
    cards = Cards(page).by_id
    assert set(run.scores) | {run.failed_variation} == set(cards)
    for vid, (itm, iva) in run.scores.items():
        card = cards[vid]
        assert card["attrs"]["data-itm"] == repr(itm) and card["attrs"]["data-iva"] == repr(iva)
        assert Path(g / card_img(page, vid)).is_file()
        expected = [f"filtered ({k})" for k, bad in (("ITM", itm < 0), ("IVA", iva < 14)) if bad]
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


def test_data_text_is_html_escaped(run):
    path = run.output_dir / "scores.jsonl"
    records = [obj for _, obj in iter_json_lines(path)]
    var = records[0]["items"][0]["variations"][0]
    var["captions"][0] = '<script>alert("x")</script>'
    var["short"] = "<b>bold</b> & co"
    records[0]["caption"] = "<img src=x onerror=alert(1)>"
    path.write_text("".join(encode_line(r) + "\n" for r in records))
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
    assert not (run.output_dir / "gallery").exists()


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
        assert ("filtered" in card["classes"]) == (itm <= 0.9 or iva <= 14), vid
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
