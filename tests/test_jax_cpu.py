import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from pytensor.graph.traversal import ancestors

from core.jax_cpu import NoiseBarrier, isolate_noise, threefry_2x32, threefry_unrolled, unroll_step_keys


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


# Known answers of Threefry-2x32 with 20 rounds, from the Random123 distribution: (key, counter, result)
KNOWN_ANSWERS = [
    ((0x00000000, 0x00000000), (0x00000000, 0x00000000), (0x6B200159, 0x99BA4EFE)),
    ((0xFFFFFFFF, 0xFFFFFFFF), (0xFFFFFFFF, 0xFFFFFFFF), (0x1CB996FC, 0xBB002BE7)),
    ((0x13198A2E, 0x03707344), (0x243F6A88, 0x85A308D3), (0xC4923A9C, 0x483DF7A0)),
]


@pytest.mark.parametrize(("key", "counter", "expected"), KNOWN_ANSWERS)
def test_the_unrolled_hash_gives_the_known_answers(key, counter, expected):
    words = [np.asarray([v], dtype=np.uint32) for v in (*key, *counter)]
    assert tuple(int(np.asarray(w)[0]) for w in threefry_2x32(*words)) == expected


@pytest.mark.parametrize("shape", [(7,), (3, 5), (1001,)])
def test_unrolled_keys_draw_what_jaxs_keys_draw_and_only_they_are_unrolled(shape):
    import jax

    key = jax.random.key(7)
    unrolled = jax.random.wrap_key_data(jax.random.key_data(key), impl=threefry_unrolled())
    for a, b in zip(jax.random.split(key), jax.random.split(unrolled)):
        np.testing.assert_array_equal(jax.random.normal(a, shape), jax.random.normal(b, shape))
        np.testing.assert_array_equal(jax.random.uniform(a, shape), jax.random.uniform(b, shape))

    def program(k) -> str:
        return jax.jit(lambda k: jax.random.normal(k, shape)).lower(k).as_text()

    # JAX's keys keep its rolled loop in this process; the unrolled keys have none
    assert "while" in program(key) and "while" not in program(unrolled)


def _compiled(value):
    import pymc as pm

    return pm.pytensorf.compile([], value, random_seed=5, mode="JAX")


def test_a_compiled_step_draws_the_same_noise_with_unrolled_keys(float32):
    x = pytensor.shared(np.linspace(-1, 1, 6).astype("float32"))
    rng = pytensor.shared(np.random.default_rng(3))
    value = ((x + pt.random.normal(size=(6,), rng=rng)) ** 2).sum()
    fns = [_compiled(value) for _ in range(2)]
    assert unroll_step_keys(fns[1]) == 1 and unroll_step_keys(fns[1]) == 0  # once
    for _ in range(3):  # fresh noise each call, the same in both
        np.testing.assert_array_equal(fns[0](), fns[1]())
