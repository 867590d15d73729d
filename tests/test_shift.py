"""core.shift: the transforms, MNIST's preprocessing and the foreign sets."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from core import shift


@pytest.fixture(scope="module")
def digits() -> np.ndarray:
    rng = np.random.default_rng(0)
    images = np.zeros((5, 28, 28), np.uint8)
    for i, image in enumerate(images):
        image[6 + i : 20, 10:14] = rng.integers(100, 256, (14 - i, 4))
    return images


@pytest.mark.parametrize("transform", [
    lambda x: shift.rotate(x, 0), lambda x: shift.rotate(x, 360), lambda x: shift.translate(x, 0),
    lambda x: shift.add_noise(x, 0.0), lambda x: shift.blur(x, 0), lambda x: shift.thicken(x, 0),
    lambda x: shift.erase(x, 3, 3, 0),
])
def test_zero_is_the_identity(digits, transform):
    out = transform(digits)
    np.testing.assert_array_equal(out, digits)
    assert out is not digits and out.dtype == np.uint8 and out.shape == digits.shape


def test_rotation_turns_counter_clockwise_and_keeps_the_ink_centred(digits):
    bar = np.zeros((1, 28, 28), np.uint8)
    bar[0, 4:24, 13:15] = 255  # a vertical bar
    turned = shift.rotate(bar, 90)[0]
    assert turned[13:15, 4:24].mean() > 200 and turned[4:24, 13:15].sum() < turned[13:15, 4:24].sum()
    np.testing.assert_allclose(ndimage.center_of_mass(turned.astype(float)), (13.5, 13.5), atol=0.6)
    half = shift.rotate(digits, 180)
    np.testing.assert_array_equal(half, shift.rotate(digits, 180))  # deterministic
    assert half.sum() == pytest.approx(digits.sum(), rel=0.05)


def test_translation_moves_by_whole_pixels_and_loses_what_leaves(digits):
    moved = shift.translate(digits, 3, -2)
    np.testing.assert_array_equal(moved[:, :-2, 3:], digits[:, 2:, :-3])
    assert (moved[:, :, :3] == 0).all() and (moved[:, -2:, :] == 0).all()
    assert not shift.translate(digits, 28).any()


def test_noise_is_seeded_and_clipped(digits):
    a, b = shift.add_noise(digits, 0.4, seed=1), shift.add_noise(digits, 0.4, seed=1)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, shift.add_noise(digits, 0.4, seed=2))
    assert a.dtype == np.uint8 and (a != digits).mean() > 0.5


def test_stroke_and_patch_transforms(digits):
    assert (shift.thicken(digits, 1) >= digits).all() and shift.thicken(digits, 1).astype(bool).sum() > digits.astype(bool).sum()
    assert (shift.thicken(digits, -1) <= digits).all()
    assert shift.blur(digits, 1.5).astype(bool).sum() > digits.astype(bool).sum()
    erased = shift.erase(digits, 8, 10, 4)
    assert not erased[:, 8:12, 10:14].any() and (erased[:, 16:, :] == digits[:, 16:, :]).all()


def test_transforms_refuse_other_inputs():
    with pytest.raises(ValueError, match="uint8"):
        shift.rotate(np.zeros((2, 28, 28)), 15)


def test_to_mnist_centres_a_digit_in_a_corner_and_keeps_a_centred_one():
    corner = np.zeros((100, 80))
    corner[5:45, 2:22] = 1.0  # a tall block in the top-left corner
    out = shift.to_mnist(corner)
    rows, cols = np.flatnonzero(out.any(1)), np.flatnonzero(out.any(0))
    assert rows[-1] - rows[0] + 1 == 20 and cols[-1] - cols[0] + 1 == 10  # the long side fills 20 pixels
    np.testing.assert_allclose(ndimage.center_of_mass(out.astype(float)), (14, 14), atol=0.5)
    # a digit already preprocessed stays (almost) put
    mnist = np.zeros((28, 28), np.uint8)
    mnist[4:24, 11:17] = 255
    np.testing.assert_allclose(ndimage.center_of_mass(shift.to_mnist(mnist).astype(float)), (14, 14), atol=0.5)
    assert not shift.to_mnist(np.zeros((10, 10))).any()
    with pytest.raises(ValueError, match="one grey image"):
        shift.to_mnist(np.zeros((2, 10, 10)))


def test_test_subset_is_seeded_sorted_and_never_larger_than_the_set():
    a = shift.test_subset(10_000)
    assert len(a) == shift.SUBSET_SIZE and (np.diff(a) > 0).all()
    np.testing.assert_array_equal(a, shift.test_subset(10_000))
    np.testing.assert_array_equal(shift.test_subset(300), np.arange(300))


def test_foreign_sets():
    images, labels = shift.uci_digits()
    assert images.shape == (1797, 28, 28) and images.dtype == np.uint8 and set(labels) == set(range(10))
    typed, digits = shift.typed_digits()
    assert typed.shape == (len(shift.FONTS) * 3 * 3 * 10, 28, 28) and set(digits) == set(range(10))
    letters, shown = shift.letters()
    assert len(letters) == len(shift.FONTS) * 3 * len(shift.LETTERS) and not set("0OIl1") & set(shown)
    for foreign in (images, typed, letters):
        com = np.mean([ndimage.center_of_mass(i.astype(float)) for i in foreign[::50]], axis=0)
        np.testing.assert_allclose(com, (14, 14), atol=0.5)
        assert not foreign.flags.writeable


def test_suite_figures_under_a_known_predictive():
    """A predictive that is certain of class 0 for a digit with ink in its left half, and uniform
    otherwise: every figure of the suite follows from that by hand."""
    rng = np.random.default_rng(1)
    images = np.zeros((300, 28, 28), np.uint8)
    labels = rng.integers(0, 10, 300)
    images[:, 10:18, 5:12] = 200  # ink in the left half: class 0, certain

    def probabilities(x):
        left = x[:, :, :14].sum(axis=(1, 2)) > x[:, :, 14:].sum(axis=(1, 2))
        p = np.where(left[:, None], np.eye(10)[0], np.full(10, 0.1))
        return np.broadcast_to(p, (3, *p.shape)).astype(np.float32)

    calls = []
    groups = shift.evaluate_suite(probabilities, images, labels, progress=lambda *a: calls.append(a))
    summary, per_digit, sample = groups["shift"], groups["shift_digits"], groups["shift_sample"]
    assert len(calls) == summary.sizes["set"] == len(shift.ROTATIONS) + len(shift.TRANSLATIONS) + len(shift.NOISE_SDS) + 3
    clean = summary.sel(set="rotation 0")
    assert float(clean.accuracy) == pytest.approx(np.mean(labels == 0)) and int(clean.n_digits) == 300
    assert np.isnan(clean.auroc_shift).all()
    # turned half a circle the ink is on the right: uniform predictions, entropy log 10, told apart from clean
    turned = summary.sel(set="rotation 180")
    assert float(turned.measure_mean.sel(measure="entropy")) == pytest.approx(np.log(10), rel=1e-5)
    assert float(turned.auroc_shift.sel(separating="entropy")) == 1.0
    assert float(turned.accuracy) == pytest.approx(np.mean(labels == 0))  # argmax of uniform is class 0
    assert np.isnan(summary.sel(set="letters").accuracy) and summary.sel(set="uci").kind == "uci"
    assert sample.sizes["sample"] == 3 * shift.SAMPLE_PER_SET and sample.label.shape == (3, 300)
    assert set(sample.set.values) == {"uci", "typed", "letters"} and (sample.true.sel(sample=sample.set == "letters") == -1).all()
    sizes = {k: int((per_digit.set == k).sum()) for k in ("clean", "uci", "typed", "letters")}
    assert sizes == {"clean": 300, "uci": 1797, "typed": len(shift.typed_digits()[0]), "letters": len(shift.letters()[0])}
    # a sampled digit's measures are found in shift_digits
    picked = per_digit.entropy.values[sample.foreign_digit.values]
    assert (per_digit.set.values[sample.foreign_digit.values] == sample.set.values).all() and np.isfinite(picked).all()
