"""Panel views of a :class:`~dashboard.state.RunBrowser`: one function per tab, plus the sidebar.

Each view binds plot functions from :mod:`dashboard.plots` to the browser's parameters, so it
re-renders when they change. The inspector's charts (:mod:`dashboard.inspector_charts`) instead
keep their figures and only swap data, because a digit is selected far more often than anything else.
"""

from __future__ import annotations

import math

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn

from core.uncertainty import MEASURES, referral_curve

from . import plots, rundata
from .gallery import DigitGallery, digit_uri
from .inspector_charts import SpreadChart, VoteChart
from .rundata import RunData
from .state import TABS, RunBrowser
from .text import literal

__all__ = [
    "SERVE_COMMAND",
    "TRAIN_COMMAND",
    "accuracy_view",
    "digits_view",
    "elbo_view",
    "empty_view",
    "hyperprior_view",
    "refused_view",
    "run_details",
    "runs_table",
    "runs_view",
    "sidebar",
    "tabs",
    "uncertainty_view",
    "weights_view",
]

TRAIN_COMMAND = "bnn train --model mlp --prior normal --iterations 2000 --out cached_traces"
# loopback only: without --address the server would listen on every interface (see SECURITY.md)
SERVE_COMMAND = (
    "panel serve dashboard/app.py --address 127.0.0.1 --port 5006 --allow-websocket-origin 127.0.0.1:5006 "
    "--args --runs DIR"
)


def _plot(obj, **kwargs) -> pn.pane.HoloViews:
    # separate plots with a shared dimension name (e.g. "density") must keep their own ranges
    return pn.pane.HoloViews(obj, linked_axes=False, sizing_mode="stretch_width", **kwargs)


_TABLE_CSS = """
table { border-collapse: collapse; font-size: 14px; }
th, td { padding: 5px 12px !important; text-align: left !important; }
tbody tr:nth-child(odd) { background: #f4f6f8; }
"""


def _table(frame: pd.DataFrame, index: bool, **kwargs) -> pn.pane.DataFrame:
    return pn.pane.DataFrame(frame, index=index, text_align="start", justify="left", stylesheets=[_TABLE_CSS], **kwargs)


_DIGIT_CSS = "img.digit { width: 224px; height: 224px; image-rendering: pixelated; border: 1px solid #bbb; }"


def _duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "–"
    if seconds < 120:
        return f"{seconds:.1f} s"
    minutes = seconds / 60
    return f"{minutes:.0f} min" if minutes < 120 else f"{minutes / 60:.1f} h"


def _number(value: float, fmt: str) -> str:
    return "–" if value is None or not math.isfinite(value) else format(value, fmt)


# --- Runs ---------------------------------------------------------------------------------------


def runs_table(browser: RunBrowser) -> pd.DataFrame:
    """One row per usable run of the listing: the columns a person compares runs by."""
    rows = [
        {
            "Run": s.name,
            "Model": s.model,
            "Prior": s.prior,
            "Label": s.label,
            "Iterations": f"{s.iterations:,}",
            "Accuracy (%)": _number(100 * s.accuracy, ".2f"),
            "ELBO at end (nats)": _number(s.final_elbo, ",.0f"),
            "Training time": _duration(s.wall_time_s),
            "Speed (it/s)": _number(s.iterations_per_s, ",.1f"),
        }
        for s in browser.summaries
        if not s.error
    ]
    return pd.DataFrame(rows)


_DETAILS = (
    ("model", "Model"),
    ("prior", "Prior"),
    ("prior_params", "Prior parameters"),
    ("label", "Label"),
    ("iterations", "Iterations"),
    ("batch_size", "Batch size"),
    ("n_train", "Training digits"),
    ("optimizer", "Optimizer"),
    ("learning_rate", "Learning rate"),
    ("lr_schedule", "Schedule"),
    ("lr_floor", "Step-size floor (of the peak)"),
    ("lr_hold", "Held at the floor (of iterations)"),
    ("start", "Start of the means"),
    ("start_sigma", "Start of the sds"),
    ("seed", "Seed"),
    ("backend", "Backend"),
    ("float", "Float"),
    ("machine", "Machine"),
    ("n_draws", "Predictive draws"),
    ("accuracy_mode", "Accuracy, mode of draws"),
    ("accuracy_mean", "Accuracy, mean probability"),
    ("final_elbo", "ELBO at end (nats)"),
    ("elbo_change", "ELBO relative change at end"),
    ("auroc", "AUROC of chi-square"),
    ("wall_time_s", "Training time"),
    ("iterations_per_s", "Speed (it/s)"),
    ("created", "Created"),
    ("command", "Command"),
)


def _detail(key: str, value) -> str:
    if key in ("accuracy_mode", "accuracy_mean"):
        return f"{100 * value:.2f} %"
    if key == "wall_time_s":
        return _duration(float(value))
    if key == "elbo_change":
        return f"{value:.2%}"
    if key in ("final_elbo", "iterations_per_s", "auroc") and isinstance(value, float):
        return f"{value:,.3f}" if key == "auroc" else f"{value:,.1f}"
    if isinstance(value, dict):
        return ", ".join(f"{k} = {v}" for k, v in value.items())
    return str(value)


def run_details(runs: list[RunData]) -> pd.DataFrame:
    """The recorded settings and results of one or more runs, one column per run."""
    columns = {}
    for data in runs:
        columns[data.name] = {
            label: _detail(key, data.attrs[key]) if key in data.attrs else "–" for key, label in _DETAILS
        }
        columns[data.name]["Layers"] = ", ".join(data.layers)
    return pd.DataFrame(columns)


def runs_view(browser: RunBrowser) -> pn.viewable.Viewable:
    """All runs of the folder in a table, unusable files with their messages, and the selected
    run's details next to the comparison run's."""
    errors = [
        pn.pane.Alert(
            f"Unusable file: {literal(s.error)}", alert_type="danger", sizing_mode="stretch_width", css_classes=["run-error"]
        )
        for s in browser.errors
    ]

    def details(run: str, compare: str) -> pn.viewable.Viewable:
        runs = browser.shown
        title = f"### {literal(run)}" + (f" compared with {literal(compare)}" if len(runs) > 1 else "")
        body = [pn.pane.Markdown(title)]
        if len(runs) > 1:
            body.append(
                _plot(_elbo_overlay(browser, window=max(1, len(browser.data.elbo) // 100), start=1, log_scale=False))
            )
        body.append(_table(run_details(runs), index=True, css_classes=["run-details"]))
        return pn.Column(*body, sizing_mode="stretch_width")

    return pn.Column(
        pn.pane.Markdown(
            f"## Runs in {literal(browser.folder)}\nChoose the run in the sidebar; "
            "pick a second run under *Compare with* to see them side by side."
        ),
        _table(runs_table(browser), index=False, sizing_mode="stretch_width", css_classes=["runs-table"]),
        *errors,
        pn.panel(pn.bind(details, browser.param.run, browser.param.compare), sizing_mode="stretch_width"),
        sizing_mode="stretch_width",
    )


# --- ELBO ---------------------------------------------------------------------------------------


def _elbo_overlay(browser: RunBrowser, window: int, start: int, log_scale: bool) -> hv.Overlay:
    runs = browser.shown
    curves = [plots.elbo_curve(d.elbo, window, start, log_scale, label=d.name) for d in runs]
    gaps = plots.nonfinite_runs(plots.nonfinite_iterations(browser.data.elbo.sel(iteration=slice(start, None))))
    if gaps:
        curves.append(plots.nonfinite_marks(gaps))
    title = f"ELBO per iteration, trailing mean of {window} iteration{'s' if window > 1 else ''}"
    return hv.Overlay(curves).opts(title=title, legend_position="bottom_right" if not log_scale else "top_right")


def _nonfinite_note(elbo) -> str:
    """A warning naming where a stored ELBO history is NaN or infinite, or "" when it is all finite."""
    iterations = plots.nonfinite_iterations(elbo)
    if not len(iterations):
        return ""
    stretches = plots.nonfinite_runs(iterations)
    shown = ", ".join(f"{a:,}" if a == b else f"{a:,}–{b:,}" for a, b in stretches[:5])
    more = f" and {len(stretches) - 5:,} more stretches" if len(stretches) > 5 else ""
    return (
        f"\n\n**Warning: {len(iterations):,} of the {len(elbo):,} stored ELBO values are NaN or infinite** "
        f"(iterations {shown}{more}; red lines). The curve leaves them out of its means and has a gap where "
        "a window holds none; the file's history is damaged, or the fit diverged there."
    )


def elbo_view(browser: RunBrowser) -> pn.viewable.Viewable:
    """The ELBO curve (and the comparison run's), smoothed, from a start iteration, optionally log."""
    controls = pn.Row(
        pn.widgets.IntInput.from_param(browser.param.window, width=200),
        pn.widgets.IntSlider.from_param(browser.param.start, width=320),
        pn.widgets.Checkbox.from_param(browser.param.log_scale, margin=(30, 10, 10, 10)),
    )

    def plot(run: str, compare: str, window: int, start: int, log_scale: bool) -> hv.Overlay:
        return _elbo_overlay(browser, window, start, log_scale)

    def summary(run: str) -> str:
        attrs = browser.data.attrs
        final = _number(attrs.get("final_elbo", math.nan), ",.1f")
        change = _detail("elbo_change", attrs["elbo_change"]) if "elbo_change" in attrs else "–"
        return (
            f"Final ELBO (mean of the last 5 % of iterations): **{final}** nats; relative change from the 5 % "
            f"before: **{change}**. Drag *Start at iteration* to zoom into the tail (the post plots from "
            "iteration 10,000 on)."
        ) + _nonfinite_note(browser.data.elbo)

    bound = pn.bind(
        plot,
        browser.param.run,
        browser.param.compare,
        browser.param.window,
        browser.param.start,
        browser.param.log_scale,
    )
    return pn.Column(
        controls,
        pn.pane.Markdown(pn.bind(summary, browser.param.run), css_classes=["elbo-summary"]),
        _plot(bound),
        sizing_mode="stretch_width",
    )


# --- Hyperpriors and weights --------------------------------------------------------------------


def _layer_tensors(data: RunData, layer: str) -> list[str]:
    return [name for name in data.weights if name.split(".")[0] == layer]


def hyperprior_view(browser: RunBrowser) -> pn.viewable.Viewable:
    """The chosen layer's hyperprior posteriors, and all of them as a forest plot; for fixed
    priors, the prior's parameters and a note that there is no hyperprior."""
    select = pn.widgets.Select.from_param(browser.param.layer, width=200)

    def content(run: str, layer: str) -> pn.viewable.Viewable:
        data = browser.data
        note = rundata.fixed_prior_note(data)
        if note:
            return pn.pane.Alert(note, alert_type="info", sizing_mode="stretch_width", css_classes=["no-hyperprior"])
        names = [f"{t}_sd" for t in _layer_tensors(data, layer) if f"{t}_sd" in data.hyperpriors]
        histograms = [_plot(plots.hyperprior_histogram(data.hyperpriors[n], n)) for n in names]
        rows = "\n".join(
            f"| {literal(n)} | {np.mean(data.hyperpriors[n]):.4g} | {lo:.4g} – {hi:.4g} |"
            for n in names
            for lo, hi in [plots.hdi(data.hyperpriors[n])]
        )
        return pn.Column(
            pn.pane.Markdown(
                f"### Layer {literal(layer)}: posterior of the prior sd of its weights (W) and biases (b)\n"
                "Histogram of the posterior draws; line: mean; band: 94 % highest density interval.\n\n"
                f"| Hyperprior | Mean | 94 % HDI |\n|---|---|---|\n{rows}",
                css_classes=["hyperprior-stats"],
            ),
            pn.Row(*histograms, sizing_mode="stretch_width"),
            _plot(plots.hyperprior_forest(data.hyperpriors)),
            sizing_mode="stretch_width",
        )

    return pn.Column(
        select, pn.panel(pn.bind(content, browser.param.run, browser.param.layer)), sizing_mode="stretch_width"
    )


def weights_view(browser: RunBrowser) -> pn.viewable.Viewable:
    """The chosen layer's posterior means, sds and signal-to-noise ratios, for W and for b."""
    select = pn.widgets.Select.from_param(browser.param.layer, width=200)

    def content(run: str, layer: str) -> pn.viewable.Viewable:
        data = browser.data
        parts = []
        for name in _layer_tensors(data, layer):
            mean, sd = data.weights[name]
            size = data.run["variational_mean"][name].size
            sampled = f" (a random {len(mean):,} of them)" if len(mean) < size else ""
            parts.append(pn.pane.Markdown(f"### {literal(name)}: {size:,} weights{sampled}"))
            parts.append(_plot(plots.weight_histograms(mean, sd, name).opts(shared_axes=False)))
            if name.endswith(".W"):
                parts.append(_plot(plots.weight_scatter(mean, sd, name)))
        return pn.Column(*parts, sizing_mode="stretch_width")

    return pn.Column(
        select, pn.panel(pn.bind(content, browser.param.run, browser.param.layer)), sizing_mode="stretch_width"
    )


# --- Accuracy and uncertainty -------------------------------------------------------------------


def _accuracy_line(data: RunData) -> str:
    attrs = data.attrs
    mode = attrs.get("accuracy_mode", float(data.correct.mean()))
    mean = attrs.get("accuracy_mean", math.nan)
    return (
        f"**{literal(data.name)}**: {100 * mode:.2f} % (mode of the draws' labels), "
        f"{_number(100 * mean, '.2f')} % (mean predictive probability), on {data.n_digits:,} test digits"
    )


def accuracy_view(browser: RunBrowser) -> pn.viewable.Viewable:
    """Test accuracy, a clickable confusion matrix and per-class accuracy."""

    def summary(run: str, compare: str) -> str:
        runs = browser.shown
        return "### Test accuracy\n" + "\n".join(f"- {_accuracy_line(d)}" for d in runs)

    def per_class(run: str, compare: str) -> hv.Bars:
        runs = browser.shown
        return plots.per_class_bars({d.name: plots.per_class_accuracy(d.true, d.predicted) for d in runs})

    def matrix(run: str) -> hv.Overlay:
        data = browser.data
        heatmap = plots.confusion_heatmap(plots.confusion_counts(data.true, data.predicted))
        tap = hv.streams.Tap(source=heatmap)
        tap.add_subscriber(
            lambda x, y: browser.select_cell(int(y), int(x)) if x is not None and y is not None else None
        )
        return heatmap.opts(title=f"Confusion matrix of {run}: click a cell")

    p = browser.param
    return pn.Column(
        pn.pane.Markdown(pn.bind(summary, p.run, p.compare), sizing_mode="stretch_width"),
        pn.Row(
            _plot(pn.bind(matrix, p.run), css_classes=["confusion"]),
            _plot(pn.bind(per_class, p.run, p.compare)),
            sizing_mode="stretch_width",
        ),
        sizing_mode="stretch_width",
    )


def uncertainty_view(browser: RunBrowser) -> pn.viewable.Viewable:
    """The chosen measure for correct vs misclassified digits, the referral curve, and the AUROC."""

    def header(run: str, compare: str, measure: str) -> str:
        runs = browser.shown
        aurocs = ", ".join(f"{literal(d.name)}: **{_number(d.auroc[measure], '.3f')}**" for d in runs)
        return (
            f"### {MEASURES[measure]}\nAUROC for telling misclassified from correct digits by this measure "
            f"(0.5 = no better than chance, 1 = every error more uncertain than every correct digit): {aurocs}"
        )

    def histograms(run: str, measure: str) -> hv.Overlay:
        data = browser.data
        return plots.measure_histograms(data.measures[measure], data.correct, MEASURES[measure])

    def referral(run: str, compare: str, measure: str) -> hv.Overlay:
        runs = browser.shown
        curves = [plots.referral_plot(*referral_curve(d.measures[measure], d.correct), label=d.name) for d in runs]
        for curve, color in zip(curves, (plots.BLUE, plots.ORANGE)):
            curve.opts(color=color)
        return hv.Overlay(curves).opts(title="Referral curve", legend_position="bottom_right")

    p = browser.param
    return pn.Column(
        pn.pane.Markdown(pn.bind(header, p.run, p.compare, p.measure), sizing_mode="stretch_width"),
        pn.Row(
            _plot(pn.bind(histograms, p.run, p.measure)),
            _plot(pn.bind(referral, p.run, p.compare, p.measure)),
            sizing_mode="stretch_width",
        ),
        sizing_mode="stretch_width",
    )


# --- Digits: gallery and inspector --------------------------------------------------------------


def _gallery_items(browser: RunBrowser) -> list[dict]:
    data, measure = browser.data, browser.measure
    values = data.measures[measure]
    return [
        {
            "digit": int(d),
            "src": digit_uri(data.images[d]),
            "caption": f"{data.true[d]} → {data.predicted[d]}",
            "title": f"test digit {d}: true {data.true[d]}, predicted {data.predicted[d]}; {measure} = {values[d]:.3g}",
        }
        for d in browser.page_digits()
    ]


def _gallery(browser: RunBrowser) -> pn.viewable.Viewable:
    gallery = DigitGallery(items=_gallery_items(browser), selected=browser.digit, sizing_mode="stretch_width")
    previous = pn.widgets.Button(label="◀ Previous", width=110)
    following = pn.widgets.Button(label="Next ▶", width=110)
    clear = pn.widgets.Button(label="Show all misclassified", width=200, color="primary")
    previous.on_click(lambda event: browser.turn_page(-1))
    following.on_click(lambda event: browser.turn_page(1))
    clear.on_click(lambda event: setattr(browser, "cell", None))
    status = pn.pane.Markdown(sizing_mode="stretch_width")

    def refresh(*events) -> None:
        n = len(browser.gallery_digits())
        what = (
            "misclassified digits"
            if browser.cell is None
            else f"digits of true class {browser.cell[0]} predicted as {browser.cell[1]}"
        )
        order = "least" if browser.reverse else "most"
        status.object = (
            f"**{n:,} {what}**, {order} uncertain first by {browser.measure}; "
            f"page {browser.page + 1} of {browser.page_count}. Caption: true → predicted."
        )
        clear.visible = browser.cell is not None
        gallery.items = _gallery_items(browser)

    refresh()
    browser.param.watch(refresh, ["run", "measure", "reverse", "cell", "page"])
    browser.param.watch(lambda event: setattr(gallery, "selected", event.new), "digit")
    def select(event) -> None:
        # one patch for the whole inspector: the browser lays the page out once, not once per pane
        with pn.io.hold():
            browser.digit = event.new

    gallery.param.watch(select, "selected")
    controls = pn.Row(
        previous, following, pn.widgets.Checkbox.from_param(browser.param.reverse, margin=(18, 10)), clear
    )
    return pn.Column(status, controls, gallery, sizing_mode="stretch_width")


def _inspector(browser: RunBrowser) -> pn.viewable.Viewable:
    def title(run: str, digit: int, measure: str) -> str:
        data = browser.data
        verdict = "correct" if data.correct[digit] else "misclassified"
        return (
            f"### Test digit {digit}\nTrue **{data.true[digit]}**, predicted **{data.predicted[digit]}** "
            f"(mode of {data.n_draws} draws, {verdict}).\n\n{measure} = {data.measures[measure][digit]:.3g}\n\n"
            "Below, the true class is orange."
        )

    def image(run: str, digit: int) -> str:
        return f'<img class="digit" src="{digit_uri(browser.data.images[digit])}" alt="test digit {digit}">'

    votes, spread = VoteChart(), SpreadChart()

    def show(*events) -> None:
        data, digit = browser.data, browser.digit
        true = int(data.true[digit])
        votes.show(data.labels[:, digit], true)
        spread.show(rundata.inspector_probabilities(data, digit), true)

    show()
    browser.param.watch(show, ["run", "digit"])
    p = browser.param
    return pn.Column(
        pn.Row(
            pn.pane.HTML(pn.bind(image, p.run, p.digit), width=236, height=236, stylesheets=[_DIGIT_CSS]),
            pn.Column(
                pn.widgets.IntInput.from_param(p.digit, width=150),
                pn.pane.Markdown(pn.bind(title, p.run, p.digit, p.measure), css_classes=["inspector-title"]),
            ),
        ),
        pn.pane.Bokeh(votes.figure, sizing_mode="stretch_width", css_classes=["votes"]),
        pn.pane.Bokeh(spread.figure, sizing_mode="stretch_width", css_classes=["spread"]),
        sizing_mode="stretch_width",
    )


def digits_view(browser: RunBrowser) -> pn.viewable.Viewable:
    """The gallery of (misclassified or filtered) digits beside the inspector of the selected digit."""
    return pn.Row(
        pn.Column(_gallery(browser), sizing_mode="stretch_width"),
        pn.Column(_inspector(browser), width=430, css_classes=["inspector"]),
        sizing_mode="stretch_width",
    )


# --- Frame --------------------------------------------------------------------------------------


def sidebar(browser: RunBrowser) -> list[pn.viewable.Viewable]:
    """Run, comparison run and measure selectors, and the browser's notices."""
    notice = pn.pane.Alert(
        pn.bind(literal, browser.param.notice),
        alert_type="warning",
        visible=pn.bind(bool, browser.param.notice),
        css_classes=["notice"],
        sizing_mode="stretch_width",
    )
    return [
        pn.widgets.Select.from_param(browser.param.run, sizing_mode="stretch_width"),
        pn.widgets.Select.from_param(browser.param.compare, sizing_mode="stretch_width"),
        pn.widgets.Select.from_param(browser.param.measure, sizing_mode="stretch_width"),
        notice,
        pn.pane.Markdown(
            "Click a confusion-matrix cell (Accuracy) or a thumbnail (Digits) to inspect digits. "
            "The address bar keeps the run, tab and digit: copy it to share this view."
        ),
    ]


VIEWS = {
    "runs": runs_view,
    "elbo": elbo_view,
    "hyperpriors": hyperprior_view,
    "weights": weights_view,
    "accuracy": accuracy_view,
    "uncertainty": uncertainty_view,
    "digits": digits_view,
}


def tabs(browser: RunBrowser) -> pn.Tabs:
    """One tab per view, kept in step with ``browser.tab``. A view is built when its tab is first opened,
    and only the open tab is rendered, so a session starts with the work of one view."""
    keys = list(TABS)

    def lazy(view) -> pn.param.ParamFunction:
        def build() -> pn.viewable.Viewable:
            return view(browser)

        return pn.param.ParamFunction(build, lazy=True, sizing_mode="stretch_width")

    contents = [lazy(VIEWS[k]) for k in keys]
    widget = pn.Tabs(
        *zip((TABS[k] for k in keys), contents),
        active=keys.index(browser.tab),
        dynamic=True,
        sizing_mode="stretch_width",
    )
    widget.param.watch(lambda event: setattr(browser, "tab", keys[event.new]), "active")
    browser.param.watch(lambda event: setattr(widget, "active", keys.index(event.new)), "tab")
    return widget


def empty_view(browser: RunBrowser) -> pn.viewable.Viewable:
    """What to show when the folder holds no usable run: how to make one, and the unusable files."""
    where = "does not exist" if not browser.folder.is_dir() else "holds no usable run"
    errors = [
        pn.pane.Alert(f"Unusable file: {literal(s.error)}", alert_type="danger", css_classes=["run-error"])
        for s in browser.errors
    ]
    return pn.Column(
        pn.pane.Markdown(
            f"## No runs yet\nThe folder {literal(browser.folder)} {where}. Train a run (a few minutes on a CPU) "
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
        css_classes=["refused"],
    )
