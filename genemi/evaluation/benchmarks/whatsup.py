"""What'sUp (Kamath, Hessel and Chang, EMNLP 2023): spatial relations, one image and 2 or 4 captions.

Six sets, read from the official data folder (``whatsup_vlms/data``, what ``--download`` or the authors'
Google Drive folder gives), each file optional:

* ``controlled_images_dataset.json`` (Controlled_Images_A, 4 options: on / under / left of / right of) and
  ``controlled_clevr_dataset.json`` (Controlled_Images_B, CLEVR renders: in front of / behind / left of /
  right of): a JSON list of ``{"image_path", "caption_options"}``. ``image_path`` is relative to the
  authors' repository (``data/controlled_images/mug_on_table.jpeg``); genemi drops the leading ``data/``
  and joins the rest to ``root`` (absolute paths are used as they are).
* ``coco_qa_one_obj.json`` / ``coco_qa_two_obj.json`` (COCO-spatial) and ``vg_qa_one_obj.json`` /
  ``vg_qa_two_obj.json`` (GQA-spatial): a JSON list of ``[image_id, right_caption, wrong_caption]``;
  images ``<coco_images>/<image_id zero-padded to 12>.jpg`` (COCO val2017) and
  ``<vg_images>/<image_id>.jpg``.

The first caption option is always the right one. Metric, as ``evaluate_scores`` in the authors'
``dataset_zoo/aro_datasets.py``: accuracy of ``argmax`` over the options, so an exact tie between the right
caption and a wrong one counts as right (``official_ties = "first"``). The controlled sets also report
pair accuracy (both images of a left/right or on/under (in-front/behind) pair right) and set accuracy (all
four images of an object pair right), and every set reports accuracy per preposition. Macro means as the
paper's summary table: ``whatsup`` = mean of A and B, ``coco_spatial`` and ``gqa_spatial`` = mean of the
one- and two-object sets.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import ClassVar

from genemi.caption_files import read_json
from genemi.errors import DataError, ManifestError
from genemi.evaluation.benchmarks.base import (BenchmarkResult, BenchmarkSpec, ItemLog, MissingTracker, digest, mean,
                                               need, percent)
from genemi.evaluation.scoring import Embeddings, ImageRef
from genemi.options import Section, option

CONTROLLED = {"controlled_images_a": "controlled_images_dataset.json",
              "controlled_images_b": "controlled_clevr_dataset.json"}
QA = {"coco_qa_one_obj": "coco_qa_one_obj.json", "coco_qa_two_obj": "coco_qa_two_obj.json",
      "vg_qa_one_obj": "vg_qa_one_obj.json", "vg_qa_two_obj": "vg_qa_two_obj.json"}
SUBSETS = (*CONTROLLED, *QA)
#: the summary columns: name -> the sets it averages
MACROS = {"whatsup": ("controlled_images_a", "controlled_images_b"),
          "coco_spatial": ("coco_qa_one_obj", "coco_qa_two_obj"),
          "gqa_spatial": ("vg_qa_one_obj", "vg_qa_two_obj")}
#: the relation slots of one controlled object pair (4 images), and which two slots form a "pair"
SLOTS = {"controlled_images_a": (("left", "right"), ("on", "under")),
         "controlled_images_b": (("left", "right"), ("in-front", "behind"))}
#: two-object sets: (phrase in the right caption, preposition), first match wins; else the last label
TWO_OBJ_PREPOSITIONS = {"coco_qa_two_obj": (("left of", "left"), ("right of", "right"), ("above", "above"), (None, "below")),
                        "vg_qa_two_obj": (("left of", "left"), ("right of", "right"), ("front of", "front"),
                                          ("behind", "behind"), (None, "top"))}


@dataclass(frozen=True)
class Item:
    item_id: str
    image: ImageRef
    captions: tuple[str, ...]
    preposition: str
    #: controlled sets: (object pair, relation slot) from the image name; None elsewhere
    slot: tuple[str, str] | None = None


def _controlled_preposition(subset: str, name: str) -> str:
    """The authors' per-preposition label of a controlled image, from its file name."""
    if "left_of" in name:
        return "left_of"
    if "right_of" in name:
        return "right_of"
    if subset == "controlled_images_a":
        return "on" if "_on_" in name else "under"
    return "in-front_of" if "_in-front_of_" in name else "behind"


def _qa_preposition(subset: str, right_caption: str) -> str:
    if subset.endswith("one_obj"):
        words = right_caption.split()
        return words[-1] if words else ""
    for phrase, label in TWO_OBJ_PREPOSITIONS[subset]:
        if phrase is None or phrase in right_caption:
            return label
    return ""


class WhatsUp:
    name = "whatsup"
    official_ties = ties = "first"  # aro_datasets.py: np.argmax over the options, right option first
    image_option = "root"  # and coco_images / vg_images for the QA sets

    def __init__(self, root: str | Path, coco_images: str | Path | None = None, vg_images: str | Path | None = None,
                 subsets: list[str] | tuple[str, ...] | str | None = None):
        self.root = Path(root)
        self.coco_images = Path(coco_images) if coco_images else self.root / "val2017"
        self.vg_images = Path(vg_images) if vg_images else self.root / "vg_images"
        if isinstance(subsets, str):  # a flag's comma list
            subsets = [s.strip() for s in subsets.split(",") if s.strip()]
        wanted = tuple(subsets) if subsets else SUBSETS
        unknown = [s for s in wanted if s not in SUBSETS]
        if unknown:
            raise DataError(f"What'sUp: unknown subset(s) {', '.join(unknown)}; expected some of {', '.join(SUBSETS)}")
        names = {**CONTROLLED, **QA}
        self.files = {s: self.root / names[s] for s in wanted if (self.root / names[s]).is_file()}
        if not self.files:
            raise DataError(f"What'sUp: none of {', '.join(names[s] for s in wanted)} in {self.root} "
                            "(the data folder of amitakamath/whatsup_vlms)")
        self.items = {s: (self._controlled(s, p) if s in CONTROLLED else self._qa(s, p)) for s, p in self.files.items()}

    # --- loading ---------------------------------------------------------------------------------------

    def _image(self, image_path: str) -> ImageRef:
        path = PurePosixPath(image_path)
        if path.is_absolute():
            return ImageRef(str(path))
        parts = path.parts[1:] if path.parts and path.parts[0] == "data" else path.parts
        return ImageRef(str(self.root.joinpath(*parts)))

    def _list(self, path: Path) -> list:
        data = read_json(path)
        if not isinstance(data, list):
            raise ManifestError(f"{path}: expected a JSON list of items (What'sUp layout)")
        return data

    def _controlled(self, subset: str, path: Path) -> list[Item]:
        items, seen = [], {}
        for k, obj in enumerate(self._list(path)):
            where = f"{path}: item {k}"
            if not isinstance(obj, dict) or "image_path" not in obj or "caption_options" not in obj:
                raise ManifestError(f"{where}: expected an object with 'image_path' and 'caption_options'")
            captions = obj["caption_options"]
            if not isinstance(captions, list) or len(captions) < 2 or not all(isinstance(c, str) for c in captions):
                raise ManifestError(f"{where}: 'caption_options' must be a list of at least 2 captions")
            name = PurePosixPath(str(obj["image_path"])).name
            parts = PurePosixPath(name).stem.split("_")
            slot = None
            if len(parts) >= 3:
                slot = ((parts[0], parts[-1]), parts[1])
                if slot in seen:
                    raise ManifestError(f"{where}: {name} repeats the object pair and relation of item {seen[slot]}")
                seen[slot] = k
            items.append(Item(name, self._image(str(obj["image_path"])), tuple(captions),
                              _controlled_preposition(subset, name), slot))
        return items

    def _qa(self, subset: str, path: Path) -> list[Item]:
        items = []
        for k, obj in enumerate(self._list(path)):
            if (not isinstance(obj, list) or len(obj) < 3 or not isinstance(obj[1], str) or not isinstance(obj[2], str)):
                raise ManifestError(f"{path}: item {k}: expected [image_id, right_caption, wrong_caption]")
            image_id = str(obj[0])
            if subset.startswith("coco"):
                ref = ImageRef(str(self.coco_images / f"{image_id.zfill(12)}.jpg"))
            else:
                ref = ImageRef(str(self.vg_images / f"{image_id}.jpg"))
            items.append(Item(str(k), ref, (obj[1], obj[2]), _qa_preposition(subset, obj[1])))
        return items

    # --- benchmark API ---------------------------------------------------------------------------------

    def inputs(self):
        items = [i for subset in self.items.values() for i in subset]
        return [i.image for i in items], [c for i in items for c in i.captions]

    def cache_key(self) -> str:
        return digest(*self.files.values(), str(self.root), str(self.coco_images), str(self.vg_images))

    def score(self, emb: Embeddings) -> BenchmarkResult:
        missing, log = MissingTracker(emb), ItemLog(self.ties)
        metrics: dict[str, float] = {}
        headline: list[str] = []
        n_eval = 0
        notes = []
        for subset, items in self.items.items():
            correct: list[bool] = []
            by_prep: dict[str, list[bool]] = {}
            slots: dict[tuple[str, str], dict[str, bool]] = {}
            for item in items:
                if not missing.ok(item.image):
                    continue
                ok = log.choose(item.item_id, emb.sims(item.image, item.captions), 0, subset=subset,
                                preposition=item.preposition, image=item.image.path)
                correct.append(ok)
                by_prep.setdefault(item.preposition, []).append(ok)
                if item.slot is not None:
                    slots.setdefault(item.slot[0], {})[item.slot[1]] = ok
            n_eval += len(correct)
            metrics[subset] = percent(correct)
            headline.append(subset)
            if subset in SLOTS:
                pairs, sets, unplaced = self._pairs_and_sets(subset, slots)
                metrics[f"{subset}/pairs"], metrics[f"{subset}/set"] = percent(pairs), percent(sets)
                headline += [f"{subset}/pairs", f"{subset}/set"]
                if unplaced:
                    notes.append(f"{subset}: {unplaced} item(s) whose image name gives no "
                                 f"{'/'.join(s for pair in SLOTS[subset] for s in pair)} relation count in "
                                 "individual accuracy only")
            for prep in sorted(by_prep):
                metrics[f"{subset}/{prep}"] = percent(by_prep[prep])
        for macro, members in MACROS.items():
            present = [m for m in members if m in self.items]
            if not present:
                continue
            metrics[macro] = mean([metrics[m] for m in present])
            headline.append(macro)
            if macro == "whatsup":
                for part in ("pairs", "set"):
                    metrics[f"whatsup/{part}"] = mean([metrics[f"{m}/{part}"] for m in present])
                    headline.append(f"whatsup/{part}")
            if len(present) < len(members):
                notes.append(f"{macro}: mean over {', '.join(present)} only (the other set's file is absent)")
        n_items = sum(len(v) for v in self.items.values())
        result = BenchmarkResult(self.name, metrics, headline, n_items, n_eval, missing.count, missing.examples,
                                 notes=notes)
        return log.fill(result)

    @staticmethod
    def _pairs_and_sets(subset: str, slots: dict[tuple[str, str], dict[str, bool]]):
        """Pair and set correctness over the object pairs whose images were all evaluated."""
        expected = {s for pair in SLOTS[subset] for s in pair}
        pairs, sets, unplaced = [], [], 0
        for results in slots.values():
            unplaced += len(set(results) - expected)
            for a, b in SLOTS[subset]:
                if a in results and b in results:
                    pairs.append(results[a] and results[b])
            if expected <= set(results):
                sets.append(all(results[s] for s in expected))
        return pairs, sets, unplaced


# --- data options (flags included) and registry entry ---------------------------------------------------------

@dataclass
class WhatsUpData(Section):
    shared: ClassVar[dict[str, str]] = {"coco_images": "--coco-val2017"}
    root: str | None = option(None, "What'sUp: the authors' data/ folder (controlled_*.json, coco_qa_*.json, "
                              "vg_qa_*.json, controlled_images/, controlled_clevr/)", flag="--whatsup-root",
                              metavar="DIR")
    coco_images: str | None = option(None, "COCO val2017 for What'sUp COCO-spatial", flag="--whatsup-coco-images",
                                     metavar="DIR", default_text="--coco-val2017, else WHATSUP_ROOT/val2017")
    vg_images: str | None = option(None, "Visual Genome images for GQA-spatial", flag="--whatsup-vg-images",
                                   metavar="DIR", default_text="WHATSUP_ROOT/vg_images")
    subsets: list[str] | None = option(None, "What'sUp sets", flag="--whatsup-subsets", choices=SUBSETS,
                                       default_text="every set whose file exists")


WHATSUP = BenchmarkSpec(
    "whatsup", WhatsUpData,
    lambda o: [WhatsUp(*need(o, "whatsup", "root"), o.coco_images, o.vg_images, o.subsets)],
    "What'sUp: Controlled A/B (indiv/pairs/set), COCO-/GQA-spatial one/two-object, macro means")
