"""Typed records exchanged between pipeline stages and read by the trainer.

Records are pydantic models with ``extra="forbid"``: a manifest line with a misspelt field fails on read
with file and line number (see :func:`genemi.manifest.read_records`). Ids are derived from inputs and are
hierarchical (``<image_id>/item_02/var_1``), never from time or randomness.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from genemi.score_filters import mean_itm

Status = Literal["ok", "failed"]


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class VariationRecord(Record):
    """One generated variation of one item of one source image (``variations.jsonl`` / ``dataset.jsonl``).

    Field names follow the original ``variation_annotation.json`` so old files convert one to one;
    ``save`` is the *variation* image the captions describe, ``source`` the unedited image.
    """

    id: str
    parent_id: str | None = None
    origin_name: str = Field(description="identifier of the source image")
    item: str = Field(description="the item (object phrase) that was edited")
    name: str = Field(description="unique name of this variation")
    source: str = Field(description="path of the unedited source image, relative to the source image root")
    save: str = Field(description="path of the variation image, relative to the variation image root")
    short: str = Field(description="2-3 word description of the new item")
    portrayal: str | None = Field(default=None, description="long description used as inpainting prompt")
    tag2text_caption: str | None = None
    original_captions: list[str] = Field(default_factory=list)
    captions: list[str] = Field(default_factory=list, description="captions describing the variation")
    itm_score: list[float] | None = Field(default=None, description="BLIP ITM score per caption")
    iva_score: float | None = Field(default=None, description="image variation area among siblings over the whole "
                                    "image, in % (the original's key and definition; = iva_image)")
    iva_image: float | None = Field(default=None, description="image variation area over the whole image, in %")
    iva_window: float | None = Field(default=None, description="image variation area over the item's crop window")
    itm_prob: list[float] | None = Field(default=None, description="BLIP ITM match probability per caption")
    seed: int | None = Field(default=None, description="the inpainting seed of the variation")
    kind: str | None = Field(default=None, description="the kind of edit (category, synonym, colour, ...)")
    crop: list[int] | None = Field(default=None, description="the item's inpainting window x0, y0, x1, y1 in the "
                                   "source image")
    status: Status = "ok"
    error: str | None = None

    @field_validator("itm_score", mode="before")
    @classmethod
    def _scalar_itm(cls, value: Any) -> Any:
        return [value] if isinstance(value, (int, float)) else value

    @model_validator(mode="after")
    def _image_iva_is_the_originals(self) -> "VariationRecord":
        """The original's files (and genemi's older ones) have only ``iva_score``: the whole-image IVA."""
        if self.iva_image is None and self.iva_score is not None:
            self.iva_image = self.iva_score
        return self

    @property
    def mean_itm(self) -> float | None:
        return mean_itm(self.itm_score)


class TextNegative(Record):
    """One rule-generated hard-negative caption."""

    type: str = Field(description="edit type, e.g. replace_obj, swap_att")
    text: str
    valid: bool = True
    reason: str | None = Field(default=None, description="why the edit does not apply (when invalid)")


class TextNegativeRecord(Record):
    """A caption with typed hard negatives (``genemi negatives`` output; CE-CLIP / NegCLIP training input)."""

    id: str
    image: str = Field(description="image path relative to the image root")
    caption: str
    image_id: str | int | None = None
    negatives: list[TextNegative] = Field(default_factory=list)


class TripletRecord(Record):
    """A whole-image hard negative (TripletCLIP): a source image with its caption, and a minimally rewritten,
    false caption painted as a new image (``genemi generate export``'s ``triplets.jsonl``; ``--loss triplet``
    training input)."""

    id: str = Field(description="<image id>/neg_<k>: one per negative caption")
    image: str = Field(description="the source image, relative to the source image root")
    caption: str = Field(description="the source caption (true of the image)")
    neg_caption: str = Field(description="the rewritten caption (false of the image)")
    neg_image: str = Field(description="the negative caption painted, relative to the run's output folder")
    kind: str | None = Field(default=None, description="the edit: swap_relation, swap_attributes, replace_object, ...")
    itm_own: float | None = Field(default=None, description="BLIP ITM logit of the negative image with its own caption")
    itm_source: float | None = Field(default=None, description="... with the source caption")
    clip_own: float | None = Field(default=None, description="CLIPScore of the negative image with its own caption")
    clip_source: float | None = Field(default=None, description="... with the source caption")


#: Keys of the original GeNeMi ``variation_annotation.json`` records.
LEGACY_VARIATION_KEYS = (
    "origin_name", "name", "source", "item", "short", "save",
    "tag2text_caption", "original_captions", "captions", "itm_score", "iva_score",
)  # fmt: skip


def variation_from_legacy(obj: dict[str, Any]) -> VariationRecord:
    """Convert one record of the original ``variation_annotation.json`` (unknown keys are ignored)."""
    data = {k: obj[k] for k in LEGACY_VARIATION_KEYS if k in obj and obj[k] is not None}
    for key in ("original_captions", "captions"):
        if isinstance(data.get(key), str):
            data[key] = [data[key]]
    name = str(data.get("name", ""))
    return VariationRecord(id=name, parent_id=str(data.get("origin_name", "")) or None, **data)


# --- generation pipeline I: inputs, tags, detections, masks ------------------------------------------------
# One line per image in every manifest (an image's items travel together), so an append is atomic per image
# and a rerun never finds half an image.


class Failure(Record):
    """Why a record, item or variation failed: the stage, an error type and a message."""

    stage: str
    type: str = Field(description="exception class name, or a short reason code such as no_boxes")
    message: str

    def __str__(self) -> str:
        return f"{self.stage}: {self.message}"

    @classmethod
    def from_exception(cls, stage: str, exc: BaseException) -> "Failure":
        return cls(stage=stage, type=type(exc).__name__, message=str(exc) or type(exc).__name__)


def _failure_from_text(value: Any) -> Any:
    """Manifests written before failures were structured hold a plain message."""
    return Failure(stage="unknown", type="error", message=value) if isinstance(value, str) else value


class ImageInput(Record):
    """One input image (``images.jsonl``): ``id`` is its path relative to the input root."""

    id: str
    image: str = Field(description="image path, relative to the input root")
    captions: list[str] = Field(default_factory=list, description="original captions, if an annotation file gave any")


class ImageStageRecord(Record):
    """What every per-image stage record carries (the image, its size and captions, and whether it failed)."""

    id: str
    image: str
    width: int | None = None
    height: int | None = None
    caption: str | None = None
    original_captions: list[str] = Field(default_factory=list)
    status: Status = "ok"
    error: Failure | None = None

    @field_validator("error", mode="before")
    @classmethod
    def _error_text(cls, value: Any) -> Any:
        return _failure_from_text(value)

    def carried(self) -> dict[str, Any]:
        """The fields the next stage's record starts from."""
        return {k: getattr(self, k) for k in ("id", "image", "width", "height", "caption", "original_captions")}


class TagRecord(ImageStageRecord):
    """Tagging output (``tags.jsonl``): the items to ground and a caption."""

    tags: list[str] = Field(default_factory=list, description="items, most salient first")
    tag_scores: list[float] | None = None
    all_tags: list[str] | None = Field(None, description="every tag the tagger found, before --max-items (tag2text); "
                                       "--gd-prompt original grounds them all, as the original did")
    backend: str = ""


class Box(Record):
    item: str
    box: list[float] = Field(description="x0, y0, x1, y1 in pixels of the original image")
    score: float


class DetectionRecord(ImageStageRecord):
    """Grounding output (``detections.jsonl``): boxes per item; items without a box listed as such."""

    boxes: list[Box] = Field(default_factory=list)
    ungrounded: list[str] = Field(default_factory=list, description="items that grounded to no box")


class RLE(Record):
    """Uncompressed COCO run-length encoding (column-major, starting with a run of zeros)."""

    size: list[int] = Field(description="height, width")
    counts: list[int]


class ItemMask(Record):
    id: str = Field(description="<image id>/item_<k>")
    item: str
    box: list[float]
    box_score: float
    mask: RLE
    mask_score: float
    area: int
    crop: list[int] = Field(description="x0, y0, x1, y1: the >= 512 px window the inpainting stage works in")
    candidates: int = Field(1, description="boxes the item grounded to (the best-scoring one is used)")


class MaskRecord(ImageStageRecord):
    """Segmentation output (``masks.jsonl``): one mask per grounded item."""

    items: list[ItemMask] = Field(default_factory=list)
    ungrounded: list[str] = Field(default_factory=list)


# --- generation pipeline II/III: portrayals, rewritten captions, painted variations and their scores ------
# Still one line per image: ``portrayals.jsonl`` plans every variation of every item of an image, and
# ``captions.jsonl`` is the same plan with each variation's captions filled in. Ids are hierarchical:
# ``<image id>/item_02`` (the key of the item's mask in ``masks.jsonl``) and ``<image id>/item_02/var_1``.

#: what a portrayal changes about the item
EditKind = Literal["category", "synonym", "colour", "material", "size", "texture", "count", "other"]


class Portrayal(Record):
    """One way to portray an item: the inpainting prompt and the short label captions use."""

    kind: EditKind = Field(description="what changes: category (another object of the same kind), synonym, "
                                       "colour, material, size, texture, count or other")
    prompt: str = Field(min_length=1, description="long description, the inpainting prompt")
    short: str = Field(min_length=1, description="1-4 word label of the new item, used in captions")


class PlannedVariation(Record):
    """One variation to paint: what, where (via its item), with which seed, and (after ``caption``) its captions."""

    id: str = Field(description="<image id>/item_<k>/var_<j>")
    kind: EditKind
    prompt: str = Field(description="inpainting prompt (long description)")
    short: str = Field(description="short label, used in captions")
    slug: str = Field(description="sanitised file-name stem built from the short label")
    seed: int = Field(description="inpainting seed derived from (global seed, variation id)")
    captions: list[str] = Field(default_factory=list, description="captions describing the variation")
    caption_fallback: bool = Field(False, description="no phrase named the item: '<caption> and <short>' was used")
    # --- filled by ``inpaint`` (variations.jsonl) and ``score`` (scores.jsonl)
    image: str | None = Field(None, description="the variation image, relative to the output folder")
    itm_score: list[float] | None = Field(None, description="BLIP ITM raw 'match' logit per caption, on the variation")
    itm_prob: list[float] | None = Field(None, description="BLIP ITM match probability per caption")
    clip_score: list[float] | None = Field(None, description="CLIPScore (100 * max(cos, 0)) per caption")
    iva_image: float | None = Field(None, description="image variation area of the item's sibling group over the "
                                    "whole image, in % (the original's iva_score)")
    iva_window: float | None = Field(None, description="the same over the item's crop window, in %")
    iva_note: str | None = Field(None, description="why the IVA is degenerate (e.g. a group of one)")
    status: Status = "ok"
    error: Failure | None = None

    @model_validator(mode="before")
    @classmethod
    def _window_iva_of_old_manifests(cls, data: Any) -> Any:
        """Manifests written before both scopes were recorded hold ``iva_score``, computed over the window."""
        if isinstance(data, dict) and "iva_score" in data:
            data = dict(data)
            score = data.pop("iva_score")
            data.setdefault("iva_window", score)
        return data

    @property
    def mean_itm(self) -> float | None:
        return mean_itm(self.itm_score)


class PlannedItem(Record):
    """One item of an image with its mask reference, crop window and planned variations."""

    id: str = Field(description="<image id>/item_<k>: the key of its mask in masks.jsonl")
    item: str
    box: list[float]
    crop: list[int] = Field(description="x0, y0, x1, y1: the inpainting window")
    backend: str = Field(description="portrayal backend that planned it")
    note: str | None = Field(default=None, description="e.g. why only attribute edits were possible")
    raw: str | None = Field(default=None, description="the model's answer when it could not be parsed")
    variations: list[PlannedVariation] = Field(default_factory=list)
    status: Status = "ok"
    error: Failure | None = None


class VariationPlan(ImageStageRecord):
    """Per image: every item's planned variations (``portrayals.jsonl``; ``captions.jsonl`` adds captions)."""

    items: list[PlannedItem] = Field(default_factory=list)


# --- whole-image hard negatives (TripletCLIP): negative captions, their pictures and their scores ---------
# One line per image in ``negcaptions.jsonl`` (written by ``negcaption``), ``negimages.jsonl`` (``t2i`` adds each
# negative's image) and ``negscores.jsonl`` (``negscore`` adds its scores). Ids: ``<image id>/cap_<c>/neg_<k>``
# (negative k of the image's source caption c).


class PlannedNegative(Record):
    """One negative caption of one source caption, then its picture and scores."""

    id: str = Field(description="<image id>/cap_<c>/neg_<k>")
    source: str = Field(description="the source caption (true of the image) it rewrites")
    caption: str | None = Field(default=None, description="the negative caption (false of the image)")
    kind: str | None = Field(default=None, description="the edit: swap_relation, swap_attributes, replace_object, "
                                                      "replace_attribute, change_count, ...")
    seed: int = Field(description="seed derived from (global seed, negative id): the rewrite's and the picture's")
    model: str = Field(description="what wrote the caption: rules, or the chat model (folder or served name)")
    raw: str | None = Field(default=None, description="the model's answer when it could not be used")
    # --- filled by ``t2i`` (negimages.jsonl) and ``negscore`` (negscores.jsonl)
    image: str | None = Field(default=None, description="the negative caption painted, relative to the output folder")
    truncated: bool | None = Field(default=None, description="the caption was longer than the text encoder takes")
    itm_own: float | None = Field(default=None, description="BLIP ITM logit of the image with its own caption")
    itm_source: float | None = Field(default=None, description="BLIP ITM logit of the image with the source caption")
    clip_own: float | None = Field(default=None, description="CLIPScore of the image with its own caption")
    clip_source: float | None = Field(default=None, description="CLIPScore of the image with the source caption")
    passes: bool | None = Field(default=None, description="the image matches its own caption better than the "
                                                          "source caption by more than --triplet-margin (ITM logits)")
    status: Status = "ok"
    error: Failure | None = None


class NegativePlan(ImageStageRecord):
    """Per image: the negatives of its source captions (``negcaptions.jsonl``, ``negimages.jsonl``,
    ``negscores.jsonl``)."""

    negatives: list[PlannedNegative] = Field(default_factory=list)

