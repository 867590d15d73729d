"""Outside text is data: URL values, file names and a run file's string attributes show as typed,
never as HTML, Markdown or links (dashboard.text, and every view on a run with hostile names)."""

from __future__ import annotations

import html
import re
from pathlib import Path

import panel as pn
import pytest
from bokeh.document import Document
from bokeh.models import Div
from hypothesis import given
from hypothesis import strategies as st

from core import store
from core.synthetic import synthetic_run
from dashboard import frame, views
from dashboard.state import TABS, URL_PARAMETERS, RunBrowser
from dashboard.text import literal

PAYLOADS = [
    "<img src=x onerror=alert(1)>",
    "<script>alert(1)</script>",
    "[Session expired](https://evil.example/login)",
    "see https://evil.example and www.evil.example or cnn-normal.nc",
    "*bold* `code` $x^2$ | table |",
    "&lt;b&gt; &#60;i&#62;",
]
# a run file's name cannot hold "/": the rest of the payloads, as one name
HOSTILE_NAME = "<img src=x onerror=alert(1)>[Session expired](https:evil.example) www.evil.example cnn-normal"


def rendered_html(pane: pn.pane.Markdown) -> str:
    """The HTML a Markdown (or Alert) pane sends to the page."""
    return html.unescape(pane._transform_object(pane.object)["object"])


def shown_text(pane: pn.pane.Markdown) -> str:
    """The text a person reads in a Markdown (or Alert) pane."""
    return shown_markup(rendered_html(pane))


def shown_markup(markup: str) -> str:
    """The text a person reads in HTML ``markup``, as a Bokeh ``Div`` shows its text."""
    return html.unescape(re.sub(r"<[^>]+>", "", markup))


def assert_plain_markup(markup: str) -> None:
    """No element a value could have brought in: links (but Markdown's own heading anchors), images,
    scripts, frames."""
    markup = re.sub(r'<a class="header-anchor" href="#[^"]*">', "", markup)
    assert not re.search(r"<(a|img|script|iframe|object|embed|svg)\b", markup, re.IGNORECASE), markup


def assert_plain(pane: pn.pane.Markdown) -> None:
    """:func:`assert_plain_markup` on the HTML a Markdown (or Alert) pane sends to the page."""
    assert_plain_markup(rendered_html(pane))


@pytest.mark.parametrize("value", PAYLOADS)
def test_literal_shows_the_value_as_typed(value):
    pane = pn.pane.Markdown(f"Run **{literal(value)}** ignored.")
    assert shown_text(pane).strip() == f"Run {value} ignored."
    assert_plain(pane)


# control characters are left out: CommonMark shows their references as U+FFFD, which is safe but not as typed
@given(st.text(st.characters(exclude_categories=("Cc", "Cs")), max_size=60))
def test_literal_survives_any_text(value):
    pane = pn.pane.Markdown(f"Value: {literal(value)}")
    assert_plain(pane)
    # Markdown folds runs of white space and trims the paragraph; everything else shows as typed
    assert " ".join(shown_text(pane).split()) == " ".join(f"Value: {value}".split())


@pytest.fixture(scope="module")
def hostile_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("hostile")
    hostile = synthetic_run("cnn", "normal", n_digits=60, seed=3)
    hostile.attrs.update(prior=PAYLOADS[0], label=PAYLOADS[2], prior_params='{"sd": "<script>alert(1)</script>"}')
    store.save_run(hostile, folder / f"{HOSTILE_NAME}.nc")
    store.save_run(synthetic_run("mlp", "hierarchical", n_digits=60, seed=4), folder / "mlp-hier.nc")
    (folder / "[broken](https:evil.example) <img src=x onerror=alert(3)>.nc").write_bytes(b"not a run")
    return folder


@pytest.mark.parametrize("tab", list(TABS))
def test_no_view_renders_a_value_as_markup(hostile_folder, tab):
    browser = RunBrowser(hostile_folder)
    browser.param.update(run=HOSTILE_NAME, compare="mlp-hier")
    browser.apply_query({key: PAYLOADS[0] for key in URL_PARAMETERS})
    parts, lazy = frame.tab_contents(browser, tab)
    for view in lazy:
        view.active = True
    view = pn.Column(*parts)
    view.get_root(Document())
    panes = [*view.select(pn.pane.Markdown), *frame.sidebar(browser)[3].select(pn.pane.Markdown)]
    # the inspector's image and title are Bokeh Divs; the image is the one <img> the app writes itself
    divs = [pane.object for pane in view.select(pn.pane.Bokeh) if isinstance(pane.object, Div)
            and not pane.object.text.startswith('<img class="digit"')]
    assert panes
    for pane in panes:
        assert_plain(pane)
    for div in divs:
        assert_plain_markup(div.text)
    text = " ".join([*(shown_text(p) for p in panes), *(shown_markup(d.text) for d in divs)])
    if tab == "digits":
        assert HOSTILE_NAME in text and "mlp-hier" in text
    if tab == "runs":
        assert HOSTILE_NAME in text and "<img src=x onerror=alert(3)>" in text
    if tab == "hyperpriors":
        assert PAYLOADS[0] in text


def test_empty_folder_names_the_folder_and_the_safe_command(tmp_path):
    folder = tmp_path / "<img src=x onerror=alert(1)>"
    view = views.empty_view(folder, RunBrowser(folder).summaries)
    text = " ".join(shown_text(p) for p in view.select(pn.pane.Markdown))
    assert str(folder) in text and views.TRAIN_COMMAND in text and "--address 127.0.0.1" in text
    for pane in view.select(pn.pane.Markdown):
        assert_plain(pane)
