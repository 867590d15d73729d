"""dashboard.frame and dashboard.app: the session's tabs build each view when first opened and not again
for the same inputs, and the interactions (confusion-matrix tap, selectors) reach the state."""

from __future__ import annotations

import holoviews as hv
import panel as pn
import pytest
from bokeh.document import Document

from core.uncertainty import MEASURES
from dashboard import frame, views
from dashboard.app import create_app
from dashboard.lazy import HIDDEN, CachedView
from dashboard.state import TABS, RunBrowser
from dashboard.views import CSS
from tests.test_dashboard_text import shown_text


@pytest.fixture
def browser(folder) -> RunBrowser:
    return RunBrowser(folder)


def open_tab(browser: RunBrowser, tab: str) -> pn.viewable.Viewable:
    """The tab's content, shown (its lazy views active) and rendered."""
    parts, lazy = frame.tab_contents(browser, tab)
    for view in lazy:
        view.active = True
    content = pn.Column(*parts)
    content.get_root(Document())
    return content


@pytest.mark.parametrize("run", ["mlp-hier", "cnn-normal"])
@pytest.mark.parametrize("tab", list(TABS))
def test_every_tab_renders_with_a_compared_run(browser, run, tab):
    browser.run = run
    browser.compare = "cnn-normal" if run == "mlp-hier" else "mlp-hier"
    content = open_tab(browser, tab)
    assert content.select(pn.pane.Markdown) or content.select(pn.pane.HoloViews)


def test_a_tab_is_built_when_opened_and_not_again_for_the_same_inputs(browser):
    browser.run = "mlp-hier"
    tabs = frame.Tabs(browser)
    tabs.__panel__().get_root(Document())
    assert list(tabs.contents) == ["runs"]  # only the open tab is made
    browser.tab = "weights"
    (weights,) = [v for v in tabs.contents["weights"][1] if isinstance(v, CachedView)]
    built = dict(weights.built)
    assert len(built) == 1
    browser.tab = "elbo"
    browser.tab = "weights"  # revisited with the same inputs
    assert weights.built == built
    browser.tab = "elbo"
    browser.run = "cnn-normal"  # the weights tab is hidden: not rebuilt now...
    assert weights.built == built and all(v.styles == HIDDEN for v in weights.built.values())
    browser.tab = "weights"  # ...but when it is opened
    assert len(weights.built) == 2


def test_only_the_open_tabs_page_is_laid_out(browser):
    tabs = frame.Tabs(browser)
    tabs.__panel__().get_root(Document())
    assert [key for key, page in tabs.pages.items() if page.objects] == ["runs"]  # filled when first opened
    browser.tab = "accuracy"
    assert [key for key, page in tabs.pages.items() if page.styles.get("display") != "none"] == ["accuracy"]
    tabs.header.active = list(TABS).index("digits")  # a click on the tab bar
    assert browser.tab == "digits" and tabs.pages["digits"].styles.get("display") != "none"
    assert tabs.pages["accuracy"].styles == {"display": "none"}


def test_the_runs_tab_compares_elbos_with_the_elbo_controls(browser):
    content = open_tab(browser, "runs")
    controls = next(r for r in content.select(pn.Row) if CSS.ELBO_CONTROLS in r.css_classes)
    assert not controls.visible
    browser.compare = "mlp-hier" if browser.run == "cnn-normal" else "cnn-normal"
    assert controls.visible
    labels = [w.label for w in controls]
    assert labels == ["Smoothing window (iterations)", "Start at iteration", "Log scale of −ELBO"]
    assert any(CSS.ELBO_SUMMARY in p.css_classes for p in content.select(pn.pane.Markdown) if p.visible)


def test_tapping_a_confusion_cell_filters_the_gallery_and_moves_the_inspector(browser):
    browser.run = "mlp-hier"
    content = open_tab(browser, "accuracy")
    pane = next(p for p in content.select(pn.pane.HoloViews) if CSS.CONFUSION in p.css_classes)
    tap = next(s for s in hv.streams.Stream.registry[pane.object] if isinstance(s, hv.streams.Tap))
    data = browser.data
    true, predicted = int(data.true[~data.correct][0]), int(data.predicted[~data.correct][0])
    tap.event(x=str(predicted), y=str(true))  # categorical axes
    assert browser.cell == (true, predicted) and browser.tab == "digits"
    assert browser.digit == browser.gallery_digits()[0]


def test_sidebar_shows_measures_by_readable_name(browser):
    measure, notice = frame.sidebar(browser)[2:4]
    assert list(measure.options) == list(MEASURES.values()) and measure.value == "chi_square"
    browser.notice = "<b>x</b>"
    assert notice.visible and "<b>x</b>" in shown_text(notice)


def test_create_app_has_sidebar_and_tabs(folder):
    template = create_app(folder)
    assert isinstance(template, pn.template.FastListTemplate)
    tabs = next(iter(template.main[0].select(pn.Tabs)))
    assert [name for name, _ in zip(tabs._names, tabs)] == list(TABS.values())


def test_empty_folder_shows_how_to_train(tmp_path):
    template = create_app(tmp_path)
    text = " ".join(shown_text(m) for m in template.main[0].select(pn.pane.Markdown))
    assert views.TRAIN_COMMAND in text and str(tmp_path) in text
