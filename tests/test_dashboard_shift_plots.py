"""dashboard.shift_plots: the data inside each calibration and shift element, without rendering."""

from __future__ import annotations

import holoviews as hv
import numpy as np
import pytest

from core import shift
from core.calibration import reliability
from dashboard import shift_plots


@pytest.fixture(scope="module")
def groups() -> dict:
    rng = np.random.default_rng(2)
    images = rng.integers(0, 256, (200, 28, 28)).astype(np.uint8)
    labels = rng.integers(0, 10, 200)

    def probabilities(x):  # a fixed random predictive of 4 draws
        logits = np.random.default_rng(int(x.sum()) % 2**32).normal(size=(4, len(x), 10))
        p = np.exp(logits)
        return (p / p.sum(-1, keepdims=True)).astype(np.float32)

    return shift.evaluate_suite(probabilities, images, labels)


def test_reliability_diagram_shows_bars_gap_counts_and_diagonal():
    probability = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.45, 0.55]])
    bins = reliability(probability, np.array([0, 1, 1, 0]), n_bins=5)
    overlay = shift_plots.reliability_diagram({"a": bins, "b": bins})
    rectangles = [e for e in overlay if isinstance(e, hv.Rectangles)]
    assert len(rectangles) == 3  # a's bars and gap, b's outlined bars
    np.testing.assert_allclose(rectangles[0].dimension_values("accuracy"), [0.0, 0.0, 0.0])
    np.testing.assert_allclose(rectangles[0].dimension_values("y1"), [0.0, 0.5, 1.0])  # per filled bin
    labels = next(e for e in overlay if isinstance(e, hv.Labels))
    assert list(labels.dimension_values("count")) == ["1", "2", "1"]
    assert next(e for e in overlay if isinstance(e, hv.Curve)).dimension_values(0).tolist() == [0, 1]


@pytest.mark.parametrize("kind, n", [("rotation", len(shift.ROTATIONS)), ("translation", len(shift.TRANSLATIONS))])
def test_shift_curves_follow_the_stored_figures(groups, kind, n):
    summary = groups["shift"]
    overlay = shift_plots.shift_curves({"a": summary, "b": summary}, kind, "accuracy", label="Accuracy")
    curves = [e for e in overlay if isinstance(e, hv.Curve)]
    assert len(curves) == 2 and len(curves[0]) == n
    np.testing.assert_allclose(curves[0].dimension_values(1), summary.accuracy.values[summary.kind.values == kind])
    measured = shift_plots.shift_curves({"a": summary}, kind, "measure_mean", measure="entropy", label="Entropy")
    band = next(e for e in measured if isinstance(e, hv.Area))
    quartiles = summary.measure_quantile.sel(measure="entropy").values[summary.kind.values == kind]
    np.testing.assert_allclose(band.dimension_values(1), quartiles[:, 0], rtol=1e-6)


def test_foreign_histograms_compare_the_set_with_clean_digits(groups):
    overlay = shift_plots.foreign_histograms(groups["shift_digits"], "letters", "entropy", "Entropy")
    clean, letters = [e for e in overlay if isinstance(e, hv.Histogram)]
    widths = np.diff(clean.edges)
    assert np.sum(clean.dimension_values("density") * widths) == pytest.approx(1.0)
    assert np.sum(letters.dimension_values("density") * widths) == pytest.approx(1.0)
    assert letters.label == "letters"
