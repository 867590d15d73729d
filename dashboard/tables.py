"""The Runs tab's tables and the numbers' formatting: run summaries and attributes in, pandas and strings out.

No Panel here: the views put these frames in ``pn.pane.DataFrame`` panes, which escape every cell.
Numbers are shown with what a person compares them by: durations in s, min or h, floats to four
significant digits, missing values as an en dash.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from core import store
from core.store import RunSummary

from .rundata import RunData

__all__ = ["detail", "duration", "number", "run_details", "runs_table", "significant"]

MISSING = "–"


def duration(seconds: float) -> str:
    """``12.3 s``, ``45 min``, ``2.1 h``; an en dash for a missing (NaN) time."""
    if not math.isfinite(seconds):
        return MISSING
    if seconds < 120:
        return f"{seconds:.1f} s"
    minutes = seconds / 60
    return f"{minutes:.0f} min" if minutes < 120 else f"{minutes / 60:.1f} h"


def number(value: float | None, fmt: str) -> str:
    """``format(value, fmt)``, or an en dash for a missing (None, NaN or infinite) value."""
    return MISSING if value is None or not math.isfinite(value) else format(value, fmt)


def significant(value: float, digits: int = 4) -> str:
    """A float to ``digits`` significant digits (``0.0009118819655545162`` -> ``0.0009119``)."""
    return number(value, f".{digits}g")


def runs_table(summaries: Sequence[RunSummary]) -> pd.DataFrame:
    """One row per usable run of a listing: the columns a person compares runs by."""
    rows = [
        {
            "Run": s.name,
            "Model": s.model,
            "Prior": s.prior,
            "Method": s.method,
            "Label": s.label,
            "Iterations": f"{s.iterations:,}",
            "Accuracy (%)": number(100 * s.accuracy, ".2f"),
            # a MAP fit's or an ensemble's is its log posterior density, which does not compare with an ELBO
            "ELBO at end (nats)": number(s.final_elbo, ",.0f") + (" (log posterior)" if s.method in store.POINT_METHODS
                                                                  else ""),
            "Training time": duration(s.wall_time_s),
            "Speed (it/s)": number(s.iterations_per_s, ",.1f"),
        }
        for s in summaries
        if not s.error
    ]
    return pd.DataFrame(rows)




def detail(key: str, value: object) -> str:
    """One attribute's value as the details table shows it: percentages, durations and thousands
    separators where they help, every other float to 4 significant digits, a dict as ``k = v, ...``."""
    if isinstance(value, float):
        if key in ("accuracy_mode", "accuracy_mean"):
            return number(100 * value, ".2f") + " %"
        if key == "wall_time_s":
            return duration(value)
        if key == "elbo_change":
            return number(value, ".2%")
        if key in ("final_elbo", "iterations_per_s"):
            return number(value, ",.1f")
        if key == "auroc":
            return number(value, ".3f")
        return significant(value)
    if isinstance(value, dict):
        return ", ".join(f"{k} = {detail(k, v)}" for k, v in value.items())
    return str(value)


def run_details(runs: list[RunData]) -> pd.DataFrame:
    """The recorded settings and results of one or more runs: one row per labelled attribute of
    core/schema.py (:func:`core.store.detail_fields`) and a last row of layers, one column per run
    (named by the run)."""
    columns = {}
    for data in runs:
        columns[data.name] = {label: detail(key, data.attrs[key]) if key in data.attrs else MISSING
                              for key, label in store.detail_fields()}
        columns[data.name]["Layers"] = ", ".join(data.layers)
    return pd.DataFrame(columns)
