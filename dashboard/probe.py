"""The Probe tab: ask the chosen run (and the compared run) about any digit of one's own.

A digit starts as a test digit, a foreign digit or letter of the run's shift suite, a blank canvas,
strokes drawn with the mouse, or an uploaded PNG or JPEG, and is transformed by the sliders
(:mod:`dashboard.probe_images`). Every change shows at once the 28x28 image the networks are fed,
each run's prediction, every uncertainty measure side by side, and the inspector's charts
(:mod:`dashboard.inspector_charts`) of the votes and class probabilities over the draws.

Like the inspector (:mod:`dashboard.digits`), :class:`Probe` is a :class:`~dashboard.lazy.LazyView`
that keeps its panes and swaps their contents, and what it shows is computed by Panel-free
functions: :func:`measure_values`, :func:`measures_table`, :func:`probe_text`. Predictions use the
inspector's 100 fresh draws with one seed for every image, so two settings differ by the image only;
a point-estimate run (a MAP fit, an ensemble) uses its networks.
"""

from __future__ import annotations

import base64
import math
import typing as t
from collections.abc import Callable, Sequence

import numpy as np
import panel as pn
import param
from bokeh.models import ColumnDataSource, FreehandDrawTool, Label, Range1d
from bokeh.plotting import figure
from panel.custom import JSComponent

from core import predict, uncertainty
from core.uncertainty import MEASURES

from . import rundata
from .gallery import digit_uri
from .inspector_charts import SpreadChart, VoteChart
from .lazy import LazyView
from .probe_images import (
    CANVAS,
    MAX_UPLOAD_BYTES,
    STROKE_WIDTH,
    TRANSFORM_KEYS,
    Start,
    Transform,
    Upload,
    UploadError,
    check_upload_size,
    decode_upload,
    foreign_count,
    rasterize_strokes,
    start_image,
)
from .rundata import RunData
from .state import RunBrowser
from .text import literal
from .views import CSS

__all__ = ["ImageUpload", "Probe", "measure_values", "measures_table", "probe_text"]

PROBE_SEED = 0
NOT_DEFINED = "not defined for this run"
_IMAGE_CSS = "img.digit { width: 168px; height: 168px; image-rendering: pixelated; border: 1px solid #bbb; }"
_CANVAS_PIXELS = 224  # the drawing canvas on the page: 8 screen pixels a canvas unit (an MNIST pixel)


# --- what is shown, without Panel --------------------------------------------------------------------------


def measure_values(data: RunData, probabilities: np.ndarray) -> dict[str, float | None]:
    """Every measure of :data:`core.uncertainty.MEASURES` for one image under a run's draws, probabilities
    (draw, class); None for a measure not defined for the run: one of the spread between draws when
    there is one draw (one network)."""
    labels, mean_p, expected_h = predict.summarize_draws(np.asarray(probabilities)[:, None, :])
    defined = set(uncertainty.defined_measures(len(labels)))
    return {
        name: float(uncertainty.measure(name, labels, mean_p, expected_h)[0]) if name in defined else None
        for name in MEASURES
    }


def measures_table(runs: Sequence[RunData], values: Sequence[dict[str, float | None]]) -> str:
    """A Markdown table of the measures (rows) of each run (columns): the value, and the share of the run's
    test digits it is more uncertain than (where the run file stores the measure: one written before it
    existed does not); "not defined for this run" where a measure has no value."""

    def cell(data: RunData, name: str, value: float | None) -> str:
        if value is None:
            return f"*{NOT_DEFINED}*"
        if name not in data.measures:
            return f"**{value:.3g}**"
        above = float(np.mean(data.measures[name] < value))
        share = "all" if above == 1 else f"{math.floor(100 * above)}%"  # 99.6% is not all
        return f"**{value:.3g}** (above {share} of its test digits)"

    lines = ["| Measure | " + " | ".join(literal(d.name) for d in runs) + " |",
             "|---" * (len(runs) + 1) + "|"]
    for name in MEASURES:
        lines.append(f"| {MEASURES[name]} | " + " | ".join(cell(d, name, v[name]) for d, v in zip(runs, values)) + " |")
    return "\n".join(lines)


def probe_text(start: Start, transform: Transform, runs: Sequence[RunData], probabilities: Sequence[np.ndarray]) -> str:
    """The Markdown above the charts: what is probed, how it was transformed, and each run's prediction
    (the draws' modal label, how many draws vote for it, its mean probability)."""
    text = (f"### Probing {literal(start.description)}\n"
            f"Transform: {literal(transform.describe())}."
            + ("" if start.label is None else f" True class **{start.label}** (shaded below).") + "\n\n")
    for data, probs in zip(runs, probabilities):
        votes = np.bincount(probs.argmax(axis=1), minlength=probs.shape[1])
        label = int(votes.argmax())
        votes_for = f"{votes[label]} of {len(probs)} draws" if len(probs) > 1 else "one network"
        text += (f"{literal(data.name)}: predicts **{label}**, {votes_for}; "
                 f"mean probability {probs[:, label].mean():.2f}.\n\n")
    return text


# --- the drawing canvas and the upload ---------------------------------------------------------------------


def drawing_canvas() -> tuple[figure, ColumnDataSource]:
    """A 224x224 canvas in :data:`~dashboard.probe_images.CANVAS` units (y down) whose drag draws strokes
    of the rasteriser's width (Bokeh's FreehandDrawTool); the strokes' source, columns ``xs`` and ``ys``."""
    source = ColumnDataSource({"xs": [], "ys": []})
    fig = figure(width=_CANVAS_PIXELS, height=_CANVAS_PIXELS, x_range=Range1d(0, CANVAS), y_range=Range1d(CANVAS, 0),
                 toolbar_location=None, min_border=0, sizing_mode="fixed", background_fill_color="white",
                 outline_line_color="#888")
    fig.axis.visible = False
    fig.grid.visible = False
    fig.add_layout(Label(x=CANVAS / 2, y=1.5, text="draw a digit here", text_align="center", text_color="#999",
                         text_font_size="13px"))
    strokes = fig.multi_line("xs", "ys", source=source, line_color="black", line_cap="round", line_join="round",
                             line_width=STROKE_WIDTH * _CANVAS_PIXELS / CANVAS)
    pen = FreehandDrawTool(renderers=[strokes], num_objects=0)
    fig.add_tools(pen)
    fig.toolbar.active_drag = pen
    return fig, source


class ImageUpload(JSComponent):
    """A file chooser for one PNG or JPEG whose file goes to the server in chunks of 1 MB.

    Panel's FileInput sends a file as one websocket message, and Bokeh's server closes the connection
    (ending the session) on a message over 20 MB; nor can it refuse a file in the page. Here a file
    over ``max_bytes`` is refused in the page, unsent, and any other arrives in messages far below that
    limit. ``on_upload(name, size, content)`` is called with the file's content, or None when it was
    refused for its size.
    """

    accept = param.String(default="image/png,image/jpeg,.png,.jpg,.jpeg")
    label = param.String(default="Or upload a PNG or JPEG of a digit:")
    max_bytes = param.Integer(default=MAX_UPLOAD_BYTES)

    _esm = """
    const CHUNK = 1 << 20;

    function base64(blob) {
      return new Promise((resolve, reject) => {
        const reader = new FileReader();
        reader.onload = () => {
          const comma = reader.result.indexOf(",");
          resolve(comma < 0 ? "" : reader.result.slice(comma + 1));
        };
        reader.onerror = () => reject(reader.error);
        reader.readAsDataURL(blob);
      });
    }

    export function render({ model }) {
      const label = document.createElement("label");
      label.className = "upload";
      const text = document.createElement("span");
      text.textContent = model.label;
      const input = document.createElement("input");
      input.type = "file";
      input.accept = model.accept;
      label.append(text, input);
      let current = 0;
      input.addEventListener("change", async () => {
        const file = input.files[0];
        if (file == null) return;
        const id = ++current;
        const head = {id, name: file.name.slice(0, 200), size: file.size};
        if (file.size > model.max_bytes) {
          model.send_msg({...head, refused: true});
        } else {
          const chunks = Math.max(1, Math.ceil(file.size / CHUNK));
          for (let i = 0; i < chunks && id === current; i++) {
            const data = await base64(file.slice(i * CHUNK, (i + 1) * CHUNK));
            model.send_msg({...head, chunk: i, chunks, data});
          }
        }
        input.value = "";  // the same file can be chosen again
      });
      return label;
    }
    """

    _stylesheets: t.ClassVar[list[str]] = [
        ".upload { display: flex; flex-direction: column; gap: 4px; font-size: 14px; }"
    ]

    def __init__(self, on_upload: Callable[[str, int, bytes | None], None], **params) -> None:
        super().__init__(**params)
        self._on_upload = on_upload
        self._parts: tuple[int, list[bytes]] | None = None  # the file arriving: its id, its chunks so far

    def _handle_msg(self, msg: t.Any) -> None:
        # what the page sends is data: a message not of this shape is dropped
        try:
            upload, name, size = int(msg["id"]), str(msg["name"])[:200], int(msg["size"])
            if msg.get("refused") or size > self.max_bytes:
                self._parts = None
                self._on_upload(name, size, None)
                return
            chunk, chunks = int(msg["chunk"]), int(msg["chunks"])
            data = base64.b64decode(str(msg["data"]), validate=True)
        except (KeyError, TypeError, ValueError):
            return
        if chunk == 0:
            self._parts = (upload, [])
        if self._parts is None or self._parts[0] != upload or len(self._parts[1]) != chunk:
            return  # a chunk of a file given up for a newer one
        parts = self._parts[1]
        parts.append(data)
        received = sum(len(p) for p in parts)
        if received > self.max_bytes:
            self._parts = None
            self._on_upload(name, received, None)
        elif chunk + 1 >= chunks:
            self._parts = None
            self._on_upload(name, received, b"".join(parts))


# --- the tab ----------------------------------------------------------------------------------------------


class _Released:
    """A slider released is one discrete change: Panel's default 50 ms wait for more changes before the
    server handles it only delays the prediction (half the probe's update time on an idle machine)."""

    _debounce: t.ClassVar[int] = 0


class ReleasedIntSlider(_Released, pn.widgets.IntSlider):
    pass


class ReleasedFloatSlider(_Released, pn.widgets.FloatSlider):
    pass


class Probe(LazyView):
    """The Probe tab: start, transform, draw or upload on the left; the image fed, each run's prediction and
    measures, and the vote and spread charts on the right."""

    def __init__(self, browser: RunBrowser, **params) -> None:
        super().__init__(browser, ("data", "compared", "probe", "probe_digit", "drawn", "uploaded", *TRANSFORM_KEYS),
                         **params)
        self.browser = browser
        b = browser.param
        self.box = pn.widgets.IntInput(label="Digit", value=browser.probe_digit, start=0, width=200,
                                       css_classes=[CSS.PROBE_DIGIT])
        self.box.param.watch(self._typed, "value")
        self.message = pn.pane.Alert(alert_type="warning", visible=False, css_classes=[CSS.PROBE_MESSAGE],
                                     sizing_mode="stretch_width")
        reset = pn.widgets.Button(label="Reset the transform", width=190)
        reset.on_click(lambda event: browser.reset_transform())
        sliders = pn.GridBox(*[
            (ReleasedFloatSlider if isinstance(getattr(browser, key), float) else ReleasedIntSlider).from_param(
                b[key], throttled=True, width=190)
            for key in TRANSFORM_KEYS
        ], reset, ncols=2, width=430)
        self.canvas, self.strokes = drawing_canvas()
        self.canvas.css_classes = [CSS.PROBE_CANVAS]  # a Bokeh pane passes no classes on to its figure
        self.strokes.on_change("data", self._drawn)
        clear = pn.widgets.Button(label="Clear the drawing", width=190)
        clear.on_click(self._clear)
        self.upload = ImageUpload(self._uploaded, css_classes=[CSS.PROBE_UPLOAD], width=400, margin=(10, 10))
        start = pn.Column(
            pn.widgets.Select.from_param(b.probe, width=230), self.box,
            pn.pane.Bokeh(self.canvas, sizing_mode="fixed", width=_CANVAS_PIXELS, height=_CANVAS_PIXELS,
                          margin=(10, 10)),
            clear, width=250,
        )
        self.image = pn.pane.HTML(width=180, height=196, stylesheets=[_IMAGE_CSS], css_classes=[CSS.PROBE_IMAGE])
        self.title = pn.pane.Markdown(css_classes=[CSS.PROBE_TITLE], sizing_mode="stretch_width")
        self.measures = pn.pane.Markdown(css_classes=[CSS.PROBE_MEASURES], sizing_mode="stretch_width")
        self.votes, self.spread = VoteChart(), SpreadChart()
        for chart in (self.votes, self.spread):
            chart.figure.height = 300  # the inspector's 220 leaves a small frame under a legend and two axes
        self._layout = pn.Column(
            pn.Row(start, pn.Column(sliders, self.upload, self.message, width=440),
                   pn.Column(self.image, self.title, sizing_mode="stretch_width"), sizing_mode="stretch_width"),
            self.measures,
            pn.Row(pn.pane.Bokeh(self.votes.figure, sizing_mode="stretch_width", css_classes=[CSS.VOTES]),
                   pn.pane.Bokeh(self.spread.figure, sizing_mode="stretch_width", css_classes=[CSS.SPREAD]),
                   sizing_mode="stretch_width"),
            sizing_mode="stretch_width", css_classes=[CSS.PROBE],
        )

    def __panel__(self) -> pn.viewable.Viewable:
        return self._layout

    # --- what the person does ---

    def _say(self, text: str) -> None:
        self.message.object = literal(text)
        self.message.visible = bool(text)

    def _typed(self, event) -> None:
        source = self.browser.probe
        if event.new is None or source not in ("test", "foreign") or event.new == self.browser.probe_digit:
            return
        refusal = self.browser.select_probe(source, event.new)
        if refusal:  # the box goes back to the digit shown
            self._say(refusal)
            self.box.value = self.browser.probe_digit

    def _drawn(self, attr: str, old: object, new: dict) -> None:
        xs, ys = new.get("xs", []), new.get("ys", [])
        if len(xs) == 0:
            return
        with pn.io.hold():
            self.browser.param.update(drawn=rasterize_strokes(xs, ys), probe="drawing")

    def _clear(self, event) -> None:
        self.strokes.data = {"xs": [], "ys": []}
        self.browser.param.update(drawn=None, probe="blank" if self.browser.probe == "drawing" else self.browser.probe)

    def _uploaded(self, name: str, size: int, content: bytes | None) -> None:
        try:
            check_upload_size(name, size)
            upload = decode_upload(content or b"", name)
        except UploadError as exc:
            self._say(f"{exc} Still showing the previous image.")
            return
        with pn.io.hold():
            self._say("")
            self.browser.param.update(uploaded=upload, probe="upload")

    # --- what is shown ---

    def refresh(self, data: RunData, compared: RunData | None, probe: str, probe_digit: int,
                drawn: np.ndarray | None, uploaded: Upload | None, *transform: object) -> None:
        start = start_image(data, probe, probe_digit, drawn, uploaded)
        settings = Transform(**dict(zip(TRANSFORM_KEYS, transform)))
        fed = settings.apply(start.image)
        runs = [data] + ([compared] if compared is not None else [])
        probabilities = [rundata.image_probabilities(d, fed, rundata.INSPECTOR_DRAWS, PROBE_SEED) for d in runs]
        names = [d.name for d in runs]
        numbered = {"test": ("Test digit", data.n_digits), "foreign": ("Foreign digit", foreign_count(data))}
        with pn.io.hold():
            if probe in numbered:
                what, count = numbered[probe]
                self.box.param.update(label=f"{what} (0 to {count - 1:,})", end=max(0, count - 1), value=probe_digit)
            self.box.visible = probe in numbered
            self.image.object = (f'<img class="digit" src="{digit_uri(255 - fed)}" alt="the probed image">'
                                 "<br><small>As fed: 28x28, ink bright on black</small>")
            self.title.object = probe_text(start, settings, runs, probabilities)
            self.measures.object = measures_table(runs, [measure_values(d, p) for d, p in zip(runs, probabilities)])
            self.votes.show([p.argmax(axis=1) for p in probabilities], start.label, names)
            self.spread.show(probabilities, start.label, names)
