"""dashboard.views: every view is a function of bare RunData and settings; each builds and renders to Bokeh
models for one run and for two, and shows the second run."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import holoviews as hv
import numpy as np
import panel as pn
import pytest
from bokeh.document import Document

from dashboard import plots, rundata, views
from dashboard.views import CSS
from tests.test_dashboard_text import shown_text


def elements(view: pn.viewable.Viewable) -> list[hv.core.Dimensioned]:
    """The HoloViews objects a view shows, in order."""
    return [pane.object for pane in view.select(pn.pane.HoloViews)]


def texts(view: pn.viewable.Viewable, kind: type = pn.pane.Markdown) -> str:
    return " ".join(shown_text(pane) for pane in view.select(kind))


def titles(view: pn.viewable.Viewable) -> list[str]:
    found = []
    for element in elements(view):
        for part in [element, *(element.values() if hasattr(element, "values") else [])]:
            title = part.opts.get().kwargs.get("title")
            if title:
                found.append(title)
    return found


VIEWS = {
    "details": lambda data, compared: views.details_panel(data, compared),
    "comparison": lambda data, compared: views.comparison_panel(data, compared, 50, 1, True),
    "elbo": lambda data, compared: views.elbo_panel(data, compared, 50, 1, False),
    "hyperpriors": lambda data, compared: views.hyperprior_panel(data, compared, data.layers[0]),
    "weights": lambda data, compared: views.weights_panel(data, compared, data.layers[-1]),
    "accuracy": lambda data, compared: views.accuracy_panel(data, compared, lambda true, predicted: None),
    "uncertainty": lambda data, compared: views.uncertainty_panel(data, compared, "entropy"),
}


@pytest.mark.parametrize("pair", ["mlp", "cnn", "mlp+cnn", "cnn+mlp"])
@pytest.mark.parametrize("name", list(VIEWS))
def test_every_view_renders_for_one_run_and_for_two(mlp, cnn, name, pair):
    runs = {"mlp": mlp, "cnn": cnn}
    first, *second = (runs[key] for key in pair.split("+"))
    view = VIEWS[name](first, second[0] if second else None)
    view.get_root(Document())


def test_runs_panel_lists_usable_runs_and_unusable_files(folder):
    summaries = rundata.list_runs(folder)
    view = views.runs_panel(summaries, folder)
    table = next(p for p in view.select(pn.pane.DataFrame) if CSS.RUNS_TABLE in p.css_classes).object
    assert list(table["Run"]) == ["cnn-normal", "mlp-hier"]
    alerts = texts(view, pn.pane.Alert)
    assert "truncated.nc" in alerts and "truncated" in alerts.replace("truncated.nc", "")


def test_details_panel_puts_the_compared_run_beside(mlp, cnn):
    view = views.details_panel(cnn, mlp)
    details = next(iter(view.select(pn.pane.DataFrame))).object
    assert list(details.columns) == ["cnn-normal", "mlp-hier"] and details.loc["Prior", "mlp-hier"] == "hierarchical"
    assert "cnn-normal compared with mlp-hier" in texts(view)
    assert views.comparison_panel(cnn, None, 50, 1, True).objects == []  # no comparison: no ELBO in the Runs tab


def test_elbo_panel_overlays_two_runs_on_one_scale(mlp, cnn):
    view = views.elbo_panel(mlp, cnn, window=20, start=100, log_scale=True)
    (overlay,) = elements(view)
    curves = [e for e in overlay.values() if isinstance(e, hv.Curve)]
    assert [c.label for c in curves] == ["mlp-hier", "cnn-normal"]
    assert curves[0].dimension_values("iteration")[0] == 100 + 20 - 1 and curves[0].opts.get().kwargs["logy"]
    summary = texts(view)
    assert "mlp-hier: final ELBO" in summary and "cnn-normal: final ELBO" in summary and "From iteration 100" in summary
    assert not list(view.select(pn.pane.Alert))


def test_elbo_panel_puts_elbos_of_different_scales_side_by_side_and_says_why(mlp, cnn):
    mixture = dataclasses.replace(cnn, name="mixture", elbo=cnn.elbo * 200,
                                  attrs={**cnn.attrs, "prior": "mixture"})
    view = views.elbo_panel(mlp, mixture, window=50, start=1, log_scale=False)
    note = texts(view, pn.pane.Alert)
    assert "different scales" in note and "200-fold" in note and "priors differ" in note
    plots_ = elements(view)
    assert len(plots_) == 2 and [p.values()[0].label for p in plots_] == ["mlp-hier", "mixture"]
    assert plots_[1].values()[0].opts.get().kwargs["color"] == plots.ORANGE
    assert [t.endswith(name) for t, name in zip(titles(view), ("mlp-hier", "mixture"))] == [True, True]


def test_elbo_panel_warns_of_nonfinite_values(mlp):
    damaged = mlp.elbo.copy()
    damaged[[9, 10, 11, 49]] = np.nan
    view = views.elbo_panel(dataclasses.replace(mlp, elbo=damaged), None, 5, 1, False)
    assert "4 of the 2,000 stored ELBO values are NaN or infinite in mlp-hier" in texts(view)
    assert "10–12, 50" in texts(view)


def test_hyperprior_panel_shows_the_layer_and_the_forest(mlp):
    view = views.hyperprior_panel(mlp, None, "dense_2")
    stats_text = texts(view)
    assert "dense_2.W_sd" in stats_text and "dense_2.b_sd" in stats_text and "dense_1.W_sd" not in stats_text
    assert titles(view)[:2] == [f"dense_2.W_sd: mean {np.mean(mlp.hyperpriors['dense_2.W_sd']):.3g}",
                                f"dense_2.b_sd: mean {np.mean(mlp.hyperpriors['dense_2.b_sd']):.3g}"]
    assert "All hyperpriors" in titles(view)


def test_hyperprior_panel_of_two_hierarchical_runs_overlays_them(mlp):
    other = dataclasses.replace(mlp, name="other", hyperpriors={k: v * 2 for k, v in mlp.hyperpriors.items()})
    view = views.hyperprior_panel(mlp, other, "dense_1")
    histogram = elements(view)[0]
    assert [h.label for h in histogram.values() if isinstance(h, hv.Histogram)] == ["mlp-hier", "other"]
    forest = elements(view)[-1]
    assert [e.label for e in forest.values() if isinstance(e, hv.Segments)] == ["mlp-hier", "other"]
    assert texts(view).count("other") >= 2  # a row of the table per run and hyperprior


def test_fixed_prior_runs_say_there_is_no_hyperprior(mlp, cnn):
    view = views.hyperprior_panel(cnn, None, "conv_1")
    note = texts(view, pn.pane.Alert)
    assert "no hyperprior" in note and "sd = 0.1" in note and "normal" in note and not elements(view)
    both = views.hyperprior_panel(mlp, cnn, "dense_1")
    assert "cnn-normal" in texts(both, pn.pane.Alert) and "All hyperpriors" in titles(both)
    assert views.fixed_prior_note(mlp) is None


def test_prior_parameters_show_four_significant_digits(cnn):
    attrs = {**cnn.attrs, "prior": "mixture", "prior_params": {"pi": 0.25, "sigma1": 1.0, "sigma2": 0.0009118819655545162}}
    note = views.fixed_prior_note(dataclasses.replace(cnn, attrs=attrs))
    assert "pi N(0, sigma1²)" in note and "no hyperprior" in note
    pane = pn.pane.Markdown(note)
    assert "sigma2 = 0.0009119" in shown_text(pane) and "pi = 0.25" in shown_text(pane)
    assert "0.0009118819" not in shown_text(pane)


def test_weights_panel_overlays_the_compared_runs_weights(mlp):
    other = dataclasses.replace(mlp, name="other")
    view = views.weights_panel(mlp, other, "dense_2")
    layout = elements(view)[0]
    assert all([h.label for h in overlay.values()] == ["mlp-hier", "other"] for overlay in layout)
    assert "dense_2.W: 160 weights in mlp-hier, 160 weights in other" in texts(view)


def test_weights_panel_counts_all_weights_of_one_run(mlp):
    view = views.weights_panel(mlp, None, "dense_1")
    layout = elements(view)[0]
    counts = [overlay.values()[0].dimension_values(1).sum() for overlay in layout]
    assert counts == [784 * 16] * 3  # every weight, not a sample
    assert f"dense_1.W: {784 * 16:,} weights" in texts(view)
    assert "dense_1.W: sd against mean (4,000 weights)" in titles(view)


def test_weights_panel_says_which_run_lacks_the_layer(mlp, cnn):
    view = views.weights_panel(cnn, mlp, "conv_1")
    assert "mlp-hier has no layer conv_1" in texts(view, pn.pane.Alert)
    assert all(h.label == "" for overlay in elements(view)[0] for h in overlay.values())  # cnn-normal's only


def test_accuracy_panel_shows_both_matrices_and_a_tap_selects_a_cell(mlp, cnn):
    cells = []
    view = views.accuracy_panel(mlp, cnn, lambda true, predicted: cells.append((true, predicted)))
    view.get_root(Document())
    panes = {css: p for p in view.select(pn.pane.HoloViews) for css in p.css_classes}
    assert titles(panes[CSS.CONFUSION]) and "Confusion matrix of mlp-hier" in titles(view)
    assert "Confusion matrix of cnn-normal" in titles(view)
    tap = next(s for s in hv.streams.Stream.registry[panes[CSS.CONFUSION].object] if isinstance(s, hv.streams.Tap))
    tap.event(x="4", y="2")  # categorical axes: predicted 4, true 2
    assert cells == [(2, 4)]
    assert not [s for s in hv.streams.Stream.registry.get(panes[CSS.CONFUSION_COMPARED].object, [])
                if isinstance(s, hv.streams.Tap)]
    bars = next(e for e in elements(view) if isinstance(e, hv.Bars))
    assert set(bars.dimension_values("run")) == {"mlp-hier", "cnn-normal"}
    summary = texts(view)
    assert "mlp-hier: " in summary and "cnn-normal: " in summary and "mode of the draws" in summary


def test_uncertainty_panel_shows_each_runs_histograms_on_one_range(mlp, cnn):
    view = views.uncertainty_panel(mlp, cnn, "mutual_information")
    first, second, referral = elements(view)
    assert first.opts.get().kwargs["title"].endswith("mlp-hier") and second.opts.get().kwargs["title"].endswith("cnn-normal")
    np.testing.assert_array_equal(first.values()[0].edges, second.values()[0].edges)
    assert [c.label for c in referral.values()] == ["mlp-hier", "cnn-normal"]
    header = texts(view)
    assert f"mlp-hier: {mlp.auroc['mutual_information']:.3f}" in header and "cnn-normal: " in header
    assert "Mutual information" in header and "mutual_information" not in header


def test_measures_have_readable_names():
    assert views.measure_name("mutual_information") == "Mutual information"
    assert views.measure_name("chi_square") == "Chi-square of votes vs uniform"


def test_views_read_no_session_state():
    source = Path(views.__file__).read_text()
    assert "RunBrowser" not in source.split('"""', 2)[2] and "import state" not in source and "from .state" not in source


def test_empty_folder_shows_how_to_train(tmp_path):
    view = views.empty_view(tmp_path, [])
    text = texts(view)
    assert views.TRAIN_COMMAND in text and str(tmp_path) in text
