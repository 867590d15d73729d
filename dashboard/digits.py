"""The Digits tab: the gallery of misclassified (or filtered) digits, and the inspector of one digit.

A digit is chosen far more often than anything else, so these two are not rebuilt like the other
views (:mod:`dashboard.views`): each keeps its panes and swaps their contents, the inspector's
charts only their data (:mod:`dashboard.inspector_charts`). The inspector's image and title are
Bokeh ``Div`` models whose text is replaced: a Panel Markdown or HTML pane re-renders and re-checks
its object on every change, which was a seventh of the server's work per selection with 50
sessions selecting at once. Both are :class:`~dashboard.lazy.LazyView`
objects of the session's :class:`~dashboard.state.RunBrowser`: they update only while the tab is
open. What they show is computed by the Panel-free functions :func:`gallery_items`,
:func:`gallery_status` and :func:`inspector_html`.
"""

from __future__ import annotations

import numpy as np
import panel as pn
from bokeh.models import Div

from . import rundata
from .gallery import DigitGallery, digit_uri
from .inspector_charts import SpreadChart, VoteChart
from .lazy import LazyView
from .rundata import RunData
from .state import RunBrowser
from .text import literal
from .views import CSS, measure_name

__all__ = ["Gallery", "Inspector", "gallery_items", "gallery_status", "inspector_html"]

_DIGIT_CSS = "img.digit { width: 224px; height: 224px; image-rendering: pixelated; border: 1px solid #bbb; }"
_TITLE_CSS = "h3 { margin: 0.6em 0; } p { margin: 0 0 0.8em; }"


def gallery_items(data: RunData, digits: np.ndarray, measure: str) -> list[dict]:
    """The thumbnails of ``digits`` (n,) of a run, for :class:`~dashboard.gallery.DigitGallery`."""
    measure = data.ranking_measure(measure)
    values = data.measures[measure]
    name = measure_name(measure)
    return [
        {
            "digit": int(d),
            "src": digit_uri(data.images[d]),
            "caption": f"{data.true[d]} → {data.predicted[d]}",
            "title": f"test digit {d}: true {data.true[d]}, predicted {data.predicted[d]}; {name} = {values[d]:.3g}",
        }
        for d in digits
    ]


def gallery_status(data: RunData, compared: RunData | None, digits: np.ndarray, measure: str, reverse: bool,
                   cell: tuple[int, int] | None, page: int, page_count: int) -> str:
    """The Markdown line above the gallery: what it holds (``digits``, (n,), all pages), in which order,
    the page, and how the compared run does on the same digits."""
    what = "misclassified digits" if cell is None else f"digits of true class {cell[0]} predicted as {cell[1]}"
    order = "least" if reverse else "most"
    ranked = data.ranking_measure(measure)
    line = (f"**{len(digits):,} {what}**, {order} uncertain first by {measure_name(ranked).lower()}"
            + (f" ({measure_name(measure).lower()} is not defined for {literal(data.name)})" if ranked != measure else "")
            + f"; page {page + 1} of {page_count}. Caption: true → predicted.")
    if compared is not None:
        reason = rundata.different_digits(data, compared)
        if reason is None:
            right = int(compared.correct[digits].sum())
            line += f" {literal(compared.name)} classifies {right:,} of them correctly."
    return line


def inspector_html(data: RunData, compared: RunData | None, digit: int, measure: str) -> str:
    """The inspector's title for test digit ``digit``, as HTML: its labels and measure in the chosen
    run, and in the compared run when both runs were tested on the same digits (else why not).

    Run names and the reason are outside text: written with :func:`~dashboard.text.literal`, whose
    character references HTML shows as typed.
    """

    def verdict(d: RunData) -> str:
        draws = f"mode of {d.n_draws} draws" if d.n_draws > 1 else "one network"
        m = d.ranking_measure(measure)
        return (f"predicted <strong>{d.predicted[digit]}</strong> ({draws}, "
                f"{'correct' if d.correct[digit] else 'misclassified'}); "
                f"{measure_name(m).lower()} = {d.measures[m][digit]:.3g}")

    lines = [f"<h3>Test digit {digit}</h3>",
             f"<p>True <strong>{data.true[digit]}</strong>; {literal(data.name)}: {verdict(data)}.</p>"]
    if compared is not None:
        reason = rundata.different_digits(data, compared)
        lines.append(f"<p>{literal(compared.name)}: {verdict(compared)}.</p>" if reason is None else
                     f"<p>{literal(compared.name)} is not shown: {literal(reason)}.</p>")
    lines.append("<p>Below, the true class is the shaded column, its tick marked <em>true</em>.</p>")
    return "\n".join(lines)


class Gallery(LazyView):
    """Thumbnails of the gallery's current page, with page and order controls; a click selects the digit."""

    def __init__(self, browser: RunBrowser, **params) -> None:
        super().__init__(browser, ("data", "compared", "measure", "reverse", "cell", "page"), **params)
        self.browser = browser
        self.grid = DigitGallery(items=[], selected=browser.digit, sizing_mode="stretch_width")
        self.status = pn.pane.Markdown(sizing_mode="stretch_width", css_classes=[CSS.GALLERY_STATUS])
        previous = pn.widgets.Button(label="◀ Previous", width=110)
        following = pn.widgets.Button(label="Next ▶", width=110)
        self.clear = pn.widgets.Button(label="Show all misclassified", width=200, color="primary", visible=False)
        previous.on_click(lambda event: browser.turn_page(-1))
        following.on_click(lambda event: browser.turn_page(1))
        self.clear.on_click(lambda event: setattr(browser, "cell", None))
        browser.param.watch(lambda event: setattr(self.grid, "selected", event.new), "digit")
        self.grid.param.watch(self._clicked, "selected")
        reverse = pn.widgets.Checkbox.from_param(browser.param.reverse, margin=(18, 10))
        self._layout = pn.Column(self.status, pn.Row(previous, following, reverse, self.clear), self.grid,
                                 sizing_mode="stretch_width")

    def __panel__(self) -> pn.viewable.Viewable:
        return self._layout

    def _clicked(self, event) -> None:
        # one patch for the whole inspector: the browser lays the page out once, not once per pane
        with pn.io.hold():
            self.browser.digit = event.new

    def refresh(self, data: RunData, compared: RunData | None, measure: str, reverse: bool,
                cell: tuple[int, int] | None, page: int) -> None:
        digits = self.browser.gallery_digits()
        with pn.io.hold():
            self.status.object = gallery_status(data, compared, digits, measure, reverse, cell, page,
                                                 self.browser.page_count)
            self.clear.visible = cell is not None
            self.grid.items = gallery_items(data, self.browser.page_digits(), measure)


class Inspector(LazyView):
    """One test digit: its image, a box to type any index, its labels and measure, and two charts (its
    draws' votes, its class probabilities under fresh draws), of the compared run too."""

    def __init__(self, browser: RunBrowser, **params) -> None:
        super().__init__(browser, ("data", "compared", "digit", "measure"), **params)
        self.browser = browser
        self.image = Div(width=236, height=236)
        self.box = pn.widgets.IntInput(label="Digit (test index)", value=browser.digit, width=150,
                                       css_classes=[CSS.DIGIT_INPUT])
        self.box.param.watch(self._typed, "value")
        self.message = pn.pane.Alert(alert_type="warning", visible=False, css_classes=[CSS.DIGIT_MESSAGE],
                                     sizing_mode="stretch_width")
        self.title = Div(css_classes=[CSS.INSPECTOR_TITLE], width=150)
        self.votes, self.spread = VoteChart(), SpreadChart()
        self._layout = pn.Column(
            # Panel sets the stylesheets of the Bokeh models it shows: theirs go on the panes
            pn.Row(pn.pane.Bokeh(self.image, stylesheets=[_DIGIT_CSS]),
                   pn.Column(self.box, self.message, pn.pane.Bokeh(self.title, stylesheets=[_TITLE_CSS]))),
            pn.pane.Bokeh(self.votes.figure, sizing_mode="stretch_width", css_classes=[CSS.VOTES]),
            pn.pane.Bokeh(self.spread.figure, sizing_mode="stretch_width", css_classes=[CSS.SPREAD]),
            sizing_mode="stretch_width",
        )

    def __panel__(self) -> pn.viewable.Viewable:
        return self._layout

    def _typed(self, event) -> None:
        if event.new is None or event.new == self.browser.digit:
            return
        refusal = self.browser.select_digit(event.new)
        if refusal:
            # the box goes back to the digit shown, so box and inspector never disagree
            self.message.object = literal(refusal)
            self.message.visible = True
            self.box.value = self.browser.digit

    def refresh(self, data: RunData, compared: RunData | None, digit: int, measure: str) -> None:
        same = compared is not None and rundata.different_digits(data, compared) is None
        runs = [data, compared] if same else [data]
        names = [d.name for d in runs]
        true = int(data.true[digit])
        probabilities = [rundata.inspector_probabilities(d, digit) for d in runs]
        with pn.io.hold():
            self.message.visible = False
            self.box.value = digit
            self.image.text = f'<img class="digit" src="{digit_uri(data.images[digit])}" alt="test digit {digit}">'
            self.title.text = inspector_html(data, compared, digit, measure)
            self.votes.show([d.labels[:, digit] for d in runs], true, names)
            self.spread.show(probabilities, true, names)
