"""The ``negscore`` stage: ``negimages.jsonl`` -> ``negscores.jsonl``, every painted negative scored.

Configured by the ``score`` section (the same ``--scorer``/``--blip-model`` and optional ``--clip-score-model``,
one set of flags for both scoring stages). Each negative image is scored against its own (negative) caption and
against the source caption it rewrites: ``itm_own``/``itm_source`` (raw BLIP ITM "match" logits) and, with a
CLIPScore model, ``clip_own``/``clip_source``. ``passes`` records the filter the export applies by default: the
image matches its own caption better than the source caption, by more than ``--triplet-margin`` logits (a
picture that still shows the source caption teaches the wrong thing). A missing or unreadable image fails that
negative only.
"""

from __future__ import annotations

from genemi.generation_pipeline.scoring.matching import MatchingStage, Prepared
from genemi.generation_pipeline.stage import StageItem
from genemi.records import NegativePlan, PlannedNegative


def painted_negatives(rec: NegativePlan) -> list[PlannedNegative]:
    return [n for n in rec.negatives if n.status == "ok"] if rec.status == "ok" else []


def margin_passes(itm_own: float | None, itm_source: float | None, margin: float) -> bool:
    """Whether a negative image shows its own caption better than the source caption by more than ``margin``."""
    return itm_own is not None and itm_source is not None and itm_own - itm_source > margin


class NegScoreStage(MatchingStage):
    name = "negscore"

    def skip(self, item: StageItem[NegativePlan]) -> NegativePlan | None:
        return item.record if not painted_negatives(item.record) else None  # failed or nothing painted: as is

    def prepare(self, item: StageItem[NegativePlan]) -> Prepared:
        out = Prepared()
        for neg in painted_negatives(item.record):
            self.read(out, neg.id, neg.image, "the negative caption has no image (not painted)")
        return self.preprocess(out)

    def process(self, items: list[StageItem[NegativePlan]]) -> None:
        captions = {n.id: [n.caption, n.source] for it in items for n in painted_negatives(it.record)}
        scores = self.match(items, captions)
        for item in items:
            item.result = {nid: scores[nid] for nid in item.prepared.ids}

    def build(self, item: StageItem[NegativePlan]) -> NegativePlan:
        rec, prep, margin = item.record, item.prepared, self.config.triplet_margin
        negatives = []
        for neg in rec.negatives:
            if neg.status != "ok":
                negatives.append(neg)
            elif neg.id in prep.failures:
                negatives.append(neg.model_copy(update={"status": "failed", "error": prep.failures[neg.id]}))
            else:
                s = item.result[neg.id]
                own, source = s["itm_score"]
                clip = s.get("clip_score") or [None, None]
                negatives.append(neg.model_copy(update={
                    "itm_own": own, "itm_source": source, "clip_own": clip[0], "clip_source": clip[1],
                    "passes": margin_passes(own, source, margin)}))
        return rec.model_copy(update={"negatives": negatives})
