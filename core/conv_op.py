"""A valid, stride-1, channels-last conv2d as a PyTensor Op that compiles to ``jax.lax`` convolutions.

PyTensor 3.3 has no conv2d that converts to JAX. Shifted slices and a matmul (what :mod:`core.layers`
does on NumPy arrays) compile everywhere, but under JAX that graph, and above all its gradient (a pad
and an add per slice), is much slower than XLA's own convolution. This module gives the convolution and both halves of its
gradient as Ops of their own:

- :class:`Conv2d`            y  = conv(x, W)          (the forward pass)
- :class:`Conv2dGradInput`   gx = d<gy, conv(x, W)>/dx (the forward's transpose in x)
- :class:`Conv2dGradWeights` gW = d<gy, conv(x, W)>/dW (the forward's transpose in W)

Each runs in NumPy on the Python, C and Numba backends (``perform``, also the reference the JAX
versions are tested against) and as ``jax.lax`` under ``mode="JAX"``, where the CNN's ADVI step
(batch 500, float32) ran about 1.6x as fast as with the slices, on a busy 2-core CPU. The three
are bilinear and each one's pullback is written with the three, so gradients of any order stay in
these Ops.

Importing this module imports neither JAX nor PyTensor's JAX dispatch (see :class:`_BilinearConvOp`).
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
from numpy.lib.stride_tricks import sliding_window_view
from pytensor import config
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op
from pytensor.link.jax.ops import JAXOp
from pytensor.scalar import upcast
from pytensor.tensor import TensorLike
from pytensor.tensor.type import float_dtypes
from pytensor.tensor.variable import TensorVariable

__all__ = ["Conv2d", "Conv2dGradInput", "Conv2dGradWeights", "conv2d_op"]


def _valid(n, k):
    """Length of a valid correlation of ``n`` with ``k`` (also ``k`` from ``n`` and the output); None if unknown."""
    return None if n is None or k is None else n - k + 1


def _full(n, k):
    """Length of a full correlation of ``n`` with ``k``: the input length a valid output ``n`` came from."""
    return None if n is None or k is None else n + k - 1


def _windows(a: np.ndarray, kh: int, kw: int) -> np.ndarray:
    """Every kh x kw window of ``a`` as a view.

    a : (batch, h, w, c)   returns (batch, h - kh + 1, w - kw + 1, c, kh, kw)
    """
    return sliding_window_view(a, (kh, kw), axis=(1, 2))


class _BilinearConvOp(JAXOp):
    """Common parts of the three Ops: two 4-D float inputs of one dtype, one 4-D output.

    Subclasses give ``output_shape``, which works on ints, on None (unknown) and on symbolic scalars,
    and ``perform_jax``. They are JAXOps only for how they convert: PyTensor's JAX backend runs a
    JAXOp's ``perform_jax``, so JAX and the JAX dispatch load when a graph is compiled for JAX. A
    ``jax_funcify`` registration would import that dispatch with this module, and the dispatch sets
    JAX's x64 flag once, from the floatX of that moment: a float32 fit after a float64 import runs
    with x64 on, and gets float64 arrays back from float32 variables.
    """

    __props__ = ()
    __repr__ = Op.__repr__

    def __init__(self) -> None:
        """None of JAXOp's state: it wraps a given function, these Ops are their own."""

    @staticmethod
    def output_shape(a: tuple, b: tuple) -> tuple:
        raise NotImplementedError

    def make_node(self, a: TensorLike, b: TensorLike) -> Apply:
        a, b = pt.as_tensor_variable(a), pt.as_tensor_variable(b)
        if a.ndim != 4 or b.ndim != 4:
            raise TypeError(f"{type(self).__name__} takes two 4-D tensors, got {a.ndim}-D and {b.ndim}-D")
        if a.dtype != b.dtype or a.dtype not in float_dtypes:
            raise TypeError(f"{type(self).__name__} takes two float tensors of one dtype, got {a.dtype} and {b.dtype}; "
                            "conv2d_op casts them")
        shape = self.output_shape(a.type.shape, b.type.shape)
        if any(s is not None and s < 1 for s in shape):
            raise ValueError(f"{type(self).__name__}: inputs of shapes {a.type.shape} and {b.type.shape} "
                             f"give an empty output {shape}")
        return Apply(self, [a, b], [pt.tensor(dtype=a.dtype, shape=shape)])

    def infer_shape(self, node, shapes):
        return [self.output_shape(*shapes)]

    def connection_pattern(self, node):
        return [[True], [True]]


class Conv2d(_BilinearConvOp):
    """Valid, stride-1 2-D cross-correlation, channels last, no bias.

    x : (batch, h, w, c_in)   W : (kh, kw, c_in, c_out)   returns (batch, h - kh + 1, w - kw + 1, c_out)
    """

    @staticmethod
    def output_shape(x: tuple, W: tuple) -> tuple:
        return (x[0], _valid(x[1], W[0]), _valid(x[2], W[1]), W[3])

    def perform(self, node, inputs, output_storage):
        x, W = inputs
        y = np.tensordot(_windows(x, *W.shape[:2]), W, axes=([4, 5, 3], [0, 1, 2]))
        output_storage[0][0] = y

    def perform_jax(self, x, W):
        return _jax_conv(*_common_dtype(x, W))

    def pullback(self, inputs, outputs, cotangents):
        x, W = inputs
        (gy,) = cotangents
        return [_conv_grad_input(gy, W), _conv_grad_weights(x, gy)]


class Conv2dGradInput(_BilinearConvOp):
    """Gradient of :class:`Conv2d` in its input: a full correlation of ``gy`` with the flipped filters.

    gy : (batch, oh, ow, c_out)   W : (kh, kw, c_in, c_out)   returns (batch, oh + kh - 1, ow + kw - 1, c_in)
    """

    @staticmethod
    def output_shape(gy: tuple, W: tuple) -> tuple:
        return (gy[0], _full(gy[1], W[0]), _full(gy[2], W[1]), W[2])

    def perform(self, node, inputs, output_storage):
        gy, W = inputs
        kh, kw = W.shape[:2]
        padded = np.pad(gy, ((0, 0), (kh - 1, kh - 1), (kw - 1, kw - 1), (0, 0)))
        # gx[n, i, j, c] = sum gy[n, i - di, j - dj, o] W[di, dj, c, o]: a window of the padded gy
        # read from its far corner meets the filter flipped in both spatial axes
        gx = np.tensordot(_windows(padded, kh, kw), W[::-1, ::-1], axes=([4, 5, 3], [0, 1, 3]))
        output_storage[0][0] = gx

    def perform_jax(self, gy, W):
        return _jax_grad_input(*_common_dtype(gy, W))

    def pullback(self, inputs, outputs, cotangents):
        # gx = A(W)^T gy with A(W) x = conv(x, W); <g, gx> = <conv(g, W), gy>
        gy, W = inputs
        (g,) = cotangents
        return [_conv(g, W), _conv_grad_weights(g, gy)]


class Conv2dGradWeights(_BilinearConvOp):
    """Gradient of :class:`Conv2d` in its filters: each filter tap correlates ``x`` with ``gy`` over the batch.

    x : (batch, h, w, c_in)   gy : (batch, oh, ow, c_out)   returns (h - oh + 1, w - ow + 1, c_in, c_out)
    """

    @staticmethod
    def output_shape(x: tuple, gy: tuple) -> tuple:
        return (_valid(x[1], gy[1]), _valid(x[2], gy[2]), x[3], gy[3])

    def perform(self, node, inputs, output_storage):
        x, gy = inputs
        kh, kw = x.shape[1] - gy.shape[1] + 1, x.shape[2] - gy.shape[2] + 1
        gW = np.tensordot(_windows(x, kh, kw), gy, axes=([0, 1, 2], [0, 1, 2])).transpose(1, 2, 0, 3)
        output_storage[0][0] = gW

    def perform_jax(self, x, gy):
        return _jax_grad_weights(*_common_dtype(x, gy))

    def pullback(self, inputs, outputs, cotangents):
        # gW = B(x)^T gy with B(x) W = conv(x, W); <g, gW> = <conv(x, g), gy>
        x, gy = inputs
        (g,) = cotangents
        return [_conv_grad_input(gy, g), _conv(x, g)]


_conv = Conv2d()
_conv_grad_input = Conv2dGradInput()
_conv_grad_weights = Conv2dGradWeights()


def conv2d_op(x: TensorLike, W: TensorLike) -> TensorVariable:
    """Valid, stride-1 2-D cross-correlation of symbolic tensors, channels last, no bias.

    x : (batch, h, w, c_in)   W : (kh, kw, c_in, c_out)   returns (batch, h - kh + 1, w - kw + 1, c_out)
    Both are cast to their common float dtype (floatX if both are integers).
    """
    x, W = pt.as_tensor_variable(x), pt.as_tensor_variable(W)
    if x.ndim != 4 or W.ndim != 4:
        raise ValueError(f"conv2d_op takes x (batch, h, w, c_in) and W (kh, kw, c_in, c_out), "
                         f"got {x.ndim}-D and {W.ndim}-D")
    c_x, c_W = x.type.shape[3], W.type.shape[2]
    if c_x is not None and c_W is not None and c_x != c_W:
        raise ValueError(f"conv2d_op: x has {c_x} channels but W expects {c_W}")
    dtype = upcast(x.dtype, W.dtype)
    if dtype not in float_dtypes:
        dtype = config.floatX
    return _conv(pt.cast(x, dtype), pt.cast(W, dtype))


# The Ops' JAX forms. Each imports JAX itself: it is needed only once a graph is compiled for JAX.

# Weight gradients of maps larger than this many filter areas go through patches and one product per
# image. XLA's CPU convolution computes the weight gradient as a convolution whose filter is gy, and is
# slow for a large one: on the CNN's conv 1 (24 x 24 maps, 5 x 5 filters) the patches were about 5x
# faster; on conv 2 (8 x 8 maps) the convolution about 3x faster; the threshold sits between the two.
_IM2COL_MIN_AREAS = 8


def _common_dtype(a, b):
    """``a`` and ``b`` in one dtype: lax.conv refuses two, which PyTensor's JAX graphs can give with
    x64 on (a float32 variable may hold a float64 array)."""
    import jax.numpy as jnp

    dtype = jnp.promote_types(a.dtype, b.dtype)
    return a.astype(dtype), b.astype(dtype)


def _jax_conv(x, W):
    """:class:`Conv2d` in JAX."""
    import jax

    return jax.lax.conv_general_dilated(x, W, window_strides=(1, 1), padding="VALID",
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))


# The gradients are the transposes of the forward in each argument: JAX derives them from the same
# convolution, as its own autodiff would, so no padding or flipping is written out here.
def _jax_grad_input(gy, W):
    """:class:`Conv2dGradInput` in JAX."""
    import jax

    kh, kw, c_in, _ = W.shape
    n, oh, ow, _ = gy.shape
    x = jax.ShapeDtypeStruct((n, oh + kh - 1, ow + kw - 1, c_in), gy.dtype)
    return jax.linear_transpose(lambda x_: _jax_conv(x_, W), x)(gy)[0]


def _jax_grad_weights(x, gy):
    """:class:`Conv2dGradWeights` in JAX."""
    import jax
    import jax.numpy as jnp

    n, h, w, c_in = x.shape
    _, oh, ow, c_out = gy.shape
    kh, kw = h - oh + 1, w - ow + 1
    if oh * ow > _IM2COL_MIN_AREAS * kh * kw:
        # patches (n, kh * kw * c_in, oh * ow), rows ordered (di, dj, c) as W's first three axes, in one
        # gather: the slices' concatenate and its transpose took XLA 5x as long. Summed over the images
        # after a product per image (each a small, contiguous matmul), not contracted over them in one:
        # XLA makes the latter a transpose of the patches and a thin product, 8x as slow on conv 1.
        corners = np.arange(kh)[:, None] * w + np.arange(kw)  # (kh, kw): each tap's offset
        at = np.arange(oh)[:, None] * w + np.arange(ow)  # (oh, ow): each output's top-left pixel
        rows = (corners.reshape(-1, 1, 1) + at.reshape(1, 1, -1)) * c_in + np.arange(c_in).reshape(1, -1, 1)
        patches = x.reshape(n, h * w * c_in)[:, rows.reshape(kh * kw * c_in, oh * ow)]
        per_image = jnp.einsum("nkm,nmo->nko", patches, gy.reshape(n, oh * ow, c_out))
        return per_image.sum(axis=0).reshape(kh, kw, c_in, c_out)
    W = jax.ShapeDtypeStruct((kh, kw, c_in, c_out), gy.dtype)
    return jax.linear_transpose(lambda W_: _jax_conv(x, W_), W)(gy)[0]
