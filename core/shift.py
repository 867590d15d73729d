"""Shifted and foreign digits, and how a run's predictive meets them (Ovadia et al. 2019).

Digits are ``(digit, 28, 28)`` uint8, ink bright on a dark background, as MNIST's. The suite:

- **shifts of the test digits** (a fixed, seeded subset of :data:`SUBSET_SIZE`): rotation by
  :data:`ROTATIONS` degrees (their rotated MNIST), translation to the right by
  :data:`TRANSLATIONS` pixels (their translated MNIST), additive Gaussian pixel noise of
  :data:`NOISE_SDS` (on the [0, 1] scale);
- **digits from elsewhere**: the 1,797 UCI optical-recognition digits that scikit-learn ships (8x8
  scans of other writers), and 0 to 9 typed in the DejaVu fonts that matplotlib ships;
- **not digits**: letters typed in the same fonts.

Foreign images go through :func:`to_mnist`, MNIST's own preprocessing (the ink scaled into a
20x20 box, its centre of mass moved to the centre of the 28x28 image). The transforms also serve the
dashboard's probe, one digit at a time. scikit-learn, matplotlib and SciPy's ``ndimage`` are
imported where they are used.
"""

from __future__ import annotations

import string
from functools import cache
from pathlib import Path

import numpy as np

__all__ = [
    "FONTS",
    "LETTERS",
    "NOISE_SDS",
    "QUARTILES",
    "ROTATIONS",
    "SAMPLE_PER_SET",
    "SEPARATING",
    "SUBSET_SEED",
    "SUBSET_SIZE",
    "TRANSLATIONS",
    "add_noise",
    "blur",
    "erase",
    "evaluate_suite",
    "letters",
    "rotate",
    "suite_sets",
    "test_subset",
    "thicken",
    "to_mnist",
    "translate",
    "typed_digits",
    "uci_digits",
]

ROTATIONS = tuple(range(0, 181, 15))  # degrees, counter-clockwise
TRANSLATIONS = tuple(range(15))  # pixels to the right
NOISE_SDS = (0.0, 0.1, 0.2, 0.4, 0.8)  # sd of additive Gaussian noise, pixels on [0, 1]
SUBSET_SIZE = 2000  # test digits shifted: the CNN's predictive of 100 draws costs about 0.02 s a digit
SUBSET_SEED = 0

FONTS = tuple(
    f"DejaVu{family}{style}.ttf"
    for family, styles in (
        ("Sans", ("", "-Bold", "-Oblique", "-BoldOblique")),
        ("Serif", ("", "-Bold", "-Italic", "-BoldItalic")),
        ("SansMono", ("", "-Bold", "-Oblique", "-BoldOblique")),
    )
    for style in styles
)
"""The DejaVu faces typed digits and letters are rendered in (matplotlib's mpl-data/fonts/ttf)."""

# letters a reader could take for a digit in some face (O 0, I l 1, Z z 2, S s 5, b 6, B 8, g q 9) are left out
LETTERS = "".join(c for c in string.ascii_letters if c not in "OoIilZzSsbBgq")
_SIZES = (28, 48, 72)  # points, on a 128-pixel canvas; after to_mnist they differ in stroke weight only
_SLANTS = (-0.25, 0.0, 0.25)  # horizontal shear, x += slant * (y - centre)
_CENTRE = 14.0  # where MNIST puts a digit's centre of mass (measured on its test set: 13.99, 14.01)
_BOX = 20  # MNIST's digits fill a 20x20 box


def _as_digits(images: np.ndarray) -> np.ndarray:
    images = np.asarray(images)
    if images.ndim != 3 or images.shape[1:] != (28, 28) or images.dtype != np.uint8:
        raise ValueError(f"images: expected (digit, 28, 28) uint8, got {images.shape} {images.dtype}")
    return images


def _to_uint8(values: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


def test_subset(n_digits: int, size: int = SUBSET_SIZE, seed: int = SUBSET_SEED) -> np.ndarray:
    """The test digits the shifts are applied to: ``size`` of ``n_digits``, drawn without replacement
    by ``seed``, in increasing order (all of them when there are fewer). (size,) int"""
    if n_digits <= size:
        return np.arange(n_digits)
    return np.sort(np.random.default_rng(seed).choice(n_digits, size, replace=False))


# --- transforms of (digit, 28, 28) uint8 ---------------------------------------------------------------


def rotate(images: np.ndarray, degrees: float) -> np.ndarray:
    """Rotated counter-clockwise about the image centre, bilinear; 0 degrees returns a copy."""
    images = _as_digits(images)
    if degrees % 360 == 0:
        return images.copy()
    from scipy import ndimage

    out = ndimage.rotate(images.astype(np.float32), degrees, axes=(2, 1), reshape=False, order=1, cval=0.0)
    return _to_uint8(out)


def translate(images: np.ndarray, right: int, down: int = 0) -> np.ndarray:
    """Moved by whole pixels (negative: left or up); what leaves the frame is lost, what enters is 0."""
    images = _as_digits(images)
    out = np.zeros_like(images)
    h, w = images.shape[1:]
    if abs(right) >= w or abs(down) >= h:
        return out
    src_rows = slice(max(0, -down), h - max(0, down))
    dst_rows = slice(max(0, down), h - max(0, -down))
    src_cols = slice(max(0, -right), w - max(0, right))
    dst_cols = slice(max(0, right), w - max(0, -right))
    out[:, dst_rows, dst_cols] = images[:, src_rows, src_cols]
    return out


def add_noise(images: np.ndarray, sd: float, seed: int = 0) -> np.ndarray:
    """Plus independent Gaussian noise of ``sd`` (pixels on the [0, 1] scale), clipped to [0, 1]."""
    images = _as_digits(images)
    if sd == 0:
        return images.copy()
    noise = np.random.default_rng(seed).standard_normal(images.shape, dtype=np.float32) * np.float32(255 * sd)
    return _to_uint8(images + noise)


def blur(images: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of ``sigma`` pixels; 0 returns a copy."""
    images = _as_digits(images)
    if sigma == 0:
        return images.copy()
    from scipy import ndimage

    return _to_uint8(ndimage.gaussian_filter(images.astype(np.float32), sigma=(0, sigma, sigma)))


def thicken(images: np.ndarray, pixels: int) -> np.ndarray:
    """Strokes thickened by ``pixels`` on each side (grey dilation); negative thins them (erosion)."""
    images = _as_digits(images)
    if pixels == 0:
        return images.copy()
    from scipy import ndimage

    size = (1, 2 * abs(pixels) + 1, 2 * abs(pixels) + 1)
    operation = ndimage.grey_dilation if pixels > 0 else ndimage.grey_erosion
    return operation(images, size=size)


def erase(images: np.ndarray, top: int, left: int, size: int) -> np.ndarray:
    """A ``size`` x ``size`` patch with its top-left corner at (top, left) set to the background."""
    out = _as_digits(images).copy()
    out[:, max(0, top) : max(0, top + size), max(0, left) : max(0, left + size)] = 0
    return out


# --- MNIST's preprocessing, and the foreign sets ---------------------------------------------------------


def to_mnist(image: np.ndarray) -> np.ndarray:
    """One grey image of any size, ink bright on dark, as MNIST's digits were made: the ink's bounding
    box scaled (aspect kept, anti-aliased) to fit 20x20, then placed in 28x28 with its centre of mass
    at the centre. (h, w) any real dtype -> (28, 28) uint8; an image without ink gives a blank one."""
    from PIL import Image
    from scipy import ndimage

    image = np.asarray(image, dtype=np.float64)
    if image.ndim != 2:
        raise ValueError(f"image: expected one grey image (height, width), got shape {image.shape}")
    image = np.nan_to_num(image, nan=0.0, posinf=0.0, neginf=0.0) - min(0.0, float(np.nanmin(image, initial=0)))
    rows, cols = np.flatnonzero(image.max(axis=1) > 0), np.flatnonzero(image.max(axis=0) > 0)
    out = np.zeros((28, 28), dtype=np.uint8)
    if len(rows) == 0:
        return out
    box = image[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    box = box * (255.0 / box.max())
    h, w = box.shape
    scale = _BOX / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    scaled = np.asarray(Image.fromarray(box.astype(np.float32), mode="F").resize(size, Image.Resampling.LANCZOS))
    scaled = np.clip(scaled, 0, 255)
    top, left = (28 - size[1]) // 2, (28 - size[0]) // 2
    canvas = np.zeros((28, 28))
    canvas[top : top + size[1], left : left + size[0]] = scaled
    if canvas.sum() == 0:
        return out
    com = ndimage.center_of_mass(canvas)
    down, right = round(_CENTRE - com[0]), round(_CENTRE - com[1])
    return translate(_to_uint8(canvas)[None], right, down)[0]


@cache
def uci_digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's UCI optical-recognition digits (1,797 scans, 8x8, values 0..16) brought to
    MNIST's preprocessing. Returns images (1797, 28, 28) uint8 and labels (1797,) int8."""
    from sklearn.datasets import load_digits

    data = load_digits()
    images = np.stack([to_mnist(image) for image in data.images])
    return _read_only(images), _read_only(data.target.astype(np.int8))


def _font_folder() -> Path:
    import matplotlib

    return Path(matplotlib.get_data_path()) / "fonts" / "ttf"


def _typed(characters: str, sizes: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Each character in every face of :data:`FONTS`, size and slant, through :func:`to_mnist`.
    Returns images (n, 28, 28) uint8 and the characters (n,) as a str array."""
    from PIL import Image, ImageDraw, ImageFont

    folder = _font_folder()
    images, shown = [], []
    for font_file in FONTS:
        for size in sizes:
            font = ImageFont.truetype(str(folder / font_file), size)
            for character in characters:
                canvas = Image.new("L", (128, 128), 0)
                ImageDraw.Draw(canvas).text((64, 64), character, fill=255, font=font, anchor="mm")
                for slant in _SLANTS:
                    # x_source = x + slant * (y - 64): a shear about the canvas's middle row
                    sheared = canvas.transform(canvas.size, Image.Transform.AFFINE, (1, slant, -64 * slant, 0, 1, 0),
                                               resample=Image.Resampling.BILINEAR)
                    images.append(to_mnist(np.asarray(sheared)))
                    shown.append(character)
    return np.stack(images), np.array(shown)


@cache
def typed_digits() -> tuple[np.ndarray, np.ndarray]:
    """0 to 9 in the 12 DejaVu faces, 3 sizes and 3 slants (1,080 digits), MNIST-preprocessed.
    Returns images (1080, 28, 28) uint8 and labels (1080,) int8."""
    images, shown = _typed(string.digits, _SIZES)
    return _read_only(images), _read_only(shown.astype(np.int8))


@cache
def letters() -> tuple[np.ndarray, np.ndarray]:
    """The letters of :data:`LETTERS` in the 12 DejaVu faces, one size and 3 slants, MNIST-preprocessed:
    images that are not digits at all. Returns images (n, 28, 28) uint8 and the letters (n,) str."""
    images, shown = _typed(LETTERS, _SIZES[1:2])
    return _read_only(images), _read_only(shown)


def _read_only(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)  # cached and shared: a caller's edit must not change the next caller's set
    return array


# --- the suite, evaluated with a run's own predictive ------------------------------------------------------

QUARTILES = (0.25, 0.5, 0.75)
SAMPLE_PER_SET = 100  # foreign digits kept, with their per-draw labels, for a gallery
SEPARATING = ("entropy", "mutual_information")  # measures whose AUROC for telling shifted from clean is kept


def suite_sets(images: np.ndarray, labels: np.ndarray) -> list[tuple[str, str, float, np.ndarray, np.ndarray]]:
    """Every set of the suite as ``(name, kind, amount, images, labels)``, in a fixed order.

    ``images``/``labels`` are the test digits (digit, 28, 28) uint8 and (digit,); the shifts use
    :func:`test_subset` of them. ``kind`` is rotation, translation, noise, uci, typed or letters;
    ``amount`` its degrees, pixels or sd (NaN for the foreign sets); ``labels`` are -1 for letters.
    """
    subset = test_subset(len(images))
    x, y = images[subset], np.asarray(labels)[subset].astype(np.int8)
    sets = [(f"rotation {a}", "rotation", float(a), rotate(x, a), y) for a in ROTATIONS]
    sets += [(f"translation {p}", "translation", float(p), translate(x, p), y) for p in TRANSLATIONS]
    sets += [(f"noise {s:g}", "noise", s, add_noise(x, s, seed=SUBSET_SEED), y) for s in NOISE_SDS]
    uci, typed, letter = uci_digits(), typed_digits(), letters()
    sets += [
        ("uci", "uci", np.nan, uci[0], uci[1]),
        ("typed", "typed", np.nan, typed[0], typed[1]),
        ("letters", "letters", np.nan, letter[0], np.full(len(letter[0]), -1, np.int8)),
    ]
    return sets


def evaluate_suite(probabilities, images: np.ndarray, labels: np.ndarray, progress=None) -> dict:
    """The suite's figures under a predictive. ``probabilities(images) -> (draw, digit, class)`` is the
    run's own (e.g. ``lambda x: run_probabilities(run, x, n_draws, seed)``).

    Returns three ``xarray.Dataset`` by the run-file group they go in:

    - ``shift``, dims ``set``, ``measure``, ``quantile``, ``separating``: coordinates ``kind`` and
      ``amount`` per set; ``n_digits``; ``accuracy``, ``nll``, ``ece``, ``brier`` of the mean
      predictive (NaN for letters, which have no true class); ``measure_mean`` and
      ``measure_quantile`` of every uncertainty measure defined for the predictive
      (:func:`core.uncertainty.defined_measures`: a single network has no spread between draws);
      ``auroc_shift`` (set, separating): the AUROC of the measure for telling the set's digits from the
      clean subset (0.5 = chance; NaN for a measure not defined);
    - ``shift_digits``, dims ``(foreign_digit,)``: every defined uncertainty measure of each digit of the
      clean subset and of the foreign sets (``set`` says which), for their histograms;
    - ``shift_sample``, dims ``(sample,)`` and ``(draw, sample)``: :data:`SAMPLE_PER_SET` digits of
      each foreign set (evenly spaced), ``image`` (sample, 28, 28) uint8, ``true`` (-1 for letters),
      ``character``, ``set``, ``foreign_digit`` (its index in ``shift_digits``), and their per-draw
      ``label`` (draw, sample) int8, for a gallery.

    ``progress(done, total, name)`` is called after each set.
    """
    import xarray as xr

    from . import calibration, uncertainty
    from .predict import summarize_draws

    sets = suite_sets(images, labels)
    rows, samples, digit_values = [], [], []
    clean = None
    for i, (name, kind, amount, x, y) in enumerate(sets):
        drawn, mean_p, expected_h = summarize_draws(probabilities(x))
        measures = uncertainty.defined_measures(len(drawn))
        values = {m: uncertainty.measure(m, drawn, mean_p, expected_h) for m in measures}
        if clean is None:
            clean = values  # the first set, rotation 0, is the clean subset
            digit_values.append(("clean", values))
        figures = (calibration.calibration_summary(mean_p, y) if (y >= 0).all() else
                   dict.fromkeys(("accuracy", "ece", "nll", "brier"), np.nan))
        is_shifted = np.repeat([False, True], [len(clean[measures[0]]), len(x)])
        auroc = [uncertainty.auroc(np.concatenate([clean[m], values[m]]), is_shifted) if m in values else np.nan
                 for m in SEPARATING]
        rows.append({
            "kind": kind, "amount": amount, "n_digits": len(x),
            **{k: figures[k] for k in ("accuracy", "nll", "ece", "brier")},
            "measure_mean": [float(np.mean(values[m])) for m in measures],
            "measure_quantile": [np.quantile(values[m], QUARTILES).tolist() for m in measures],
            "auroc_shift": [np.nan] * len(SEPARATING) if name == "rotation 0" else auroc,
        })
        if np.isnan(amount):  # a foreign set
            offset = sum(len(v[measures[0]]) for _, v in digit_values)
            digit_values.append((kind, values))
            keep = np.linspace(0, len(x) - 1, min(SAMPLE_PER_SET, len(x))).round().astype(int)
            characters = (letters()[1] if kind == "letters" else y.astype(str))[keep]
            samples.append((kind, x[keep], y[keep], characters, drawn[:, keep], offset + keep))
        if progress is not None:
            progress(i + 1, len(sets), name)

    def column(key):
        return np.array([row[key] for row in rows])

    summary = xr.Dataset(
        {
            "n_digits": ("set", column("n_digits").astype(np.int32)),
            **{k: ("set", column(k).astype(np.float32)) for k in ("accuracy", "nll", "ece", "brier")},
            "measure_mean": (("set", "measure"), column("measure_mean").astype(np.float32)),
            "measure_quantile": (("set", "measure", "quantile"), column("measure_quantile").astype(np.float32)),
            "auroc_shift": (("set", "separating"), column("auroc_shift").astype(np.float32)),
        },
        coords={
            "set": [s[0] for s in sets], "kind": ("set", column("kind")), "amount": ("set", column("amount")),
            "measure": measures, "quantile": list(QUARTILES), "separating": list(SEPARATING),
        },
    )
    per_digit = xr.Dataset(
        {m: ("foreign_digit", np.concatenate([v[m] for _, v in digit_values]).astype(np.float32)) for m in measures},
        coords={"set": ("foreign_digit", np.concatenate([[k] * len(v[measures[0]]) for k, v in digit_values]))},
    )
    sample = xr.Dataset(
        {
            "image": (("sample", "row", "col"), np.concatenate([s[1] for s in samples])),
            "true": ("sample", np.concatenate([s[2] for s in samples]).astype(np.int8)),
            "character": ("sample", np.concatenate([s[3] for s in samples]).astype(str)),
            "label": (("draw", "sample"), np.concatenate([s[4] for s in samples], axis=1)),
            "foreign_digit": ("sample", np.concatenate([s[5] for s in samples]).astype(np.int32)),
        },
        coords={"set": ("sample", np.concatenate([[s[0]] * len(s[1]) for s in samples]))},
    )
    return {"shift": summary, "shift_digits": per_digit, "shift_sample": sample}
