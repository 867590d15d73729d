"""Statistics the dashboard derives from a run's arrays: NumPy (and xarray coordinates) in, NumPy out.

No HoloViews and no Panel: :mod:`dashboard.rundata` computes the per-run summaries here once, at
load, and :mod:`dashboard.plots` draws them. Shapes use the run file's names: ``iteration``,
``draw``, ``digit``, ``class`` (10 classes).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

__all__ = [
    "N_CLASSES",
    "SETTLED_FACTOR",
    "Histogram",
    "WeightSummary",
    "confusion_counts",
    "elbo_magnitude",
    "elbo_settled_start",
    "hdi",
    "histogram",
    "histogram_bins",
    "nonfinite_iterations",
    "nonfinite_runs",
    "per_class_accuracy",
    "scale_ratio",
    "smooth",
    "weight_sample",
    "weight_summary",
]

N_CLASSES = 10
MAX_BINS = 50
SETTLED_FACTOR = 10.0
"""An ELBO has settled, for where its plot starts, once its magnitude is within this factor of its final one."""


# --- ELBO ---------------------------------------------------------------------------------------


def smooth(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average over ``window`` steps, only where the window is full.

    values : (n,) -> (n - window + 1,); a window longer than the data is cut to its length.
    Non-finite values (NaN, inf) are left out of each mean; a window with none finite gives NaN.
    """
    values = np.asarray(values, dtype=np.float64)
    window = max(1, min(int(window), len(values)))
    finite = np.isfinite(values)
    if window == 1:
        return np.where(finite, values, np.nan)
    sums = np.cumsum(np.concatenate([[0.0], np.where(finite, values, 0.0)]))
    counts = np.cumsum(np.concatenate([[0], finite]))
    n = counts[window:] - counts[:-window]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, (sums[window:] - sums[:-window]) / n, np.nan)


def nonfinite_iterations(elbo: xr.DataArray) -> np.ndarray:
    """The iterations whose stored ELBO is NaN or infinite. elbo : (iteration,) -> (k,)"""
    return elbo["iteration"].values[~np.isfinite(elbo.values)]


def nonfinite_runs(iterations: np.ndarray) -> list[tuple[int, int]]:
    """Consecutive stretches ``(first, last)`` of sorted iterations (k,), e.g. of non-finite ELBO values."""
    if len(iterations) == 0:
        return []
    breaks = np.flatnonzero(np.diff(iterations) > 1)
    firsts = np.concatenate([[iterations[0]], iterations[breaks + 1]])
    lasts = np.concatenate([iterations[breaks], [iterations[-1]]])
    return [(int(f), int(last)) for f, last in zip(firsts, lasts)]


def elbo_magnitude(elbo: np.ndarray) -> float:
    """|mean| of the finite ELBO values of the last 5 % of iterations (the file's ``final_elbo`` rule);
    NaN when there are none. elbo : (iteration,)"""
    values = np.asarray(elbo, dtype=np.float64)
    tail = values[-max(1, len(values) // 20) :]
    tail = tail[np.isfinite(tail)]
    return float(abs(tail.mean())) if len(tail) else float("nan")


def scale_ratio(a: np.ndarray, b: np.ndarray) -> float:
    """How many times larger the bigger of two ELBO histories' final magnitudes is (>= 1; NaN if unknown).

    a, b : (iteration,) each. ELBOs of different priors or starts can differ a hundredfold (the scale
    mixture's log prior of a million weights dwarfs a Normal's), so one axis flattens the other.
    """
    ma, mb = elbo_magnitude(a), elbo_magnitude(b)
    if not (np.isfinite(ma) and np.isfinite(mb)) or min(ma, mb) == 0:
        return float("nan")
    return max(ma, mb) / min(ma, mb)


def elbo_settled_start(elbo: np.ndarray, window: int = 50, factor: float = SETTLED_FACTOR) -> int:
    """The first iteration (1-based) at which the trailing mean of −ELBO is within ``factor`` of its
    final magnitude: where to start the plot so that a log axis spans the convergence, not the first
    steps' drop from a random start. 1 if it is there from the start. elbo : (iteration,)"""
    final = elbo_magnitude(elbo)
    smoothed = np.abs(smooth(elbo, window))
    if not np.isfinite(final) or final == 0:
        return 1
    settled = np.flatnonzero(smoothed <= factor * final)
    # smoothed[i] is the mean of iterations i+1 .. i+window (1-based): start the plot at its window's first
    return int(settled[0]) + 1 if len(settled) else 1


# --- distributions ------------------------------------------------------------------------------


def hdi(samples: np.ndarray, prob: float = 0.94) -> tuple[float, float]:
    """The narrowest interval holding ``prob`` of the samples (highest density interval). samples : (n,)"""
    x = np.sort(np.asarray(samples, dtype=np.float64).ravel())
    n_in = max(1, int(np.floor(prob * len(x))))
    widths = x[n_in - 1 :] - x[: len(x) - n_in + 1]
    lo = int(np.argmin(widths))
    return float(x[lo]), float(x[lo + n_in - 1])


def histogram_bins(n: int) -> int:
    """Bins for a histogram of ``n`` values: about sqrt(n), at least 5 and at most 50, so that 32 biases
    get 6 bins of a few values each and a million weights 50."""
    return int(np.clip(np.ceil(np.sqrt(max(n, 1))), 5, MAX_BINS))


@dataclass(frozen=True)
class Histogram:
    """Counts of values in bins. counts : (bins,) int   edges : (bins + 1,)"""

    counts: np.ndarray
    edges: np.ndarray

    @property
    def total(self) -> int:
        return int(self.counts.sum())

    def density(self) -> np.ndarray:
        """Counts per unit of the value, integrating to 1 (zeros for an empty histogram). (bins,)"""
        widths = np.diff(self.edges)
        total = self.total
        return self.counts / (total * widths) if total else np.zeros(len(self.counts))


def histogram(values: np.ndarray, bins: int | np.ndarray | None = None) -> Histogram:
    """Histogram of the finite values (any shape), in :func:`histogram_bins` bins unless ``bins`` (a
    number or the edges) is given."""
    values = np.asarray(values, dtype=np.float64).ravel()
    values = values[np.isfinite(values)]
    counts, edges = np.histogram(values, bins=histogram_bins(len(values)) if bins is None else bins)
    return Histogram(counts, edges)


def weight_sample(
    mean: np.ndarray, sd: np.ndarray, max_n: int = 50_000, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """The same random subset of at most ``max_n`` weights from a tensor's means and sds, flattened.

    mean, sd : any shape (the tensor's) -> two (min(size, max_n),) arrays.
    """
    mean, sd = np.asarray(mean).ravel(), np.asarray(sd).ravel()
    if mean.size <= max_n:
        return mean, sd
    pick = np.random.default_rng(seed).choice(mean.size, max_n, replace=False)
    return mean[pick], sd[pick]


@dataclass(frozen=True)
class WeightSummary:
    """What the Weights tab shows of one tensor, computed once from all its weights.

    size : the number of weights   mean, sd, log10_snr : histograms of the posterior means, sds and
    log10(|mean| / sd) over all of them   sample_mean, sample_sd : (n,) the same random weights' mean
    and sd, for a scatter plot (a browser draws a few thousand points as well as a million)
    """

    size: int
    mean: Histogram
    sd: Histogram
    log10_snr: Histogram
    sample_mean: np.ndarray
    sample_sd: np.ndarray


def weight_summary(mean: np.ndarray, sd: np.ndarray, sample: int = 4000) -> WeightSummary:
    """Histograms of a tensor's posterior means, sds and signal-to-noise ratios, and a sample of
    ``sample`` weights. mean, sd : the tensor's shape."""
    mean = np.asarray(mean, dtype=np.float64).ravel()
    sd = np.asarray(sd, dtype=np.float64).ravel()
    snr = np.log10(np.abs(mean) / np.maximum(sd, np.finfo(np.float32).tiny))
    sample_mean, sample_sd = weight_sample(mean, sd, sample)
    return WeightSummary(mean.size, histogram(mean), histogram(sd), histogram(snr), sample_mean, sample_sd)


# --- classification -----------------------------------------------------------------------------


def confusion_counts(true: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """(digit,) true and predicted labels -> (true class, predicted class) counts, (10, 10)."""
    counts = np.zeros((N_CLASSES, N_CLASSES), dtype=np.int64)
    np.add.at(counts, (np.asarray(true, dtype=np.intp), np.asarray(predicted, dtype=np.intp)), 1)
    return counts


def per_class_accuracy(true: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """(digit,) true and predicted labels -> (class,) share of each true class predicted right (NaN if absent)."""
    counts = confusion_counts(true, predicted)
    totals = counts.sum(axis=1)
    return np.divide(np.diag(counts), totals, out=np.full(N_CLASSES, np.nan), where=totals > 0)
