"""Panel views of run data: one function per tab's content, of the data and settings it shows.

Every view takes the chosen run's :class:`~dashboard.rundata.RunData`, the compared run's (or None)
and the settings it depends on, and returns a Panel layout; it reads nothing else, so it can be
built, cached and tested on a bare RunData. With a compared run every view shows both: overlaid
where their scales agree, side by side where they do not. :mod:`dashboard.frame` binds the views to
a session's :class:`~dashboard.state.RunBrowser`; the Digits tab's gallery and inspector, which
change on every click, are the imperative :mod:`dashboard.digits`.

:class:`CSS` names the classes the page's elements carry for tests, benchmarks and style sheets.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn

from core.store import RunSummary
from core.uncertainty import MEASURES, referral_curve

from . import plots, rundata, stats, tables
from .rundata import RunData
from .text import literal

__all__ = [
    "CSS",
    "SCALE_RATIO",
    "SERVE_COMMAND",
    "TRAIN_COMMAND",
    "accuracy_panel",
    "comparison_panel",
    "details_panel",
    "elbo_panel",
    "empty_view",
    "fixed_prior_note",
    "hyperprior_panel",
    "measure_name",
    "refused_view",
    "runs_panel",
    "uncertainty_panel",
    "weights_panel",
]


class CSS:
    """CSS classes of the page's elements, set here and in :mod:`dashboard.digits`, :mod:`dashboard.probe` and
    :mod:`dashboard.frame`, and looked for by the browser tests and the benchmarks."""

    RUNS_TABLE = "runs-table"
    RUN_ERROR = "run-error"
    RUN_DETAILS = "run-details"
    ELBO_SUMMARY = "elbo-summary"
    ELBO_SCALES = "elbo-scales"  # the note that two ELBOs are on different scales
    ELBO_CONTROLS = "elbo-controls"
    NO_HYPERPRIOR = "no-hyperprior"
    HYPERPRIOR_STATS = "hyperprior-stats"
    NO_LAYER = "no-layer"  # a compared run without the chosen layer
    CONFUSION = "confusion"  # the chosen run's (clickable) confusion matrix
    CONFUSION_COMPARED = "confusion-compared"
    ACCURACY_SUMMARY = "accuracy-summary"
    UNCERTAINTY_SUMMARY = "uncertainty-summary"
    MEASURE_ABSENT = "measure-absent"  # why a run has no value of the chosen measure
    GALLERY_STATUS = "gallery-status"
    INSPECTOR = "inspector"
    INSPECTOR_TITLE = "inspector-title"
    DIGIT_INPUT = "digit-input"
    DIGIT_MESSAGE = "digit-message"  # why a typed digit index was refused
    VOTES = "votes"
    SPREAD = "spread"
    NOTICE = "notice"
    CALIBRATION_SUMMARY = "calibration-summary"
    CALIBRATION_TABLE = "calibration-table"
    SHIFT_SUMMARY = "shift-summary"
    FOREIGN_TABLE = "foreign-table"
    REFUSED = "refused"
    PROBE = "probe"  # the Probe tab's whole view
    PROBE_IMAGE = "probe-image"  # the 28x28 image the networks are fed
    PROBE_TITLE = "probe-title"  # what is probed and each run's prediction
    PROBE_MEASURES = "probe-measures"  # the table of uncertainty measures, a column per run
    PROBE_MESSAGE = "probe-message"  # why an upload or a typed digit was refused
    PROBE_CANVAS = "probe-canvas"  # the drawing canvas
    PROBE_UPLOAD = "probe-upload"
    PROBE_DIGIT = "probe-digit"  # the box of the test or foreign digit's index


SCALE_RATIO = 10.0
"""Two ELBOs whose final magnitudes differ by more than this factor are drawn side by side, not overlaid."""

TRAIN_COMMAND = "bnn train --model mlp --prior normal --iterations 2000 --out cached_traces"
# loopback only: without --address the server would listen on every interface (see SECURITY.md)
SERVE_COMMAND = (
    "panel serve dashboard/app.py --address 127.0.0.1 --port 5006 --allow-websocket-origin 127.0.0.1:5006 "
    "--args --runs DIR"
)


def _plot(obj: hv.core.Dimensioned, **kwargs) -> pn.pane.HoloViews:
    # separate plots with a shared dimension name (e.g. "density") must keep their own ranges
    return pn.pane.HoloViews(obj, linked_axes=False, sizing_mode="stretch_width", **kwargs)


_TABLE_CSS = """
table { border-collapse: collapse; font-size: 14px; }
th, td { padding: 5px 12px !important; text-align: left !important; }
tbody tr:nth-child(odd) { background: #f4f6f8; }
"""


def _table(frame: pd.DataFrame, index: bool, **kwargs) -> pn.pane.DataFrame:
    return pn.pane.DataFrame(frame, index=index, text_align="start", justify="left", stylesheets=[_TABLE_CSS], **kwargs)


def _runs(data: RunData, compared: RunData | None) -> list[RunData]:
    return [data] + ([compared] if compared is not None else [])


def measure_name(key: str) -> str:
    """The readable name of uncertainty measure ``key`` for a sentence: its axis label without the
    parenthesis (``mutual_information`` -> ``Mutual information``)."""
    return MEASURES[key].split(" (")[0]


# --- Runs ---------------------------------------------------------------------------------------


def runs_panel(summaries: Sequence[RunSummary], folder: Path) -> pn.viewable.Viewable:
    """All usable runs of the folder in a table, and the unusable files with their messages."""
    errors = [
        pn.pane.Alert(f"Unusable file: {literal(s.error)}", alert_type="danger", sizing_mode="stretch_width",
                      css_classes=[CSS.RUN_ERROR])
        for s in summaries
        if s.error
    ]
    return pn.Column(
        pn.pane.Markdown(
            f"## Runs in {literal(folder)}\nChoose the run in the sidebar; "
            "pick a second run under *Compare with* to see them side by side in every tab."
        ),
        _table(tables.runs_table(summaries), index=False, sizing_mode="stretch_width", css_classes=[CSS.RUNS_TABLE]),
        *errors,
        sizing_mode="stretch_width",
    )


def details_panel(data: RunData, compared: RunData | None) -> pn.viewable.Viewable:
    """The chosen run's recorded settings and results, beside the compared run's."""
    title = f"### {literal(data.name)}" + (f" compared with {literal(compared.name)}" if compared else "")
    return pn.Column(
        pn.pane.Markdown(title),
        _table(tables.run_details(_runs(data, compared)), index=True, css_classes=[CSS.RUN_DETAILS]),
        sizing_mode="stretch_width",
    )


def comparison_panel(data: RunData, compared: RunData | None, window: int, start: int,
                     log_scale: bool) -> pn.viewable.Viewable:
    """The Runs tab's comparison of the two runs' ELBOs (:func:`elbo_panel`); nothing without a compared run."""
    if compared is None:
        return pn.Column(sizing_mode="stretch_width")
    return elbo_panel(data, compared, window, start, log_scale)


# --- ELBO ---------------------------------------------------------------------------------------


def _nonfinite_note(data: RunData) -> str:
    """A warning naming where a stored ELBO history is NaN or infinite, or "" when it is all finite."""
    iterations = stats.nonfinite_iterations(data.elbo)
    if not len(iterations):
        return ""
    stretches = stats.nonfinite_runs(iterations)
    shown = ", ".join(f"{a:,}" if a == b else f"{a:,}–{b:,}" for a, b in stretches[:5])
    more = f" and {len(stretches) - 5:,} more stretches" if len(stretches) > 5 else ""
    return (
        f"\n\n**Warning: {len(iterations):,} of the {len(data.elbo):,} stored ELBO values are NaN or infinite** "
        f"in {literal(data.name)} (iterations {shown}{more}; red lines). The curve leaves them out of its means and "
        "has a gap where a window holds none; the file's history is damaged, or the fit diverged there."
    )


def _elbo_line(data: RunData) -> str:
    attrs = data.attrs
    change = tables.detail("elbo_change", attrs["elbo_change"]) if "elbo_change" in attrs else tables.MISSING
    return (f"- **{literal(data.name)}**: final {data.objective} (mean of the last 5 % of iterations) "
            f"**{tables.number(attrs.get('final_elbo', np.nan), ',.1f')}** nats; relative change from the 5 % "
            f"before: **{literal(change)}**")


def _point_estimate_note(data: RunData) -> str:
    """For a MAP fit or an ensemble, what its curve is instead of an ELBO; else ""."""
    if not data.point_estimate:
        return ""
    whose = "its members' mean " if data.method == "ensemble" else ""
    return (f"\n\n**{literal(data.name)}** is a point estimate ({literal(data.method)}): its curve is {whose}log "
            "posterior density (the prior's log density plus the scaled log likelihood, what its fit ascends), not "
            "an ELBO. It has no entropy term and does not compare with an ELBO; it can be positive, so it is "
            "drawn on a linear axis.")


def _scales_note(data: RunData, compared: RunData, ratio: float) -> str:
    magnitudes = ", ".join(f"{literal(d.name)} about {stats.elbo_magnitude(d.elbo.values):,.0f}" for d in (data, compared))
    priors = {d.attrs.get("prior") for d in (data, compared)}
    why = (f" Their priors differ ({' and '.join(literal(p) for p in sorted(map(str, priors)))}), and an ELBO holds "
           "the log prior of every weight: it measures each fit against its own model, not one against the other."
           if len(priors) > 1 else " Both have the same prior: their fits ended that far apart (from different "
           "starts, for instance).")
    return (f"**The two ELBOs are on different scales**: their final magnitudes differ {ratio:,.0f}-fold "
            f"({magnitudes} nats), so they are drawn side by side, each on its own axis.{why}")


def elbo_panel(data: RunData, compared: RunData | None, window: int, start: int, log_scale: bool) -> pn.viewable.Viewable:
    """The ELBO curves of the chosen run (and the compared run's), smoothed by a trailing mean of
    ``window`` iterations, from iteration ``start``, on a log axis of −ELBO if ``log_scale``.

    Two runs whose final ELBOs differ more than :data:`SCALE_RATIO`-fold are drawn side by side
    with a note saying so; otherwise on one axis.
    """
    runs = _runs(data, compared)
    why = ""
    if start == stats.elbo_settled_start(data.elbo.values) > 1:
        why = f", where −ELBO first comes within {stats.SETTLED_FACTOR:g}× its final value"
    where = (f"From iteration {start:,}{why}: drag *Start at iteration* to 1 for the whole history, or further to "
             "zoom into the tail (the post plots from iteration 10,000 on).")
    text = ("\n".join(_elbo_line(d) for d in runs) + f"\n\n{where}" + "".join(_nonfinite_note(d) for d in runs)
            + "".join(_point_estimate_note(d) for d in runs))
    parts = [pn.pane.Markdown(text, css_classes=[CSS.ELBO_SUMMARY], sizing_mode="stretch_width")]
    ratio = stats.scale_ratio(data.elbo.values, compared.elbo.values) if compared is not None else np.nan
    if ratio > SCALE_RATIO:
        parts.append(pn.pane.Alert(_scales_note(data, compared, ratio), alert_type="info", sizing_mode="stretch_width",
                                   css_classes=[CSS.ELBO_SCALES]))
        parts.append(pn.Row(*[
            _plot(plots.elbo_plot({d.name: d.elbo}, window, start, log_scale and not d.point_estimate,
                                  subtitle=f": {d.name}", colors=(color,), objective=d.objective))
            for d, color in zip(runs, plots.RUN_COLORS)
        ], sizing_mode="stretch_width"))
    else:
        point = any(d.point_estimate for d in runs)
        parts.append(_plot(plots.elbo_plot({d.name: d.elbo for d in runs}, window, start, log_scale and not point,
                                           objective=" and ".join(dict.fromkeys(d.objective for d in runs)))))
    return pn.Column(*parts, sizing_mode="stretch_width")


# --- Hyperpriors and weights --------------------------------------------------------------------


_PRIOR_FORMS = {
    "normal": "every weight ~ N(0, sd²)",
    "mixture": "every weight ~ pi N(0, sigma1²) + (1 - pi) N(0, sigma2²)",
}


def fixed_prior_note(data: RunData) -> str | None:
    """For a run without hyperprior draws, a Markdown sentence giving its prior and fixed parameters
    (the file's values as literal text, numbers to 4 significant digits); else None."""
    if data.hierarchical:
        return None
    prior = data.attrs.get("prior", "unknown")
    params = data.attrs.get("prior_params") or {}
    if isinstance(params, dict):
        values = ", ".join(f"{literal(key)} = {literal(tables.detail(key, value))}" for key, value in params.items())
    else:
        values = literal(params)
    form = _PRIOR_FORMS.get(prior, "")
    return (
        f"**{literal(data.name)}**: this run's prior is **{literal(prior)}**{f' ({form})' if form else ''} with fixed "
        f"parameters: {values or 'none recorded'}. There is no hyperprior: nothing to show here."
        + (f" It is a point estimate ({literal(data.method)}): nothing is drawn from a posterior, of the weights "
           "or of a prior's scale." if data.point_estimate else "")
    )


def _missing_layer(runs: list[RunData], layer: str) -> list[pn.viewable.Viewable]:
    return [
        pn.pane.Alert(f"{literal(d.name)} has no layer {literal(layer)} (its layers: {literal(', '.join(d.layers))}).",
                      alert_type="info", sizing_mode="stretch_width", css_classes=[CSS.NO_LAYER])
        for d in runs
        if not d.layer_tensors(layer)
    ]


def hyperprior_panel(data: RunData, compared: RunData | None, layer: str) -> pn.viewable.Viewable:
    """The posterior of the prior sds of ``layer``'s weights and biases (histograms, mean and 94 % HDI),
    and all hyperpriors as a forest plot; two hierarchical runs overlaid, in their colours. A run
    with a fixed prior shows its prior's parameters instead."""
    runs = _runs(data, compared)
    parts: list[pn.viewable.Viewable] = [
        pn.pane.Alert(fixed_prior_note(d), alert_type="info", sizing_mode="stretch_width",
                      css_classes=[CSS.NO_HYPERPRIOR])
        for d in runs
        if not d.hierarchical
    ]
    fitted = [d for d in runs if d.hierarchical]
    if not fitted:
        return pn.Column(*parts, sizing_mode="stretch_width")
    parts += _missing_layer(fitted, layer)
    names = list(dict.fromkeys(f"{t}_sd" for d in fitted for t in d.layer_tensors(layer) if f"{t}_sd" in d.hyperpriors))
    rows = "\n".join(
        f"| {literal(n)} | {literal(d.name)} | {tables.significant(float(np.mean(d.hyperpriors[n])))} | "
        f"{tables.significant(lo)} – {tables.significant(hi)} |"
        for n in names
        for d in fitted
        if n in d.hyperpriors
        for lo, hi in [stats.hdi(d.hyperpriors[n])]
    )
    parts += [
        pn.pane.Markdown(
            f"### Layer {literal(layer)}: posterior of the prior sd of its weights (W) and biases (b)\n"
            "Histogram of the posterior draws; line: mean; band: 94 % highest density interval.\n\n"
            f"| Hyperprior | Run | Mean | 94 % HDI |\n|---|---|---|---|\n{rows}",
            css_classes=[CSS.HYPERPRIOR_STATS],
        ),
        pn.Row(*[_plot(plots.hyperprior_histogram({d.name: d.hyperpriors[n] for d in fitted if n in d.hyperpriors}, n))
                 for n in names], sizing_mode="stretch_width"),
        _plot(plots.hyperprior_forest({d.name: d.hyperpriors for d in fitted})),
    ]
    return pn.Column(*parts, sizing_mode="stretch_width")


def weights_panel(data: RunData, compared: RunData | None, layer: str) -> pn.viewable.Viewable:
    """``layer``'s posterior means, sds and signal-to-noise ratios, for W and for b, from histograms of
    all its weights (:func:`dashboard.rundata.weight_summary`); two runs overlaid as densities."""
    runs = _runs(data, compared)
    parts = _missing_layer(runs, layer)
    single = [d for d in runs if d.point_estimate and d.n_draws == 1]
    parts += [pn.pane.Alert(
        f"{literal(d.name)} is one network ({literal(d.method)}): its weights have values, no posterior sd. Its "
        "values are drawn as the means; the sds, the signal-to-noise ratios and the scatter do not apply.",
        alert_type="info", sizing_mode="stretch_width") for d in single]
    ensembles = [d for d in runs if d.point_estimate and d.n_draws > 1]
    parts += [pn.pane.Alert(
        f"{literal(d.name)} is an ensemble of {d.n_draws} networks: its means and sds are those of each weight "
        "across its networks.", alert_type="info", sizing_mode="stretch_width") for d in ensembles]
    spread = [d.name for d in runs if d not in single]
    for name in dict.fromkeys(t for d in runs for t in d.layer_tensors(layer)):
        summaries = {d.name: rundata.weight_summary(d, name) for d in runs if name in d.tensors}
        if len(summaries) == 1:
            sizes = f"{next(iter(summaries.values())).size:,} weights"
        else:
            sizes = ", ".join(f"{s.size:,} weights in {literal(run)}" for run, s in summaries.items())
        parts.append(pn.pane.Markdown(f"### {literal(name)}: {sizes}"))
        parts.append(_plot(plots.weight_histograms(summaries, name, spread)))
        scattered = {run: s for run, s in summaries.items() if run in spread}
        if name.endswith(".W") and scattered:
            parts.append(_plot(plots.weight_scatter(scattered, name)))
    return pn.Column(*parts, sizing_mode="stretch_width")


# --- Accuracy and uncertainty -------------------------------------------------------------------


def _accuracy_line(data: RunData) -> str:
    attrs = data.attrs
    mode = attrs.get("accuracy_mode", float(data.correct.mean()))
    mean = attrs.get("accuracy_mean", np.nan)
    return (
        f"**{literal(data.name)}**: {tables.number(100 * mode, '.2f')} % (mode of the draws' labels), "
        f"{tables.number(100 * mean, '.2f')} % (mean predictive probability), on {data.n_digits:,} test digits"
    )


def accuracy_panel(data: RunData, compared: RunData | None,
                   select_cell: Callable[[int, int], None] | None = None) -> pn.viewable.Viewable:
    """Test accuracy, the confusion matrices (the compared run's beside the chosen run's) and per-class
    accuracy of both. A click on a cell of the chosen run's matrix calls ``select_cell(true, predicted)``."""
    runs = _runs(data, compared)
    matrices = []
    for d in runs:
        clickable = d is data and select_cell is not None
        heatmap = plots.confusion_heatmap(stats.confusion_counts(d.true, d.predicted), f"Confusion matrix of {d.name}")
        if clickable:
            tap = hv.streams.Tap(source=heatmap)
            tap.add_subscriber(lambda x, y: select_cell(int(y), int(x)) if x is not None and y is not None else None)
        matrices.append(_plot(heatmap, css_classes=[CSS.CONFUSION if d is data else CSS.CONFUSION_COMPARED]))
    bars = _plot(plots.per_class_bars({d.name: stats.per_class_accuracy(d.true, d.predicted) for d in runs}))
    click = (f" Click a cell of {literal(data.name)}'s matrix to see its digits in the Digits tab."
             if select_cell is not None else "")
    summary = pn.pane.Markdown(
        "### Test accuracy\n" + "\n".join(f"- {_accuracy_line(d)}" for d in runs) +
        "\n\nConfusion matrix: the number of digits of each true class (row) given each predicted class "
        "(column). The correct ones, on the diagonal, are green; each error cell is coloured by its share of "
        f"its true class (the colour bar, in %), so that the errors compare with one another.{click}",
        sizing_mode="stretch_width", css_classes=[CSS.ACCURACY_SUMMARY])
    if compared is None:
        return pn.Column(summary, pn.Row(*matrices, bars, sizing_mode="stretch_width"), sizing_mode="stretch_width")
    return pn.Column(summary, pn.Row(*matrices, sizing_mode="stretch_width"), bars, sizing_mode="stretch_width")


def uncertainty_panel(data: RunData, compared: RunData | None, measure: str) -> pn.viewable.Viewable:
    """The measure's distribution for correct and misclassified digits (each run's, side by side, on one
    range), its AUROC for telling them apart, and the referral curves (overlaid)."""
    absent = [pn.pane.Alert(literal(why), alert_type="info", sizing_mode="stretch_width",
                            css_classes=[CSS.MEASURE_ABSENT])
              for d in _runs(data, compared) if (why := d.measure_absent(measure))]
    runs = [d for d in _runs(data, compared) if measure in d.measures]
    if not runs:
        return pn.Column(*absent, sizing_mode="stretch_width")
    compared = runs[1] if len(runs) > 1 else None
    aurocs = ", ".join(f"{literal(d.name)}: **{tables.number(d.auroc[measure], '.3f')}**" for d in runs)
    header = pn.pane.Markdown(
        f"### {literal(MEASURES[measure])}\nAUROC for telling misclassified from correct digits by this measure "
        f"(0.5 = no better than chance, 1 = every error more uncertain than every correct digit): {aurocs}",
        sizing_mode="stretch_width", css_classes=[CSS.UNCERTAINTY_SUMMARY],
    )
    values = np.concatenate([d.measures[measure] for d in runs]).astype(np.float64)
    finite = values[np.isfinite(values)]
    limits = (float(finite.min()), float(finite.max())) if len(finite) else None
    histograms = [
        _plot(plots.measure_histograms(d.measures[measure], d.correct, MEASURES[measure], limits=limits,
                                       title="Correct vs misclassified digits" + (f": {d.name}" if compared else "")))
        for d in runs
    ]
    referral = _plot(plots.referral_plot({d.name: referral_curve(d.measures[measure], d.correct) for d in runs}))
    if compared is None:
        return pn.Column(*absent, header, pn.Row(*histograms, referral, sizing_mode="stretch_width"),
                         sizing_mode="stretch_width")
    return pn.Column(*absent, header, pn.Row(*histograms, sizing_mode="stretch_width"), referral,
                     sizing_mode="stretch_width")


# --- pages without runs -------------------------------------------------------------------------


def empty_view(folder: Path, summaries: Sequence[RunSummary]) -> pn.viewable.Viewable:
    """What to show when ``folder`` holds no usable run: how to make one, and the unusable files."""
    where = "does not exist" if not folder.is_dir() else "holds no usable run"
    errors = [
        pn.pane.Alert(f"Unusable file: {literal(s.error)}", alert_type="danger", css_classes=[CSS.RUN_ERROR])
        for s in summaries
        if s.error
    ]
    return pn.Column(
        pn.pane.Markdown(
            f"## No runs yet\nThe folder {literal(folder)} {where}. Train a run (a few minutes on a CPU) "
            f"with\n\n```bash\n{TRAIN_COMMAND}\n```\n\nthen reload this page. To browse another folder, start the "
            f"app with\n\n```bash\n{SERVE_COMMAND}\n```\n\nor set `BNN_RUNS_DIR`."
        ),
        *errors,
        sizing_mode="stretch_width",
    )


def refused_view(host: str, allowed_hosts: tuple[str, ...]) -> pn.viewable.Viewable:
    """What a page asked for under a host name the app does not answer to shows instead of any run."""
    return pn.pane.Markdown(
        f"## Not served under this name\nThis dashboard answers only to {literal(', '.join(allowed_hosts))}; "
        f"this page was asked for as {literal(host)}. To serve it under another name (behind a proxy), "
        "start it with `--args --allow-host NAME` as well; see SECURITY.md.",
        css_classes=[CSS.REFUSED],
    )
