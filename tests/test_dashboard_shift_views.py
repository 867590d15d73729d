"""dashboard.shift_views: the Calibration and Shift tabs as functions of bare RunData."""

from __future__ import annotations

from pathlib import Path

import holoviews as hv
import numpy as np
import panel as pn
import pytest
from bokeh.document import Document

from core import store
from core.synthetic import synthetic_run
from dashboard import rundata, shift_views
from dashboard.rundata import RunData
from tests.test_dashboard_text import assert_plain, shown_text

HOSTILE = "<img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("runs")
    store.save_run(synthetic_run("mlp", "hierarchical", n_digits=120, seed=0), path / "mlp-hier.nc")
    store.save_run(synthetic_run("cnn", "normal", n_digits=120, seed=1), path / f"{HOSTILE}.nc")
    return path


@pytest.fixture(scope="module")
def cnn(folder) -> RunData:
    """The CNN run of this module's folder, under a hostile name (the conftest's ``mlp`` is its MLP)."""
    return rundata.run_data(folder / f"{HOSTILE}.nc")


def test_calibration_figures_are_those_of_the_mean_predictive(mlp, cnn):
    table = shift_views.calibration_table([mlp, cnn])
    assert list(table["Run"]) == ["mlp-hier", HOSTILE]
    assert table.loc[0, "ECE"] == f"{mlp.calibration['ece']:.4f}"
    accuracy = np.mean(mlp.run["predictions"]["probability"].values.argmax(1) == mlp.true)
    assert table.loc[0, "Accuracy"] == f"{100 * accuracy:.2f}%"
    assert table.loc[1, "Confidence − accuracy"].endswith("confident)")


@pytest.mark.parametrize("compare", [False, True])
def test_calibration_panel_draws_each_run_and_says_which_way_it_errs(mlp, cnn, compare):
    view = shift_views.calibration_panel(mlp, cnn if compare else None)
    view.get_root(Document())
    diagram = view.select(pn.pane.HoloViews)[0].object
    bars = [e for e in diagram if isinstance(e, hv.Rectangles)]
    assert len(bars) == (3 if compare else 2)  # a run's bars and gap, the compared run's outlined bars
    text = " ".join(shown_text(p) for p in view.select(pn.pane.Markdown))
    assert "mlp-hier is " in text and ("underconfident" in text or "overconfident" in text)
    assert (HOSTILE in text) == compare
    for pane in view.select(pn.pane.Markdown):
        assert_plain(pane)


def test_shift_panel_shows_both_runs_and_the_foreign_sets(mlp, cnn):
    view = shift_views.shift_panel(mlp, cnn, "entropy")
    view.get_root(Document())
    titles = [p.object.opts.get().kwargs.get("title", "") for p in view.select(pn.pane.HoloViews)]
    assert "Accuracy against rotation" in titles and "ECE against translation" in titles
    rotation = next(p.object for p in view.select(pn.pane.HoloViews) if p.object.opts.get().kwargs.get("title") ==
                    "Accuracy against rotation")
    assert len([e for e in rotation if isinstance(e, hv.Curve)]) == 2
    table = shift_views.foreign_table([mlp, cnn])
    assert len(table) == 6 and set(table["Run"]) == {"mlp-hier", HOSTILE}
    galleries = view.select(shift_views.DigitGallery)
    assert len(galleries) == 3 and all(0 < len(g.items) <= shift_views.GALLERY_SIZE for g in galleries)
    letters = galleries[2].items
    values = [float(item["title"].rsplit(" ", 1)[1]) for item in letters]
    assert values == sorted(values, reverse=True)  # most uncertain first
    for pane in view.select(pn.pane.Markdown):
        assert_plain(pane)
