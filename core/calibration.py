"""Is the predictive's confidence honest? Calibration of mean predictive probabilities. NumPy only.

Conventions as in :mod:`core.uncertainty`: ``probability`` is (digit, class), the mean predictive
probability over draws (or a point network's softmax), ``true`` is (digit,) the true classes.

The reliability diagram and the expected calibration error (ECE) use equal-width confidence bins
(15 by default, as Guo et al. 2017, Ovadia et al. 2019 and Google's uncertainty-baselines report
them), so the figures compare with those references; arviz-plots' ``plot_ppc_pava`` calibrates by
isotonic regression instead, which gives no such ECE.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "N_BINS",
    "Reliability",
    "brier_score",
    "calibration_summary",
    "expected_calibration_error",
    "negative_log_likelihood",
    "reliability",
]

N_BINS = 15
# a probability of exactly 0 for the true class would make the NLL infinite: floor it, as float32 does
_FLOOR = float(np.finfo(np.float32).tiny)


def _checked(probability: np.ndarray, true: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    probability = np.asarray(probability, dtype=np.float64)
    true = np.asarray(true)
    if probability.ndim != 2 or true.shape != probability.shape[:1]:
        raise ValueError(f"probability (digit, class) and true (digit,) disagree: {probability.shape}, {true.shape}")
    return probability, true.astype(np.int64)


@dataclass(frozen=True)
class Reliability:
    """Equal-width confidence bins of a reliability diagram; every array is (bin,).

    ``lower``/``upper`` are the bin edges; ``count`` the digits whose confidence (highest class
    probability) falls in the bin; ``confidence`` their mean confidence and ``accuracy`` the share
    of them predicted right (NaN for an empty bin).
    """

    lower: np.ndarray
    upper: np.ndarray
    count: np.ndarray
    confidence: np.ndarray
    accuracy: np.ndarray

    @property
    def gap(self) -> np.ndarray:
        """Confidence minus accuracy per bin: above 0 overconfident, below 0 underconfident. (bin,)"""
        return self.confidence - self.accuracy


def reliability(probability: np.ndarray, true: np.ndarray, n_bins: int = N_BINS) -> Reliability:
    """The reliability diagram's bins: confidence ``max_k p_k`` against accuracy of ``argmax_k p_k``.

    Bins are ``(i / n, (i + 1) / n]``, the first one closed on the left, so a confidence of 1.0 is
    counted in the last bin.
    """
    probability, true = _checked(probability, true)
    confidence = probability.max(axis=1)
    correct = probability.argmax(axis=1) == true
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    index = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, n_bins - 1)
    count = np.bincount(index, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_confidence = np.bincount(index, weights=confidence, minlength=n_bins) / count
        accuracy = np.bincount(index, weights=correct, minlength=n_bins) / count
    return Reliability(edges[:-1], edges[1:], count, mean_confidence, accuracy)


def expected_calibration_error(probability: np.ndarray, true: np.ndarray, n_bins: int = N_BINS) -> float:
    """ECE: the count-weighted mean of ``|confidence - accuracy|`` over equal-width bins, in [0, 1]."""
    bins = reliability(probability, true, n_bins)
    filled = bins.count > 0
    return float(np.sum(bins.count[filled] * np.abs(bins.gap[filled])) / bins.count.sum())


def negative_log_likelihood(probability: np.ndarray, true: np.ndarray) -> float:
    """Mean over digits of ``-log p(true class)`` (nats per digit)."""
    probability, true = _checked(probability, true)
    picked = probability[np.arange(len(true)), true]
    return float(-np.mean(np.log(np.maximum(picked, _FLOOR))))


def brier_score(probability: np.ndarray, true: np.ndarray) -> float:
    """Mean over digits of ``sum_k (p_k - [k = true])^2``, from 0 (certain and right) to 2.

    Summed over classes, as Brier (1950) defined it; Ovadia et al. (2019) divide it by the number
    of classes (10 here).
    """
    probability, true = _checked(probability, true)
    onehot = np.zeros_like(probability)
    onehot[np.arange(len(true)), true] = 1.0
    return float(np.mean(np.sum((probability - onehot) ** 2, axis=1)))


def calibration_summary(probability: np.ndarray, true: np.ndarray, n_bins: int = N_BINS) -> dict[str, float]:
    """Accuracy (of the most probable class), ECE, NLL, Brier, and mean confidence minus accuracy
    (``overconfidence``: above 0 the predictive claims more than it delivers)."""
    probability, true = _checked(probability, true)
    accuracy = float(np.mean(probability.argmax(axis=1) == true))
    return {
        "accuracy": accuracy,
        "ece": expected_calibration_error(probability, true, n_bins),
        "nll": negative_log_likelihood(probability, true),
        "brier": brier_score(probability, true),
        "overconfidence": float(np.mean(probability.max(axis=1))) - accuracy,
    }
