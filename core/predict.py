"""Posterior predictive from a stored mean-field approximation, in NumPy (no PyMC, no training data).

Given each weight tensor's variational mean and sd, draw networks and push digits through them.
Two exact ways to draw a layer's pre-activations ``a = x W + b`` with ``W ~ N(mu, sd^2)``:

* global: draw ``W`` once per posterior draw and use it for every digit (one network per draw);
* local (Kingma et al. 2015's local reparameterization): ``a ~ N(x mu + b_mu, x^2 sd^2 + b_sd^2)``
  drawn per digit. Each digit's predictive distribution is exactly the same as with global draws;
  only the correlation between digits within a draw is not kept, which no per-digit statistic uses.

The first layer is always local: its input is the same for every draw, so its mean and variance are
computed once instead of 100 times. Later layers are global for many digits (one weight draw is
shared by all) and local for a handful (the inspector: no million-weight draws for one digit).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from .architecture import LayerSpec, param_specs, spec_from_json
from .layers import activation, max_pool, patches

__all__ = ["hyperprior_draws", "network_params", "run_probabilities", "sample_probabilities", "summarize_draws"]

_ACTIVATION_BUDGET = 2**25  # floats held per chunk of digits (~128 MB of float32)
LOCAL_BELOW = 64  # fewer digits than this: every layer local


def network_params(run: xr.DataTree) -> tuple[list[LayerSpec], dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The architecture and each parameter tensor's variational mean and sd, from a loaded run."""
    spec = spec_from_json(run.attrs["architecture"])
    names = [p.name for p in param_specs(spec)]
    mean, sd = run["variational_mean"], run["variational_sd"]
    return spec, {n: mean[n].values for n in names}, {n: sd[n].values for n in names}


def _floats_per_digit(spec: list[LayerSpec]) -> int:
    """The largest intermediate array of one digit under one draw (conv patches, usually)."""
    h, w, c = 28, 28, 1
    largest = h * w * c
    for layer in spec:
        if layer.kind == "conv2d":
            h, w = h - layer.kernel + 1, w - layer.kernel + 1
            largest = max(largest, h * w * layer.kernel**2 * c)
            c = layer.size
        elif layer.kind == "max_pool":
            h, w = h // layer.kernel, w // layer.kernel
        else:
            h, w, c = 1, 1, layer.size
        largest = max(largest, h * w * c)
    return largest


def _pre_activation(layer: LayerSpec, x: np.ndarray, W: np.ndarray, b: np.ndarray) -> np.ndarray:
    """x : (D, R, ...) activations of D draws x R digits; W : (D or 1, *W.shape); b : (D or 1, n_out)."""
    d, r = x.shape[:2]
    if layer.kind == "dense":
        return x.reshape(d, r, -1) @ W + b[:, None, :]
    k = layer.kernel
    p = patches(x.reshape((d * r,) + x.shape[2:]), k)  # (D R, oh, ow, k k c)
    oh, ow = p.shape[1:3]
    out = p.reshape(d, r * oh * ow, -1) @ W.reshape(W.shape[0], -1, layer.size) + b[:, None, :]
    return out.reshape(d, r, oh, ow, layer.size)


def _draw(rng: np.random.Generator, mu: np.ndarray, sd: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """mu + sd * eps with eps ~ N(0, 1) of ``shape``, in place to spare memory."""
    out = rng.standard_normal(shape, dtype=np.float32)
    out *= sd
    out += mu
    return out


def sample_probabilities(
    spec: list[LayerSpec],
    means: dict[str, np.ndarray],
    sds: dict[str, np.ndarray],
    images: np.ndarray,
    n_draws: int = 100,
    seed: int = 0,
) -> np.ndarray:
    """Predictive class probabilities of every digit under ``n_draws`` draws from the approximation.

    images : (digit, 28, 28) uint8 (scaled by 1/256 as in training) or float32 already scaled
    returns (draw, digit, class) float32
    """
    images = np.asarray(images)
    x = (images.astype(np.float32) / np.float32(256.0) if images.dtype == np.uint8 else images.astype(np.float32))
    x = x.reshape(len(x), 28, 28, 1)
    n = len(x)
    rng = np.random.default_rng(seed)
    param_layers = [layer for layer in spec if layer.kind != "max_pool"]
    local = {param_layers[0].name} | ({layer.name for layer in param_layers} if n < LOCAL_BELOW else set())
    # weights of global layers are drawn once, so each draw is one network across all chunks
    weights = {
        layer.name: (
            _draw(rng, means[f"{layer.name}.W"], sds[f"{layer.name}.W"], (n_draws,) + means[f"{layer.name}.W"].shape),
            _draw(rng, means[f"{layer.name}.b"], sds[f"{layer.name}.b"], (n_draws,) + means[f"{layer.name}.b"].shape),
        )
        for layer in param_layers
        if layer.name not in local
    }
    chunk = max(1, min(n, _ACTIVATION_BUDGET // (n_draws * _floats_per_digit(spec))))
    out = np.empty((n_draws, n, 10), dtype=np.float32)
    for start in range(0, n, chunk):
        h = x[None, start : start + chunk]  # (1, R, 28, 28, 1): the input is shared by all draws
        for layer in spec:
            if layer.kind == "max_pool":
                pooled = max_pool(h.reshape((-1,) + h.shape[2:]), layer.kernel)
                h = pooled.reshape(h.shape[:2] + pooled.shape[1:])
                continue
            W, b = f"{layer.name}.W", f"{layer.name}.b"
            if layer.name in local:
                mean = _pre_activation(layer, h, means[W][None], means[b][None])
                var = _pre_activation(layer, h * h, (sds[W] ** 2)[None], (sds[b] ** 2)[None])
                shape = (n_draws,) + mean.shape[1:]
                a = _draw(rng, mean, np.sqrt(var), shape)
            else:
                a = _pre_activation(layer, h, *weights[layer.name])
            h = activation(a, layer.nonlinearity)
        out[:, start : start + chunk] = _softmax(h)
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
    """:func:`sample_probabilities` for a loaded run. images : (digit, 28, 28); returns (draw, digit, class)."""
    spec, means, sds = network_params(run)
    return sample_probabilities(spec, means, sds, images, n_draws=n_draws, seed=seed)
