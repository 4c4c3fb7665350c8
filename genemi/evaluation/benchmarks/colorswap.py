"""ColorSwap (Burapacheep, Gaur, Bhatia and Thrush, Findings of ACL 2024): 1,000 Winoground-style
examples (700 train, 300 test) of 2 images x 2 captions whose color words are swapped.

Two on-disk layouts, both as released (nothing is downloaded):

* the gated Hugging Face dataset ``stanfordnlp/colorswap`` (a hub snapshot): ``<root>/data/<split>-*.parquet``
  (``<root>/<split>-*.parquet`` or ``root`` = one ``.parquet`` file also work) with columns ``id``,
  ``image_1``, ``image_2`` (images embedded as ``{bytes, path}``), ``caption_1``, ``caption_2``,
  ``image_source``, ``caption_source``. The images are written once to the image cache
  (:mod:`genemi.evaluation.benchmarks.hub_files`, as Winoground's Parquet);
* the GitHub release (``Top34051/colorswap``, its Google Drive archive): ``<root>/<split>.json`` (or
  ``<root>/data/<split>.json``), a JSON list of the same fields with ``image_1``/``image_2`` paths relative
  to the JSON file's folder (``images/img_0_1.png``). The images ship as ``images.zip`` beside the JSON and
  are read from the archive directly (no extraction); an extracted ``images/`` folder is used where it has
  the file. In the archive, an image is the member named like the JSON path, else the one member whose name
  ends with it, else the one member with its file name.

Metric: Winoground's text / image / group scores (:func:`~genemi.evaluation.benchmarks.winoground.
winoground_scores`), caption_1 belonging to image_1. The authors' image-text-matching evaluation is a Colab
notebook (not in the repository); the paper follows the Winoground schema, whose scorer compares with ``>``,
so a tie is a failure (``official_ties = "strict"``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import ClassVar

from genemi.caption_files import read_json
from genemi.errors import DataError, ManifestError
from genemi.evaluation.benchmarks.base import (BenchmarkResult, BenchmarkSpec, ItemLog, MissingTracker, digest, need,
                                               percent)
from genemi.evaluation.benchmarks.hub_files import embedded_images, read_parquet
from genemi.evaluation.benchmarks.winoground import score_2x2
from genemi.evaluation.scoring import Embeddings, ImageRef, zip_members
from genemi.options import Section, option

SPLITS = ("train", "test")


def _find_member(index: dict[str, list[str]], name: str) -> str | None:
    """The archive member for a JSON image path: exact name, else the one whose trailing path (then file name)
    it is; None when absent or ambiguous."""
    for key in (name, PurePosixPath(name).name):
        hits = index.get(key, [])
        exact = [m for m in hits if m == key]
        if exact or len(hits) == 1:
            return (exact or hits)[0]
    return None
FIELDS = ("image_1", "image_2", "caption_1", "caption_2")
EXTRA_FIELDS = ("image_source", "caption_source")


class ColorSwap:
    name = "colorswap"
    official_ties = ties = "strict"  # Winoground schema: s(right) > s(wrong)
    image_option = "root"

    def __init__(self, root: str | Path, split: str = "test", image_cache: str | Path | None = None):
        self.root = Path(root)
        if split not in (*SPLITS, "all"):
            raise DataError(f"ColorSwap: split must be train, test or all, not {split!r}")
        self.split = split
        self.image_cache = image_cache  # None: hub_files' default ($GENEMI_CACHE/embedded_images)
        splits = (split,) if self.root.is_file() else SPLITS if split == "all" else (split,)
        #: (split, item id, image_1, image_2, caption_1, caption_2, extra columns)
        self.items: list[tuple[str, str, ImageRef, ImageRef, str, str, dict]] = []
        self.files: list[Path] = []
        self._archives: dict[Path, tuple[Path | None, dict[str, list[str]]]] = {}
        for name in splits:
            json_file, parquet = self._find(name)
            if json_file is not None:
                self.files.append(json_file)
                self.items += self._from_json(name, json_file)
            else:
                self.files += parquet
                for path in parquet:
                    self.items += self._from_parquet(name, path)
        if not self.items:
            raise DataError(f"ColorSwap: no examples in {', '.join(map(str, self.files))}")

    # --- loading ---------------------------------------------------------------------------------------

    def _find(self, split: str) -> tuple[Path | None, list[Path]]:
        if self.root.is_file():
            if self.root.suffix == ".parquet":
                return None, [self.root]
            if self.root.suffix == ".json":
                return self.root, []
            raise DataError(f"ColorSwap: {self.root} is neither a .parquet nor a .json file")
        for folder in (self.root, self.root / "data"):
            if (folder / f"{split}.json").is_file():
                return folder / f"{split}.json", []
        for folder in (self.root / "data", self.root):
            found = sorted(folder.glob(f"{split}-*.parquet"))
            if found:
                return None, found
        raise DataError(f"ColorSwap: no {split} split in {self.root} (expected data/{split}-*.parquet from the "
                        f"stanfordnlp/colorswap hub snapshot, or {split}.json + images/ from the GitHub release)")

    @staticmethod
    def _check(obj: object, where: str, fields: tuple[str, ...] = FIELDS) -> None:
        if not isinstance(obj, dict):
            raise ManifestError(f"{where}: expected an object with {', '.join(fields)}")
        absent = [k for k in fields if k not in obj]
        if absent:
            raise ManifestError(f"{where}: missing {', '.join(absent)}")
        for key in ("caption_1", "caption_2"):
            if not isinstance(obj[key], str):
                raise ManifestError(f"{where}: {key} is not a string ({obj[key]!r})")

    @staticmethod
    def _id(obj: dict, position: int) -> str:
        return str(obj["id"]) if obj.get("id") is not None else str(position)

    def _from_json(self, split: str, path: Path) -> list:
        data = read_json(path)
        if not isinstance(data, list):
            raise ManifestError(f"{path}: expected a JSON list of examples (ColorSwap layout)")
        out = []
        for k, obj in enumerate(data):
            where = f"{path}: example {k}"
            self._check(obj, where)
            refs = []
            for key in ("image_1", "image_2"):
                if not isinstance(obj[key], str):
                    raise ManifestError(f"{where}: {key} must be an image path relative to {path.parent}")
                refs.append(self._release_image(path.parent, obj[key]))
            out.append((split, self._id(obj, len(self.items) + k), *refs, obj["caption_1"], obj["caption_2"],
                        {f: obj.get(f) for f in EXTRA_FIELDS}))
        return out

    def _release_image(self, folder: Path, name: str) -> ImageRef:
        """The extracted file if it is there, else the member of the folder's image archive (else the absent
        file, which is then counted as missing)."""
        path = folder / name
        if path.is_file():
            return ImageRef(str(path))
        archive, members = self._archive(folder)
        if archive is not None:
            member = _find_member(members, PurePosixPath(name).as_posix().lstrip("./"))
            if member is not None:
                return ImageRef(str(archive), member=member)
        return ImageRef(str(path))

    def _archive(self, folder: Path) -> tuple[Path | None, dict[str, list[str]]]:
        """``images.zip`` (else the only ``*.zip``) in ``folder``, with its members indexed by name, by
        trailing path and by file name."""
        if folder not in self._archives:
            zips = [folder / "images.zip"] if (folder / "images.zip").is_file() else sorted(folder.glob("*.zip"))
            found: tuple[Path | None, dict[str, list[str]]] = (None, {})
            if len(zips) == 1:
                index: dict[str, list[str]] = {}
                for member in zip_members(zips[0]):
                    parts = PurePosixPath(member).parts
                    for k in range(len(parts)):
                        index.setdefault("/".join(parts[k:]), []).append(member)
                found = (zips[0], index)
            self._archives[folder] = found
        return self._archives[folder]

    def _from_parquet(self, split: str, path: Path) -> list:
        rows = read_parquet(path, ("caption_1", "caption_2"), optional=("id", *EXTRA_FIELDS))
        images = embedded_images(path, ("image_1", "image_2"), self.image_cache)
        out = []
        for n, (obj, files) in enumerate(zip(rows, images)):
            self._check(obj, f"{path}: row {n}", ("caption_1", "caption_2"))
            out.append((split, self._id(obj, len(self.items) + len(out)), ImageRef(str(files["image_1"])),
                        ImageRef(str(files["image_2"])), obj["caption_1"], obj["caption_2"],
                        {f: obj.get(f) for f in EXTRA_FIELDS}))
        return out

    # --- benchmark API ---------------------------------------------------------------------------------

    def inputs(self):
        return [r for i in self.items for r in i[2:4]], [t for i in self.items for t in i[4:6]]

    def cache_key(self) -> str:
        return digest(*self.files, self.split, str(self.root))

    def score(self, emb: Embeddings) -> BenchmarkResult:
        missing, log = MissingTracker(emb), ItemLog(self.ties)
        text, image, group = [], [], []
        for split, item_id, i1, i2, c1, c2, extra in self.items:
            if not missing.ok(i1, i2):
                continue
            # the dataset's _1/_2 are Winoground's 0/1: scores c1_i1, c1_i2, c2_i1, c2_i2
            t, im, g = score_2x2(emb, log, item_id, split, i1, i2, c1, c2,
                                 **{k: v for k, v in extra.items() if v is not None})
            text.append(t), image.append(im), group.append(g)
        metrics = {"text": percent(text), "image": percent(image), "group": percent(group)}
        result = BenchmarkResult(self.name, metrics, ["text", "image", "group"], len(self.items), len(text),
                                 missing.count, missing.examples)
        if self.split != "test":
            result.notes.append(f"split: {self.split}")
        return log.fill(result)


# --- data options (flags included) and registry entry ---------------------------------------------------------

@dataclass
class ColorSwapData(Section):
    shared: ClassVar[dict[str, str]] = {"image_cache": "--embedded-image-cache"}
    root: str | None = option(None, "ColorSwap: hub snapshot folder, one .parquet file, or test.json + images/",
                              flag="--colorswap-root", metavar="DIR")
    split: str = option("test", "ColorSwap split", flag="--colorswap-split", choices=("test", "train", "all"))
    image_cache: str | None = option(None, "where Parquet-embedded images are extracted once", flag=False)


COLORSWAP = BenchmarkSpec("colorswap", ColorSwapData,
                          lambda o: [ColorSwap(*need(o, "colorswap", "root"), o.split, o.image_cache)],
                          "ColorSwap text/image/group (hub Parquet or GitHub test.json + images/)")
