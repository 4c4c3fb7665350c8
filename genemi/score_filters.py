"""The variation score filters, in one place: the trainer, ``genemi generate export``, ``stats`` and ``gallery``
all keep a variation when its mean BLIP ITM logit and its IVA are **strictly greater** than the thresholds
(the original trainer's rule, ``itm_score_thres = 0``, ``iva_score_thres = 14``).

The IVA filter names its scope (``--iva-scope``, YAML ``iva_scope``): ``image`` (IVA over the whole variation
image, the original's definition) or ``window`` (over the item's crop window). The default scope and threshold
are not the original's 14: with genemi's mask paste only the painted region varies, so 14 % of the image kept
no true edit at all in the shapes-world measurement (``benchmarks/iva_scope.py``, docs/generation_pipeline.md,
"IVA: scope and threshold"); the measured best is the default.
"""

from __future__ import annotations

import argparse
import math
from typing import Any

#: the original trainer's ITM threshold: mean raw ITM logit > 0
DEFAULT_MIN_ITM = 0.0
#: what the IVA filter compares: ``image`` (the original's definition) or ``window`` (the item's crop window)
IVA_SCOPES = ("image", "window")
DEFAULT_IVA_SCOPE = "image"
#: IVA > this (%), in the default scope: measured on the shapes world (benchmarks/iva_scope.py)
DEFAULT_MIN_IVA = 2.25
#: the original trainer's IVA threshold, for reproducing it (``--iva-scope image --min-iva 14``)
ORIGINAL_MIN_IVA = 14.0


def mean_itm(itm_scores: list[float] | None) -> float | None:
    """The mean of a variation's ITM logits (one per caption): the score the ITM filter compares; None when
    it has none (the filter then drops it)."""
    return sum(itm_scores) / len(itm_scores) if itm_scores else None


def iva_of(record: Any, scope: str) -> float | None:
    """A variation's IVA in ``scope`` (``iva_image`` / ``iva_window`` of a record that has them)."""
    if scope not in IVA_SCOPES:
        raise ValueError(f"IVA scope must be one of {', '.join(IVA_SCOPES)}, not {scope!r}")
    return getattr(record, f"iva_{scope}", None)


def passes(score: float | None, threshold: float | None) -> bool:
    """``score > threshold``; a threshold of None is off, and a missing or non-finite score fails an active one."""
    if threshold is None:
        return True
    return score is not None and math.isfinite(score) and score > threshold


def threshold_arg(value: str) -> float | None:
    """argparse type of ``--min-itm`` / ``--min-iva`` / ``--itm-threshold``: a finite number, or ``none`` (off)."""
    if value.strip().lower() == "none":
        return None
    try:
        number = float(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected a number or 'none', not {value!r}") from exc
    if not math.isfinite(number):
        raise argparse.ArgumentTypeError(f"expected a finite number or 'none', not {value!r}")
    return number
