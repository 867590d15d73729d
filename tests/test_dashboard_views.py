"""dashboard.views and dashboard.app: every view builds and renders to Bokeh models for each kind of
run, and the interactions (confusion-matrix tap, gallery click) reach the state."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import holoviews as hv
import numpy as np
import panel as pn
import pytest
from bokeh.document import Document
from PIL import Image

from core import store
from core.synthetic import synthetic_run
from dashboard import views
from dashboard.app import create_app
from dashboard.gallery import DigitGallery, digit_uri
from dashboard.state import PAGE_SIZE, TABS, RunBrowser
from tests.test_dashboard_text import shown_text


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("runs")
    store.save_run(synthetic_run("mlp", "hierarchical", n_digits=120, seed=0), path / "mlp-hier.nc")
    store.save_run(synthetic_run("cnn", "normal", n_digits=120, seed=1), path / "cnn-normal.nc")
    (path / "truncated.nc").write_bytes(b"\x89HDF\r\n\x1a\n")
    return path


@pytest.fixture
def browser(folder) -> RunBrowser:
    return RunBrowser(folder)


@pytest.mark.parametrize("run", ["mlp-hier", "cnn-normal"])
@pytest.mark.parametrize("tab", list(TABS))
def test_every_view_renders(browser, run, tab):
    browser.run = run
    browser.compare = "cnn-normal" if run == "mlp-hier" else "mlp-hier"
    view = views.VIEWS[tab](browser)
    view.get_root(Document())


def test_runs_table_and_details(browser):
    table = views.runs_table(browser)
    assert list(table["Run"]) == ["cnn-normal", "mlp-hier"]
    assert {"Accuracy (%)", "ELBO at end (nats)", "Training time", "Speed (it/s)"} <= set(table.columns)
    details = views.run_details([browser.data, browser.load("mlp-hier")])
    assert list(details.columns) == ["cnn-normal", "mlp-hier"]
    assert details.loc["Prior", "mlp-hier"] == "hierarchical"


def test_unusable_file_is_shown_with_its_message(browser):
    view = views.runs_view(browser)
    alerts = [shown_text(a) for a in view.select(pn.pane.Alert)]
    assert any("truncated.nc" in text and "truncated" in text.replace("truncated.nc", "") for text in alerts)


def test_fixed_prior_view_shows_the_note(browser):
    browser.run = "cnn-normal"
    view = views.hyperprior_view(browser)
    view.get_root(Document())
    assert any("no hyperprior" in a.object for a in view.select(pn.pane.Alert))


def test_tapping_a_confusion_cell_filters_the_gallery(browser):
    view = views.accuracy_view(browser)
    view.get_root(Document())
    pane = next(p for p in view.select(pn.pane.HoloViews) if "confusion" in p.css_classes)
    tap = next(s for s in hv.streams.Stream.registry[pane.object] if isinstance(s, hv.streams.Tap))
    tap.event(x="4", y="2")  # categorical axes: predicted 4, true 2
    assert browser.cell == (2, 4) and browser.tab == "digits"


def test_gallery_items_follow_the_order_and_clicks_select_the_digit(browser):
    view = views.digits_view(browser)
    view.get_root(Document())
    gallery = next(iter(view.select(DigitGallery)))
    assert [item["digit"] for item in gallery.items] == list(browser.page_digits())
    assert len(gallery.items) <= PAGE_SIZE
    first = gallery.items[0]
    assert first["caption"] == f"{browser.data.true[first['digit']]} → {browser.data.predicted[first['digit']]}"
    assert first["src"].startswith("data:image/png;base64,")
    target = gallery.items[-1]["digit"]
    gallery.selected = target  # what a click in the page does
    assert browser.digit == target
    browser.reverse = True
    assert [item["digit"] for item in gallery.items] == list(browser.page_digits())


def test_digit_images_are_cached_pngs_with_dark_ink_row_zero_on_top():
    image = np.zeros((28, 28), np.uint8)
    image[0, 5] = 255
    uri = digit_uri(image)
    assert uri is digit_uri(image.copy())
    png = Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))
    assert png.size == (28, 28) and png.getpixel((5, 0)) == 0 and png.getpixel((6, 0)) == 255


def test_create_app_has_sidebar_and_tabs(folder):
    template = create_app(folder)
    assert isinstance(template, pn.template.FastListTemplate)
    tabs = next(iter(template.main[0].select(pn.Tabs)))
    assert [name for name, _ in zip(tabs._names, tabs)] == list(TABS.values())


def test_empty_folder_shows_how_to_train(tmp_path):
    template = create_app(tmp_path)
    text = " ".join(shown_text(m) for m in template.main[0].select(pn.pane.Markdown))
    assert views.TRAIN_COMMAND in text and str(tmp_path) in text
