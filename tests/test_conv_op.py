import numpy as np
import pymc as pm
import pytensor
import pytensor.tensor as pt
import pytest
from pytensor.gradient import verify_grad
from scipy import signal

from core.conv_op import Conv2d, Conv2dGradInput, Conv2dGradWeights, conv2d_op

# the default backend (Numba) runs the Ops' NumPy perform in object mode, and says so
pytestmark = pytest.mark.filterwarnings("ignore:Numba will use object mode:UserWarning")


@pytest.fixture
def float32():
    """floatX float32 while compiling for JAX, as training does: the first JAX compile of a process
    sets JAX's x64 flag from floatX for good, and float32 fits in later tests need it off."""
    with pytensor.config.change_flags(floatX="float32"):
        yield


# (x shape, W shape): a non-square filter; and maps large enough for the JAX weight gradient's im2col
SHAPES = [((2, 7, 6, 3), (3, 2, 3, 4)), ((1, 12, 12, 2), (2, 2, 2, 3))]


def correlate_reference(x, W):
    """Valid cross-correlation summed over input channels, per (sample, filter), with SciPy.

    x : (n, h, w, c)   W : (kh, kw, c, f)   returns (n, h - kh + 1, w - kw + 1, f)
    """
    n, h, w, c = x.shape
    kh, kw, _, f = W.shape
    out = np.zeros((n, h - kh + 1, w - kw + 1, f))
    for i in range(n):
        for j in range(f):
            out[i, :, :, j] = sum(signal.correlate(x[i, :, :, ch], W[:, :, ch, j], mode="valid") for ch in range(c))
    return out


def random_inputs(x_shape, W_shape, dtype="float64", seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=x_shape).astype(dtype), rng.normal(size=W_shape).astype(dtype)


def symbolic(x, W):
    return pt.tensor4("x", dtype=x.dtype, shape=x.shape), pt.tensor4("W", dtype=W.dtype, shape=W.shape)


@pytest.mark.parametrize("x_shape, W_shape", SHAPES)
@pytest.mark.parametrize("mode, dtype, tol", [(None, "float64", 1e-12), ("JAX", "float32", 1e-5)])
def test_forward_matches_scipy(x_shape, W_shape, mode, dtype, tol, float32):
    x, W = random_inputs(x_shape, W_shape, dtype)
    xs, Ws = symbolic(x, W)
    y = conv2d_op(xs, Ws)
    assert y.type.shape == (x_shape[0], x_shape[1] - W_shape[0] + 1, x_shape[2] - W_shape[1] + 1, W_shape[3])
    out = pytensor.function([xs, Ws], y, mode=mode)(x, W)
    ref = correlate_reference(x.astype("float64"), W.astype("float64"))
    np.testing.assert_allclose(out, ref, rtol=tol, atol=tol * np.abs(ref).max())


@pytest.mark.parametrize("x_shape, W_shape", SHAPES)
def test_gradient_is_exact(x_shape, W_shape):
    x, W = random_inputs(x_shape, W_shape)
    rng = np.random.default_rng(1)
    # NumPy's perform on the Python linker: the Numba default would only add compile time
    verify_grad(conv2d_op, [x, W], rng=rng, mode="FAST_COMPILE", n_tests=1)
    gy = rng.normal(size=(x_shape[0], x_shape[1] - W_shape[0] + 1, x_shape[2] - W_shape[1] + 1, W_shape[3]))
    # the gradient Ops' own pullbacks: second derivatives stay in the three Ops
    verify_grad(Conv2dGradInput(), [gy, W], rng=rng, mode="FAST_COMPILE", n_tests=1)
    verify_grad(Conv2dGradWeights(), [x, gy], rng=rng, mode="FAST_COMPILE", n_tests=1)


@pytest.mark.parametrize("x_shape, W_shape", SHAPES)
def test_jax_gradient_matches_default(x_shape, W_shape, float32):
    x, W = random_inputs(x_shape, W_shape, "float32")
    xs, Ws = symbolic(x, W)
    y = conv2d_op(xs, Ws)
    loss = (y * np.random.default_rng(2).normal(size=y.type.shape).astype("float32")).sum()
    grad = pytensor.grad(loss, [xs, Ws])
    grads = {mode: pytensor.function([xs, Ws], grad, mode=mode)(x, W) for mode in (None, "JAX")}
    for got, want in zip(grads["JAX"], grads[None], strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())


def test_matches_slices_and_matmul_and_their_gradient():
    x, W = random_inputs((2, 8, 7, 2), (3, 3, 2, 4))
    xs, Ws = symbolic(x, W)
    outputs = []
    # convolution as shifted slices + one matmul, which PyTensor differentiates on its own
    slices = pt.concatenate([xs[:, di : di + 6, dj : dj + 5, :] for di in range(3) for dj in range(3)], axis=-1)
    for y in (conv2d_op(xs, Ws), slices @ Ws.reshape((3 * 3 * 2, 4))):
        loss = (y * np.random.default_rng(2).normal(size=y.type.shape)).sum()
        outputs.append(pytensor.function([xs, Ws], [y, *pytensor.grad(loss, [xs, Ws])], mode="FAST_COMPILE")(x, W))
    for got, want in zip(*outputs, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)


def test_shape_is_inferred_without_computing():
    xs, Ws = pt.tensor4("x"), pt.tensor4("W")
    fn = pytensor.function([xs, Ws], conv2d_op(xs, Ws).shape, mode="FAST_RUN")
    assert not any(isinstance(node.op, Conv2d) for node in fn.maker.fgraph.apply_nodes)
    np.testing.assert_array_equal(fn(np.zeros((2, 9, 8, 3)), np.zeros((3, 2, 3, 5))), [2, 7, 7, 5])


def test_rejects_mismatched_channels():
    with pytest.raises(ValueError, match="x has 3 channels but W expects 2"):
        conv2d_op(pt.tensor4(shape=(1, 5, 5, 3)), pt.tensor4(shape=(3, 3, 2, 4)))


def test_pymc_model_compiles_to_jax(float32):
    rng = np.random.default_rng(3)
    images = pm.pytensorf.floatX(rng.normal(size=(40, 10, 10, 1)))
    labels = pm.pytensorf.intX(rng.integers(0, 3, 40))
    with pm.Model():
        x, y = pm.Minibatch(images, labels, batch_size=8)
        W = pm.Normal("W", 0.0, 0.1, shape=(3, 3, 1, 3))
        logits = conv2d_op(x, W).mean(axis=(1, 2))  # (batch, 3)
        pm.Categorical("label", logit_p=logits, observed=y, total_size=len(labels))
        advi = pm.ADVI(random_seed=0)
    # plain SGD: the gradient goes through the Ops all the same, and XLA compiles it faster than Adam
    updates = advi.objective.updates(obj_optimizer=pm.sgd(learning_rate=1e-2))
    step = pm.pytensorf.compile([], updates.loss, updates=updates, random_seed=0, mode="JAX")
    assert all(np.isfinite(float(step())) for _ in range(3))
