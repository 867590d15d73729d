"""dashboard.digits: the gallery's and the inspector's contents on bare RunData, and the two viewers on a session."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import panel as pn
import pytest
from bokeh.document import Document

from core import store
from core.synthetic import synthetic_run
from dashboard import rundata
from dashboard.digits import Gallery, Inspector, gallery_items, gallery_status, inspector_html
from dashboard.state import PAGE_SIZE, RunBrowser
from tests.test_dashboard_text import shown_markup, shown_text


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("runs")
    store.save_run(synthetic_run("mlp", "hierarchical", n_digits=120, seed=0), path / "a.nc")
    # the same test digits as a, other predictions
    other = synthetic_run("mlp", "hierarchical", n_digits=120, seed=0)
    other["predictions"]["label"].values[:] = np.roll(other["predictions"]["label"].values, 1, axis=-1)
    store.save_run(other, path / "b.nc")
    store.save_run(synthetic_run("cnn", "normal", n_digits=90, seed=1), path / "c.nc")
    return path


@pytest.fixture
def browser(folder) -> RunBrowser:
    browser = RunBrowser(folder)
    browser.run = "a"
    return browser


def markdown(text: str) -> str:
    return shown_text(pn.pane.Markdown(text))


def test_gallery_items_caption_true_and_predicted(folder):
    data = rundata.run_data(folder / "a.nc")
    digit = int(np.flatnonzero(~data.correct)[0])
    (item,) = gallery_items(data, np.array([digit]), "mutual_information")
    assert item["caption"] == f"{data.true[digit]} → {data.predicted[digit]}"
    assert item["src"].startswith("data:image/png;base64,") and "Mutual information = " in item["title"]


def test_gallery_status_counts_the_digits_and_the_compared_runs_right_ones(folder):
    a, b, c = (rundata.run_data(folder / f"{n}.nc") for n in "abc")
    digits = rundata.gallery_order(a, "entropy")
    text = markdown(gallery_status(a, b, digits, "entropy", False, None, 0, 1))
    assert f"{len(digits)} misclassified digits" in text and "predictive entropy" in text and "page 1 of 1" in text
    assert f"b classifies {int(b.correct[digits].sum())} of them correctly" in text
    assert "classifies" not in markdown(gallery_status(a, c, digits, "entropy", False, None, 0, 1))  # other digits
    assert "true class 2 predicted as 7" in markdown(gallery_status(a, None, digits[:0], "entropy", True, (2, 7), 0, 1))


def test_inspector_html_gives_both_runs_or_why_not(folder):
    a, b, c = (rundata.run_data(folder / f"{n}.nc") for n in "abc")
    text = shown_markup(inspector_html(a, b, 5, "variation_ratio"))
    assert "Test digit 5" in text and f"True {a.true[5]}" in text
    assert f"a: predicted {a.predicted[5]}" in text and f"b: predicted {b.predicted[5]}" in text
    assert "variation ratio = " in text and "shaded column" in text
    why = shown_markup(inspector_html(a, c, 5, "entropy"))
    assert "c is not shown: a was tested on 120 digits and c on 90" in why


def test_the_inspector_shows_the_compared_runs_predictive_for_the_same_digit(browser):
    inspector = Inspector(browser)
    inspector.__panel__().get_root(Document())
    inspector.active = True
    browser.compare = "b"
    digit = browser.digit
    assert inspector.votes.source.data["run"] == ["a"] * 10 + ["b"] * 10
    b = browser.compared
    assert inspector.votes.source.data["draws"][10:] == np.bincount(b.labels[:, digit], minlength=10).tolist()
    browser.compare = "c"  # other test digits: the chosen run's only, and the reason
    assert set(inspector.votes.source.data["run"]) == {"a"}
    assert "c is not shown" in shown_markup(inspector.title.text)


def test_an_out_of_range_digit_is_refused_and_the_box_keeps_the_shown_digit(browser):
    inspector = Inspector(browser)
    inspector.active = True
    shown = browser.digit
    inspector.box.value = 99999  # what typing does
    assert browser.digit == shown and inspector.box.value == shown
    assert inspector.message.visible and "no test digit 99999" in shown_text(inspector.message)
    assert f"Test digit {shown}" in shown_markup(inspector.title.text)
    inspector.box.value = 7
    assert browser.digit == 7 and not inspector.message.visible and "Test digit 7" in shown_markup(inspector.title.text)


def test_the_gallery_follows_the_order_and_a_click_selects_the_digit(browser):
    gallery = Gallery(browser)
    gallery.__panel__().get_root(Document())
    gallery.active = True
    assert [item["digit"] for item in gallery.grid.items] == list(browser.page_digits())
    assert len(gallery.grid.items) <= PAGE_SIZE
    target = gallery.grid.items[-1]["digit"]
    gallery.grid.selected = target  # what a click in the page does
    assert browser.digit == target
    browser.reverse = True
    assert [item["digit"] for item in gallery.grid.items] == list(browser.page_digits())


def test_a_click_in_the_page_selects_the_digit_without_marking_the_server_busy(browser):
    # Panel's busy flag is process-wide, and the app shows no busy indicator: its bookkeeping on every
    # click only cost the server time under load
    gallery = Gallery(browser)
    gallery.__panel__().get_root(Document())
    gallery.active = True
    target = gallery.grid.items[-1]["digit"]
    busy = []
    watcher = pn.state.param.watch(lambda event: busy.append(event.new), "busy")
    try:
        gallery.grid._process_events({"selected": target})  # where Panel hands the page's change over
    finally:
        pn.state.param.unwatch(watcher)
    assert browser.digit == target
    assert busy == []


def test_hidden_viewers_catch_up_when_shown(browser):
    gallery, inspector = Gallery(browser), Inspector(browser)
    browser.run = "c"
    assert gallery.grid.items == [] and not inspector.title.text  # no work while the tab is closed
    gallery.active = inspector.active = True
    assert gallery.grid.items[0]["digit"] == browser.page_digits()[0]
    assert f"Test digit {browser.digit}" in shown_markup(inspector.title.text)


def test_a_changed_compared_run_is_used(browser, folder):
    b = rundata.run_data(folder / "b.nc")
    assert rundata.different_digits(browser.data, b) is None
    assert rundata.different_digits(browser.data, dataclasses.replace(b, true=b.true[::-1])) is not None
