"""Run data (NumPy arrays, xarray) -> HoloViews elements for the dashboard's views.

Nothing here knows about Panel or about the app's state: every function takes plain arrays and
returns an element whose data can be inspected without rendering. Shapes use the run file's
names: ``draw``, ``digit``, ``class`` (10 classes).
"""

from __future__ import annotations

import holoviews as hv
import holoviews.plotting.bokeh
import numpy as np
import xarray as xr

__all__ = [
    "FONTS",
    "confusion_counts",
    "confusion_heatmap",
    "elbo_curve",
    "hdi",
    "hyperprior_forest",
    "hyperprior_histogram",
    "measure_histograms",
    "per_class_accuracy",
    "per_class_bars",
    "referral_plot",
    "smooth",
    "weight_histograms",
    "weight_sample",
    "weight_scatter",
]

N_CLASSES = 10
FONTS = {"title": "13pt", "labels": "12pt", "xticks": "11pt", "yticks": "11pt", "legend": "11pt"}
BLUE, ORANGE, GREY = "#1f77b4", "#d95f02", "#555555"


def _no_logo(plot, element) -> None:
    # the Bokeh logo in every toolbar crowds the titles of narrow plots
    plot.state.toolbar.logo = None


_COMMON = {
    "fontsize": FONTS,
    "responsive": True,
    "toolbar": "right",
    "default_tools": ["pan", "wheel_zoom", "box_zoom", "reset", "save"],
    "hooks": [_no_logo],
}

ITERATION = hv.Dimension("iteration", label="Iteration (ADVI step)")
ELBO = hv.Dimension("elbo", label="ELBO (nats)")
NEG_ELBO = hv.Dimension("neg_elbo", label="−ELBO (nats, log scale)")
CLASS = hv.Dimension("class", label="Class (digit)")


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


def elbo_curve(
    elbo: xr.DataArray,
    window: int = 1,
    start: int = 1,
    log_scale: bool = False,
    label: str = "ELBO",
    max_points: int = 4000,
) -> hv.Curve:
    """The ELBO per iteration from ``start`` on, smoothed by a trailing mean of ``window`` steps.

    elbo : (iteration,) with coordinate ``iteration`` (1..N). Each smoothed point sits at the last
    iteration of its window, so the curve has ``N - start + 1 - window + 1`` points (thinned by a
    stride to at most ``max_points``: a browser draws 4,000 points as well as 100,000).
    Non-finite values are left out of the means (see :func:`smooth`); where a window holds none,
    the curve has a gap. With ``log_scale`` the curve is −ELBO on a log axis; points where
    −ELBO <= 0 are dropped.
    """
    tail = elbo.sel(iteration=slice(start, None))
    values = smooth(tail.values, window)
    iterations = tail["iteration"].values[len(tail) - len(values) :]
    stride = max(1, int(np.ceil(len(values) / max_points)))
    iterations, values = iterations[::stride], values[::stride]
    if log_scale:
        values = -values
        keep = ~(values <= 0)  # NaN kept: it is a gap, not a point
        curve = hv.Curve((iterations[keep], values[keep]), ITERATION, NEG_ELBO, label=label)
        return curve.opts(logy=True, line_width=1.5, tools=["hover"], height=380, **_COMMON)
    curve = hv.Curve((iterations, values), ITERATION, ELBO, label=label)
    return curve.opts(line_width=1.5, tools=["hover"], height=380, **_COMMON)


def nonfinite_runs(iterations: np.ndarray) -> list[tuple[int, int]]:
    """Consecutive stretches ``(first, last)`` of sorted iterations (k,), e.g. of non-finite ELBO values."""
    if len(iterations) == 0:
        return []
    breaks = np.flatnonzero(np.diff(iterations) > 1)
    firsts = np.concatenate([[iterations[0]], iterations[breaks + 1]])
    lasts = np.concatenate([iterations[breaks], [iterations[-1]]])
    return [(int(f), int(last)) for f, last in zip(firsts, lasts)]


def nonfinite_marks(runs: list[tuple[int, int]]) -> hv.VLines:
    """A red vertical line at the first iteration of each stretch of non-finite ELBO values: a band
    one iteration wide would be narrower than a pixel on a 30,000-iteration axis."""
    firsts = np.array([first for first, _ in runs], dtype=float)
    return hv.VLines(firsts, kdims=[ITERATION], label="NaN or infinite ELBO").opts(color="#d62728", line_width=1.5)


def hdi(samples: np.ndarray, prob: float = 0.94) -> tuple[float, float]:
    """The narrowest interval holding ``prob`` of the samples (highest density interval). samples : (n,)"""
    x = np.sort(np.asarray(samples, dtype=np.float64).ravel())
    n_in = max(1, int(np.floor(prob * len(x))))
    widths = x[n_in - 1 :] - x[: len(x) - n_in + 1]
    lo = int(np.argmin(widths))
    return float(x[lo]), float(x[lo + n_in - 1])


def hyperprior_histogram(draws: np.ndarray, name: str, bins: int = 40) -> hv.Overlay:
    """Histogram (density) of one hyperprior's posterior draws, its mean (line) and 94% HDI (band).

    draws : (draw,) positive values of ``{layer}.{tensor}_sd``, the prior sd of that tensor's weights.
    """
    draws = np.asarray(draws, dtype=np.float64).ravel()
    lo, hi = hdi(draws)
    mean = float(draws.mean())
    density, edges = np.histogram(draws, bins=bins, density=True)
    value = hv.Dimension(name, label=f"Prior sd of {name.removesuffix('_sd')} (weight units)")
    hist = hv.Histogram((edges, density), kdims=value, vdims=hv.Dimension("density", label="Posterior density"))
    return (
        hv.VSpan(lo, hi).opts(color=ORANGE, alpha=0.15)
        * hist.opts(color=BLUE, alpha=0.7, line_color="white")
        * hv.VLine(mean).opts(color=ORANGE, line_width=2)
    ).opts(title=f"{name}: mean {mean:.3g}", xlabel=value.label, ylabel="Posterior density", height=320, **_COMMON)


def hyperprior_forest(posterior: dict[str, np.ndarray]) -> hv.Overlay:
    """All hyperpriors at once: each one's mean (dot) and 94% HDI (bar), one row per hyperprior.

    posterior : name -> (draw,) draws. Rows are numeric positions labelled with the names, top
    to bottom in the given order (the network's layer order).
    """
    names = list(posterior)
    rows = np.arange(len(names))[::-1].astype(float)
    intervals = np.array([hdi(posterior[n]) for n in names]).reshape(-1, 2)
    means = np.array([float(np.mean(posterior[n])) for n in names])
    value = hv.Dimension("value", label="Prior sd (weight units): mean and 94% HDI")
    row = hv.Dimension("row", label="Hyperprior")
    segments = hv.Segments((intervals[:, 0], rows, intervals[:, 1], rows), [value, row, "x1", "y1"])
    dots = hv.Scatter((means, rows), value, row)
    ticks = list(zip(rows.tolist(), names))
    return (segments.opts(color=BLUE, line_width=4) * dots.opts(color=ORANGE, size=9)).opts(
        title="All hyperpriors", yticks=ticks, height=max(220, 40 * len(names) + 90), **_COMMON
    )


def weight_sample(
    mean: np.ndarray, sd: np.ndarray, max_n: int = 50_000, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """The same random subset of at most ``max_n`` weights from a tensor's means and sds, flattened.

    mean, sd : any shape (the tensor's) -> two (min(size, max_n),) arrays. Histograms of 50,000
    weights look like those of a million, and cost a fraction to compute and send.
    """
    mean, sd = np.asarray(mean).ravel(), np.asarray(sd).ravel()
    if mean.size <= max_n:
        return mean, sd
    pick = np.random.default_rng(seed).choice(mean.size, max_n, replace=False)
    return mean[pick], sd[pick]


def _histogram(values: np.ndarray, dim: hv.Dimension, title: str, color: str, bins: int = 50) -> hv.Histogram:
    counts, edges = np.histogram(values[np.isfinite(values)], bins=bins)
    return hv.Histogram((edges, counts), kdims=dim, vdims=hv.Dimension("count", label="Number of weights")).opts(
        title=title, color=color, line_color="white", height=280, **_COMMON
    )


def weight_histograms(mean: np.ndarray, sd: np.ndarray, name: str) -> hv.Layout:
    """Distributions of a tensor's posterior means, sds and signal-to-noise ratios |mean| / sd.

    mean, sd : (n,) flattened (a sample of) the tensor's weights. The ratio spans decades, so it
    is shown as log10.
    """
    snr = np.log10(np.abs(mean) / np.maximum(sd, np.finfo(np.float32).tiny))
    return hv.Layout(
        [
            _histogram(mean, hv.Dimension("mean", label=f"{name} posterior mean"), f"{name}: means", BLUE),
            _histogram(sd, hv.Dimension("sd", label=f"{name} posterior sd"), f"{name}: sds", ORANGE),
            _histogram(
                snr, hv.Dimension("log10_snr", label=f"log10(|mean| / sd) of {name}"), f"{name}: signal-to-noise", GREY
            ),
        ]
    ).cols(3)


def weight_scatter(mean: np.ndarray, sd: np.ndarray, name: str, max_points: int = 4000) -> hv.Points:
    """Posterior sd against mean of up to ``max_points`` weights. mean, sd : (n,)"""
    points = hv.Points(
        (mean[:max_points], sd[:max_points]),
        [hv.Dimension("mean", label=f"{name} posterior mean"), hv.Dimension("sd", label=f"{name} posterior sd")],
    )
    return points.opts(
        title=f"{name}: sd against mean ({min(len(mean), max_points):,} weights)",
        size=3,
        alpha=0.3,
        color=BLUE,
        height=300,
        **_COMMON,
    )


def confusion_counts(true: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """(digit,) true and predicted labels -> (true class, predicted class) counts, (10, 10)."""
    counts = np.zeros((N_CLASSES, N_CLASSES), dtype=np.int64)
    np.add.at(counts, (np.asarray(true, dtype=np.intp), np.asarray(predicted, dtype=np.intp)), 1)
    return counts


def confusion_heatmap(counts: np.ndarray) -> hv.Overlay:
    """Confusion matrix (10, 10) of counts as a heat map with the non-zero counts written in the cells.

    x is the predicted class and y the true class, both as the strings '0'..'9' (categorical axes,
    so a tap reports the cell's classes). Colours use histogram equalization, since the diagonal holds
    most digits and would otherwise wash out the errors; the palette stays light so the counts read.
    """
    classes = [str(c) for c in range(N_CLASSES)]
    rows = [(classes[p], classes[t], int(counts[t, p])) for t in range(N_CLASSES) for p in range(N_CLASSES)]
    kdims = [hv.Dimension("predicted", label="Predicted class"), hv.Dimension("true", label="True class")]
    heat = hv.HeatMap(rows, kdims, hv.Dimension("count", label="Digits")).opts(
        cmap=["#ffffff", "#deebf7", "#9ecae1", "#6baed6"],
        cnorm="eq_hist",
        colorbar=False,
        tools=["hover", "tap"],
        invert_yaxis=True,
        xaxis="top",
        line_color="#dddddd",
    )
    labels = hv.Labels([r for r in rows if r[2]], kdims, "count").opts(text_font_size="11pt", text_color="black")
    return (heat * labels).opts(title="Confusion matrix: click a cell to see its digits", height=480, **_COMMON)


def per_class_accuracy(true: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """(digit,) true and predicted labels -> (class,) share of each true class predicted right (NaN if absent)."""
    counts = confusion_counts(true, predicted)
    totals = counts.sum(axis=1)
    return np.divide(np.diag(counts), totals, out=np.full(N_CLASSES, np.nan), where=totals > 0)


def per_class_bars(accuracy: dict[str, np.ndarray]) -> hv.Bars:
    """Per-class accuracy of one or more runs (run name -> (class,)) as grouped bars, in percent."""
    rows = [(str(c), run, float(100 * acc[c])) for run, acc in accuracy.items() for c in range(N_CLASSES)]
    bars = hv.Bars(rows, [CLASS, hv.Dimension("run", label="Run")], hv.Dimension("accuracy", label="Accuracy (%)"))
    lowest = min((r[2] for r in rows if np.isfinite(r[2])), default=0.0)
    return bars.opts(
        title="Accuracy per true class",
        ylim=(max(0.0, lowest - 5), 100.5),
        tools=["hover"],
        multi_level=False,
        color=hv.dim("run"),
        cmap=[BLUE, ORANGE],
        show_legend=len(accuracy) > 1,
        height=300,
        **_COMMON,
    )


def measure_histograms(values: np.ndarray, correct: np.ndarray, label: str, bins: int = 40) -> hv.Overlay:
    """Distribution (density) of an uncertainty measure for correct and for misclassified digits.

    values : (digit,) the measure; correct : (digit,) bool. Both groups share the bins so the
    shapes compare directly.
    """
    values = np.asarray(values, dtype=np.float64)
    correct = np.asarray(correct, dtype=bool)
    finite = np.isfinite(values)
    lo, hi = (values[finite].min(), values[finite].max()) if finite.any() else (0.0, 1.0)
    edges = np.linspace(lo, hi if hi > lo else lo + 1.0, bins + 1)
    dim, density = hv.Dimension("uncertainty", label=label), hv.Dimension("density", label="Density")
    groups = []
    for name, mask, color in (("correct", correct, BLUE), ("misclassified", ~correct, ORANGE)):
        counts, _ = np.histogram(values[mask & finite], bins=edges, density=bool((mask & finite).any()))
        groups.append(
            hv.Histogram((edges, counts), kdims=dim, vdims=density, label=f"{name} ({int(mask.sum()):,})").opts(
                color=color, alpha=0.55, line_color=None
            )
        )
    return hv.Overlay(groups).opts(
        title="Correct vs misclassified digits", legend_position="top_right", height=340, **_COMMON
    )


def referral_plot(fractions: np.ndarray, accuracy: np.ndarray, label: str = "accuracy") -> hv.Curve:
    """Accuracy on the digits kept against the share referred (most uncertain first), both in percent.

    fractions, accuracy : (n,) as returned by ``core.uncertainty.referral_curve``.
    """
    curve = hv.Curve(
        (100 * np.asarray(fractions), 100 * np.asarray(accuracy)),
        hv.Dimension("referred", label="Most uncertain digits set aside (%)"),
        hv.Dimension("accuracy", label="Accuracy on the rest (%)"),
        label=label,
    )
    return curve.opts(title="Referral curve", line_width=2, color=BLUE, tools=["hover"], height=340, **_COMMON)
