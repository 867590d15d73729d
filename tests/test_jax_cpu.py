import subprocess
import sys

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from pytensor.graph.traversal import ancestors

from core.jax_cpu import NoiseBarrier, isolate_noise, threefry_2x32, unroll_threefry

# Known answers of Threefry-2x32 with 20 rounds, from the Random123 distribution: (key, counter, result)
KNOWN_ANSWERS = [
    ((0x00000000, 0x00000000), (0x00000000, 0x00000000), (0x6B200159, 0x99BA4EFE)),
    ((0xFFFFFFFF, 0xFFFFFFFF), (0xFFFFFFFF, 0xFFFFFFFF), (0x1CB996FC, 0xBB002BE7)),
    ((0x13198A2E, 0x03707344), (0x243F6A88, 0x85A308D3), (0xC4923A9C, 0x483DF7A0)),
]

NORMALS = "import jax; print(repr(jax.random.normal(jax.random.PRNGKey(7), (6,)).tolist()))"


@pytest.fixture
def float32():
    """floatX float32 while compiling for JAX (see tests/test_conv_op.py)."""
    with pytensor.config.change_flags(floatX="float32"):
        yield


@pytest.mark.parametrize(("key", "counter", "expected"), KNOWN_ANSWERS)
def test_the_unrolled_hash_gives_the_known_answers(key, counter, expected):
    words = [np.asarray([v], dtype=np.uint32) for v in (*key, *counter)]
    assert tuple(int(np.asarray(w)[0]) for w in threefry_2x32(*words)) == expected


def test_jax_hashes_with_it_and_draws_the_same_numbers():
    import jax
    from jax.extend.random import threefry_2x32 as jax_threefry

    # the same normals as JAX's own (rolled) lowering draws, in a process that never unrolled it
    rolled = eval(subprocess.run([sys.executable, "-c", NORMALS], capture_output=True, text=True, check=True).stdout)
    unroll_threefry()
    unroll_threefry()  # a second call does nothing
    for key, counter, expected in KNOWN_ANSWERS:
        out = jax.jit(jax_threefry)(np.asarray(key, dtype=np.uint32), np.asarray(counter, dtype=np.uint32))
        assert tuple(int(v) for v in np.asarray(out)) == expected
    assert jax.random.normal(jax.random.PRNGKey(7), (6,)).tolist() == rolled


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
