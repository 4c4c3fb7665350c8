"""The ``negcaption`` stage: each image's source captions -> negative captions (``negcaptions.jsonl``).

Reads ``tag`` (the image's source captions: the annotation file's, else the tagger's caption), so the branch
runs from a caption file alone (``--stages tag,negcaption,...`` with the default ``captions`` tagger) and never
waits for grounding, segmentation or inpainting. Every negative gets a hierarchical id
(``<image id>/cap_<c>/neg_<k>``) and a seed derived from it (the painting seed of ``t2i``); the rewrite's own
randomness comes from the source caption's seed, so a negative never depends on its batch.
"""

from __future__ import annotations

from genemi.generation_pipeline.negcaption.base import RewriteRequest
from genemi.generation_pipeline.seeds import derive_seed
from genemi.generation_pipeline.stage import Stage, StageItem
from genemi.records import Failure, NegativePlan, PlannedNegative, TagRecord


class NegCaptionStage(Stage):
    name = "negcaption"

    def sources(self, rec: TagRecord) -> list[str]:
        """The captions to rewrite: the image's own (else the tagger's caption), each once, at most N."""
        texts = list(rec.original_captions) or ([rec.caption] if rec.caption else [])
        texts = list(dict.fromkeys(t.strip() for t in texts if t and t.strip()))
        return texts[: self.config.captions_per_image] if self.config.captions_per_image else texts

    def skip(self, item: StageItem[TagRecord]) -> NegativePlan | None:
        rec = item.record
        # an image without items (the tagger found no noun phrase) still has captions to rewrite
        if rec.status != "ok" and not (rec.error is not None and rec.error.type == "no_items"):
            return self.fail(item, self.upstream_failure(rec))
        if not self.sources(rec):
            return self.fail(item, Failure(stage=self.name, type="no_caption", message=(
                "the image has no caption to rewrite: give --annotation-file, or a captioning --tagger")))
        return None

    def fail(self, item: StageItem[TagRecord], failure: Failure) -> NegativePlan:
        return NegativePlan(**item.record.carried(), status="failed", error=failure)

    def requests(self, rec: TagRecord) -> list[RewriteRequest]:
        c = self.config
        return [RewriteRequest(key=f"{rec.id}/cap_{n}", caption=text, k=c.num_negatives, kinds=c.kind_list,
                               seed=derive_seed(self.context.seed, f"{rec.id}/cap_{n}"))
                for n, text in enumerate(self.sources(rec))]

    def process(self, items: list[StageItem[TagRecord]]) -> None:
        requests = [self.requests(it.record) for it in items]
        with self.timed():
            answers = iter(self.backend.rewrite([r for reqs in requests for r in reqs]))
        for item, reqs in zip(items, requests, strict=True):
            item.result = [(req, next(answers)) for req in reqs]

    def build(self, item: StageItem[TagRecord]) -> NegativePlan:
        negatives = []
        for req, rewrites in item.result:
            for k, rw in enumerate(rewrites):
                nid = f"{req.key}/neg_{k}"
                error = rw.error if rw.caption is None else None
                if rw.caption is None and error is None:
                    error = Failure(stage=self.name, type="missing_answer", message="the backend returned nothing")
                negatives.append(PlannedNegative(
                    id=nid, source=req.caption, caption=rw.caption, kind=rw.kind, seed=derive_seed(self.context.seed, nid),
                    model=self.backend.model, raw=rw.raw, status="failed" if error else "ok", error=error))
        ok = any(n.status == "ok" for n in negatives)
        error = None if ok else Failure(stage=self.name, type="no_negatives",
                                        message="no caption of the image could be rewritten")
        return NegativePlan(**item.record.carried(), negatives=negatives, status="ok" if ok else "failed",
                            error=error)
