"""The one score-filter rule shared by trainer, export, stats and gallery."""

import argparse
import math

import pytest

from genemi.score_filters import DEFAULT_MIN_ITM, DEFAULT_MIN_IVA, passes, threshold_arg


def test_strictly_greater_passes_missing_and_non_finite_fail_an_active_filter():
    assert (DEFAULT_MIN_ITM, DEFAULT_MIN_IVA) == (0.0, 14.0)  # the original trainer's itm/iva_score_thres
    assert passes(14.01, 14.0) and not passes(14.0, 14.0) and not passes(-0.5, 0.0)
    assert not passes(None, 0.0) and not passes(math.nan, 0.0) and not passes(math.inf, 0.0)
    assert passes(None, None) and passes(-1e9, None)  # filter off


def test_threshold_argument():
    assert threshold_arg("none") is None and threshold_arg(" None ") is None and threshold_arg("0.5") == 0.5
    for bad in ("abc", "nan", "inf"):
        with pytest.raises(argparse.ArgumentTypeError):
            threshold_arg(bad)

