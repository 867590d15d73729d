"""Run data (NumPy arrays, xarray, the summaries of :mod:`dashboard.stats`) -> HoloViews elements.

Nothing here knows about Panel or about the app's state: every function takes plain data and
returns an element whose data can be inspected without rendering. Functions that show several
runs take a dict ``run name -> data``, in the order the runs are drawn: the first (the chosen run)
in :data:`RUN_COLORS`' blue, the second (the compared run) in orange. Shapes use the run file's
names: ``draw``, ``digit``, ``class`` (10 classes).
"""

from __future__ import annotations

from collections.abc import Sequence

import holoviews as hv
import holoviews.plotting.bokeh  # registers the Bokeh backend, whose options the elements set
import numpy as np
import xarray as xr
from bokeh.models import BasicTicker

from . import stats
from .stats import N_CLASSES

__all__ = [
    "BLUE",
    "FONTS",
    "GREEN",
    "GREY",
    "ORANGE",
    "RUN_COLORS",
    "confusion_heatmap",
    "elbo_curve",
    "elbo_plot",
    "hyperprior_forest",
    "hyperprior_histogram",
    "measure_histograms",
    "nonfinite_marks",
    "per_class_bars",
    "referral_plot",
    "weight_histograms",
    "weight_scatter",
]

FONTS = {"title": "13pt", "labels": "12pt", "xticks": "11pt", "yticks": "11pt", "legend": "11pt"}
BLUE, ORANGE, GREY, GREEN = "#1f77b4", "#d95f02", "#555555", "#2ca02c"
RUN_COLORS = (BLUE, ORANGE)
"""The chosen run's colour, then the compared run's."""
DIAGONAL_COLOR = "#e5f5e0"  # the confusion matrix's correct cells, apart from the errors' scale
ERROR_CMAP = ["#ffffff", "#fdd0a2", "#fdae6b", "#fd8d3c"]  # light enough that black counts read on every cell


def _no_logo(plot, element) -> None:
    # the Bokeh logo in every toolbar crowds the titles of narrow plots
    plot.state.toolbar.logo = None


_COMMON = {
    "fontsize": FONTS,
    "responsive": True,
    "toolbar": "right",
    "default_tools": ["pan", "wheel_zoom", "box_zoom", "reset", "save"],
    "hooks": [_no_logo],
    # plots of a few thousand points draw as fast on a canvas, and WebGL without a GPU (virtual machines,
    # remote desktops, headless browsers) is emulated: every repaint then copies the image back, slowly
    "backend_opts": {"plot.output_backend": "canvas"},
}

ITERATION = hv.Dimension("iteration", label="Iteration (ADVI step)")
ELBO = hv.Dimension("elbo", label="ELBO (nats)")
# the curve's values keep one name, "elbo", on either axis: the label says which sign the log axis shows
NEG_ELBO = hv.Dimension("elbo", label="−ELBO (nats, log scale)")
CLASS = hv.Dimension("class", label="Class (digit)")


# --- ELBO ---------------------------------------------------------------------------------------


def elbo_curve(
    elbo: xr.DataArray,
    window: int = 1,
    start: int = 1,
    log_scale: bool = False,
    label: str = "ELBO",
    max_points: int = 4000,
    objective: str = "ELBO",
) -> hv.Curve:
    """The ELBO per iteration from ``start`` on, smoothed by a trailing mean of ``window`` steps.

    elbo : (iteration,) with coordinate ``iteration`` (1..N). Each smoothed point sits at the last
    iteration of its window, so the curve has ``N - start + 1 - window + 1`` points (thinned by a
    stride to at most ``max_points``: a browser draws 4,000 points as well as 100,000).
    Non-finite values are left out of the means (see :func:`dashboard.stats.smooth`); where a window
    holds none, the curve has a gap. With ``log_scale`` the curve is −ELBO on a log axis; points where
    −ELBO <= 0 are dropped. ``objective`` names what the values are on the linear axis (a point
    estimate's log posterior).
    """
    tail = elbo.sel(iteration=slice(start, None))
    values = stats.smooth(tail.values, window)
    iterations = tail["iteration"].values[len(tail) - len(values) :]
    stride = max(1, int(np.ceil(len(values) / max_points)))
    iterations, values = iterations[::stride], values[::stride]
    if log_scale:
        values = -values
        keep = ~(values <= 0)  # NaN kept: it is a gap, not a point
        curve = hv.Curve((iterations[keep], values[keep]), ITERATION, NEG_ELBO, label=label)
        return curve.opts(logy=True, line_width=1.5, tools=["hover"], height=380, **_COMMON)
    y = ELBO if objective == "ELBO" else hv.Dimension("elbo", label=f"{objective} (nats)")
    curve = hv.Curve((iterations, values), ITERATION, y, label=label)
    return curve.opts(line_width=1.5, tools=["hover"], height=380, **_COMMON)


def nonfinite_marks(runs: list[tuple[int, int]], label: str = "NaN or infinite ELBO") -> hv.VLines:
    """A red vertical line at the first iteration of each stretch ``(first, last)`` of non-finite ELBO
    values: a band one iteration wide would be narrower than a pixel on a 30,000-iteration axis."""
    firsts = np.array([first for first, _ in runs], dtype=float)
    return hv.VLines(firsts, kdims=[ITERATION], label=label).opts(color="#d62728", line_width=1.5)


def elbo_plot(elbos: dict[str, xr.DataArray], window: int, start: int, log_scale: bool, subtitle: str = "",
              colors: Sequence[str] = RUN_COLORS, objective: str = "ELBO") -> hv.Overlay:
    """The ELBO curves of one or more runs (run name -> (iteration,)) on one axis, in ``colors``, each
    smoothed and cut as :func:`elbo_curve` does, with red lines where a history holds NaN or infinite
    values. ``subtitle`` ends the title; ``objective`` names the curves (a point estimate's "log posterior")."""
    layers = []
    for (name, elbo), color in zip(elbos.items(), colors):
        layers.append(elbo_curve(elbo, window, start, log_scale, label=name, objective=objective).opts(color=color))
        gaps = stats.nonfinite_runs(stats.nonfinite_iterations(elbo.sel(iteration=slice(start, None))))
        if gaps:
            layers.append(nonfinite_marks(gaps, f"NaN or infinite ELBO ({name})" if len(elbos) > 1 else
                                          "NaN or infinite ELBO"))
    title = (f"{objective[0].upper()}{objective[1:]} per iteration, trailing mean of {window} "
             f"iteration{'s' if window > 1 else ''}{subtitle}")
    return hv.Overlay(layers).opts(title=title, legend_position="top_right" if log_scale else "bottom_right")


# --- hyperpriors --------------------------------------------------------------------------------


def hyperprior_histogram(draws: dict[str, np.ndarray], name: str, bins: int = 40) -> hv.Overlay:
    """Histogram (density) of one hyperprior's posterior draws in one or more runs (run name -> (draw,)),
    with each run's mean (line) and 94% HDI (band), on shared bins so the shapes compare.

    The draws are positive values of ``{layer}.{tensor}_sd``, the prior sd of that tensor's weights.
    One run: blue bars, its mean and HDI in orange. Several: each run in its colour.
    """
    values = {run: np.asarray(d, dtype=np.float64).ravel() for run, d in draws.items()}
    edges = np.histogram_bin_edges(np.concatenate(list(values.values())), bins=bins)
    value = hv.Dimension(name, label=f"Prior sd of {name.removesuffix('_sd')} (weight units)")
    density = hv.Dimension("density", label="Posterior density")
    single = len(values) == 1
    layers, means = [], []
    for (run, x), color in zip(values.items(), RUN_COLORS):
        lo, hi = stats.hdi(x)
        mean = float(x.mean())
        means.append(f"{mean:.3g}" if single else f"{mean:.3g} ({run})")
        counts, _ = np.histogram(x, bins=edges, density=True)
        mark = ORANGE if single else color
        layers += [
            hv.VSpan(lo, hi).opts(color=mark, alpha=0.15),
            hv.Histogram((edges, counts), kdims=value, vdims=density, label="" if single else run).opts(
                color=color, alpha=0.7 if single else 0.5, line_color="white"),
            hv.VLine(mean).opts(color=mark, line_width=2),
        ]
    return hv.Overlay(layers).opts(title=f"{name}: mean {', '.join(means)}", xlabel=value.label,
                                   ylabel=density.label, height=320, show_legend=not single, **_COMMON)


def hyperprior_forest(posteriors: dict[str, dict[str, np.ndarray]]) -> hv.Overlay:
    """All hyperpriors of one or more runs at once: each one's mean (dot) and 94% HDI (bar).

    posteriors : run name -> (hyperprior name -> (draw,)). One row per hyperprior name, top to bottom
    in the order first met (the network's layer order); with two runs each row holds a bar of each,
    the chosen run's above.
    """
    names = list(dict.fromkeys(n for posterior in posteriors.values() for n in posterior))
    rows = np.arange(len(names))[::-1].astype(float)
    row_of = dict(zip(names, rows))
    offsets = [0.0] if len(posteriors) == 1 else [0.15, -0.15]
    value = hv.Dimension("value", label="Prior sd (weight units): mean and 94% HDI")
    row = hv.Dimension("row", label="Hyperprior")
    layers = []
    for (run, posterior), color, offset in zip(posteriors.items(), RUN_COLORS, offsets):
        y = np.array([row_of[n] + offset for n in posterior])
        intervals = np.array([stats.hdi(posterior[n]) for n in posterior]).reshape(-1, 2)
        means = np.array([float(np.mean(posterior[n])) for n in posterior])
        label = run if len(posteriors) > 1 else ""
        layers.append(hv.Segments((intervals[:, 0], y, intervals[:, 1], y), [value, row, "x1", "y1"], label=label)
                      .opts(color=color, line_width=4 if len(posteriors) == 1 else 3))
        layers.append(hv.Scatter((means, y), value, row).opts(color=ORANGE if len(posteriors) == 1 else color,
                                                             size=9, line_color="black"))
    return hv.Overlay(layers).opts(title="All hyperpriors", yticks=list(zip(rows.tolist(), names)),
                                   height=max(220, 40 * len(names) + 90), show_legend=len(posteriors) > 1, **_COMMON)


# --- weights ------------------------------------------------------------------------------------


_WEIGHT_PARTS = (
    ("mean", "means", "posterior mean"),
    ("sd", "sds", "posterior sd"),
    ("log10_snr", "signal-to-noise", "log10(|mean| / sd)"),
)


def weight_histograms(summaries: dict[str, stats.WeightSummary], name: str, spread: Sequence[str] | None = None) -> hv.Layout:
    """Distributions of tensor ``name``'s posterior means, sds and signal-to-noise ratios |mean| / sd
    (as log10: it spans decades), from histograms computed over all its weights.

    summaries : run name -> that run's :class:`~dashboard.stats.WeightSummary` of the tensor. One run:
    counts, on integer ticks. Several: each run's density (the runs' bins and sizes differ), overlaid.
    spread : the runs whose sds are drawn (default all); a MAP fit's are zero, and it has means only.
    """
    single = len(summaries) == 1
    y = hv.Dimension("count", label="Number of weights") if single else hv.Dimension("density", label="Density")
    plots = []
    for key, title, what in _WEIGHT_PARTS:
        shown = {run: s for run, s in summaries.items() if key == "mean" or spread is None or run in spread}
        if not shown:
            continue
        x = hv.Dimension(key, label=f"{what} of {name}")
        bars = []
        for (run, summary), color in zip(summaries.items(), RUN_COLORS):
            if run not in shown:
                continue
            hist = getattr(summary, key)
            heights = hist.counts if single else hist.density()
            color = (BLUE, ORANGE, GREY)[len(plots)] if single else color
            bars.append(hv.Histogram((hist.edges, heights), kdims=x, vdims=y, label="" if single else run).opts(
                color=color, alpha=1.0 if single else 0.5, line_color="white" if single else color))
        # counts are whole numbers: a ticker of at least 1 keeps 0.5 off the axis of a 32-bias histogram
        ticks = {"yticks": BasicTicker(min_interval=1)} if single else {}
        plots.append(hv.Overlay(bars).opts(title=f"{name}: {title}", height=280, show_legend=not single,
                                           legend_position="top_right", **ticks, **_COMMON))
    return hv.Layout(plots).cols(3).opts(shared_axes=False)


def weight_scatter(summaries: dict[str, stats.WeightSummary], name: str) -> hv.Overlay:
    """Posterior sd against mean of each run's sample of tensor ``name``'s weights (run name -> summary)."""
    dims = [hv.Dimension("mean", label=f"{name} posterior mean"), hv.Dimension("sd", label=f"{name} posterior sd")]
    layers = [
        hv.Points((s.sample_mean, s.sample_sd), dims, label="" if len(summaries) == 1 else run)
        .opts(size=3, alpha=0.3, color=color)
        for (run, s), color in zip(summaries.items(), RUN_COLORS)
    ]
    n = max(len(s.sample_mean) for s in summaries.values())
    each = "" if len(summaries) == 1 else " a run"
    return hv.Overlay(layers).opts(title=f"{name}: sd against mean ({n:,} weights{each})", height=300,
                                   show_legend=len(summaries) > 1, **_COMMON)


# --- accuracy -----------------------------------------------------------------------------------


def confusion_heatmap(counts: np.ndarray, title: str) -> hv.Overlay:
    """Confusion matrix (10, 10) of counts (true class, predicted class), every non-zero count written in its cell.

    x is the predicted class and y the true class, both as the strings '0'..'9' (categorical axes,
    so a tap reports the cell's classes). The errors are coloured by their share of the true class's
    digits, on a linear scale from 0 to the largest such share, with a colour bar; the correct cells
    (the diagonal, a hundred times larger) are apart, in one pale green, so they do not wash out the
    errors' scale.
    """
    classes = [str(c) for c in range(N_CLASSES)]
    totals = counts.sum(axis=1)
    share = 100 * np.divide(counts, totals[:, None], out=np.zeros(counts.shape), where=totals[:, None] > 0)
    np.fill_diagonal(share, np.nan)
    rows = [(classes[p], classes[t], share[t, p], int(counts[t, p])) for t in range(N_CLASSES) for p in range(N_CLASSES)]
    kdims = [hv.Dimension("predicted", label="Predicted class"), hv.Dimension("true", label="True class")]
    vdims = [hv.Dimension("share", label="Errors: % of the true class"), hv.Dimension("count", label="Digits")]
    highest = float(np.nanmax(share)) if np.isfinite(share).any() else 0.0
    heat = hv.HeatMap(rows, kdims, vdims).opts(
        cmap=ERROR_CMAP,
        clim=(0.0, max(highest, 0.1)),
        clipping_colors={"NaN": DIAGONAL_COLOR},
        colorbar=True,
        tools=["hover", "tap"],
        invert_yaxis=True,
        xaxis="top",
        line_color="#dddddd",
    )
    labels = hv.Labels([(p, t, c) for p, t, _, c in rows if c], kdims, "count").opts(text_font_size="11pt",
                                                                                    text_color="black")
    return (heat * labels).opts(title=title, height=480, **_COMMON)


def per_class_bars(accuracy: dict[str, np.ndarray]) -> hv.Bars:
    """Per-class accuracy of one or more runs (run name -> (class,)) as grouped bars, in percent, each
    run in its colour and in the given order within a class; the legend sits outside the frame, on its
    right, where it covers no bar."""
    rows = [(str(c), run, float(100 * acc[c])) for run, acc in accuracy.items() for c in range(N_CLASSES)]
    run = hv.Dimension("run", label="Run", values=list(accuracy))  # not sorted by name: the chosen run first
    bars = hv.Bars(rows, [CLASS, run], hv.Dimension("accuracy", label="Accuracy (%)"))
    lowest = min((r[2] for r in rows if np.isfinite(r[2])), default=0.0)
    return bars.opts(
        title="Accuracy per true class",
        ylim=(max(0.0, lowest - 5), 100.5),
        tools=["hover"],
        multi_level=False,
        color=hv.dim("run"),
        cmap=dict(zip(accuracy, RUN_COLORS)),
        show_legend=len(accuracy) > 1,
        legend_position="right",
        height=300,
        **_COMMON,
    )


# --- uncertainty --------------------------------------------------------------------------------


def measure_histograms(values: np.ndarray, correct: np.ndarray, label: str, bins: int = 40,
                       limits: tuple[float, float] | None = None, title: str = "Correct vs misclassified digits"
                       ) -> hv.Overlay:
    """Distribution (density) of an uncertainty measure for correct and for misclassified digits.

    values : (digit,) the measure; correct : (digit,) bool. Both groups share the bins so the
    shapes compare directly; ``limits`` (lo, hi) sets the bins' range, e.g. to two runs' common range
    (default: the finite values' range).
    """
    values = np.asarray(values, dtype=np.float64)
    correct = np.asarray(correct, dtype=bool)
    finite = np.isfinite(values)
    if limits is None:
        limits = (values[finite].min(), values[finite].max()) if finite.any() else (0.0, 1.0)
    lo, hi = limits
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
    return hv.Overlay(groups).opts(title=title, legend_position="top_right", height=340, **_COMMON)


def referral_plot(curves: dict[str, tuple[np.ndarray, np.ndarray]]) -> hv.Overlay:
    """Accuracy on the digits kept against the share referred (most uncertain first), both in percent.

    curves : run name -> (fractions, accuracy), each (n,), as ``core.uncertainty.referral_curve`` returns them.
    """
    x = hv.Dimension("referred", label="Most uncertain digits set aside (%)")
    y = hv.Dimension("accuracy", label="Accuracy on the rest (%)")
    layers = [
        hv.Curve((100 * np.asarray(f), 100 * np.asarray(a)), x, y, label=run).opts(color=color, line_width=2,
                                                                                 tools=["hover"])
        for (run, (f, a)), color in zip(curves.items(), RUN_COLORS)
    ]
    return hv.Overlay(layers).opts(title="Referral curve", legend_position="bottom_right", height=340, **_COMMON)
