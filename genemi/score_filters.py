"""The variation score filters, in one place: the trainer, ``genemi generate export``, ``stats`` and ``gallery``
all keep a variation when its mean BLIP ITM logit and its IVA are **strictly greater** than the thresholds
(the original trainer's rule, ``itm_score_thres = 0``, ``iva_score_thres = 14``)."""

from __future__ import annotations

import argparse
import math

#: the original trainer's thresholds: mean raw ITM logit > 0, IVA > 14 (%)
DEFAULT_MIN_ITM = 0.0
DEFAULT_MIN_IVA = 14.0


def mean_itm(itm_scores: list[float] | None) -> float | None:
    """The mean of a variation's ITM logits (one per caption): the score the ITM filter compares; None when
    it has none (the filter then drops it)."""
    return sum(itm_scores) / len(itm_scores) if itm_scores else None


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
