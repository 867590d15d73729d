"""core.calibration against hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from core import calibration as c

# four digits, three classes: confidences 0.9 (right), 0.6 (wrong), 0.5 (right), 1.0 (right)
P = np.array([[0.9, 0.05, 0.05], [0.3, 0.6, 0.1], [0.5, 0.25, 0.25], [0.0, 0.0, 1.0]])
TRUE = np.array([0, 0, 0, 2])


def test_reliability_bins_by_confidence():
    bins = c.reliability(P, TRUE, n_bins=5)  # edges 0, .2, .4, .6, .8, 1
    np.testing.assert_array_equal(bins.count, [0, 0, 2, 0, 2])  # 0.5 and 0.6 in (0.4, 0.6]; 0.9 and 1.0 in the last
    np.testing.assert_allclose(bins.confidence[[2, 4]], [0.55, 0.95])
    np.testing.assert_allclose(bins.accuracy[[2, 4]], [0.5, 1.0])
    assert np.isnan(bins.accuracy[0]) and np.isnan(bins.confidence[3])
    np.testing.assert_allclose(bins.gap[[2, 4]], [0.05, -0.05])


def test_ece_is_the_count_weighted_gap():
    assert c.expected_calibration_error(P, TRUE, n_bins=5) == pytest.approx((2 * 0.05 + 2 * 0.05) / 4)
    perfect = np.eye(3)[[0, 1, 2]]
    assert c.expected_calibration_error(perfect, np.array([0, 1, 2])) == 0.0


def test_nll_and_brier_by_hand():
    nll = -(math.log(0.9) + math.log(0.3) + math.log(0.5) + math.log(1.0)) / 4
    assert c.negative_log_likelihood(P, TRUE) == pytest.approx(nll)
    brier = ((0.1**2 + 2 * 0.05**2) + (0.7**2 + 0.6**2 + 0.1**2) + (0.5**2 + 2 * 0.25**2) + 0.0) / 4
    assert c.brier_score(P, TRUE) == pytest.approx(brier)
    # a zero probability for the true class is floored, not infinite
    assert math.isfinite(c.negative_log_likelihood(np.array([[1.0, 0.0]]), np.array([1])))


def test_summary_says_which_way_the_confidence_errs():
    summary = c.calibration_summary(P, TRUE, n_bins=5)
    assert summary["accuracy"] == 0.75
    assert summary["overconfidence"] == pytest.approx((0.9 + 0.6 + 0.5 + 1.0) / 4 - 0.75)
    assert set(summary) == {"accuracy", "ece", "nll", "brier", "overconfidence"}


def test_shapes_are_checked():
    with pytest.raises(ValueError, match="disagree"):
        c.reliability(P, TRUE[:2])
