import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from pytensor.graph.traversal import ancestors

from core.jax_cpu import NoiseBarrier, isolate_noise


@pytest.fixture
def float32():
    """floatX float32 while compiling for JAX (see tests/test_conv_op.py)."""
    with pytensor.config.change_flags(floatX="float32"):
        yield


def test_only_float_draws_are_isolated(float32):
    rng = pytensor.shared(np.random.default_rng(0))
    noise = pt.random.normal(size=(5,), rng=rng)
    index = pt.random.integers(0, 5, size=(3,), rng=rng)
    total = (noise * 2 + noise**2)[index].sum()
    (isolated,) = isolate_noise([total])
    barriers = [v.owner for v in ancestors([isolated]) if v.owner is not None and isinstance(v.owner.op, NoiseBarrier)]
    assert len(barriers) == 1 and barriers[0].inputs[0].dtype == "float32"
    untouched = index.sum()
    assert isolate_noise([untouched]) == [untouched]  # no float draw: nothing to do


def test_an_isolated_graph_computes_the_same_on_jax_and_its_gradient_passes_through(float32):
    x = pytensor.shared(np.linspace(-1, 1, 5).astype("float32"))
    noise = pt.random.normal(size=(5,), rng=pytensor.shared(np.random.default_rng(3)))
    loss = ((x + noise) ** 2).sum()
    (isolated,) = isolate_noise([loss])
    grads = [pytensor.grad(f, x) for f in (loss, isolated)]
    plain, barred = (pytensor.function([], [f, g], mode="JAX") for f, g in zip((loss, isolated), grads))
    (f_plain, g_plain), (f_barred, g_barred) = plain(), barred()  # the same seed: the same noise
    np.testing.assert_allclose(f_plain, f_barred, rtol=1e-5)
    np.testing.assert_allclose(g_plain, g_barred, rtol=1e-5)
