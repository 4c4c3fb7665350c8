"""The ``rules`` backend: ``genemi negatives``' typed edits on the spaCy parse, offline and deterministic.

Per source caption the allowed kinds are tried in an order drawn from the caption's seed (so a corpus gets
every kind, not only the first), and the first ``k`` that apply and give different captions are kept. The
edits keep captions fluent by construction: swaps move words already in the caption, replacements come from
genemi's category vocabulary (a dog becomes a cat, not a spoon), counts keep the verb in agreement. Every
rewrite then passes the same checks as a chat model's (:func:`~.answers.rejection`).
"""

from __future__ import annotations

import random
from typing import Sequence

from genemi.generation_pipeline.negcaption.answers import rejection
from genemi.generation_pipeline.negcaption.base import Rewrite, RewriteRequest
from genemi.records import Failure


class RulesNegCaptioner:
    name = "rules"
    model = "rules"

    def __init__(self, config, context) -> None:
        self.config, self.context = config, context
        self._edits = None

    def check(self) -> None:
        from genemi.text.parsing import load_spacy

        load_spacy()  # raises BackendUnavailable with the install hint

    def load(self) -> None:
        if self._edits is None:
            from genemi.negatives.edits import EDITS, EditContext
            from genemi.negatives.sources import build_sources

            self._edits = (EDITS, EditContext(build_sources(["vocabulary"])))

    def offload(self) -> None:
        pass

    def rewrite(self, requests: Sequence[RewriteRequest]) -> list[list[Rewrite]]:
        from genemi.negatives.edits import NotApplicable
        from genemi.text.parsing import parse_captions

        self.load()
        edits, ctx = self._edits
        # no kind of negcaption reads a lemma (verbs are never replaced here), so the lemmatizer is skipped
        parsed = list(parse_captions((r.caption for r in requests), batch_size=1024, lemmas=False))
        out = []
        for req, p in zip(requests, parsed, strict=True):
            rng = random.Random(req.seed)
            order = list(req.kinds)
            rng.shuffle(order)
            found: list[Rewrite] = []
            reasons = []
            for kind in order:
                if len(found) == req.k:
                    break
                try:
                    text = edits[kind](p, random.Random(f"{req.seed}:{kind}"), ctx)
                except NotApplicable as exc:
                    reasons.append(f"{kind}: {exc}")
                    continue
                why = rejection(req.caption, text) or (
                    "the same as another rewrite" if any(f.caption == text for f in found) else None)
                if why:
                    reasons.append(f"{kind}: {why}")
                    continue
                found.append(Rewrite(caption=text, kind=kind))
            missing = req.k - len(found)
            if missing:
                message = "no edit applies: " + "; ".join(reasons) if not found else (
                    f"only {len(found)} of {req.k} edits apply (" + "; ".join(reasons) + ")")
                found += [Rewrite(error=Failure(stage="negcaption", type="not_applicable", message=message))
                          for _ in range(missing)]
            out.append(found)
        return out
