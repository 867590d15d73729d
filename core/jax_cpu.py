"""Two fixes that make a training step compiled by PyTensor's JAX backend fast on a CPU.

Profiles of the MLP's ADVI step (batch 500, float32, 2 cores) showed where its time beyond the
matrix products went:

- **XLA recomputed the noise.** The step draws one standard normal per weight (1.28 million for the
  MLP) and uses each draw three times: in the weights, in the log density of the approximation and
  in the gradient of the sds. XLA's fusion copies a cheap-looking producer into each of its
  consumers, and so it drew the whole Threefry stream and its inverse error function once per use.
  :func:`isolate_noise` puts an optimization barrier after every float draw, which makes XLA compute
  it once and keep it. In plain JAX this took the MLP's mean-field gradient from 51 ms to 28 ms.
- **Threefry ran as a loop.** On CPUs JAX lowers the Threefry-2x32 hash as a loop of five passes over
  the whole counter array, to save compile time. :func:`unroll_threefry` registers the unrolled
  hash for CPUs, which XLA fuses into one pass that runs on every core: 1.28 million normals took
  3.0 ms instead of 7.3 ms. It is the same hash, so it gives the same bits.

The two together took the MLP's ADVI step from 21.0 to 28.6 it/s (benchmarks/README.md has the
measured figures). Neither changes what is computed: the same draws, the same objective.

Importing this module imports neither JAX nor PyTensor's JAX dispatch (see :mod:`core.conv_op`).
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
from pytensor.graph.basic import Apply, Variable
from pytensor.graph.op import Op
from pytensor.graph.replace import graph_replace
from pytensor.graph.traversal import ancestors
from pytensor.link.jax.ops import JAXOp
from pytensor.tensor.random.op import RandomVariable
from pytensor.tensor.type import float_dtypes

__all__ = ["NoiseBarrier", "isolate_noise", "threefry_2x32", "unroll_threefry"]


class NoiseBarrier(JAXOp):
    """The identity, which XLA may neither fuse into its consumers nor recompute (``jax.lax.optimization_barrier``).

    Its gradient is the identity too. Off JAX it is a plain copy-free identity.
    """

    __props__ = ()
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


_unrolled = False


def unroll_threefry() -> None:
    """Lower JAX's Threefry-2x32 hash on CPUs as :func:`threefry_2x32` (unrolled) in this process.

    Call it before the first compile that draws random numbers; later calls do nothing. The bits drawn
    are the same; only the program that computes them changes.
    """
    global _unrolled
    if _unrolled:
        return
    from jax.extend.random import threefry2x32_p
    from jax.interpreters import mlir

    mlir.register_lowering(threefry2x32_p, mlir.lower_fun(threefry_2x32, multiple_results=True), platform="cpu")
    _unrolled = True
