"""The Calibration and Shift tabs: views of a run's (and a compared run's) calibration on the clean
test digits and of its shift suite (rotated, translated, noisy and foreign digits).

Each view is a function of :class:`~dashboard.rundata.RunData` and its settings, like those of
:mod:`dashboard.views`; the figures come from :mod:`dashboard.shift_plots`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import panel as pn

from core.shift import SEPARATING
from core.uncertainty import MEASURES, vote_counts

from . import shift_plots, tables
from .gallery import DigitGallery, digit_uri
from .rundata import RunData
from .text import literal
from .views import CSS, _plot, _runs, _table, measure_name

__all__ = ["REFERENCES", "calibration_panel", "calibration_table", "foreign_table", "shift_panel"]

REFERENCES = pd.DataFrame(
    [
        ("mean-field VI, LeNet-5", "98.5%", "0.010", "0.048", "–"),
        ("deep ensemble of 10, LeNet-5", "99.4%", "0.005", "0.016", "–"),
        ("deterministic LeNet-5", "99.1%", "–", "0.037", "–"),
    ],
    columns=["Reference (uncertainty-baselines, MNIST)", "Accuracy", "ECE", "NLL", "Brier"],
)
"""Published figures to read ours against (Google's uncertainty-baselines, LeNet-5 on MNIST)."""

FOREIGN = {"uci": "UCI digits (other writers' scans)", "typed": "typed digits (DejaVu fonts)",
           "letters": "letters (not digits)"}
GALLERY_SIZE = 30  # foreign digits shown per set, most uncertain first


def calibration_table(runs: list[RunData]) -> pd.DataFrame:
    """One row per run: accuracy, ECE, NLL and Brier of the mean predictive on the clean test digits,
    and whether its confidence runs over or under its accuracy."""
    rows = []
    for data in runs:
        c = data.calibration
        gap = 100 * c["overconfidence"]
        rows.append({
            "Run": data.name,
            "Accuracy": f"{100 * c['accuracy']:.2f}%",
            "ECE": f"{c['ece']:.4f}",
            "NLL": f"{c['nll']:.3f}",
            "Brier": f"{c['brier']:.4f}",
            "Confidence − accuracy": f"{gap:+.2f} points ({'over' if gap > 0 else 'under'}confident)",
        })
    return pd.DataFrame(rows)


def calibration_panel(data: RunData, compared: RunData | None) -> pn.viewable.Viewable:
    """The reliability diagram (both runs when comparing), the calibration figures beside published ones,
    and a sentence saying which way each run errs."""
    runs = _runs(data, compared)
    verdicts = " ".join(
        f"**{literal(d.name)}** is {'over' if d.calibration['overconfidence'] > 0 else 'under'}confident: "
        f"its mean confidence is {abs(100 * d.calibration['overconfidence']):.1f} points "
        f"{'above' if d.calibration['overconfidence'] > 0 else 'below'} its accuracy."
        for d in runs
    )
    header = pn.pane.Markdown(
        "### Is the confidence honest?\nOn the 10,000 clean test digits, from the mean predictive probability: "
        "a digit's confidence is its highest class probability. Bars below the diagonal are bins whose digits "
        f"are right less often than their confidence claims (overconfident); above it, more often. {verdicts}",
        sizing_mode="stretch_width", css_classes=[CSS.CALIBRATION_SUMMARY],
    )
    diagram = _plot(shift_plots.reliability_diagram({d.name: d.reliability for d in runs}))
    figures = pn.Column(
        _table(calibration_table(runs), index=False, css_classes=[CSS.CALIBRATION_TABLE]),
        pn.pane.Markdown("ECE: expected calibration error over 15 equal-width confidence bins. NLL: mean "
                         "−log p(true class). Brier: mean of Σₖ (pₖ − [k = true])², from 0 to 2."),
        _table(REFERENCES, index=False),
        sizing_mode="stretch_width",
    )
    # the tables below the diagram, not beside it: beside, a 1280-pixel window cuts their last columns
    return pn.Column(header, diagram, figures, sizing_mode="stretch_width")


def foreign_table(runs: list[RunData]) -> pd.DataFrame:
    """One row per run and foreign set: accuracy (digits only) and the AUROC of entropy and of mutual
    information for telling the set from clean test digits."""
    rows = []
    for data in runs:
        for key, name in FOREIGN.items():
            row = data.shift.sel(set=key)
            accuracy = float(row.accuracy)
            rows.append({
                "Run": data.name,
                "Set": name,
                "Digits": f"{int(row.n_digits):,}",
                "Accuracy": "–" if np.isnan(accuracy) else f"{100 * accuracy:.1f}%",
                **{f"AUROC, {measure_name(m).lower()}": tables.number(float(row.auroc_shift.sel(separating=m)), ".3f")
                   for m in SEPARATING},
            })
    return pd.DataFrame(rows)


def _foreign_gallery(data: RunData, foreign: str, measure: str, open_foreign=None) -> DigitGallery:
    """The sampled digits of a foreign set, most uncertain first; the caption is the character and the
    draws' modal label, the tooltip their votes. A click calls ``open_foreign(sample index)``, if given."""
    sample = data.shift_sample
    measure = data.ranking_measure(measure)
    picked = np.flatnonzero(sample.set.values == foreign)
    values = data.shift_digits[measure].values[sample.foreign_digit.values[picked]]
    order = picked[np.argsort(-values, kind="stable")][:GALLERY_SIZE]
    counts = vote_counts(sample.label.values[:, order])
    items = []
    for i, index in enumerate(order):
        votes = ", ".join(f"{k}: {n}" for k, n in enumerate(counts[i]) if n)
        character = str(sample.character.values[index])
        items.append({
            "digit": int(index),
            "src": digit_uri(sample.image.values[index]),
            "caption": f"{character} → {int(counts[i].argmax())}",
            "title": f"{character}: votes {votes}; {measure_name(measure)} "
                     f"{float(data.shift_digits[measure].values[sample.foreign_digit.values[index]]):.3g}",
        })
    gallery = DigitGallery(items=items, selected=-1, sizing_mode="stretch_width")
    if open_foreign is not None:
        def clicked(event) -> None:
            if event.new >= 0:
                open_foreign(event.new)
                gallery.selected = -1  # a second click on the same digit opens it again

        gallery.param.watch(clicked, "selected")
    return gallery


def shift_panel(data: RunData, compared: RunData | None, measure: str, open_foreign=None) -> pn.viewable.Viewable:
    """Accuracy, ECE and the chosen measure against rotation and against translation (both runs when
    comparing); for each foreign set, the measure's histogram against clean digits, the AUROCs and the
    set's most uncertain digits, a click on one calling ``open_foreign(its sample index)`` if given."""
    runs = _runs(data, compared)
    summaries = {d.name: d.shift for d in runs}
    measured = {d.name: d.shift for d in runs if measure in d.measures}
    absent = [pn.pane.Alert(literal(why), alert_type="info", sizing_mode="stretch_width",
                            css_classes=[CSS.MEASURE_ABSENT]) for d in runs if (why := d.measure_absent(measure))]
    label = measure_name(measure)
    shifted = measure if measure in SEPARATING and measure in data.measures else "entropy"
    header = pn.pane.Markdown(
        "### Shifted digits\nA fixed subset of 2,000 test digits (seed 0), rotated, moved to the right and "
        "noised (Ovadia et al. 2019). A network whose uncertainty can be trusted loses accuracy as the digits "
        "move away from what it was trained on, and says so: its uncertainty rises and its calibration "
        "error stays small. The band is the measure's interquartile range.",
        sizing_mode="stretch_width", css_classes=[CSS.SHIFT_SUMMARY],
    )
    curves = [
        pn.Row(
            _plot(shift_plots.shift_curves(summaries, kind, "accuracy", label="Accuracy")),
            _plot(shift_plots.shift_curves(summaries, kind, "ece", label="ECE")),
            *([_plot(shift_plots.shift_curves(measured, kind, "measure_mean", measure=measure, label=label))]
              if measured else []),
            sizing_mode="stretch_width",
        )
        for kind in ("rotation", "translation")
    ]
    foreign_header = pn.pane.Markdown(
        "### Foreign digits, and letters\nDigits no MNIST writer made and letters, brought to MNIST's "
        "preprocessing (the ink scaled into 20x20, its centre of mass at the centre). AUROC: how well the "
        f"measure tells them from the clean test digits (0.5 = chance). Histograms: {literal(measure_name(shifted))} "
        f"of {literal(data.name)}; galleries: its most uncertain sampled digits by {literal(measure_name(measure))} "
        "(caption: the character → the draws' modal label; click one to probe it).",
        sizing_mode="stretch_width",
    )
    foreign = pn.Column(
        *[
            pn.Column(
                pn.pane.Markdown(f"#### {FOREIGN[key]}"),
                pn.Row(_plot(shift_plots.foreign_histograms(data.shift_digits, key, shifted, MEASURES[shifted])),
                       _foreign_gallery(data, key, measure, open_foreign), sizing_mode="stretch_width"),
                sizing_mode="stretch_width",
            )
            for key in FOREIGN
        ],
        sizing_mode="stretch_width",
    )
    return pn.Column(*absent, header, *curves, foreign_header,
                     _table(foreign_table(runs), index=False, css_classes=[CSS.FOREIGN_TABLE]), foreign,
                     sizing_mode="stretch_width")
