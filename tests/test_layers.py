import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from scipy import signal

from core.layers import conv2d, dense, max_pool


def conv_reference(x, W, b):
    """Cross-correlation per (sample, filter) with SciPy: x (n, h, w, c), W (k, k, c, f)."""
    n, h, w, c = x.shape
    k, f = W.shape[0], W.shape[-1]
    out = np.zeros((n, h - k + 1, w - k + 1, f))
    for i in range(n):
        for j in range(f):
            out[i, :, :, j] = sum(signal.correlate2d(x[i, :, :, ch], W[:, :, ch, j], mode="valid") for ch in range(c)) + b[j]
    return np.tanh(out)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def test_conv2d_matches_scipy(rng):
    x, W, b = rng.normal(size=(2, 9, 8, 3)), rng.normal(size=(3, 3, 3, 4)), rng.normal(size=4)
    np.testing.assert_allclose(conv2d(x, W, b), conv_reference(x, W, b), atol=1e-10)


def test_conv2d_on_pytensor_matches_numpy(rng):
    x, W, b = rng.normal(size=(2, 9, 8, 3)), rng.normal(size=(3, 3, 3, 4)), rng.normal(size=4)
    xs, Ws, bs = pt.tensor4("x", shape=x.shape), pt.tensor4("W", shape=W.shape), pt.vector("b", shape=(4,))
    fn = pytensor.function([xs, Ws, bs], conv2d(xs, Ws, bs))
    np.testing.assert_allclose(fn(x, W, b), conv_reference(x, W, b), atol=1e-10)


def test_dense_flattens_channels_last(rng):
    x, W, b = rng.normal(size=(3, 2, 2, 2)), rng.normal(size=(8, 5)), rng.normal(size=5)
    np.testing.assert_allclose(dense(x, W, b, "softmax"), x.reshape(3, 8) @ W + b)
    np.testing.assert_allclose(dense(x, W, b), np.tanh(x.reshape(3, 8) @ W + b))


def test_max_pool(rng):
    x = rng.normal(size=(2, 4, 6, 3))
    expected = np.array([[[[x[n, 2 * i : 2 * i + 2, 2 * j : 2 * j + 2, c].max() for c in range(3)]
                           for j in range(3)] for i in range(2)] for n in range(2)])
    np.testing.assert_array_equal(max_pool(x), expected)
    xs = pt.tensor4("x", shape=x.shape)
    np.testing.assert_array_equal(pytensor.function([xs], max_pool(xs))(x), expected)


def test_unknown_nonlinearity():
    with pytest.raises(ValueError, match="unknown nonlinearity 'relu'"):
        dense(np.ones((1, 2)), np.ones((2, 2)), np.zeros(2), "relu")
