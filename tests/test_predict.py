import numpy as np
import pytest

from core import predict
from core.architecture import LayerSpec, cnn_spec, mlp_spec, param_specs
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
    assert predict.local_layers(mlp_spec(), 10_000, 100) == {"dense_1"}
    assert "conv_1" not in predict.local_layers(cnn_spec(), 10_000, 100)
    assert predict.local_layers(mlp_spec(), 1, 100) == {"dense_1", "dense_2", "dense_3"}
    # conv_1 has 832 weights but 18,432 outputs per digit: global even for one digit
    assert predict.local_layers(cnn_spec(), 1, 100) == {"conv_2", "dense_1", "dense_2"}


@pytest.mark.parametrize("spec", [mlp_spec((8,)), cnn_spec((2, 2), 5, (4,))], ids=["mlp", "cnn"])
def test_a_digit_has_the_same_predictive_alone_or_among_many(spec, monkeypatch):
    """Global draws (many digits) and local draws (one digit) give one digit the same predictive."""
    rng = np.random.default_rng(3)
    means, sds = params(spec, rng, sd=0.3)
    image = rng.integers(0, 256, (1, 28, 28)).astype(np.uint8)
    alone = predict.sample_probabilities(spec, means, sds, image, n_draws=3000, seed=4)[:, 0]
    monkeypatch.setattr(predict, "local_layers", lambda spec, n, d: set())  # every layer global
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


@pytest.mark.parametrize("spec", [mlp_spec((12, 9)), cnn_spec((3, 4), 5, (6,))], ids=["mlp", "cnn"])
@pytest.mark.parametrize("local", [None, set(), "all"], ids=["cheaper", "global", "local"])
@pytest.mark.parametrize("budget", [predict._STEP_BUDGET, 2**14], ids=["default-steps", "small-steps"])
@pytest.mark.parametrize("by_digits", [True, False], ids=["by-digits", "by-draws"])
def test_every_way_of_cutting_the_work_gives_the_mean_network(spec, local, budget, by_digits, monkeypatch):
    """With sd 0 every draw is the mean network, whatever the layers' kind (global, local) and however
    the digits and draws are cut into steps, tasks and threads (chunks, groups, blocks; by digits or
    by draws): a slice put in the wrong place would show."""
    rng = np.random.default_rng(6)
    means, sds = params(spec, rng, sd=0.0)
    images = rng.integers(0, 256, (45, 28, 28)).astype(np.uint8)
    if local is not None:
        names = {layer.name for layer in spec if layer.kind != "max_pool"}
        monkeypatch.setattr(predict, "local_layers", lambda s, n, d: names if local == "all" else local)
    monkeypatch.setattr(predict, "_STEP_BUDGET", budget)
    monkeypatch.setattr(predict, "_TASK_MACS", 10**4)  # many tasks, on every core
    monkeypatch.setattr(predict, "_BY_DIGITS", by_digits)
    expected = forward(spec, images, means)
    for n_draws in (1, 7):
        probs = predict.sample_probabilities(spec, means, sds, images, n_draws=n_draws)
        for d in range(n_draws):
            np.testing.assert_allclose(probs[d], expected, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("spec", [mlp_spec((8,)), cnn_spec((2, 2), 5, (4,))], ids=["mlp", "cnn"])
def test_cut_by_digits_or_by_draws_gives_the_same_predictive(spec, monkeypatch):
    """Drawn weights and noise go to the right digits and draws however the work is cut: the
    predictive of each digit is the same whether tasks are chunks of digits or blocks of draws."""
    rng = np.random.default_rng(11)
    means, sds = params(spec, rng, sd=0.3)
    images = rng.integers(0, 256, (6, 28, 28)).astype(np.uint8)
    monkeypatch.setattr(predict, "local_layers", lambda s, n, d: set())  # every layer global
    monkeypatch.setattr(predict, "_TASK_MACS", 10**4)
    monkeypatch.setattr(predict, "_STEP_BUDGET", 2**13)
    monkeypatch.setattr(predict, "_WEIGHT_BLOCK", 10**4)
    cut = {}
    for by_digits in (True, False):
        monkeypatch.setattr(predict, "_BY_DIGITS", by_digits)
        cut[by_digits] = predict.sample_probabilities(spec, means, sds, images, n_draws=3000, seed=12 + by_digits)
    a, b = cut[True], cut[False]
    np.testing.assert_allclose(a.mean(0), b.mean(0), atol=0.02)
    np.testing.assert_allclose(a.std(0), b.std(0), atol=0.02)
    # no two draws alike: every block of weights and every task has a stream of its own
    assert len(np.unique(a[:, 0, 0])) == len(a) and len(np.unique(b[:, 0, 0])) == len(b)


def test_same_seed_same_probabilities_on_any_number_of_threads():
    from threadpoolctl import threadpool_limits

    spec = cnn_spec((3, 4), 5, (6,))
    rng = np.random.default_rng(13)
    means, sds = params(spec, rng)
    images = rng.integers(0, 256, (300, 28, 28)).astype(np.uint8)
    probs = predict.sample_probabilities(spec, means, sds, images, n_draws=20, seed=3)
    np.testing.assert_array_equal(predict.sample_probabilities(spec, means, sds, images, n_draws=20, seed=3), probs)
    with threadpool_limits(1):  # one thread, as in the dashboard's server
        np.testing.assert_array_equal(predict.sample_probabilities(spec, means, sds, images, n_draws=20, seed=3), probs)
    assert not np.array_equal(predict.sample_probabilities(spec, means, sds, images, n_draws=20, seed=4), probs)


_UNPOOLED_CNN = [  # a convolution with no pool after it, then one with
    LayerSpec("conv_1", "conv2d", 3, 5),
    LayerSpec("conv_2", "conv2d", 4, 5),
    LayerSpec("pool_1", "max_pool", kernel=2, nonlinearity=""),
    LayerSpec("dense_1", "dense", 10, nonlinearity="softmax"),
]


@pytest.mark.parametrize("spec", [cnn_spec((3, 4), 5, (6,)), _UNPOOLED_CNN], ids=["cnn", "unpooled-conv"])
def test_xla_forward_gives_the_numpy_probabilities(spec, monkeypatch):
    """Large calls for a convolutional network run its forward pass in XLA, from the same drawn
    weights: the probabilities are NumPy's, to float32 rounding, and the same run to run."""
    rng = np.random.default_rng(14)
    means, sds = params(spec, rng)
    images = rng.integers(0, 256, (260, 28, 28)).astype(np.uint8)  # two chunks of XLA calls, one padded
    monkeypatch.setattr(predict, "_XLA_DIGITS", 200)
    monkeypatch.setattr(predict, "_workers", lambda tasks: 2)
    monkeypatch.setattr(predict, "_XLA_MIN_MACS", 10**30)
    numpy_probs = predict.sample_probabilities(spec, means, sds, images, n_draws=5, seed=15)
    monkeypatch.setattr(predict, "_XLA_MIN_MACS", 0)
    xla_probs = predict.sample_probabilities(spec, means, sds, images, n_draws=5, seed=15)
    np.testing.assert_allclose(xla_probs, numpy_probs, rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(predict.sample_probabilities(spec, means, sds, images, n_draws=5, seed=15), xla_probs)


@pytest.mark.parametrize("n", [0, 1, 2, 3, 101, 2 * predict._NORMAL_PAIRS + 3])
def test_box_muller_normals_of_any_size(n):
    z = predict._standard_normal(np.random.PCG64(5), (n,))
    assert z.shape == (n,) and z.dtype == np.float32 and np.isfinite(z).all()
    into = np.full((n,), np.nan, np.float32)
    predict._standard_normal(np.random.PCG64(5), (n,), out=into)
    np.testing.assert_array_equal(into, z)


def test_box_muller_normals_are_standard_normal():
    from scipy import stats

    z = predict._standard_normal(np.random.PCG64(7), (2_000_000,)).astype(np.float64)
    assert abs(z.mean()) < 0.005 and abs(z.std() - 1) < 0.005
    assert abs(stats.skew(z)) < 0.01 and abs(stats.kurtosis(z)) < 0.02
    assert stats.kstest(z, "norm").pvalue > 1e-3
    # a pair's two numbers (cos and sin of one angle, in the two halves of a block) are independent
    half = predict._NORMAL_PAIRS
    cos, sin = z[:half], z[half : 2 * half]
    assert abs(np.corrcoef(cos, sin)[0, 1]) < 0.02 and abs(np.corrcoef(cos**2, sin**2)[0, 1]) < 0.02
    assert np.mean(np.abs(z) > 3) == pytest.approx(2 * stats.norm.sf(3), rel=0.1)


def test_importing_predict_imports_no_jax():
    import subprocess
    import sys

    code = "import sys, core.predict; assert 'jax' not in sys.modules and 'threadpoolctl' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


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
    assert predict.sample_probabilities(spec, means, sds, pixels, n_draws=0).shape == (0, 5, 10)


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
