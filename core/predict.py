"""Posterior predictive from a stored mean-field approximation, in NumPy (no PyMC, no training data).

Given each weight tensor's variational mean and sd, draw networks and push digits through them.
Two exact ways to draw a layer's pre-activations ``a = x W + b`` with ``W ~ N(mu, sd^2)``:

* global: draw ``W`` once per posterior draw and use it for every digit (one network per draw);
* local (Kingma et al. 2015's local reparameterization): ``a ~ N(x mu + b_mu, x^2 sd^2 + b_sd^2)``
  drawn per digit. Each digit's predictive distribution is exactly the same as with global draws;
  only the correlation between digits within a draw is not kept, which no per-digit statistic uses.

Each layer is drawn the cheaper way (:func:`_local_layers`): one normal per weight and draw
(global), or one per output, digit and draw (local). For the whole test set that makes the MLP's
first layer local (its input is the same under every draw, so its mean and variance are computed
once, not 100 times) and the conv layers global; for the inspector's single digit every layer is
local, so no million-weight draws are made for one digit.
"""

from __future__ import annotations

import functools
import importlib.util

import numpy as np
import xarray as xr

from .architecture import LayerSpec, param_specs, spec_from_json
from .layers import activation, max_pool, patches

__all__ = [
    "hyperprior_draws",
    "network_params",
    "run_probabilities",
    "sample_probabilities",
    "summarize_draws",
]

_ACTIVATION_BUDGET = 2**25  # floats of the largest intermediate array at a time (~128 MB of float32)
_NORMAL_COST = 200  # one normal draw costs about as much as this many multiply-adds (NumPy, x86)
# Convolutions smaller than this stay in NumPy. One digit under 100 draws (the CNN's second conv: 1.6e8
# multiply-adds) is faster there (36 vs 48 ms) and needs no JAX import and compile (1.2 s); the test
# set's chunks (4e9) are 2 to 3x faster in XLA.
_XLA_MIN_MACS = 10**9


def network_params(run: xr.DataTree) -> tuple[list[LayerSpec], dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The architecture and each parameter tensor's variational mean and sd, from a loaded run."""
    spec = spec_from_json(run.attrs["architecture"])
    names = [p.name for p in param_specs(spec)]
    mean, sd = run["variational_mean"], run["variational_sd"]
    return spec, {n: mean[n].values for n in names}, {n: sd[n].values for n in names}


def _layer_costs(spec: list[LayerSpec]) -> tuple[dict[str, tuple[int, int, int]], int]:
    """Per parameter layer (outputs, weights, multiply-adds) for one digit, and the largest
    intermediate array of one digit under one draw (conv patches, usually)."""
    h, w, c = 28, 28, 1
    costs, largest = {}, h * w * c
    for layer in spec:
        if layer.kind == "conv2d":
            h, w = h - layer.kernel + 1, w - layer.kernel + 1
            fan_in = layer.kernel**2 * c
            largest = max(largest, h * w * fan_in)
            c = layer.size
            costs[layer.name] = (h * w * c, fan_in * c, h * w * fan_in * c)
        elif layer.kind == "max_pool":
            h, w = h // layer.kernel, w // layer.kernel
        else:
            fan_in = h * w * c
            h, w, c = 1, 1, layer.size
            costs[layer.name] = (c, fan_in * c, fan_in * c)
        largest = max(largest, h * w * c)
    return costs, largest


def _local_layers(spec: list[LayerSpec], n_digits: int, n_draws: int) -> set[str]:
    """The layers cheaper to draw locally (a normal per output) than globally (a normal per weight).

    The first layer's input is the same under every draw, so drawn locally its mean and variance
    are computed once; later layers cost a matrix product per draw either way (twice, locally).
    """
    costs, _ = _layer_costs(spec)
    local = set()
    for i, (name, (outputs, weights, macs)) in enumerate(costs.items()):
        local_cost = n_draws * n_digits * outputs * _NORMAL_COST + 2 * macs * n_digits * (1 if i == 0 else n_draws)
        global_cost = n_draws * weights * _NORMAL_COST + n_draws * n_digits * macs
        if local_cost < global_cost:
            local.add(name)
    return local


def _pre_activation(layer: LayerSpec, x: np.ndarray, W: np.ndarray, b: np.ndarray, nonlinearity: str = "") -> np.ndarray:
    """``nonlinearity(x W + b)``, by default none (the pre-activations).

    x : (D, R, ...) activations of D draws x R digits; W : (D or 1, *W.shape); b : (D or 1, n_out)
    returns (D or W's draws, whichever is more, R, ...)
    """
    d, r = x.shape[:2]
    if layer.kind == "dense":
        return activation(x.reshape(d, r, -1) @ W + b[:, None, :], nonlinearity)
    k = layer.kernel
    oh, ow = x.shape[2] - k + 1, x.shape[3] - k + 1
    if max(d, W.shape[0]) * r * oh * ow * W[0].size >= _XLA_MIN_MACS and _xla_available():
        return _xla_conv(x, W, b, nonlinearity)
    p = patches(x.reshape((d * r,) + x.shape[2:]), k)  # (D R, oh, ow, k k c)
    out = p.reshape(d, r * oh * ow, -1) @ W.reshape(W.shape[0], -1, layer.size) + b[:, None, :]
    return activation(out.reshape(-1, r, oh, ow, layer.size), nonlinearity)


@functools.cache
def _xla_available() -> bool:
    return importlib.util.find_spec("jax") is not None


@functools.cache
def _xla_conv_fn(batched: bool, nonlinearity: str):
    import jax

    def conv(x, W, b):  # x : (R, h, w, c)  W : (k, k, c, o)  b : (o,)
        out = jax.lax.conv_general_dilated(x, W, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC")) + b
        return jax.numpy.tanh(out) if nonlinearity == "tanh" else out

    return jax.jit(jax.vmap(conv) if batched else conv)


def _xla_conv(x: np.ndarray, W: np.ndarray, b: np.ndarray, nonlinearity: str) -> np.ndarray:
    """:func:`_pre_activation` of a convolution by XLA, bias and tanh fused in: 2 to 3x faster than
    NumPy's patches @ W for the test set, whose patch arrays take gigabytes per draw."""
    if nonlinearity not in ("tanh", ""):
        raise ValueError(f"unknown nonlinearity {nonlinearity!r}")
    d, r = x.shape[:2]
    if W.shape[0] == 1:  # one network for all of x's draws: one convolution
        out = _xla_conv_fn(False, nonlinearity)(x.reshape((d * r,) + x.shape[2:]), W[0], b[0])
        return np.asarray(out).reshape((d, r) + out.shape[1:])
    x = np.broadcast_to(x, (W.shape[0],) + x.shape[1:])
    return np.asarray(_xla_conv_fn(True, nonlinearity)(x, W, b))


def _draw(rng: np.random.Generator, mu: np.ndarray, sd: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """mu + sd * eps with eps ~ N(0, 1) of ``shape``, in place to spare memory."""
    out = rng.standard_normal(shape, dtype=np.float32)
    out *= sd
    out += mu
    return out


def _model_input(images: np.ndarray) -> np.ndarray:
    """Checked digits as the networks take them: (digit, 28, 28) -> (digit, 28, 28, 1) float32,
    integer pixels scaled by 1/256 as the training digits were (:meth:`core.data.MNIST.scale`).

    Floats 0..255 are refused rather than passed on: the network would see saturated digits and
    give confident, wrong predictions that nothing downstream could tell from right ones.
    """
    images = np.asarray(images)
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        one = "; for one digit pass image[None]" if images.shape == (28, 28) else ""
        raise ValueError(f"images: expected shape (digit, 28, 28), got {images.shape}{one}")
    integer = np.issubdtype(images.dtype, np.integer)
    if not (integer or np.issubdtype(images.dtype, np.floating)):
        raise ValueError(f"images: expected uint8 pixels 0..255 or floats in [0, 1], got dtype {images.dtype}; "
                         "convert them to one of those")
    if images.size and images.dtype != np.uint8:
        # NaN propagates through min and max, and an infinity is one of them: two passes, no copy
        low, high = images.min(), images.max()
        if integer and (low < 0 or high > 255):
            raise ValueError(f"images: integer pixels must lie in 0..255 (got min {low}, max {high}); "
                             "rescale them to uint8 pixels 0..255")
        if not integer and not (np.isfinite(low) and np.isfinite(high)):
            raise ValueError("images: values must be finite (got NaN or infinity); "
                             "give missing pixels the background value 0")
        if not integer and (low < 0 or high > 1):
            raise ValueError(f"images: float values must lie in [0, 1] (got min {low}, max {high}); "
                             "pass uint8 pixels 0..255, or divide by 256 as in training")
    x = images.astype(np.float32)
    if integer:
        x /= np.float32(256.0)
    return x[..., None]


def sample_probabilities(
    spec: list[LayerSpec],
    means: dict[str, np.ndarray],
    sds: dict[str, np.ndarray],
    images: np.ndarray,
    n_draws: int = 100,
    seed: int = 0,
) -> np.ndarray:
    """Predictive class probabilities of every digit under ``n_draws`` draws from the approximation.

    Parameters
    ----------
    spec, means, sds
        The network and each parameter tensor's variational mean and sd (:func:`network_params`).
    images : (digit, 28, 28)
        uint8 pixels 0..255 (0 is the background), scaled by 1/256 as the training digits were;
        other integer types must hold the same values. Or floats already scaled to [0, 1]:
        ``pixels / 256`` is exactly what training saw. One digit is ``image[None]``.
    n_draws
        Networks drawn from the approximation.
    seed
        Of the draws: the same seed gives the same probabilities.

    Returns
    -------
    (draw, digit, class) float32

    Raises
    ------
    ValueError
        ``images`` has another shape, a non-numeric dtype, NaN or infinite values, integers outside
        0..255, or floats outside [0, 1] (pixels 0..255 as floats, say).
    """
    x = _model_input(images)
    n = len(x)
    rng = np.random.default_rng(seed)
    param_layers = [layer for layer in spec if layer.kind != "max_pool"]
    local = _local_layers(spec, n, n_draws)
    # weights of global layers are drawn once, so each draw is one network across all chunks
    weights = {
        layer.name: tuple(
            _draw(rng, means[f"{layer.name}.{t}"], sds[f"{layer.name}.{t}"], (n_draws,) + means[f"{layer.name}.{t}"].shape)
            for t in "Wb"
        )
        for layer in param_layers
        if layer.name not in local
    }
    # chunks of digits, and within them groups of draws, sized so that big matrix products stay big
    _, per_digit = _layer_costs(spec)
    chunk = max(1, min(n, _ACTIVATION_BUDGET // per_digit))
    group = max(1, min(n_draws, _ACTIVATION_BUDGET // (chunk * per_digit)))
    first = param_layers[0].name
    out = np.empty((n_draws, n, 10), dtype=np.float32)
    for start in range(0, n, chunk):
        x_chunk = x[None, start : start + chunk]  # (1, R, 28, 28, 1): the input is shared by all draws
        if first in local:  # its mean and variance are the same under every draw: compute them once
            first_mean = _pre_activation(param_layers[0], x_chunk, means[f"{first}.W"][None], means[f"{first}.b"][None])
            first_sd = np.sqrt(_pre_activation(param_layers[0], x_chunk * x_chunk, (sds[f"{first}.W"] ** 2)[None],
                                               (sds[f"{first}.b"] ** 2)[None]))
        for g in range(0, n_draws, group):
            draws = slice(g, min(g + group, n_draws))
            size = draws.stop - draws.start
            h = x_chunk
            for layer in spec:
                if layer.kind == "max_pool":
                    pooled = max_pool(h.reshape((-1,) + h.shape[2:]), layer.kernel)
                    h = pooled.reshape(h.shape[:2] + pooled.shape[1:])
                    continue
                W, b = f"{layer.name}.W", f"{layer.name}.b"
                if layer.name == first and first in local:
                    a = _draw(rng, first_mean, first_sd, (size,) + first_mean.shape[1:])
                elif layer.name in local:
                    mean = _pre_activation(layer, h, means[W][None], means[b][None])
                    var = _pre_activation(layer, h * h, (sds[W] ** 2)[None], (sds[b] ** 2)[None])
                    a = _draw(rng, mean, np.sqrt(var), mean.shape)
                else:
                    h = _pre_activation(layer, h, weights[layer.name][0][draws], weights[layer.name][1][draws],
                                        layer.nonlinearity)
                    continue
                h = activation(a, layer.nonlinearity)
            out[draws, start : start + chunk] = _softmax(h)
    return out


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=-1, keepdims=True)
    return z


def summarize_draws(probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(draw, digit, class) probabilities -> what a run stores.

    returns labels (draw, digit) int8, mean probability (digit, class), expected entropy (digit,)
    """
    labels = probabilities.argmax(axis=-1).astype(np.int8)
    p = np.clip(probabilities, 1e-30, 1.0)
    expected_entropy = -(probabilities * np.log(p)).sum(axis=-1).mean(axis=0)
    return labels, probabilities.mean(axis=0), expected_entropy.astype(np.float32)


def hyperprior_draws(mean: dict[str, float], sd: dict[str, float], n_draws: int = 500, seed: int = 0) -> dict[str, np.ndarray]:
    """Draws of positive hyperpriors whose approximation is Normal on the log scale: name -> (draw,)."""
    rng = np.random.default_rng(seed)
    return {name: np.exp(mean[name] + sd[name] * rng.standard_normal(n_draws)).astype(np.float32) for name in mean}


def run_probabilities(run: xr.DataTree, images: np.ndarray, n_draws: int = 100, seed: int = 0) -> np.ndarray:
    """Predictive class probabilities of new digits under a loaded run (:func:`core.store.load_run`).

    Parameters
    ----------
    images : (digit, 28, 28)
        uint8 pixels 0..255 (0 is the background; as MNIST and a run's stored test digits are), or
        floats already scaled to [0, 1]: ``pixels / 256`` is exactly what training saw. Other
        integer types must hold values 0..255. One digit is ``image[None]``.
    n_draws
        Networks drawn from the approximation.
    seed
        Of the draws: the same seed gives the same probabilities.

    Returns
    -------
    (draw, digit, class) float32

    Raises
    ------
    ValueError
        ``images`` has another shape, a non-numeric dtype, NaN or infinite values, integers outside
        0..255, or floats outside [0, 1] (pixels 0..255 as floats, say).
    """
    spec, means, sds = network_params(run)
    return sample_probabilities(spec, means, sds, images, n_draws=n_draws, seed=seed)
