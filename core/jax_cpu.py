"""What makes a training step compiled by PyTensor's JAX backend fast on a CPU.

Profiles of the MLP's ADVI step (batch 500, float32, 2 cores) showed where its time beyond the
matrix products went:

- **XLA recomputed the noise.** The step draws one standard normal per weight (1.28 million for the
  MLP) and uses each draw three times: in the weights, in the log density of the approximation and
  in the gradient of the sds. XLA's fusion copies a cheap-looking producer into each of its
  consumers, and so it drew the whole Threefry stream and its inverse error function once per use.
  :func:`isolate_noise` puts an optimization barrier after every float draw, which makes XLA compute
  it once and keep it. In plain JAX this took the MLP's mean-field gradient from 51 ms to 28 ms,
  and the MLP's ADVI step from 21.0 to 25.1 it/s.
- **Threefry ran as a loop.** On CPUs JAX lowers the Threefry-2x32 hash as a loop of five passes over
  the whole counter array, to save compile time. Unrolled, XLA fuses it into one pass: 1.28 million
  normals in 3.0 ms instead of 7.3 ms, and the MLP's step went from about 28 to 31 it/s. The
  unrolled hash is not JAX's lowering rule for Threefry: that rule is the whole process's, and as
  such it kept XLA compiling NumPyro's SVI update of the same network for 50 minutes. It is a PRNG
  implementation of its own, :func:`threefry_unrolled`: only keys made with it use it, and
  :func:`unroll_step_keys` gives the compiled step such keys. It is the same hash on the same
  counters, so it draws the same bits.

Neither changes what is computed: the same draws, the same objective (benchmarks/README.md has the
measured figures).

Importing this module imports neither JAX nor PyTensor's JAX dispatch (see :mod:`core.conv_op`).
"""

from __future__ import annotations

import functools
from typing import Any, ClassVar

import numpy as np
import pytensor.tensor as pt
from pytensor.graph.basic import Apply, Variable
from pytensor.graph.op import Op
from pytensor.graph.replace import graph_replace
from pytensor.graph.traversal import ancestors
from pytensor.link.jax.ops import JAXOp
from pytensor.tensor.random.op import RandomVariable
from pytensor.tensor.type import float_dtypes

__all__ = ["NoiseBarrier", "isolate_noise", "threefry_2x32", "threefry_unrolled", "unroll_step_keys"]


class NoiseBarrier(JAXOp):
    """The identity, which XLA may neither fuse into its consumers nor recompute (``jax.lax.optimization_barrier``).

    Its gradient is the identity too. Off JAX it is a plain identity that returns its input, which it
    declares as a view, so that PyTensor never lets an in-place Op overwrite one through the other.
    """

    __props__ = ()
    view_map: ClassVar[dict[int, list[int]]] = {0: [0]}
    __repr__ = Op.__repr__

    def __init__(self) -> None:
        """None of JAXOp's state: it wraps a given function, this Op is its own."""

    def make_node(self, x) -> Apply:
        x = pt.as_tensor_variable(x)
        return Apply(self, [x], [x.type()])

    def perform(self, node, inputs, output_storage):
        output_storage[0][0] = inputs[0]

    def perform_jax(self, x):
        import jax

        return jax.lax.optimization_barrier(x)

    def infer_shape(self, node, shapes):
        return shapes

    def connection_pattern(self, node):
        return [[True]]

    def pullback(self, inputs, outputs, cotangents):
        return cotangents


_barrier = NoiseBarrier()


def isolate_noise(outputs: list[Variable]) -> list[Variable]:
    """``outputs`` with every float random draw they depend on passed through a :class:`NoiseBarrier`.

    Integer draws (the mini-batch's indices) are left as they are: they are small, and used once.
    """
    draws = {v for v in ancestors(outputs)
             if v.owner is not None and isinstance(v.owner.op, RandomVariable) and v is v.owner.outputs[1]
             and v.dtype in float_dtypes}
    if not draws:
        return list(outputs)
    return graph_replace(list(outputs), {v: _barrier(v) for v in draws})


def threefry_2x32(key1, key2, x1, x2):
    """The Threefry-2x32 hash (20 rounds; Salmon et al., 2011), unrolled: uint32 arrays in, two out.

    Written out round by round from the paper, as JAX's own non-CPU lowering is, so that XLA fuses
    it into one elementwise pass.
    """
    import jax.numpy as jnp

    def rotate_left(v, d):
        return (v << np.uint32(d)) | (v >> np.uint32(32 - d))

    rotations = ((13, 15, 26, 6), (17, 29, 16, 24))
    ks = (key1, key2, key1 ^ key2 ^ np.uint32(0x1BD11BDA))
    x = [jnp.asarray(x1) + ks[0], jnp.asarray(x2) + ks[1]]
    for i in range(5):
        for r in rotations[i % 2]:
            x[0] = x[0] + x[1]
            x[1] = x[0] ^ rotate_left(x[1], r)
        x[0] = x[0] + ks[(i + 1) % 3]
        x[1] = x[1] + ks[(i + 2) % 3] + np.uint32(i + 1)
    return tuple(x)


def _random_bits(key, bit_width: int, shape: tuple[int, ...]):
    """JAX's Threefry random bits (its "partitionable" counters), hashed by :func:`threefry_2x32`.

    32-bit draws of fewer than 2**32 numbers, the step's, get the unrolled hash; anything else goes
    to JAX's own implementation. Both give the same bits.
    """
    import jax
    from jax.extend.random import threefry_prng_impl

    size = int(np.prod(shape, dtype=np.int64))
    if bit_width != 32 or size >= 2**32 or not jax.config.jax_threefry_partitionable:
        return threefry_prng_impl.random_bits(key, bit_width, shape)
    # the counter of each number is its flat index as a 64-bit integer: high word 0, low word the index
    low = jax.lax.iota(np.uint32, size).reshape(shape)
    bits1, bits2 = threefry_2x32(key[0], key[1], jax.numpy.zeros_like(low), low)
    return bits1 ^ bits2


@functools.cache
def threefry_unrolled():
    """The PRNG implementation of :func:`unroll_step_keys`'s keys: JAX's Threefry (its seed, split,
    fold-in and counters) with the hash of the draws unrolled (:func:`_random_bits`).

    Made on first use, once per process: importing this module does not import JAX.
    """
    from jax.extend.random import define_prng_impl, threefry_prng_impl

    return define_prng_impl(key_shape=(2,), seed=threefry_prng_impl.seed, split=threefry_prng_impl.split,
                            random_bits=_random_bits, fold_in=threefry_prng_impl.fold_in,
                            name="threefry2x32_unrolled", tag="fry_u")


def unroll_step_keys(fn: Any) -> int:
    """Make the random generators of ``fn``, a function PyTensor compiled for JAX, draw with
    :func:`threefry_unrolled`; returns how many it changed. Call it before ``fn``'s first call.

    PyTensor's JAX backend keeps each generator as a dict whose ``"jax_state"`` is JAX key data; a key
    wrapped with an implementation carries it through ``jax.random.split`` and every draw.
    """
    import jax

    changed = 0
    for container in fn.input_storage:
        value = container.storage[0]
        if isinstance(value, dict) and "jax_state" in value and not jax.dtypes.issubdtype(
                value["jax_state"].dtype, jax.dtypes.prng_key):
            value["jax_state"] = jax.random.wrap_key_data(value["jax_state"], impl=threefry_unrolled())
            changed += 1
    return changed
