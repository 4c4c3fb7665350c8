"""An embedder with hand-chosen similarities, so every benchmark metric can be checked against hand computation.

Image ``j`` (in the order the benchmark lists its unique images) embeds as the one-hot e_j and a text's vector
holds its score with each image, so s(image, text) is exactly ``scores[(image key, text)]`` (0 when not given);
or texts get the given vectors (``text_vecs``) when text-text similarities matter. Missing files are reported
as unreadable images, as the real embedder does.
"""

from pathlib import Path

import numpy as np

from genemi.evaluation.scoring import embed


class FixedEmbedder:
    key = "fixed"

    def __init__(self, scores: dict, text_vecs: dict | None = None):
        self.scores, self.text_vecs = scores, text_vecs or {}

    def embed_images(self, images):
        self.order = [i.key for i in images]
        errors = [None if Path(i.path).exists() else f"image not found: {i.path}" for i in images]
        dim = max([len(images)] + [len(v) for v in self.text_vecs.values()])
        return np.eye(len(images), dim, dtype=np.float32), errors

    def embed_texts(self, texts):
        if self.text_vecs:
            return np.array([self.text_vecs[t] for t in texts], dtype=np.float32)
        vecs = np.zeros((len(texts), len(self.order)), dtype=np.float32)
        for n, text in enumerate(texts):
            for j, key in enumerate(self.order):
                vecs[n, j] = self.scores.get((key, text), 0.0)
        return vecs


def score(bench, scores, text_vecs=None, ties=None):
    """``bench``'s result with these similarities (under tie rule ``ties`` when given)."""
    if ties:
        bench.ties = ties
    images, texts = bench.inputs()
    return bench.score(embed(FixedEmbedder(scores, text_vecs), images, texts))
