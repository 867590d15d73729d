"""What makes a training step compiled by PyTensor's JAX backend draw its noise once on a CPU.

Profiles of the MLP's ADVI step (batch 500, float32, 2 cores) showed that XLA recomputed the noise.
The step draws one standard normal per weight (1.28 million for the MLP) and uses each draw three
times: in the weights, in the log density of the approximation and in the gradient of the sds.
XLA's fusion copies a cheap-looking producer into each of its consumers, and so it drew the whole
Threefry stream and its inverse error function once per use. :func:`isolate_noise` puts an
optimization barrier after every float draw, which makes XLA compute it once and keep it. In plain
JAX this took the MLP's mean-field gradient from 51 ms to 28 ms, and the MLP's ADVI step from 21.0
to 25.1 it/s (benchmarks/README.md has the measured figures). It changes nothing that is computed:
the same draws, the same objective.

Threefry itself is lowered as JAX lowers it. Unrolled, it drew the same normals in 3.0 ms instead
of 7.3 ms, but the lowering is JAX's for the whole process, and with it XLA did not finish compiling
NumPyro's SVI update of the same network in 50 minutes: too much to impose on every JAX program a
user runs beside a fit.

Importing this module imports neither JAX nor PyTensor's JAX dispatch (see :mod:`core.conv_op`).
"""

from __future__ import annotations

from typing import ClassVar

import pytensor.tensor as pt
from pytensor.graph.basic import Apply, Variable
from pytensor.graph.op import Op
from pytensor.graph.replace import graph_replace
from pytensor.graph.traversal import ancestors
from pytensor.link.jax.ops import JAXOp
from pytensor.tensor.random.op import RandomVariable
from pytensor.tensor.type import float_dtypes

__all__ = ["NoiseBarrier", "isolate_noise"]


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
