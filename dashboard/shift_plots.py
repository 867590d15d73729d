"""Calibration and shift figures -> HoloViews elements (no Panel, no app state).

Like :mod:`dashboard.plots`, functions that show several runs take a dict ``run name -> data`` in
drawing order, the chosen run first (blue), the compared run second (orange). The data are
:class:`core.calibration.Reliability` bins and the run file's ``/shift`` and ``/shift_digits``
groups (see :func:`core.shift.evaluate_suite`).
"""

from __future__ import annotations

import holoviews as hv
import numpy as np
import xarray as xr

from core.calibration import Reliability

from .plots import FONTS, GREY, RUN_COLORS

__all__ = ["SHIFT_AXES", "foreign_histograms", "reliability_diagram", "shift_curves"]

SHIFT_AXES = {"rotation": "Rotation (degrees)", "translation": "Translation (pixels)", "noise": "Pixel noise (sd)"}
"""Kind of shift -> axis label."""
_CONFIDENCE = hv.Dimension("confidence", label="Confidence (highest class probability)", range=(0, 1))
_ACCURACY = hv.Dimension("accuracy", label="Accuracy", range=(0, 1))
_GAP_COLOR = "#d62728"


def reliability_diagram(bins: dict[str, Reliability]) -> hv.Overlay:
    """Accuracy per confidence bin as bars (the first run filled, a second one outlined), the gap to
    the diagonal shaded red for the first run, each bin's digit count above its bar, and the diagonal
    of perfect calibration."""
    layers = [hv.Curve([(0, 0), (1, 1)], _CONFIDENCE, _ACCURACY, label="perfect calibration").opts(
        color=GREY, line_dash="dashed")]
    for i, (name, b) in enumerate(bins.items()):
        filled = b.count > 0
        lower, upper, accuracy, confidence = b.lower[filled], b.upper[filled], b.accuracy[filled], b.confidence[filled]
        bars = hv.Rectangles((lower, np.zeros_like(lower), upper, accuracy), [_CONFIDENCE, _ACCURACY, "x1", "y1"],
                             label=name)
        color = RUN_COLORS[i % len(RUN_COLORS)]
        if i == 0:
            layers.append(bars.opts(color=color, alpha=0.55, line_color="white"))
            gap = hv.Rectangles((lower, np.minimum(accuracy, confidence), upper, np.maximum(accuracy, confidence)),
                                [_CONFIDENCE, _ACCURACY, "x1", "y1"], label="gap to the diagonal")
            layers.append(gap.opts(color=_GAP_COLOR, alpha=0.35, line_alpha=0))
            counts = hv.Labels(((lower + upper) / 2, np.minimum(accuracy + 0.04, 1.03), [f"{n:,}" for n in b.count[filled]]),
                               [_CONFIDENCE, _ACCURACY], "count")
            layers.append(counts.opts(text_font_size="8pt", text_color=GREY))
        else:
            layers.append(bars.opts(fill_alpha=0, line_color=color, line_width=2))
    return hv.Overlay(layers).opts(
        title="Reliability: accuracy per confidence bin (numbers: digits in the bin)", height=380, ylim=(0, 1.08),
        xlim=(0, 1), legend_position="top_left", fontsize=FONTS, show_grid=True, toolbar=None)


def shift_curves(summaries: dict[str, xr.Dataset], kind: str, variable: str, measure: str | None = None,
                 label: str = "") -> hv.Overlay:
    """``variable`` of each run against the amount of the shift ``kind`` (rotation, translation, noise).

    ``variable`` is a per-set figure of ``/shift`` (``accuracy``, ``ece``, ``nll``, ``brier``) or
    ``measure_mean`` with ``measure``; for a measure the band is its interquartile range.
    """
    x_dim = hv.Dimension("amount", label=SHIFT_AXES[kind])
    y_dim = hv.Dimension(variable if measure is None else measure, label=label or variable)
    layers = []
    for i, (name, summary) in enumerate(summaries.items()):
        part = summary.sel(set=summary.kind == kind)
        x = part.amount.values.astype(float)
        color = RUN_COLORS[i % len(RUN_COLORS)]
        if measure is None:
            y = part[variable].values.astype(float)
        else:
            y = part.measure_mean.sel(measure=measure).values.astype(float)
            quartiles = part.measure_quantile.sel(measure=measure)
            band = hv.Area((x, quartiles.sel(quantile=0.25).values, quartiles.sel(quantile=0.75).values),
                           x_dim, [y_dim, "high"])
            layers.append(band.opts(color=color, alpha=0.15, line_alpha=0))
        layers.append(hv.Curve((x, y), x_dim, y_dim, label=name).opts(color=color, line_width=2))
        layers.append(hv.Scatter((x, y), x_dim, y_dim).opts(color=color, size=5))
    title = f"{label or variable} against {SHIFT_AXES[kind].split(' (')[0].lower()}"
    return hv.Overlay(layers).opts(title=title, height=300, legend_position="top_right", fontsize=FONTS,
                                   show_grid=True, toolbar=None)


def foreign_histograms(per_digit: xr.Dataset, foreign: str, measure: str, label: str, bins: int = 30) -> hv.Overlay:
    """Histograms (as densities) of ``measure`` for the clean test subset and the ``foreign`` set."""
    clean = per_digit[measure].values[per_digit.set.values == "clean"]
    other = per_digit[measure].values[per_digit.set.values == foreign]
    edges = np.histogram_bin_edges(np.concatenate([clean, other]), bins=bins)
    value = hv.Dimension(measure, label=label)
    layers = [
        hv.Histogram(np.histogram(values, edges, density=True), kdims=value, vdims="density", label=name).opts(
            color=color, alpha=0.55, line_alpha=0)
        for name, values, color in (("clean test digits", clean, RUN_COLORS[0]), (foreign, other, RUN_COLORS[1]))
    ]
    return hv.Overlay(layers).opts(title=f"{label}: {foreign} against clean test digits", height=300,
                                   legend_position="top_right", fontsize=FONTS, toolbar=None)
