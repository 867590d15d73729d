"""The Probe tab as a person uses it: draw with the mouse, move a slider, upload a file, share a URL."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
from PIL import Image

from dashboard.views import CSS
from tests.browser.test_dashboard_browser import figure, open_app, query, text, wait_for_query

pytestmark = pytest.mark.browser

VOTES = "Predicted label across posterior draws"
SPREAD = "Class probabilities over"


def title(page) -> str:
    return text(page.locator(f".{CSS.PROBE_TITLE}"))


def wait_for_title(page, pattern: str) -> str:
    """The probe's title once it matches ``pattern`` (a regular expression)."""
    for _ in range(300):
        shown = title(page)
        if re.search(pattern, shown):
            return shown
        page.wait_for_timeout(100)
    raise AssertionError(f"the probe's title never matched {pattern!r}: {shown!r}")


def entropy(page) -> str:
    """The predictive entropy row of the measures table, as shown."""
    table = text(page.locator(f".{CSS.PROBE_MEASURES}"))
    return re.search(r"Predictive entropy \(nats\) (.*?) Mutual", table).group(1)


def votes(page) -> list[int]:
    bars = next(c for c in figure(page, VOTES)["data"] if "draws" in c)
    return bars["draws"]


def slider(page, label: str):
    """The visible slider whose title starts with ``label``."""
    return page.locator(".bk-slider-title", has_text=label).filter(visible=True).first.locator("xpath=..")


def test_drawing_a_stroke_shows_both_runs_predictions_and_distributions(page, server, screenshots):
    open_app(page, f"{server}?run=mlp-hier&compare=cnn-normal&tab=probe")
    wait_for_title(page, "Probing test digit 0")
    canvas = page.locator(f".{CSS.PROBE_CANVAS}").filter(visible=True).first.bounding_box()
    x, y = canvas["x"] + canvas["width"] / 2, canvas["y"] + 0.15 * canvas["height"]
    page.mouse.move(x, y)
    page.mouse.down()
    for step in range(1, 21):  # a stroke down, slightly slanted: a one
        page.mouse.move(x + step, y + 0.035 * canvas["height"] * step)
    page.mouse.up()
    shown = wait_for_title(page, "Probing your drawing")
    assert "mlp-hier: predicts" in shown and "cnn-normal: predicts" in shown and "of 100 draws" in shown
    assert sum(votes(page)) == 200  # each run's 100 draws
    spread = next(c for c in figure(page, SPREAD)["data"] if "run" in c)
    assert set(spread["run"]) == {"mlp-hier", "cnn-normal"}
    measures = text(page.locator(f".{CSS.PROBE_MEASURES}"))
    assert "Predictive entropy" in measures and "Mutual information" in measures and "cnn-normal" in measures
    wait_for_query(page, probe="drawing")
    page.screenshot(path=screenshots / "probe.png")


def test_moving_the_rotation_slider_changes_the_entropy(page, server):
    open_app(page, f"{server}?run=mlp-hier&tab=probe&probe_digit=5")
    wait_for_title(page, "Probing test digit 5")
    before = entropy(page)
    handle = slider(page, "Rotate").locator(".noUi-handle")
    box = handle.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 2 + 60, box["y"] + box["height"] / 2, steps=5)
    page.mouse.up()
    shown = wait_for_title(page, r"rotated -?\d+°")
    degrees = re.search(r"rotated (-?\d+)°", shown).group(1)
    wait_for_query(page, rotate=degrees)
    assert entropy(page) != before


def _png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def test_uploading_a_png_shows_its_prediction_and_a_bad_file_a_message(page, server):
    open_app(page, f"{server}?run=mlp-hier&tab=probe")
    wait_for_title(page, "Probing test digit 0")
    seven = np.full((300, 200), 250, np.uint8)  # dark ink on white paper, any size
    seven[40:70, 30:170] = 20
    seven[70:260, 120:150] = 20
    chooser = page.locator(f".{CSS.PROBE_UPLOAD} input[type=file]")
    chooser.set_input_files(files=[{"name": "seven.png", "mimeType": "image/png", "buffer": _png(seven)}])
    shown = wait_for_title(page, "Probing your upload seven")
    assert "200x300 pixels, dark ink on light, inverted" in shown and "mlp-hier: predicts" in shown
    assert sum(votes(page)) == 100
    chooser.set_input_files(files=[{"name": "<b>notes</b>.png", "mimeType": "image/png", "buffer": b"not an image"}])
    message = text(page.locator(f".{CSS.PROBE_MESSAGE}"))
    assert "<b>notes</b>.png is not a PNG or JPEG image" in message and "Still showing the previous image" in message
    assert "Probing your upload seven" in title(page)


def test_a_url_with_a_transform_sets_the_sliders(page, server):
    open_app(page, f"{server}?run=mlp-hier&tab=probe&probe=foreign&probe_digit=7&rotate=-30&shift_x=3&noise=0.2"
                   "&erase_size=6&blur=nope")
    shown = wait_for_title(page, "Probing foreign digit 7")
    assert "rotated -30°" in shown and "moved 3 px right" in shown and "noise of sd 0.2" in shown
    for label, value in (("Rotate", "-30"), ("Shift x", "3"), ("Noise sd", "0.2"), ("Erase square", "6"),
                         ("Blur", "0")):
        assert float(text(slider(page, label).locator(".bk-slider-value"))) == float(value), label
    notice = text(page.locator(f".{CSS.NOTICE}"))
    assert "blur='nope' ignored" in notice
    assert query(page)["rotate"] == "-30" and "blur" not in query(page)


def test_clicking_a_foreign_digit_of_the_shift_tab_probes_it(page, server):
    open_app(page, f"{server}?run=mlp-hier&tab=shift")
    thumb = page.locator("figure.thumb").filter(visible=True).first
    thumb.wait_for()
    sample = thumb.get_attribute("data-digit")
    thumb.click()
    wait_for_query(page, tab="probe", probe="foreign", probe_digit=sample)
    wait_for_title(page, f"Probing foreign digit {sample}")
