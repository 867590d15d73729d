"""The views of a point-estimate run (a MAP fit, a deep ensemble): every view works, or says why it
does not apply, alone and beside an ADVI run."""

from __future__ import annotations

from pathlib import Path

import panel as pn
import pytest
from bokeh.document import Document

from core import store
from core.synthetic import synthetic_run
from dashboard import digits, rundata, shift_views, views
from dashboard.rundata import RunData
from dashboard.views import CSS
from tests.test_dashboard_text import shown_text


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("point-runs")
    store.save_run(synthetic_run("mlp", "normal", n_digits=120, seed=0, method="map"), path / "mlp-map.nc")
    store.save_run(synthetic_run("mlp", "normal", n_digits=120, seed=1, method="ensemble"), path / "mlp-ens.nc")
    store.save_run(synthetic_run("mlp", "hierarchical", n_digits=120, seed=2), path / "mlp-advi.nc")
    return path


@pytest.fixture(scope="module")
def runs(folder) -> dict[str, RunData]:
    return {name: rundata.run_data(folder / f"{name}.nc") for name in ("mlp-map", "mlp-ens", "mlp-advi")}


def shown(view: pn.viewable.Viewable) -> str:
    view.get_root(Document())  # renders: a view that fails to build its Bokeh models fails here
    return " ".join(shown_text(p) for p in view.select(pn.pane.Markdown) + view.select(pn.pane.Alert))


def test_a_map_run_knows_what_it_is(runs):
    m, e, a = runs["mlp-map"], runs["mlp-ens"], runs["mlp-advi"]
    assert (m.method, m.point_estimate, m.n_draws, m.objective) == ("map", True, 1, "log posterior")
    assert (e.method, e.n_draws) == ("ensemble", 3) and (a.point_estimate, a.objective) == (False, "ELBO")
    assert set(m.measures) == {"entropy", "least_confidence"} and "chi_square" in e.measures
    assert "no spread between draws" in m.measure_absent("mutual_information") and not m.measure_absent("entropy")
    assert m.ranking_measure("chi_square") == "entropy" and e.ranking_measure("chi_square") == "chi_square"


@pytest.mark.parametrize("compared", [None, "mlp-advi"])
def test_the_uncertainty_view_says_a_measure_is_not_defined_and_shows_the_other_run(runs, compared):
    other = runs[compared] if compared else None
    view = views.uncertainty_panel(runs["mlp-map"], other, "mutual_information")
    text = shown(view)
    assert "not defined for mlp-map" in text and view.select(lambda o: CSS.MEASURE_ABSENT in getattr(o, "css_classes", []))
    assert ("AUROC" in text) == (compared is not None)
    assert "AUROC" in shown(views.uncertainty_panel(runs["mlp-map"], other, "entropy"))


def test_the_elbo_view_calls_a_point_estimates_curve_its_log_posterior(runs):
    text = shown(views.elbo_panel(runs["mlp-map"], runs["mlp-advi"], window=50, start=1, log_scale=False))
    assert "final log posterior" in text and "final ELBO" in text and "not an ELBO" in text
    alone = views.elbo_panel(runs["mlp-map"], None, window=50, start=1, log_scale=True)
    (curve,) = [p.object for p in alone.select(pn.pane.HoloViews)]
    assert curve.opts.get().kwargs["title"].startswith("Log posterior per iteration")
    line = next(iter(curve))
    # on a linear axis as recorded (the synthetic history is negative): not negated for a log axis
    assert line.vdims[0].label == "log posterior (nats)" and (line.dimension_values(1) < 0).all()


def test_weights_of_one_network_have_no_sd_and_an_ensembles_spread_across_its_networks(runs):
    single = views.weights_panel(runs["mlp-map"], None, "dense_1")
    assert "no posterior sd" in shown(single)
    titles = [str(p.object) for p in single.select(pn.pane.HoloViews)]
    assert len(titles) == 2, "W and b: their values only, no scatter of sd against mean"
    assert "across its networks" in shown(views.weights_panel(runs["mlp-ens"], runs["mlp-map"], "dense_1"))


def test_hyperpriors_say_a_point_estimate_draws_nothing(runs):
    assert "point estimate (map)" in shown(views.hyperprior_panel(runs["mlp-map"], None, "dense_1"))


def test_shift_calibration_and_digits_work_for_a_point_estimate(runs):
    m, a = runs["mlp-map"], runs["mlp-advi"]
    text = shown(shift_views.shift_panel(m, a, "chi_square"))
    assert "not defined for mlp-map" in text
    shown(shift_views.calibration_panel(m, a))
    order = rundata.gallery_order(m, "chi_square")
    assert len(order) == (~m.correct).sum()
    status = digits.gallery_status(m, a, order, "chi_square", False, None, 0, 1)
    assert "by predictive entropy (chi-square of votes vs uniform is not defined for mlp&#45;map)" in status
    digit = int(order[0])
    assert "one network" in digits.inspector_html(m, a, digit, "chi_square")


def test_the_runs_table_gives_each_runs_method_and_a_point_estimates_objective(folder):
    from dashboard import tables

    table = tables.runs_table(rundata.list_runs(folder)).set_index("Run")
    assert table.loc["mlp-map", "Method"] == "map" and table.loc["mlp-advi", "Method"] == "advi"
    assert table.loc["mlp-map", "ELBO at end (nats)"].endswith("(log posterior)")
    assert not table.loc["mlp-advi", "ELBO at end (nats)"].endswith("(log posterior)")
