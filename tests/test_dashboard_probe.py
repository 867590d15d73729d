"""dashboard.probe_images and dashboard.probe: the transform, the rasteriser, the upload decoder, the URL's
probe settings, the measures shown, and the Probe tab on a session, without a server."""

from __future__ import annotations

import base64
import dataclasses
import io
import struct
import zlib
from pathlib import Path

import numpy as np
import panel as pn
import pytest
from bokeh.document import Document
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from scipy import ndimage

from core import shift, store
from core.synthetic import synthetic_run
from core.uncertainty import MEASURES
from dashboard import rundata
from dashboard.inspector_charts import VoteChart
from dashboard.probe import NOT_DEFINED, ImageUpload, Probe, measure_values, measures_table
from dashboard.probe_images import (
    MAX_UPLOAD_BYTES,
    MAX_UPLOAD_PIXELS,
    TRANSFORM_KEYS,
    Transform,
    UploadError,
    check_upload_size,
    decode_upload,
    ink_on_dark,
    rasterize_strokes,
    start_image,
)
from dashboard.shift_views import shift_panel
from dashboard.state import RunBrowser
from tests.test_dashboard_text import assert_plain, shown_text

HOSTILE = "<img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("runs")
    store.save_run(synthetic_run("mlp", "hierarchical", n_digits=120, seed=0), path / "a.nc")
    store.save_run(synthetic_run("cnn", "normal", n_digits=90, seed=1), path / "c.nc")
    store.save_run(synthetic_run("mlp", "normal", n_digits=90, seed=3, method="map"), path / "map.nc")
    return path


@pytest.fixture
def browser(folder) -> RunBrowser:
    browser = RunBrowser(folder)
    browser.run = "a"
    return browser


@pytest.fixture(scope="module")
def digit() -> np.ndarray:
    image = np.zeros((28, 28), np.uint8)
    image[6:22, 12:16] = 255  # a one
    image[6:9, 9:16] = 200
    return image


def png(image: np.ndarray, format: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format=format)
    return buffer.getvalue()


# --- the transform ----------------------------------------------------------------------------------------


def test_the_default_transform_is_the_identity_and_the_sessions_default(digit, browser):
    out = Transform().apply(digit)
    np.testing.assert_array_equal(out, digit)
    assert out is not digit and out.dtype == np.uint8 and out.shape == (28, 28)
    assert browser.transform() == Transform() and Transform().describe() == "unchanged"
    assert Transform(erase_x=3, erase_y=20).apply(digit).tolist() == digit.tolist()  # no square, no erasing


@pytest.mark.parametrize(("settings", "expected"), [
    ({"rotate": 30}, lambda x: shift.rotate(x, 30)),
    ({"shift_x": 3, "shift_y": -2}, lambda x: shift.translate(x, 3, -2)),
    ({"thicken": -1}, lambda x: shift.thicken(x, -1)),
    ({"blur": 1.5}, lambda x: shift.blur(x, 1.5)),
    ({"erase_x": 12, "erase_y": 5, "erase_size": 6}, lambda x: shift.erase(x, 5, 12, 6)),
    ({"noise": 0.2}, lambda x: shift.add_noise(x, 0.2, seed=0)),
])
def test_each_setting_is_core_shifts_transform(digit, settings, expected):
    np.testing.assert_array_equal(Transform(**settings).apply(digit), expected(digit[None])[0])


def test_the_transforms_apply_in_order_and_are_described(digit):
    both = Transform(thicken=1, rotate=90, shift_x=-2, noise=0.1)
    step = shift.add_noise(shift.translate(shift.rotate(shift.thicken(digit[None], 1), 90), -2), 0.1, seed=0)
    np.testing.assert_array_equal(both.apply(digit), step[0])
    np.testing.assert_array_equal(both.apply(digit), both.apply(digit))  # the noise is seeded: shareable
    assert both.describe() == "strokes thickened by 1 px, rotated 90°, moved 2 px left, noise of sd 0.1"
    assert Transform(thicken=-2, shift_y=-1).describe() == "strokes thinned by 2 px, moved 1 px up"


# --- the URL ----------------------------------------------------------------------------------------------


def test_the_transform_and_the_start_round_trip_through_the_url(folder, browser):
    assert not {"probe", "probe_digit", *TRANSFORM_KEYS} & set(browser.query())  # defaults are left out
    browser.param.update(probe="foreign", probe_digit=7, rotate=-30, shift_x=3, shift_y=-14, noise=0.30000000000000004,
                         blur=1.2, thicken=-1, erase_x=0, erase_y=27, erase_size=9)
    query = browser.query()
    assert query["probe"] == "foreign" and query["probe_digit"] == "7" and query["rotate"] == "-30"
    assert query["noise"] == "0.3" and query["erase_x"] == "0"
    other = RunBrowser(folder)
    assert other.apply_query(query) == []
    assert other.transform() == dataclasses.replace(browser.transform(), noise=0.3)
    assert (other.probe, other.probe_digit) == ("foreign", 7) and other.query() == query
    assert other.apply_query({"run": "a"}) == []  # absent: the defaults again
    assert other.transform() == Transform() and (other.probe, other.probe_digit) == ("test", 0)


@pytest.mark.parametrize(("key", "bad"), [
    ("rotate", "abc"), ("rotate", "181"), ("rotate", "+5"), ("rotate", "1e2"), ("rotate", "٣"),
    ("shift_x", "-15"), ("noise", "-0.1"), ("noise", "1e-1"), ("noise", "nan"), ("blur", "3.5"),
    ("erase_size", "2.5"), ("probe", "file:/etc/passwd"), ("probe", "drawing"), ("probe", "upload"),
    ("probe_digit", "120"), ("probe_digit", "-1"), ("rotate", HOSTILE),
])
def test_bad_probe_values_in_the_url_are_refused_with_a_notice(browser, key, bad):
    before = (browser.probe, browser.probe_digit, browser.transform())
    notices = browser.apply_query({"run": "a", key: bad})
    assert len(notices) == 1 and f"{key}={bad!r} ignored" in notices[0] and browser.notice == notices[0]
    assert (browser.probe, browser.probe_digit, browser.transform()) == before


@settings(max_examples=40, deadline=None)
@given(st.dictionaries(st.sampled_from(["probe", "probe_digit", *TRANSFORM_KEYS]),
                       st.one_of(st.text(max_size=8), st.integers(-300, 300).map(str),
                                 st.floats(-1, 5).map(lambda x: f"{x:.2f}"))))
def test_any_probe_query_leaves_settings_in_range(folder, query):
    browser = RunBrowser(folder)
    browser.apply_query({"run": "a", **query})
    for key in TRANSFORM_KEYS:
        lo, hi = browser.param[key].bounds
        assert lo <= getattr(browser, key) <= hi
    assert browser.probe in ("test", "foreign", "blank")
    assert 0 <= browser.probe_digit < (browser.data.n_digits if browser.probe == "test" else 300)
    browser.transform().apply(browser.data.images[0])


def test_a_url_names_a_drawing_or_an_upload_only_of_its_own_session(browser, digit):
    assert "draw the digit or upload the file again" in browser.apply_query({"run": "a", "probe": "drawing"})[0]
    browser.drawn = digit
    assert browser.apply_query({"run": "a", "probe": "drawing"}) == [] and browser.probe == "drawing"
    assert "probe_digit" not in browser.query()
    notice = browser.apply_query({"run": "a", "probe": "blank", "probe_digit": "5"})
    assert browser.probe == "blank" and "probe=blank has no digits to number" in notice[0]


def test_the_probe_digit_is_checked_against_its_source_and_kept_in_range_across_runs(browser):
    assert browser.select_probe("test", 119) == "" and browser.probe_digit == 119
    refusal = browser.select_probe("test", 120)
    assert "There is no test digit 120" in refusal and "0 to 119" in refusal and browser.probe_digit == 119
    browser.run = "c"  # 90 test digits
    assert browser.probe_digit == 0
    browser.probe_foreign(250)
    assert (browser.tab, browser.probe, browser.probe_digit) == ("probe", "foreign", 250)


# --- start images -----------------------------------------------------------------------------------------


def test_start_images_of_every_source(browser, digit):
    data = browser.data
    test = start_image(data, "test", 5)
    assert np.array_equal(test.image, data.images[5]) and test.label == data.true[5]
    assert test.description.startswith("test digit 5")
    sample = data.shift_sample
    letter = int(np.flatnonzero(sample.true.values < 0)[0])
    foreign = start_image(data, "foreign", letter)
    assert foreign.label is None and f"the letter {sample.character.values[letter]}" in foreign.description
    uci = start_image(data, "foreign", 0)
    assert uci.label == int(sample.true.values[0]) and "UCI scan" in uci.description
    assert not start_image(data, "blank", 0).image.any()
    assert start_image(data, "drawing", 0, drawn=digit).image is digit
    assert "none yet" in start_image(data, "upload", 0).description


# --- drawing ----------------------------------------------------------------------------------------------


def test_a_drawn_stroke_is_brought_to_mnists_preprocessing():
    image = rasterize_strokes([[14.0, 14.5]], [[3.0, 25.0]])  # a vertical stroke down the canvas
    assert image.shape == (28, 28) and image.dtype == np.uint8
    rows, cols = np.flatnonzero(image.max(axis=1)), np.flatnonzero(image.max(axis=0))
    assert rows[-1] - rows[0] + 1 in (20, 21) and cols[-1] - cols[0] + 1 <= 6  # a one: 20 pixels tall, thin
    np.testing.assert_allclose(ndimage.center_of_mass(image.astype(float)), (14, 14), atol=1.0)


def test_the_rasteriser_takes_any_strokes_the_page_sends():
    assert not rasterize_strokes([], []).any()
    dot = rasterize_strokes([[10]], [[10]])  # a click
    assert dot.any()
    assert rasterize_strokes([["a", None], [1, 2]], [[1], [np.nan, 5]]).dtype == np.uint8  # junk is dropped
    far = rasterize_strokes([[-100, 100]], [[14, 14]])  # clipped to the canvas: a horizontal bar
    assert far.max(axis=0).astype(bool).sum() == 20
    np.testing.assert_array_equal(rasterize_strokes([np.array([3.0, 20])], [np.array([3.0, 20])]),
                                  rasterize_strokes([[3.0, 20]], [[3.0, 20]]))


# --- uploads ----------------------------------------------------------------------------------------------


def test_a_dark_digit_on_light_paper_is_inverted():
    page = np.full((60, 100), 255, np.uint8)
    page[10:50, 45:52] = 0
    upload = decode_upload(png(page), "one.png")
    assert upload.inverted and (upload.width, upload.height) == (100, 60)
    np.testing.assert_array_equal(upload.image, shift.to_mnist(255.0 - page))
    assert "dark ink on light, inverted" in upload.describe()


def test_a_light_digit_on_dark_is_not_inverted(digit):
    upload = decode_upload(png(digit), "mnist.png")
    assert not upload.inverted
    np.testing.assert_array_equal(upload.image, shift.to_mnist(np.where(digit >= 0.25 * 255, digit, 0)))


@pytest.mark.parametrize("size", [(1, 1), (3, 500), (2000, 3000)])
def test_an_upload_of_any_size_becomes_28_by_28(size):
    page = np.full(size, 230, np.uint8)
    rows, cols = size[0] // 4, size[1] // 3
    page[rows : max(rows + 1, 3 * rows), cols : max(cols + 1, size[1] // 2)] = 10
    for format in ("PNG", "JPEG"):
        image = decode_upload(png(page, format), f"x.{format}").image
        assert image.shape == (28, 28) and image.dtype == np.uint8


def test_paper_texture_and_transparency_are_background():
    rng = np.random.default_rng(0)
    paper = np.clip(rng.normal(200, 8, (80, 80)), 0, 255).astype(np.uint8)  # grey paper, not white
    paper[20:60, 38:44] = 30
    ink, inverted = ink_on_dark(paper.astype(float))
    assert inverted and ink[:10].max() == 0 and ink[30, 40] == 255
    rgba = np.zeros((40, 40, 4), np.uint8)  # black ink on a transparent sheet
    rgba[5:35, 18:22, 3] = 255
    assert decode_upload(png(rgba), "t.png").inverted


def _png_header(width: int, height: int) -> bytes:
    """A PNG that claims ``width`` x ``height`` grey pixels and holds none: what a decompression bomb's header says."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


@pytest.mark.parametrize(("content", "message"), [
    (b"", "x.png is empty (0 bytes): choose a PNG or JPEG image"),
    (b"\0" * (MAX_UPLOAD_BYTES + 1), "x.png is 50.0 MB, over the 50.0 MB limit: upload a smaller image"),
    (b"hello, not an image", "x.png is not a PNG or JPEG image: choose a photo or a scan"),
    (png(np.zeros((5, 5), np.uint8), "GIF"), "x.png is not a PNG or JPEG image"),
    (_png_header(8000, 6000), ("x.png would decode to 8,000x6,000 pixels, over the limit of 40 million (a "
                               "decompression bomb, or a huge image): scale it down")),
    (_png_header(100_000, 100_000), "x.png would decode to too many pixels, over the limit of 40 million"),
    (png(np.random.default_rng(0).integers(0, 256, (64, 64), np.uint8))[:2000], "x.png cannot be decoded ("),
])
def test_a_bad_upload_says_what_is_wrong_and_what_to_do(content, message):
    with pytest.raises(UploadError) as raised:
        decode_upload(content, "x.png")
    assert str(raised.value).startswith(message)
    assert 8000 * 6000 > MAX_UPLOAD_PIXELS


def test_the_size_is_checked_before_anything_is_read():
    with pytest.raises(UploadError, match="over the 50.0 MB limit"):
        check_upload_size("big.jpg", 60 * 2**20)
    check_upload_size("ok.jpg", 1000)


def test_the_upload_widget_assembles_chunks_and_drops_what_is_not_its_own():
    got = []
    upload = ImageUpload(lambda *args: got.append(args), max_bytes=10)

    def send(upload_id, chunk, chunks, data, name="d.png", size=8):
        upload._handle_msg({"id": upload_id, "name": name, "size": size, "chunk": chunk, "chunks": chunks,
                            "data": base64.b64encode(data).decode()})

    send(1, 0, 2, b"abcd")
    send(2, 1, 2, b"zzzz")  # a chunk of another file
    send(1, 1, 2, b"efgh")
    assert got == [("d.png", 8, b"abcdefgh")]
    upload._handle_msg({"id": 3, "name": "big.png", "size": 11, "refused": True})
    upload._handle_msg({"id": 4, "name": "x"})  # malformed: dropped
    upload._handle_msg("junk")
    send(5, 0, 3, b"123456")
    send(5, 1, 3, b"789012", size=8)  # more than it said, and over the limit
    assert got[1:] == [("big.png", 11, None), ("d.png", 12, None)]


# --- measures ---------------------------------------------------------------------------------------------


def test_every_measure_is_shown_for_each_run_and_not_defined_where_it_is_not(folder, browser, digit):
    data = browser.data
    probs = rundata.image_probabilities(data, digit, 100, 0)
    assert probs.shape == (100, 10) and rundata.image_probabilities(data, digit, 100, 0) is probs  # cached
    values = measure_values(data, probs)
    assert list(values) == list(MEASURES) and all(v is not None and np.isfinite(v) for v in values.values())
    one = rundata.run_data(folder / "map.nc")  # a single network: a MAP fit
    single = measure_values(one, rundata.image_probabilities(one, digit, 100, 0))
    assert single["entropy"] is not None and single["mutual_information"] is None and single["chi_square"] is None
    # a run file written before a measure existed: its value is shown, without a share of its test digits
    lacking = dataclasses.replace(data, name="old", measures={k: v for k, v in data.measures.items() if k != "entropy"})
    old = measure_values(lacking, probs)
    assert old["entropy"] == values["entropy"]
    assert f"**{values['entropy']:.3g}** |" in measures_table([lacking], [old])
    one_draw = dataclasses.replace(data, name="one")  # one draw of an approximation: no spread either
    assert measure_values(one_draw, probs[:1])["variation_ratio"] is None
    table = pn.pane.Markdown(measures_table([data, one], [values, single]))
    text = shown_text(table)
    assert "Mutual information (nats)" in text and f"{values['entropy']:.3g}" in text and NOT_DEFINED in text
    assert "of its test digits" in text


# --- the tab ----------------------------------------------------------------------------------------------


def open_probe(browser: RunBrowser) -> Probe:
    probe = Probe(browser)
    probe.__panel__().get_root(Document())
    probe.active = True
    return probe


def test_the_probe_shows_the_image_fed_the_predictions_and_the_charts(browser):
    browser.compare = "c"
    probe = open_probe(browser)
    title = shown_text(probe.title)
    assert "Probing test digit 0" in title and "a: predicts" in title and "c: predicts" in title
    assert probe.votes.source.data["run"] == ["a"] * 10 + ["c"] * 10 and sum(probe.votes.source.data["draws"]) == 200
    assert probe.votes.truth.data["x"] == [float(browser.data.true[0])]
    assert "data:image/png;base64," in probe.image.object
    browser.rotate = 45
    assert "rotated 45°" in shown_text(probe.title)


def test_a_drawing_has_no_true_class_and_clearing_it_goes_blank(browser):
    probe = open_probe(browser)
    probe._drawn("data", None, {"xs": [[14, 14]], "ys": [[4, 24]]})
    assert browser.probe == "drawing" and browser.drawn.any()
    assert "Probing your drawing" in shown_text(probe.title)
    assert probe.votes.truth.data == {"x": [], "top": []} and probe.votes.figure.xaxis.major_label_overrides == {}
    probe._clear(None)
    assert browser.probe == "blank" and browser.drawn is None and probe.strokes.data == {"xs": [], "ys": []}


def test_a_bad_upload_leaves_the_previous_image_with_a_message(browser, digit):
    probe = open_probe(browser)
    probe._uploaded(f"{HOSTILE}.png", 11, png(digit))
    assert browser.probe == "upload" and f"your upload {HOSTILE}.png" in shown_text(probe.title)
    assert_plain(probe.title)
    shown = browser.uploaded
    probe._uploaded(f"{HOSTILE}.txt", 5, b"hello")
    assert browser.uploaded is shown and probe.message.visible
    assert f"{HOSTILE}.txt is not a PNG or JPEG image" in shown_text(probe.message) and "previous image" in shown_text(
        probe.message)
    assert_plain(probe.message)
    probe._uploaded("huge.png", MAX_UPLOAD_BYTES + 1, None)  # refused in the page, unsent
    assert "over the 50.0 MB limit" in shown_text(probe.message) and browser.uploaded is shown


def test_a_typed_digit_out_of_range_is_refused(browser):
    probe = open_probe(browser)
    probe.box.value = 500
    assert "There is no test digit 500" in shown_text(probe.message) and probe.box.value == 0
    probe.box.value = 7
    assert browser.probe_digit == 7 and "Probing test digit 7" in shown_text(probe.title)


def test_a_map_run_beside_an_advi_run_shows_which_measures_it_lacks(browser):
    browser.compare = "map"
    probe = open_probe(browser)
    assert probe.votes.source.data["draws"][10:].count(1) == 1 and sum(probe.votes.source.data["draws"]) == 101
    table = shown_text(probe.measures)
    assert table.count(NOT_DEFINED) == 4  # the map run's votes and mutual information
    assert "map: predicts" in shown_text(probe.title) and "one network" in shown_text(probe.title)


def test_the_vote_chart_shows_a_digit_without_a_true_class():
    chart = VoteChart()
    chart.show([np.array([1, 1, 2])], None, ["a"])
    assert chart.truth.data == {"x": [], "top": []} and chart.figure.xaxis.major_label_overrides == {}
    chart.show([np.array([1, 1, 2])], 2, ["a"])
    assert chart.truth.data["x"] == [2.0] and chart.figure.xaxis.major_label_overrides == {2: "2 true"}


def test_clicking_a_foreign_digit_in_the_shift_tab_opens_it_in_the_probe(browser):
    view = shift_panel(browser.data, None, "entropy", open_foreign=browser.probe_foreign)
    gallery = next(g for g in view.select(lambda o: type(o).__name__ == "DigitGallery"))
    sample = gallery.items[0]["digit"]
    gallery.selected = sample
    assert (browser.tab, browser.probe, browser.probe_digit) == ("probe", "foreign", sample)
    assert gallery.selected == -1  # a second click on it opens it again
