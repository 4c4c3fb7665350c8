"""``genemi generate gallery`` at scale: a synthetic scored run of 10,000 items (COCO-like ids and captions, 4
variations per item, tiny 64x48 images; manifests and image files written directly, no models), then the
gallery's wall time for a first build (every thumbnail drawn) and for a rerun (thumbnails and contact sheet
reused), medians of ``--rounds``, and its bytes: the largest page, the largest file every page loads, the
run-wide data the pages load on demand (search index, scores), the thumbnails and the whole gallery. Exits 1
when a page's HTML is over 300,000 bytes or a file that every page loads is over 100,000.

    python benchmarks/gallery_build.py                          # 10,000 items, 3 rounds
    python benchmarks/gallery_build.py --items 2000 --rounds 1
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.generation_pipeline.scored_run


#: bytes: the HTML of one page, and any file every page loads (the limits test_gallery.py checks at 120 items)
PAGE_LIMIT, SHARED_LIMIT = 300_000, 100_000


def loaded_by_every_page(gallery_dir: Path) -> set[str]:
    """The files every page names in a ``<script src>`` or ``<link href>``."""
    found = [set(re.findall(r'<(?:script|link)[^>]* (?:src|href)="([^"]+)"', p.read_text(encoding="utf-8")))
             for p in gallery_dir.glob("*.html")]
    return set.intersection(*found)


def sizes(paths) -> tuple[int, int, int]:
    """Count, total and largest size of ``paths``."""
    s = [p.stat().st_size for p in paths]
    return len(s), sum(s), max(s, default=0)


def kb(n: int) -> str:
    return f"{n / 1024:,.1f} KB" if n < 1 << 20 else f"{n / (1 << 20):,.2f} MB"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--items-per-page", type=int, default=50)
    ap.add_argument("--thumb-size", type=int, default=256)
    ap.add_argument("--keep", type=Path, default=None,
                    help="build in this folder and keep it (default: a temporary one)")
    args = ap.parse_args()

    from genemi.generation_pipeline.gallery import build_gallery
    from tests.generation_pipeline.scored_run import write_large_run

    root = args.keep or Path(tempfile.mkdtemp(prefix="genemi-gallerybench-"))
    t0 = time.perf_counter()
    inp, out = write_large_run(root, args.items)
    print(f"synthetic run: {args.items:,} items in {time.perf_counter() - t0:.1f}s ({root}); "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    gdir = out / "gallery"
    first, rerun = [], []
    for r in range(args.rounds):
        shutil.rmtree(gdir, ignore_errors=True)
        t0 = time.perf_counter()
        s = build_gallery(out, inp, items_per_page=args.items_per_page, thumb_size=args.thumb_size)
        first.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        again = build_gallery(out, inp, items_per_page=args.items_per_page, thumb_size=args.thumb_size)
        rerun.append(time.perf_counter() - t0)
        assert again.thumbnails_reused == again.thumbnails == s.thumbnails, (again.thumbnails_reused, s.thumbnails)
        print(f"round {r + 1}: first build {first[-1]:.1f}s, rerun {rerun[-1]:.1f}s")
    a, b = statistics.median(first), statistics.median(rerun)
    print(f"\n{s.items:,} items, {s.variations:,} variations, {s.pages} pages of {args.items_per_page}, "
          f"{s.thumbnails:,} thumbnails of {args.thumb_size} px; load average {os.getloadavg()[0]:.1f}")
    print(f"| build (median of {args.rounds}) | seconds | items/s | ratio to first build |")
    print("|---|---|---|---|")
    print(f"| first build (every thumbnail drawn) | {a:.1f} | {s.items / a:,.0f} | 1.00 |")
    print(f"| rerun (thumbnails and contact sheet reused) | {b:.1f} | {s.items / b:,.0f} | {b / a:.3f} |")

    pages = list(gdir.glob("*.html"))
    every = loaded_by_every_page(gdir)
    n_pages, total_pages, largest_page = sizes(pages)
    print("\n| files | count | total | largest |")
    print("|---|---|---|---|")
    print(f"| pages (HTML) | {n_pages} | {kb(total_pages)} | {kb(largest_page)} |")
    n, t, largest_shared = sizes(gdir / name for name in sorted(every))
    print(f"| loaded by every page: {', '.join(sorted(every))} | {n} | {kb(t)} | {kb(largest_shared)} |")
    for kind in ("search", "scores"):
        n, t, m = sizes((gdir / "data").glob(f"{kind}-*.js"))
        print(f"| data/{kind}-*.js (on demand) | {n} | {kb(t)} | {kb(m)} |")
    n, t, m = sizes((gdir / "thumbs").iterdir())
    print(f"| thumbs/*.jpg | {n:,} | {kb(t)} | {kb(m)} |")
    for name in ("thumbs.json", "contact_sheet.png"):
        n, t, m = sizes([gdir / name])
        print(f"| {name} | {n} | {kb(t)} | {kb(m)} |")
    n, t, m = sizes(p for p in gdir.rglob("*") if p.is_file())
    print(f"| whole gallery | {n:,} | {kb(t)} | {kb(m)} |")
    if args.keep is None:
        shutil.rmtree(root)
    checks = (("a page", largest_page, PAGE_LIMIT), ("a file every page loads", largest_shared, SHARED_LIMIT))
    over = [f"{what}: {size:,} bytes > {limit:,}" for what, size, limit in checks if size > limit]
    print(f"\nlimits (a page <= {PAGE_LIMIT:,} bytes, a file every page loads <= {SHARED_LIMIT:,}): "
          f"{'; '.join(over) if over else 'met'}")
    if over:
        sys.exit(1)


if __name__ == "__main__":
    main()
