import numpy as np
import pytest

from core import predict
from core.architecture import cnn_spec, mlp_spec, param_specs
from core.layers import conv2d, dense, max_pool
from core.synthetic import synthetic_run


def params(spec, rng, sd=0.2):
    means = {p.name: rng.normal(0, 0.3, p.shape).astype(np.float32) for p in param_specs(spec)}
    sds = {p.name: np.full(p.shape, sd, np.float32) for p in param_specs(spec)}
    return means, sds


def forward(spec, x, weights):
    h = x.reshape(len(x), 28, 28, 1).astype(np.float32) / 256
    for layer in spec:
        if layer.kind == "max_pool":
            h = max_pool(h)
        else:
            op = conv2d if layer.kind == "conv2d" else dense
            h = op(h, weights[f"{layer.name}.W"], weights[f"{layer.name}.b"], layer.nonlinearity)
    e = np.exp(h - h.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


@pytest.mark.parametrize("spec", [mlp_spec((12,)), cnn_spec((3, 4), 5, (6,))], ids=["mlp", "cnn"])
def test_zero_sd_is_the_mean_network(spec):
    rng = np.random.default_rng(0)
    means, sds = params(spec, rng, sd=0.0)
    images = rng.integers(0, 256, (70, 28, 28)).astype(np.uint8)
    probs = predict.sample_probabilities(spec, means, sds, images, n_draws=3)
    assert probs.shape == (3, 70, 10) and probs.dtype == np.float32
    np.testing.assert_allclose(probs[1], forward(spec, images, means), rtol=1e-4, atol=1e-6)
    few = predict.sample_probabilities(spec, means, sds, images[:2], n_draws=2)  # local draws
    np.testing.assert_allclose(few[0], forward(spec, images[:2], means), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("spec", [mlp_spec((8,)), cnn_spec((2, 2), 5, (4,))], ids=["mlp", "cnn"])
def test_local_and_global_draws_agree_in_distribution(spec):
    """Per digit, the predictive of local draws equals that of drawing whole networks."""
    rng = np.random.default_rng(1)
    means, sds = params(spec, rng, sd=0.3)
    image = rng.integers(0, 256, (1, 28, 28)).astype(np.uint8)
    local = predict.sample_probabilities(spec, means, sds, image, n_draws=4000, seed=2)[:, 0]
    # reference: whole networks drawn one by one
    ref = np.stack([
        forward(spec, image, {k: means[k] + sds[k] * rng.standard_normal(means[k].shape).astype(np.float32) for k in means})[0]
        for _ in range(4000)
    ])
    np.testing.assert_allclose(local.mean(0), ref.mean(0), atol=0.02)
    np.testing.assert_allclose(local.std(0), ref.std(0), atol=0.02)


def test_each_layer_is_drawn_the_cheaper_way():
    assert predict._local_layers(mlp_spec(), 10_000, 100) == {"dense_1"}
    assert "conv_1" not in predict._local_layers(cnn_spec(), 10_000, 100)
    assert predict._local_layers(mlp_spec(), 1, 100) == {"dense_1", "dense_2", "dense_3"}
    # conv_1 has 832 weights but 18,432 outputs per digit: global even for one digit
    assert predict._local_layers(cnn_spec(), 1, 100) == {"conv_2", "dense_1", "dense_2"}


@pytest.mark.parametrize("spec", [mlp_spec((8,)), cnn_spec((2, 2), 5, (4,))], ids=["mlp", "cnn"])
def test_a_digit_has_the_same_predictive_alone_or_among_many(spec, monkeypatch):
    """Global draws (many digits) and local draws (one digit) give one digit the same predictive."""
    rng = np.random.default_rng(3)
    means, sds = params(spec, rng, sd=0.3)
    image = rng.integers(0, 256, (1, 28, 28)).astype(np.uint8)
    alone = predict.sample_probabilities(spec, means, sds, image, n_draws=3000, seed=4)[:, 0]
    monkeypatch.setattr(predict, "_local_layers", lambda spec, n, d: set())  # every layer global
    among = predict.sample_probabilities(spec, means, sds, image, n_draws=3000, seed=5)[:, 0]
    np.testing.assert_allclose(alone.mean(0), among.mean(0), atol=0.02)
    np.testing.assert_allclose(alone.std(0), among.std(0), atol=0.02)


def test_summarize_draws():
    probs = np.zeros((2, 1, 10), np.float32)
    probs[0, 0, 3] = 1.0
    probs[1, 0, :] = 0.1
    labels, mean_p, expected_entropy = predict.summarize_draws(probs)
    np.testing.assert_array_equal(labels[:, 0], [3, 0])
    np.testing.assert_allclose(mean_p[0, 3], 0.55)
    np.testing.assert_allclose(expected_entropy, [np.log(10) / 2], rtol=1e-6)


def test_hyperprior_draws_are_lognormal():
    draws = predict.hyperprior_draws({"a": np.log(0.5)}, {"a": 0.1}, n_draws=20000)
    assert draws["a"].shape == (20000,)
    assert np.median(draws["a"]) == pytest.approx(0.5, rel=0.01)
    assert np.log(draws["a"]).std() == pytest.approx(0.1, rel=0.05)


@pytest.mark.parametrize("local", [set(), {"conv_1", "conv_2"}], ids=["global", "local"])
def test_xla_convolution_gives_the_numpy_probabilities(local, monkeypatch):
    """Large convolutions run in XLA (one network per draw, or the means and variances of local
    layers); the probabilities are those of NumPy's patches @ W from the same draws."""
    spec = cnn_spec((3, 4), 5, (6,))
    rng = np.random.default_rng(6)
    means, sds = params(spec, rng)
    images = rng.integers(0, 256, (30, 28, 28)).astype(np.uint8)
    monkeypatch.setattr(predict, "_local_layers", lambda spec, n, d: local)
    monkeypatch.setattr(predict, "_XLA_MIN_MACS", 10**30)
    numpy_probs = predict.sample_probabilities(spec, means, sds, images, n_draws=4, seed=7)
    monkeypatch.setattr(predict, "_XLA_MIN_MACS", 0)
    xla_probs = predict.sample_probabilities(spec, means, sds, images, n_draws=4, seed=7)
    np.testing.assert_allclose(xla_probs, numpy_probs, rtol=1e-4, atol=1e-6)


def test_pixels_as_uint8_other_integers_or_scaled_floats_give_the_same_probabilities():
    """uint8 pixels are scaled by 1/256 as in training, so ``pixels / 256`` as floats is the same input;
    integer types other than uint8 are pixels too (once taken as already scaled floats)."""
    spec = mlp_spec((8,))
    rng = np.random.default_rng(8)
    means, sds = params(spec, rng)
    pixels = rng.integers(0, 256, (5, 28, 28)).astype(np.uint8)
    pixels[0, 0, 0], pixels[0, 0, 1] = 0, 255  # both ends of the range
    expected = predict.sample_probabilities(spec, means, sds, pixels, n_draws=6, seed=9)
    for same in (pixels.astype(np.float32) / 256, pixels / 256, pixels.astype(np.int64), pixels.tolist()):
        np.testing.assert_array_equal(predict.sample_probabilities(spec, means, sds, same, n_draws=6, seed=9), expected)
    one = np.ones((1, 28, 28), np.float32)  # floats may reach 1, just past the brightest pixel (255/256)
    assert predict.sample_probabilities(spec, means, sds, one, n_draws=2).shape == (2, 1, 10)
    assert predict.sample_probabilities(spec, means, sds, pixels[:0], n_draws=2).shape == (2, 0, 10)


def test_run_probabilities_of_new_digits():
    run = synthetic_run("mlp", "normal", n_digits=10)
    pixels = run["predictions_constant_data"]["image"].values[:3]
    probs = predict.run_probabilities(run, pixels, n_draws=7, seed=1)
    assert probs.shape == (7, 3, 10) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(-1), 1, rtol=1e-5)
    np.testing.assert_array_equal(predict.run_probabilities(run, pixels / 256, n_draws=7, seed=1), probs)
    with pytest.raises(ValueError, match=r"images: float values must lie in \[0, 1\] \(got min 0.0, max 255.0\); "
                                         r"pass uint8 pixels 0..255, or divide by 256"):
        predict.run_probabilities(run, pixels.astype(np.float32), n_draws=7)


_DIGITS = np.zeros((2, 28, 28), np.float32)


@pytest.mark.parametrize(("images", "message"), [
    (_DIGITS + 255, (r"float values must lie in \[0, 1\] \(got min 255.0, max 255.0\); "
                     r"pass uint8 pixels 0..255, or divide by 256")),
    (_DIGITS - 0.5, r"float values must lie in \[0, 1\] \(got min -0.5, max -0.5\)"),
    (np.where(np.arange(28) == 3, np.nan, _DIGITS), r"values must be finite \(got NaN or infinity\)"),
    (np.where(np.arange(28) == 3, np.inf, _DIGITS), r"values must be finite"),
    (np.where(np.arange(28) == 3, -np.inf, _DIGITS), r"values must be finite"),
    (_DIGITS.astype(np.int16) + 256, r"integer pixels must lie in 0..255 \(got min 256, max 256\); rescale them"),
    (_DIGITS.astype(np.int64) - 1, r"integer pixels must lie in 0..255 \(got min -1, max -1\)"),
    (_DIGITS.astype(bool), r"expected uint8 pixels 0..255 or floats in \[0, 1\], got dtype bool"),
    (_DIGITS.astype(np.complex64), r"got dtype complex64"),
    (_DIGITS.astype(str), r"got dtype <U"),
    (_DIGITS.astype(object), r"got dtype object"),
    (_DIGITS[0], r"expected shape \(digit, 28, 28\), got \(28, 28\); for one digit pass image\[None\]"),
    (_DIGITS.reshape(2, 784), r"expected shape \(digit, 28, 28\), got \(2, 784\)$"),
    (_DIGITS[..., None], r"got \(2, 28, 28, 1\)$"),
    (_DIGITS[:, :27], r"got \(2, 27, 28\)$"),
], ids=["float-pixels", "negative", "nan", "inf", "minus-inf", "int-above-255", "int-negative", "bool", "complex",
        "str", "object", "one-digit", "flat", "channel-axis", "27-rows"])
def test_images_that_are_not_pixels_are_refused(images, message):
    spec = mlp_spec((4,))
    means, sds = params(spec, np.random.default_rng(10))
    with pytest.raises(ValueError, match=r"^images: .*" + message):
        predict.sample_probabilities(spec, means, sds, images, n_draws=2)
