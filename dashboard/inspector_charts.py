"""The digit inspector's two charts, as Bokeh figures whose data is replaced in place.

Everything else in the dashboard is HoloViews (:mod:`dashboard.plots`). The inspector changes on
every click, in every session: replacing one data source costs the server a few milliseconds and
sends one small patch, where a HoloViews update re-derives the plot (ranges, axes, styles) and
costs tens of milliseconds, which ten sessions clicking at once on two cores turn into seconds.
No Panel here either: the views put the figures in panes.
"""

from __future__ import annotations

import numpy as np
from bokeh.models import ColumnDataSource, FixedTicker, HoverTool, Range1d
from bokeh.plotting import figure

from .plots import BLUE, FONTS, GREY, ORANGE

__all__ = ["SpreadChart", "VoteChart", "spread_columns", "vote_columns"]

N_CLASSES = 10
QUANTILES = (0.025, 0.25, 0.5, 0.75, 0.975)


def vote_columns(labels: np.ndarray, true_label: int) -> dict[str, list]:
    """Columns of the vote chart for one digit. labels : (draw,) the class each posterior draw predicts.

    One row per class: ``draws`` voting for it, and its ``color`` (orange for the true class).
    """
    counts = np.bincount(np.asarray(labels, dtype=np.intp), minlength=N_CLASSES)
    return {
        "class": [str(c) for c in range(N_CLASSES)],
        "draws": counts.tolist(),
        "color": [ORANGE if c == true_label else BLUE for c in range(N_CLASSES)],
    }


def spread_columns(probability: np.ndarray, true_label: int) -> dict[str, list]:
    """Columns of the spread chart for one digit. probability : (draw, class).

    Three segments per class (30 rows): thin from the 2.5% to the 97.5% quantile, thick between the
    quartiles (orange for the true class), and a black tick at the median.
    """
    low, q1, median, q3, high = np.quantile(np.asarray(probability, dtype=np.float64), QUANTILES, axis=0)
    x = np.arange(N_CLASSES, dtype=float)
    box_colors = [ORANGE if c == true_label else BLUE for c in range(N_CLASSES)]
    return {
        "x0": np.concatenate([x, x, x - 0.25]).tolist(),
        "y0": np.concatenate([low, q1, median]).tolist(),
        "x1": np.concatenate([x, x, x + 0.25]).tolist(),
        "y1": np.concatenate([high, q3, median]).tolist(),
        "color": [GREY] * N_CLASSES + box_colors + ["black"] * N_CLASSES,
        "width": [2] * N_CLASSES + [16] * N_CLASSES + [3] * N_CLASSES,
        "part": ["2.5% to 97.5%"] * N_CLASSES + ["quartiles"] * N_CLASSES + ["median"] * N_CLASSES,
    }


def _figure(title: str, y_label: str, **kwargs) -> figure:
    fig = figure(title=title, height=220, sizing_mode="stretch_width", toolbar_location=None, **kwargs)
    fig.title.text_font_size = FONTS["title"]
    fig.xaxis.axis_label = "Class (digit)"
    fig.yaxis.axis_label = y_label
    for axis in (fig.xaxis, fig.yaxis):
        axis.axis_label_text_font_size = FONTS["labels"]
        axis.major_label_text_font_size = FONTS["xticks"]
    fig.xgrid.grid_line_color = None
    return fig


class VoteChart:
    """Bars: how many posterior draws predict each class for the shown digit."""

    def __init__(self) -> None:
        self.source = ColumnDataSource(vote_columns(np.zeros(1, dtype=int), -1))
        self.figure = _figure(
            "Predicted label across posterior draws",
            "Draws voting",
            x_range=[str(c) for c in range(N_CLASSES)],
            y_range=Range1d(0, 1),
        )
        self.figure.vbar(x="class", top="draws", width=0.8, color="color", source=self.source)
        self.figure.add_tools(HoverTool(tooltips=[("class", "@class"), ("draws", "@draws")]))

    def show(self, labels: np.ndarray, true_label: int) -> None:
        """Show one digit's votes. labels : (draw,)"""
        self.source.data = vote_columns(labels, true_label)
        self.figure.y_range.end = len(labels)
        self.figure.yaxis.axis_label = f"Draws voting (of {len(labels)})"


class SpreadChart:
    """Box plots: each class's predicted probability across fresh draws of the weights."""

    def __init__(self) -> None:
        self.source = ColumnDataSource(spread_columns(np.full((1, N_CLASSES), 0.1), -1))
        self.figure = _figure(
            "Class probabilities over draws",
            "Predicted probability",
            x_range=Range1d(-0.6, N_CLASSES - 0.4),
            y_range=Range1d(-0.02, 1.02),
        )
        self.figure.xaxis.ticker = FixedTicker(ticks=list(range(N_CLASSES)))
        self.figure.segment(
            x0="x0", y0="y0", x1="x1", y1="y1", line_color="color", line_width="width", source=self.source
        )
        self.figure.add_tools(HoverTool(tooltips=[("", "@part"), ("from", "@y0{0.000}"), ("to", "@y1{0.000}")]))

    def show(self, probability: np.ndarray, true_label: int) -> None:
        """Show one digit's spread. probability : (draw, class)"""
        self.source.data = spread_columns(probability, true_label)
        self.figure.title.text = f"Class probabilities over {len(probability)} draws"
