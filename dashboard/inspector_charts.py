"""The digit inspector's two charts, as Bokeh figures whose data is replaced in place.

Everything else in the dashboard is HoloViews (:mod:`dashboard.plots`). The inspector changes on
every click, in every session: replacing one data source costs the server a few milliseconds and
sends one small patch, where a HoloViews update re-derives the plot (ranges, axes, styles) and
costs tens of milliseconds, which ten sessions clicking at once on two cores turn into seconds.
No Panel here either: :mod:`dashboard.digits` puts the figures in panes.

Both charts show one run, or two side by side within each class (the chosen run's left, in blue;
the compared run's right, in orange). The true class is a shaded column whose tick reads "true",
so it shows even when no draw votes for it; a digit without a true class (a drawing) has neither.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from bokeh.models import ColumnDataSource, FixedTicker, HoverTool, Legend, LegendItem, Range1d
from bokeh.plotting import figure

from .plots import FONTS, GREEN, GREY, RUN_COLORS
from .stats import N_CLASSES

__all__ = ["SpreadChart", "VoteChart", "spread_columns", "true_columns", "vote_columns"]

QUANTILES = (0.025, 0.25, 0.5, 0.75, 0.975)
CLASSES = np.arange(N_CLASSES, dtype=float)


def _offsets(n_runs: int) -> list[float]:
    """Where each run's glyphs sit within a class: centred for one run, left and right for two."""
    return [0.0] if n_runs == 1 else [-0.2, 0.2]


def vote_columns(labels: Sequence[np.ndarray], names: Sequence[str]) -> dict[str, list]:
    """Columns of the vote chart for one digit. labels : one (draw,) array per run, the class each of
    its posterior draws predicts; names : the runs' names.

    One row per run and class: ``x`` (the class, offset per run), ``draws`` voting for it, the run's
    ``color``, ``run`` and ``class``.
    """
    columns: dict[str, list] = {"x": [], "draws": [], "color": [], "run": [], "class": []}
    for run_labels, name, color, offset in zip(labels, names, RUN_COLORS, _offsets(len(labels))):
        counts = np.bincount(np.asarray(run_labels, dtype=np.intp), minlength=N_CLASSES)
        columns["x"] += (CLASSES + offset).tolist()
        columns["draws"] += counts.tolist()
        columns["color"] += [color] * N_CLASSES
        columns["run"] += [name] * N_CLASSES
        columns["class"] += list(range(N_CLASSES))
    return columns


def spread_columns(probabilities: Sequence[np.ndarray], names: Sequence[str]) -> dict[str, list]:
    """Columns of the spread chart for one digit. probabilities : one (draw, class) array per run;
    names : the runs' names.

    Three segments per run and class: thin from the 2.5% to the 97.5% quantile, thick between the
    quartiles (in the run's colour), and a black tick at the median.
    """
    columns: dict[str, list] = {key: [] for key in ("x0", "y0", "x1", "y1", "color", "width", "part", "run")}
    two = len(probabilities) > 1
    for probability, name, color, offset in zip(probabilities, names, RUN_COLORS, _offsets(len(probabilities))):
        low, q1, median, q3, high = np.quantile(np.asarray(probability, dtype=np.float64), QUANTILES, axis=0)
        x = CLASSES + offset
        tick = 0.12 if two else 0.25
        columns["x0"] += np.concatenate([x, x, x - tick]).tolist()
        columns["y0"] += np.concatenate([low, q1, median]).tolist()
        columns["x1"] += np.concatenate([x, x, x + tick]).tolist()
        columns["y1"] += np.concatenate([high, q3, median]).tolist()
        columns["color"] += [GREY] * N_CLASSES + [color] * N_CLASSES + ["black"] * N_CLASSES
        columns["width"] += [2] * N_CLASSES + [10 if two else 16] * N_CLASSES + [3] * N_CLASSES
        columns["part"] += ["2.5% to 97.5%"] * N_CLASSES + ["quartiles"] * N_CLASSES + ["median"] * N_CLASSES
        columns["run"] += [name] * (3 * N_CLASSES)
    return columns


def true_columns(true_label: int | None) -> dict[str, list]:
    """The shaded column of the true class: one bar as tall as the chart (the y range is its height);
    none when the digit has no true class (``None``)."""
    if true_label is None:
        return {"x": [], "top": []}
    return {"x": [float(true_label)], "top": [1e9]}


class _DigitChart:
    """A figure over the ten classes with the true class shaded and its tick labelled."""

    def __init__(self, title: str, y_label: str, y_range: Range1d) -> None:
        fig = figure(title=title, height=220, sizing_mode="stretch_width", toolbar_location=None,
                     x_range=Range1d(-0.6, N_CLASSES - 0.4), y_range=y_range)
        fig.title.text_font_size = FONTS["title"]
        fig.xaxis.axis_label = "Class (digit)"
        fig.yaxis.axis_label = y_label
        fig.xaxis.ticker = FixedTicker(ticks=list(range(N_CLASSES)))
        for axis in (fig.xaxis, fig.yaxis):
            axis.axis_label_text_font_size = FONTS["labels"]
            axis.major_label_text_font_size = FONTS["xticks"]
        fig.xgrid.grid_line_color = None
        self.truth = ColumnDataSource(true_columns(None))
        fig.vbar(x="x", top="top", width=0.96, source=self.truth, fill_color=GREEN, fill_alpha=0.15,
                 line_color=GREEN, line_dash="dashed", line_width=1.5)
        self.figure = fig

    def _mark_true(self, true_label: int | None) -> None:
        self.truth.data = true_columns(true_label)
        self.figure.xaxis.major_label_overrides = {} if true_label is None else {true_label: f"{true_label} true"}


class VoteChart(_DigitChart):
    """Bars: how many posterior draws of each run predict each class for the shown digit."""

    def __init__(self) -> None:
        super().__init__("Predicted label across posterior draws", "Draws voting", Range1d(0, 1))
        self.source = ColumnDataSource(vote_columns([np.zeros(1, dtype=int)], [""]))
        self.bars = self.figure.vbar(x="x", top="draws", width=0.8, color="color", source=self.source)
        # above the frame, where it covers no bar
        self.legend = Legend(items=[LegendItem(label={"field": "run"}, renderers=[self.bars])],
                             orientation="horizontal", visible=False)
        self.figure.add_layout(self.legend, "above")
        self.figure.add_tools(HoverTool(tooltips=[("run", "@run"), ("class", "@class"), ("draws", "@draws")]))

    def show(self, labels: Sequence[np.ndarray], true_label: int | None, names: Sequence[str]) -> None:
        """Show one digit's votes: labels, one (draw,) array per run (see :func:`vote_columns`); its true
        class, or None."""
        self.source.data = vote_columns(labels, names)
        self.bars.glyph.width = 0.8 if len(labels) == 1 else 0.38
        self.legend.visible = len(labels) > 1
        self._mark_true(true_label)
        draws = sorted({len(x) for x in labels})
        self.figure.y_range.end = draws[-1]
        self.figure.yaxis.axis_label = f"Draws voting (of {' and '.join(map(str, draws))})"


class SpreadChart(_DigitChart):
    """Box plots: each class's predicted probability across fresh draws of each run's weights."""

    def __init__(self) -> None:
        super().__init__("Class probabilities over draws", "Predicted probability", Range1d(-0.02, 1.02))
        self.source = ColumnDataSource(spread_columns([np.full((1, N_CLASSES), 0.1)], [""]))
        self.figure.segment(x0="x0", y0="y0", x1="x1", y1="y1", line_color="color", line_width="width",
                            source=self.source)
        self.figure.add_tools(HoverTool(tooltips=[("run", "@run"), ("", "@part"), ("from", "@y0{0.000}"),
                                                  ("to", "@y1{0.000}")]))

    def show(self, probabilities: Sequence[np.ndarray], true_label: int | None, names: Sequence[str]) -> None:
        """Show one digit's spread: probabilities, one (draw, class) array per run; its true class, or None."""
        self.source.data = spread_columns(probabilities, names)
        self._mark_true(true_label)
        draws = sorted({len(p) for p in probabilities})
        self.figure.title.text = ("Class probabilities of one network: a point estimate has no spread" if draws == [1]
                                  else f"Class probabilities over {' and '.join(map(str, draws))} draws")
