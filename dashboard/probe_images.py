"""The Probe tab's images, without Panel: where a probed digit starts, and what is done to it.

A probe starts from one of :data:`SOURCES`: a test digit of the run (by index), a foreign digit of
its shift suite's sample (``RunData.shift_sample``: UCI scans, typed digits, letters), a blank
canvas, strokes drawn with the mouse (:func:`rasterize_strokes`) or an uploaded PNG or JPEG
(:func:`decode_upload`). Drawn and uploaded images are brought to MNIST's preprocessing with
:func:`core.shift.to_mnist`. A :class:`Transform` is then applied (:meth:`Transform.apply`), with
the transforms of :mod:`core.shift`, and the result is what the network is fed: (28, 28) uint8, ink
bright on a dark background, as MNIST's digits are.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np

from core import shift

from .rundata import RunData

__all__ = [
    "CANVAS",
    "MAX_UPLOAD_BYTES",
    "MAX_UPLOAD_PIXELS",
    "SOURCES",
    "STROKE_WIDTH",
    "TRANSFORM_KEYS",
    "Start",
    "Transform",
    "Upload",
    "UploadError",
    "check_upload_size",
    "decode_upload",
    "foreign_count",
    "ink_on_dark",
    "rasterize_strokes",
    "start_image",
]

SOURCES = {
    "test": "Test digit",
    "foreign": "Foreign digit or letter",
    "blank": "Blank canvas",
    "drawing": "Your drawing",
    "upload": "Your upload",
}
"""Where a probed digit starts (key, as in the URL -> name): a test digit, a foreign digit of the shift
suite's sample, a blank canvas, a drawing, an upload."""

NOISE_SEED = 0  # the probe's noise is the same for the same settings: a shared URL shows the same image


@dataclass(frozen=True)
class Transform:
    """What is done to the start image, in this order (the writer's stroke, the digit's placement, then
    what happens to the picture): strokes thickened by ``thicken`` pixels on each side (negative thins
    them), rotated ``rotate`` degrees counter-clockwise, moved ``shift_x`` pixels right and ``shift_y``
    down, blurred with a Gaussian of ``blur`` pixels, an ``erase_size`` square with its top-left corner
    at column ``erase_x``, row ``erase_y`` set to the background, and Gaussian noise of sd ``noise`` (on
    the [0, 1] pixel scale) added with a fixed seed. The defaults change nothing.
    """

    thicken: int = 0
    rotate: int = 0
    shift_x: int = 0
    shift_y: int = 0
    blur: float = 0.0
    erase_x: int = 10
    erase_y: int = 10
    erase_size: int = 0
    noise: float = 0.0

    def apply(self, image: np.ndarray) -> np.ndarray:
        """The transformed image. (28, 28) uint8 -> (28, 28) uint8, a new array."""
        x = np.asarray(image)[None]  # (1, 28, 28): core.shift's transforms take a batch
        x = shift.thicken(x, self.thicken)
        x = shift.rotate(x, self.rotate)
        x = shift.translate(x, self.shift_x, self.shift_y)
        x = shift.blur(x, self.blur)
        x = shift.erase(x, self.erase_y, self.erase_x, self.erase_size)
        x = shift.add_noise(x, self.noise, seed=NOISE_SEED)
        return x[0]

    def describe(self) -> str:
        """What the transform does, in words (``"unchanged"`` for none)."""
        parts = []
        if self.thicken:
            parts.append(f"strokes {'thickened' if self.thicken > 0 else 'thinned'} by {abs(self.thicken)} px")
        if self.rotate:
            parts.append(f"rotated {self.rotate}°")
        moves = [f"{abs(v)} px {word[v > 0]}" for v, word in ((self.shift_x, ("left", "right")),
                                                                (self.shift_y, ("up", "down"))) if v]
        if moves:
            parts.append("moved " + " and ".join(moves))
        if self.blur:
            parts.append(f"blurred (sigma {self.blur:g} px)")
        if self.erase_size:
            parts.append(f"a {self.erase_size} px square erased at column {self.erase_x}, row {self.erase_y}")
        if self.noise:
            parts.append(f"noise of sd {self.noise:g}")
        return ", ".join(parts) if parts else "unchanged"


TRANSFORM_KEYS = tuple(f.name for f in fields(Transform))
"""The transform's settings, in the order they are applied; also the URL's and the session's names."""


# --- start images --------------------------------------------------------------------------------------------

_FOREIGN = {"uci": "a UCI scan", "typed": "a typed", "letters": "a typed letter"}


@dataclass(frozen=True)
class Start:
    """A probe's start image: ``image`` (28, 28) uint8; ``label`` its true class when it has one (a
    test digit or a foreign digit, not a letter, a drawing or an upload); ``description`` in words,
    plain text (it may hold a file name: escape it before putting it in Markdown)."""

    image: np.ndarray
    label: int | None
    description: str


BLANK = np.zeros((28, 28), np.uint8)
BLANK.setflags(write=False)


def foreign_count(data: RunData) -> int:
    """How many foreign digits the run's shift suite keeps (``shift_sample``)."""
    return int(data.shift_sample.sizes.get("sample", 0))


def start_image(data: RunData, source: str, index: int, drawn: np.ndarray | None = None,
                uploaded: Upload | None = None) -> Start:
    """The start image of ``source`` (one of :data:`SOURCES`): test digit or foreign digit ``index`` of
    ``data`` (an index out of range gives the first), the blank canvas, the drawing ``drawn``, the
    upload ``uploaded`` (blank while there is none)."""
    if source == "test":
        index = index if 0 <= index < data.n_digits else 0
        label = int(data.true[index])
        return Start(data.images[index], label, f"test digit {index} (a {label})")
    if source == "foreign" and foreign_count(data):
        sample = data.shift_sample
        index = index if 0 <= index < foreign_count(data) else 0
        kind, true = str(sample.set.values[index]), int(sample.true.values[index])
        character = str(sample.character.values[index])
        what = (f"the letter {character}" if true < 0 else
                f"{_FOREIGN.get(kind, kind)} {character}" if kind != "uci" else f"a UCI scan of a {character}")
        return Start(sample.image.values[index], None if true < 0 else true, f"foreign digit {index}: {what}")
    if source == "drawing":
        return Start(BLANK if drawn is None else drawn, None, "your drawing" if drawn is not None else
                     "your drawing (blank: draw on the canvas)")
    if source == "upload" and uploaded is not None:
        return Start(uploaded.image, None, uploaded.describe())
    if source == "upload":
        return Start(BLANK, None, "your upload (none yet: choose a PNG or JPEG)")
    return Start(BLANK, None, "a blank canvas")


# --- drawing -------------------------------------------------------------------------------------------------

CANVAS = 28.0
"""The drawing canvas's size in its own units (x to the right, y down): one unit is one MNIST pixel."""
STROKE_WIDTH = 2.4
"""The pen's width in canvas units: a digit drawn over most of the canvas gets MNIST's 2 to 3 pixel strokes."""
_SCALE = 10  # strokes are drawn at 10 pixels a canvas unit, then reduced by to_mnist
MAX_POINTS = 20_000  # of all strokes together: a page could send any number


def _points(xs: object, ys: object) -> np.ndarray:
    """One stroke's finite points inside the canvas, (n, 2); none for anything that is not numbers."""
    try:
        x = np.asarray(xs, dtype=np.float64).ravel()
        y = np.asarray(ys, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        return np.empty((0, 2))
    n = min(len(x), len(y))
    points = np.column_stack([x[:n], y[:n]])
    return np.clip(points[np.isfinite(points).all(axis=1)], 0.0, CANVAS)


def rasterize_strokes(xs: Sequence, ys: Sequence, width: float = STROKE_WIDTH) -> np.ndarray:
    """Strokes drawn with a round pen of ``width``, brought to MNIST's preprocessing (:func:`core.shift.to_mnist`).

    xs, ys : one sequence of coordinates per stroke, in canvas units (:data:`CANVAS`; y down), as Bokeh's
    FreehandDrawTool gives them. Non-numbers and non-finite points are dropped, points beyond the canvas
    clipped to it, and at most :data:`MAX_POINTS` drawn. Returns (28, 28) uint8; blank for no ink.
    """
    from PIL import Image, ImageDraw

    size = round(CANVAS * _SCALE)
    canvas = Image.new("L", (size, size), 0)
    pen = ImageDraw.Draw(canvas)
    radius = width * _SCALE / 2
    left = MAX_POINTS
    for stroke_xs, stroke_ys in zip(xs, ys):
        points = _points(stroke_xs, stroke_ys)[:left] * _SCALE
        left -= len(points)
        if len(points) > 1:
            pen.line([tuple(p) for p in points], fill=255, width=max(1, round(2 * radius)), joint="curve")
        for x, y in points[[0, -1]] if len(points) else ():  # round ends, and a dot for a click
            pen.ellipse((x - radius, y - radius, x + radius, y + radius), fill=255)
        if left <= 0:
            break
    return shift.to_mnist(np.asarray(canvas))


# --- uploads -------------------------------------------------------------------------------------------------

MAX_UPLOAD_BYTES = 50 * 2**20
"""The largest upload (50 MB): refused above it, in the page before it is sent, and here."""
MAX_UPLOAD_PIXELS = 40_000_000
"""The most pixels an upload may decode to (40 megapixels, more than a 12-megapixel photo): a larger
image is refused from its header, before it is decoded (a decompression bomb unpacks a small file
into gigabytes)."""
_WORK_SIZE = 280  # an upload is reduced to at most this many pixels a side before MNIST's preprocessing
INK_FLOOR = 0.25
"""After the background is subtracted, pixels below this share of the brightest ink are background:
paper texture and camera noise, which MNIST's black backgrounds do not have."""


class UploadError(ValueError):
    """An upload that cannot be used; the message names the problem and what to do."""


@dataclass(frozen=True)
class Upload:
    """A decoded upload: ``image`` (28, 28) uint8 as the network takes it, the file ``name``, its size
    in pixels (``width``, ``height``) and whether it was ``inverted`` (dark ink on a light background)."""

    image: np.ndarray
    name: str
    width: int
    height: int
    inverted: bool

    def describe(self) -> str:
        way = "dark ink on light, inverted" if self.inverted else "light ink on dark"
        return f"your upload {self.name} ({self.width}x{self.height} pixels, {way})"


def _megabytes(size: int) -> str:
    return f"{size / 2**20:.1f} MB"


def check_upload_size(name: str, size: int) -> None:
    """Raise :class:`UploadError` for an empty file or one over :data:`MAX_UPLOAD_BYTES`."""
    if size <= 0:
        raise UploadError(f"{name} is empty (0 bytes): choose a PNG or JPEG image of a digit.")
    if size > MAX_UPLOAD_BYTES:
        raise UploadError(f"{name} is {_megabytes(size)}, over the {_megabytes(MAX_UPLOAD_BYTES)} limit: "
                          "upload a smaller image (a digit needs only a few hundred pixels a side).")


def _bomb(name: str, pixels: str) -> UploadError:
    return UploadError(f"{name} would decode to {pixels} pixels, over the limit of "
                       f"{MAX_UPLOAD_PIXELS // 1_000_000} million (a decompression bomb, or a huge image): "
                       "scale it down and upload it again.")


def ink_on_dark(grey: np.ndarray) -> tuple[np.ndarray, bool]:
    """A grey image (h, w) of values 0..255 as ink on a black background, as MNIST's digits are; and
    whether it was inverted.

    The rule: the background is the median of the pixels on the image's border. A light background
    (median above 127.5) means dark ink on light paper, and the image is inverted. The background's
    level is then subtracted, the ink scaled so that its brightest pixel is 255, and what is below
    :data:`INK_FLOOR` of that set to 0. An image without ink gives zeros. Returns float64 (h, w).
    """
    grey = np.asarray(grey, dtype=np.float64)
    background = float(np.median(np.concatenate([grey[0], grey[-1], grey[1:-1, 0], grey[1:-1, -1]])))
    inverted = background > 127.5
    if inverted:
        grey, background = 255.0 - grey, 255.0 - background
    ink = grey - background
    peak = ink.max(initial=0.0)
    if peak <= 0:
        return np.zeros_like(grey), inverted
    ink = np.clip(ink / peak, 0.0, 1.0)
    ink[ink < INK_FLOOR] = 0.0
    return 255.0 * ink, inverted


def _grey(image) -> np.ndarray:
    """A decoded Pillow image as grey values 0..255, (h, w) float64, reduced to at most
    ``_WORK_SIZE`` pixels a side. Transparency is laid over white, as a page shows it."""
    from PIL import Image

    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    if image.mode.startswith("I") or image.mode == "F":  # 16- and 32-bit greys: scaled by their own range
        values = np.asarray(image, dtype=np.float64)
        top = values.max(initial=0.0)
        image = Image.fromarray(np.uint8(np.clip(values * (255.0 / top if top > 0 else 0.0), 0, 255)))
    image = image.convert("L")
    image.thumbnail((_WORK_SIZE, _WORK_SIZE), Image.Resampling.LANCZOS)
    return np.asarray(image, dtype=np.float64)


def decode_upload(content: bytes, name: str = "the file") -> Upload:
    """An uploaded PNG or JPEG of any size as the network takes it (:class:`Upload`).

    Decoded with Pillow, turned upright by its EXIF orientation, made grey (transparency over white),
    reduced to at most 280 pixels a side, made ink on dark by :func:`ink_on_dark` and brought to MNIST's
    preprocessing by :func:`core.shift.to_mnist`. Raises :class:`UploadError`, with a message naming
    ``name``, the problem and the fix, for an empty file, one over :data:`MAX_UPLOAD_BYTES`, one that is
    not a PNG or JPEG, one over :data:`MAX_UPLOAD_PIXELS` (a decompression bomb), or a damaged one.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    content = bytes(content or b"")
    check_upload_size(name, len(content))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(content), formats=("PNG", "JPEG"))
            width, height = image.size
            if width * height > MAX_UPLOAD_PIXELS:
                raise _bomb(name, f"{width:,}x{height:,}")
            if image.format == "JPEG":  # decode at 1/2 to 1/8 of the size when that is enough: much faster
                image.draft("L", (_WORK_SIZE, _WORK_SIZE))
            grey = _grey(ImageOps.exif_transpose(image))
    except UploadError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _bomb(name, "too many") from None
    except UnidentifiedImageError:
        raise UploadError(f"{name} is not a PNG or JPEG image: choose a photo or a scan of a digit saved as "
                          "PNG or JPEG.") from None
    except Exception as exc:  # noqa: BLE001 - any failure of a decoder on a damaged file means the same
        raise UploadError(f"{name} cannot be decoded ({type(exc).__name__}: {exc}): the file is damaged or "
                          "incomplete; save the image again as PNG or JPEG and upload that.") from None
    ink, inverted = ink_on_dark(grey)
    return Upload(shift.to_mnist(ink), name, width, height, inverted)
