"""Digit images for the page, and the gallery: small PNG thumbnails in a clickable HTML grid.

Each thumbnail is the 28x28 image itself as a PNG data URI (a few hundred bytes), scaled up by
the browser without smoothing, so a page of 40 digits costs a few kilobytes and no plot rendering.
"""

from __future__ import annotations

import base64
import functools
import io
import typing as t

import numpy as np
import param
from panel.custom import JSComponent
from PIL import Image

__all__ = ["DigitGallery", "digit_uri"]


@functools.lru_cache(maxsize=20_000)
def _png(pixels: bytes) -> str:
    image = Image.frombytes("L", (28, 28), pixels)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def digit_uri(image: np.ndarray) -> str:
    """A (28, 28) uint8 test image as a PNG data URI, dark ink on white. Cached by the pixels.

    The browser scales it up (CSS ``image-rendering: pixelated``) for thumbnails and the inspector.
    """
    return _png((255 - np.asarray(image, dtype=np.uint8)).tobytes())


class DigitGallery(JSComponent):
    """A grid of digit thumbnails; clicking one sets ``selected`` to its digit index.

    ``items`` holds one dict per thumbnail: ``digit`` (int), ``src`` (data URI), ``caption`` and
    ``title`` (tooltip). The thumbnail whose digit equals ``selected`` is outlined.
    """

    items = param.List(default=[], item_type=dict)
    selected = param.Integer(default=-1)

    _esm = """
    export function render({ model }) {
      const grid = document.createElement("div");
      grid.className = "gallery";
      function draw() {
        const figures = model.items.map((item) => {
          const figure = document.createElement("figure");
          figure.className = item.digit === model.selected ? "thumb selected" : "thumb";
          figure.dataset.digit = item.digit;
          figure.title = item.title;
          const img = document.createElement("img");
          img.src = item.src;
          img.alt = `test digit ${item.digit}`;
          const caption = document.createElement("figcaption");
          caption.textContent = item.caption;
          figure.append(img, caption);
          figure.addEventListener("click", () => { model.selected = item.digit; });
          return figure;
        });
        grid.replaceChildren(...figures);
      }
      // a new selection only moves the outline: rebuilding the grid would decode every thumbnail again
      function outline() {
        for (const figure of grid.children) {
          figure.classList.toggle("selected", Number(figure.dataset.digit) === model.selected);
        }
      }
      draw();
      model.on("items", draw);
      model.on("selected", outline);
      return grid;
    }
    """

    # a click is one discrete change: Panel's default 50 ms wait for more changes only delays it
    _debounce: t.ClassVar[int] = 0
    # nor does it mark the server busy: Panel's busy flag is process-wide and the app shows no busy
    # indicator, but its bookkeeping was a twentieth of the server's work with 50 sessions clicking
    _busy__ignore: t.ClassVar[list[str]] = ["selected"]

    _stylesheets: t.ClassVar[list[str]] = [
        """
    .gallery { display: grid; grid-template-columns: repeat(auto-fill, minmax(84px, 1fr)); gap: 6px; }
    .thumb { margin: 0; padding: 4px; border: 2px solid transparent; border-radius: 4px; cursor: pointer;
             text-align: center; background: #fafafa; }
    .thumb:hover { border-color: #9ecae1; }
    .thumb.selected { border-color: #d95f02; background: #fff3e6; }
    .thumb img { width: 56px; height: 56px; image-rendering: pixelated; display: block; margin: 0 auto; }
    .thumb figcaption { font-size: 12px; line-height: 1.3; color: #222; white-space: nowrap; }
    """
    ]
