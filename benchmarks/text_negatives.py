"""Throughput of ``genemi negatives`` and of the ``negcaption`` stage's ``rules`` backend (spaCy only:
vocabulary + WordNet sources, no model), per core.

Baseline in the same process: the original CE-CLIP way of parsing, one ``nlp(caption)`` call per caption
with the full pipeline (NER included). Prints captions/s for the baseline, for spaCy ``nlp.pipe`` parsing
alone, for genemi generating the CE-CLIP four types and all types, and for ``negcaption --negcaptioner rules``
(one negative per caption, its six kinds), plus the ratios: medians of ``--rounds`` rounds, interleaved.

    OMP_NUM_THREADS=1 python benchmarks/text_negatives.py              # 2,000 COCO-like captions
    OMP_NUM_THREADS=1 python benchmarks/text_negatives.py --captions 20000
"""

from __future__ import annotations

import argparse
import os
import random
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")


def coco_like_captions(n: int, seed: int = 0) -> list[str]:
    """Template captions over the curated vocabulary, with COCO's typical length and structure."""
    from genemi.text import vocabulary as vocab
    from genemi.text.inflection import indefinite_article, inflect_verb

    rng = random.Random(seed)
    nouns = [n for c in ("animal", "person", "vehicle", "furniture", "tableware", "carried") for n in vocab.nouns_in(c)]
    places = vocab.nouns_in("place")
    adjs = vocab.adjectives_in("colour") + vocab.adjectives_in("size")
    verbs = vocab.VERB_GROUPS["posture"] + vocab.VERB_GROUPS["handling"]
    rels = ["on", "under", "next to", "in front of", "behind", "near", "beside"]
    out = []
    for _ in range(n):
        a, b = rng.sample(nouns, 2)
        adj = rng.choice(adjs)
        phrase = f"{indefinite_article(adj)} {adj} {a}"
        kind = rng.random()
        if kind < 0.4:
            text = f"{phrase} {inflect_verb(rng.choice(verbs), 'VBG')} {indefinite_article(b)} {b} in the {rng.choice(places)}."
        elif kind < 0.8:
            text = f"{phrase} {rng.choice(rels)} {indefinite_article(b)} {b}."
        else:
            text = f"There is {phrase} and {indefinite_article(b)} {b} {rng.choice(rels)} the {rng.choice(places)}."
        out.append(text[0].upper() + text[1:])
    return out


def rate(n: int, fn) -> float:
    start = time.perf_counter()
    fn()
    return n / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--captions", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()

    import spacy
    import torch

    torch.set_num_threads(1)
    import statistics

    from genemi.caption_files import CaptionEntry
    from genemi.generation_pipeline.negcaption import NEGATIVE_KINDS, NegCaptionConfig, RewriteRequest
    from genemi.generation_pipeline.negcaption.rules import RulesNegCaptioner
    from genemi.generation_pipeline.stage import StageContext
    from genemi.negatives.generator import NegativeGenerator, NegativesConfig
    from genemi.text.parsing import SPACY_MODEL, parse_captions

    caps = coco_like_captions(args.captions)
    entries = [CaptionEntry(str(i), f"{i}.jpg", c) for i, c in enumerate(caps)]
    full = spacy.load(SPACY_MODEL)
    gens = {name: NegativeGenerator(NegativesConfig(types=(name,))) for name in ("ceclip", "all")}
    for g in gens.values():  # warm-up: lazy loads (WordNet), caches
        g.generate(entries[:50])
    full(caps[0])

    rules = RulesNegCaptioner(NegCaptionConfig(), StageContext())
    rules.load()
    requests = [RewriteRequest(str(i), c, 1, tuple(NEGATIVE_KINDS), i) for i, c in enumerate(caps)]
    rules.rewrite(requests[:50])
    runs = {"baseline": lambda: [full(c) for c in caps], "parse": lambda: list(parse_captions(caps)),
            **{name: (lambda g=g: g.generate(entries)) for name, g in gens.items()},
            "negcaption": lambda: rules.rewrite(requests)}
    rounds: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(args.rounds):  # interleaved: each round times every command once
        for key, fn in runs.items():
            rounds[key].append(rate(len(caps), fn))
    med = {k: statistics.median(v) for k, v in rounds.items()}
    baseline, parse_only = med["baseline"], med["parse"]
    results = {name: med[name] for name in gens}

    print(f"{len(caps)} captions, torch threads {torch.get_num_threads()}, OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}")
    print(f"  baseline  nlp(caption) one by one, full pipeline : {baseline:8.0f} captions/s")
    print(f"  genemi    nlp.pipe parse only (no NER)            : {parse_only:8.0f} captions/s  ({parse_only / baseline:.2f}x)")
    for name, value in results.items():
        types = len(gens[name].config.types)
        print(f"  genemi    negatives, {name:6s} ({types:2d} types)           : {value:8.0f} captions/s  ({value / baseline:.2f}x)")
    value = med["negcaption"]
    print(f"  genemi    negcaption rules (1 negative, 6 kinds)  : {value:8.0f} captions/s  ({value / baseline:.2f}x)")
    print(f"medians of {args.rounds} interleaved rounds; per round: "
          + "; ".join(f"{k} {', '.join(f'{x:.0f}' for x in v)}" for k, v in rounds.items()))


if __name__ == "__main__":
    main()
