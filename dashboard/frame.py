"""The app's frame for one session: the sidebar, and the tabs that bind each view to the session's state.

Each tab is a column of controls (widgets of the :class:`~dashboard.state.RunBrowser`'s parameters)
and lazy views: :class:`~dashboard.lazy.CachedView` objects of the view functions of
:mod:`dashboard.views`, each given the browser parameters it shows, the Digits tab's
:mod:`dashboard.digits` and the Probe tab's :mod:`dashboard.probe`. Only the open tab's views are
built or updated; a tab opened before is still in the page, out of its layout, and shows again with
no work on the server (:class:`Tabs`).
"""

from __future__ import annotations

import functools
import json

import panel as pn
from panel.viewable import Viewer

from . import shift_views, views
from .digits import Gallery, Inspector
from .lazy import HIDDEN, SHOWN, CachedView, LazyView
from .probe import Probe
from .state import TABS, RunBrowser
from .text import literal
from .views import CSS

__all__ = ["Tabs", "sidebar", "tab_contents"]

_ELBO_INPUTS = ("data", "compared", "window", "start", "log_scale")


def _elbo_controls(browser: RunBrowser) -> pn.Row:
    return pn.Row(
        pn.widgets.IntInput.from_param(browser.param.window, width=200),
        pn.widgets.IntSlider.from_param(browser.param.start, width=320),
        pn.widgets.Checkbox.from_param(browser.param.log_scale, margin=(30, 10, 10, 10)),
        css_classes=[CSS.ELBO_CONTROLS],
    )


def _layer_select(browser: RunBrowser) -> pn.widgets.Select:
    return pn.widgets.Select.from_param(browser.param.layer, width=200)


def _cached(browser: RunBrowser, inputs: tuple[str, ...], view, *controls: pn.viewable.Viewable) -> list:
    return [*controls, CachedView(browser, inputs, view)]


def tab_contents(browser: RunBrowser, tab: str) -> tuple[list[pn.viewable.Viewable], list[LazyView]]:
    """Tab ``tab``'s parts, top to bottom, and the lazy views among them (or within them)."""
    b = browser
    if tab == "digits":
        gallery, inspector = Gallery(b), Inspector(b)
        return [pn.Row(
            pn.Column(gallery, sizing_mode="stretch_width"),
            pn.Column(inspector, width=430, css_classes=[CSS.INSPECTOR]),
            sizing_mode="stretch_width",
        )], [gallery, inspector]
    if tab == "probe":
        probe = Probe(b)
        return [probe], [probe]
    if tab == "runs":
        comparison_controls = _elbo_controls(b)
        comparison_controls.visible = b.compared is not None
        b.param.watch(lambda event: setattr(comparison_controls, "visible", event.new is not None), "compared")
        parts = [
            CachedView(b, ("summaries",), functools.partial(views.runs_panel, folder=b.folder)),
            comparison_controls,
            CachedView(b, _ELBO_INPUTS, views.comparison_panel),
            CachedView(b, ("data", "compared"), views.details_panel),
        ]
    else:
        parts = {
            "elbo": lambda: _cached(b, _ELBO_INPUTS, views.elbo_panel, _elbo_controls(b)),
            "hyperpriors": lambda: _cached(b, ("data", "compared", "layer"), views.hyperprior_panel, _layer_select(b)),
            "weights": lambda: _cached(b, ("data", "compared", "layer"), views.weights_panel, _layer_select(b)),
            "accuracy": lambda: _cached(b, ("data", "compared"),
                                        functools.partial(views.accuracy_panel, select_cell=b.select_cell)),
            "uncertainty": lambda: _cached(b, ("data", "compared", "measure"), views.uncertainty_panel),
            "calibration": lambda: _cached(b, ("data", "compared"), shift_views.calibration_panel),
            "shift": lambda: _cached(b, ("data", "compared", "measure"),
                                     functools.partial(shift_views.shift_panel, open_foreign=b.probe_foreign)),
        }[tab]()
    return parts, [part for part in parts if isinstance(part, LazyView)]


class Tabs(Viewer):
    """One tab per view, kept in step with ``browser.tab``. Only the open tab's views are built and kept
    up to date; a tab's views already built for its current inputs show again without rebuilding.

    The tab bar (``header``, a ``pn.Tabs`` of empty tabs) only chooses; each tab's content is a page of
    its own below it, filled when the tab is first opened and out of the layout (``display: none``)
    unless its tab is open. Bokeh's Tabs keep
    every tab they have shown laid out, merely invisible, and Bokeh lays out the whole page again on
    every change of a view's visibility: with seven tabs' views in the page a switch took over half a
    second in the browser. A page is shown and hidden by its style instead, which Bokeh does not lay
    out for, in the page itself (a JavaScript callback on the tab bar, so the switch waits for no
    server), before the tab bar's own change lays the page out once; and on the server.

    ``contents``: the parts and lazy views of each tab opened so far (see :func:`tab_contents`), by tab key.
    """

    def __init__(self, browser: RunBrowser, **params) -> None:
        super().__init__(**params)
        keys = list(TABS)
        self.browser = browser
        self.contents: dict[str, tuple[list[pn.viewable.Viewable], list[LazyView]]] = {}
        self.pages = {key: pn.Column(styles=HIDDEN, sizing_mode="stretch_width") for key in keys}
        self.header = pn.Tabs(*[(TABS[key], pn.Spacer(height=0, margin=0)) for key in keys],
                              active=keys.index(browser.tab), sizing_mode="stretch_width")
        names = [f"page{i}" for i in range(len(keys))]
        self.header.jscallback(
            active=f"[{', '.join(names)}].forEach((page, i) => {{ page.styles = i === cb_obj.active ? "
                   f"{json.dumps(SHOWN)} : {json.dumps(HIDDEN)} }})",
            args=dict(zip(names, self.pages.values())),
        )
        self._show(browser.tab)
        self.header.param.watch(lambda event: setattr(browser, "tab", keys[event.new]), "active")

        def follow(event) -> None:
            self.header.active = keys.index(event.new)
            self._show(event.new)

        browser.param.watch(follow, "tab")

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.Column(self.header, *self.pages.values(), sizing_mode="stretch_width")

    def _show(self, tab: str) -> None:
        opened = tab not in self.contents
        if opened:  # a tab's widgets and views are made when it is first opened
            self.contents[tab] = tab_contents(self.browser, tab)
        for key, (_, lazy) in self.contents.items():
            for view in lazy:
                view.active = key == tab
        if opened:  # after its views are filled: the page is sent once, whole
            self.pages[tab].objects = self.contents[tab][0]
        for key, page in self.pages.items():
            page.styles = SHOWN if key == tab else HIDDEN


def sidebar(browser: RunBrowser) -> list[pn.viewable.Viewable]:
    """Run, comparison run and measure selectors (the measures by their readable names), and the
    browser's notices."""
    notice = pn.pane.Alert(
        pn.bind(literal, browser.param.notice),
        alert_type="warning",
        visible=pn.bind(bool, browser.param.notice),
        css_classes=[CSS.NOTICE],
        sizing_mode="stretch_width",
    )
    return [
        pn.widgets.Select.from_param(browser.param.run, sizing_mode="stretch_width"),
        pn.widgets.Select.from_param(browser.param.compare, sizing_mode="stretch_width"),
        pn.widgets.Select.from_param(browser.param.measure, sizing_mode="stretch_width"),
        notice,
        pn.pane.Markdown(
            "Click a confusion-matrix cell (Accuracy) or a thumbnail (Digits) to inspect digits. "
            "The address bar keeps the run, tab, settings and digit: copy it to share this view; "
            "the browser's back button steps back one action at a time."
        ),
    ]
