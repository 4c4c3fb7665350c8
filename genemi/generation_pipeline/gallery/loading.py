"""The gallery's data: a run's manifests read into rows (one per item), and what the export filters say of each
variation.

The manifests are named by the registry (the score, inpaint and segment stages' outputs). Images that
``scores.jsonl`` does not hold yet are taken from ``variations.jsonl`` and shown as "not scored".
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from genemi.errors import ConfigError
from genemi.generation_pipeline.registry import stage_spec
from genemi.manifest import read_records
from genemi.records import ItemMask, MaskRecord, PlannedItem, PlannedVariation, VariationPlan
from genemi.score_filters import DEFAULT_IVA_SCOPE, iva_of, passes

#: where ``genemi generate`` records its settings (``config.input_dir``: the source image root)


@dataclass(frozen=True)
class Row:
    """One item of the gallery: its image record, the item, and whether the image has scores."""

    image: VariationPlan
    item: PlannedItem
    scored: bool


@dataclass
class Counts:
    variations: int = 0
    painted: int = 0
    failed: int = 0
    #: painted variations of scored images, and those of them that pass the export filters
    scored_painted: int = 0
    passing: int = 0


@dataclass
class Run:
    """A run as the gallery shows it: every image record in manifest order, the items of those that reached
    planning (:attr:`rows`) and the masks of the items."""

    images: list[VariationPlan]
    #: ids of the images without scores (all of them when the run has no scores manifest)
    unscored: set[str]
    #: whether the run has any scores
    scored: bool
    masks: dict[str, ItemMask]
    rows: list[Row]
    #: the file name of the scores manifest
    scores_file: str

    @property
    def failed_images(self) -> list[VariationPlan]:
        return [rec for rec in self.images if rec.status != "ok"]

    def counts(self, min_itm: float | None, min_iva: float | None, iva_scope: str = DEFAULT_IVA_SCOPE) -> Counts:
        c = Counts()
        for row in self.rows:
            for v in row.item.variations:
                c.variations += 1
                if v.status != "ok":
                    c.failed += 1
                    continue
                c.painted += 1
                if row.scored:
                    c.scored_painted += 1
                    c.passing += not filter_reasons(v, min_itm, min_iva, iva_scope)
        return c


def has_variations(output_dir: Path) -> bool:
    """Whether the run has variation records (the score or inpaint stage's manifest)."""
    return any((output_dir / stage_spec(name).writes).exists() for name in ("score", "inpaint"))


def load_run(output_dir: Path) -> Run:
    """The run in ``output_dir``: its scores manifest, then the inpaint stage's records of images not scored yet,
    and the segment stage's masks. A ConfigError when neither records manifest exists."""
    scores, variations = (output_dir / stage_spec(name).writes for name in ("score", "inpaint"))
    if not scores.exists() and not variations.exists():
        raise ConfigError(f"{output_dir} has neither {scores.name} nor {variations.name} (run the inpaint stage first)")
    scored = read_records(scores, VariationPlan) if scores.exists() else []
    seen = {r.id for r in scored}
    rest = [r for r in read_records(variations, VariationPlan) if r.id not in seen] if variations.exists() else []
    unscored = {r.id for r in rest}
    images = scored + rest
    rows = [Row(rec, item, bool(scored) and rec.id not in unscored) for rec in images if rec.status == "ok"
            for item in rec.items]
    return Run(images, unscored, bool(scored), _load_masks(output_dir), rows, scores.name)


def _load_masks(output_dir: Path) -> dict[str, ItemMask]:
    path = output_dir / stage_spec("segment").writes
    if not path.exists():
        return {}
    return {item.id: item for rec in read_records(path, MaskRecord) for item in rec.items}


def filter_reasons(v: PlannedVariation, min_itm: float | None, min_iva: float | None,
                   iva_scope: str = DEFAULT_IVA_SCOPE) -> list[str]:
    """Which export filters a painted variation fails ("ITM", "IVA"), by :func:`genemi.score_filters.passes`
    (strictly greater; a non-finite score fails every threshold). A missing score fails nothing here (the
    gallery shows it as not scored)."""
    out = []
    if v.mean_itm is not None and not passes(v.mean_itm, min_itm):
        out.append("ITM")
    iva = iva_of(v, iva_scope)
    if iva is not None and not passes(iva, min_iva):
        out.append("IVA")
    return out


def fmt(x: float | None, spec: str = ".2f") -> str:
    """A score as shown in the pages and the contact sheet: "–" when missing, ``inf``/``nan`` as such."""
    return "–" if x is None else (format(x, spec) if math.isfinite(x) else str(x))
