"""The post's networks in NumPyro: ``SVI`` with an ``AutoNormal`` guide and ``numpyro.optim.Adam``.

The same sizes, priors and mini-batches as ours (:mod:`benchmarks.workloads`): every tensor ~
Normal(0, 0.1), or ~ Normal(0, s) with s ~ HalfNormal(1) per tensor; mini-batches of 500 drawn by
``numpyro.plate("data", 50_000, subsample_size=500)``, the likelihood scaled to the 50,000 digits.
``svi.update`` is compiled with ``jax.jit``; the training set is passed in as an argument (closing
over it would bake 157 MB of constants into the compiled program). The CNN uses
``jax.lax.conv_general_dilated`` (NHWC images, HWIO filters: core's layout) and a 2x2 max-pool as
reshape + max. float32, as JAX runs by default.

The guide starts every weight's mean at the median of a few prior draws (``init_to_median``) and
every sd at 0.01, as ours does: AutoNormal's default start (``init_to_uniform``, weights uniform in
(-2, 2)) saturates the tanh layers, which would compare starts rather than implementations.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from numpyro.infer import SVI, Predictive, Trace_ELBO
from numpyro.infer.autoguide import AutoNormal
from numpyro.infer.initialization import init_to_median

from benchmarks import workloads

__all__ = ["LEARNING_RATES", "NumPyroTrainer", "bnn_model", "network", "predictor"]

LEARNING_RATES = (1e-3, 3e-3, 1e-2)
"""The grid time-to-accuracy tries; NumPyro is scored with the best of them."""

_PREDICTIVE_BUDGET = 2**26  # floats of the widest activation per chunk of digits (256 MB of float32)


def network(model: str, params: dict, x: jnp.ndarray) -> jnp.ndarray:
    """Logits of ``model`` for images x (batch, 28, 28, 1); params: core's tensor names -> arrays."""
    h = x
    for layer in workloads.layers(model):
        if layer.kind == "max_pool":
            n, height, width, c = h.shape
            k = layer.kernel
            h = h.reshape(n, height // k, k, width // k, k, c).max(axis=(2, 4))
            continue
        W, b = params[f"{layer.name}.W"], params[f"{layer.name}.b"]
        if layer.kind == "conv2d":
            h = jax.lax.conv_general_dilated(h, W, window_strides=(1, 1), padding="VALID",
                                             dimension_numbers=("NHWC", "HWIO", "NHWC")) + b
        else:
            h = h.reshape(h.shape[0], -1) @ W + b
        if layer.nonlinearity == "tanh":
            h = jnp.tanh(h)
    return h


def bnn_model(model: str, prior_kind: str, batch_size: int | None) -> Callable:
    """The NumPyro model of ``model`` with ``prior_kind``; ``batch_size`` None: every image, no subsampling."""
    specs = workloads.parameters(model)

    def bnn(x: jnp.ndarray, y: jnp.ndarray | None = None) -> None:
        params = {}
        for p in specs:
            sd = (numpyro.sample(f"{p.name}_sd", dist.HalfNormal(workloads.HYPER_SD)) if prior_kind == "hierarchical"
                  else workloads.PRIOR_SD)
            params[p.name] = numpyro.sample(p.name, dist.Normal(0.0, sd).expand(p.shape).to_event(len(p.shape)))
        with numpyro.plate("data", x.shape[0], subsample_size=batch_size) as index:
            x_batch = x if batch_size is None else x[index]
            y_batch = None if y is None else (y if batch_size is None else y[index])
            numpyro.sample("label", dist.Categorical(logits=network(model, params, x_batch)), obs=y_batch)

    return bnn


def _guide(bnn: Callable, start_sigma: float) -> AutoNormal:
    return AutoNormal(bnn, init_loc_fn=init_to_median(num_samples=15), init_scale=start_sigma)


class NumPyroTrainer:
    """SVI on mini-batches, one jitted ``svi.update`` per step (see :class:`benchmarks.workloads.Trainer`)."""

    def __init__(self, model: str, prior_kind: str, data: workloads.Data, learning_rate: float = 1e-3,
                 seed: int = workloads.SEED, start_sigma: float = workloads.START_SIGMA) -> None:
        self.model = model
        self.x = jnp.asarray(data.x_train.reshape(-1, 28, 28, 1))
        self.y = jnp.asarray(data.y_train.astype(np.int32))
        self.guide = _guide(bnn_model(model, prior_kind, workloads.BATCH_SIZE), start_sigma)
        self.svi = SVI(self.guide.model, self.guide, numpyro.optim.Adam(learning_rate), Trace_ELBO())
        self._update = jax.jit(self.svi.update)
        self._key = jax.random.PRNGKey(seed)
        self.state = None
        self.backend = f"jax ({jax.default_backend()}, x64 {'on' if jax.config.jax_enable_x64 else 'off'})"

    def compile(self) -> None:
        self.state = self.svi.init(self._key, self.x, self.y)
        self.step(1)

    def step(self, n: int) -> float:
        loss = None
        for _ in range(n):
            self.state, loss = self._update(self.state, self.x, self.y)
        value = -float(loss)  # waits for the last step, hence for all of them
        if not math.isfinite(value):
            raise FloatingPointError(f"numpyro: the ELBO became {value}")
        return value

    def means(self) -> dict[str, np.ndarray]:
        params = self.svi.get_params(self.state)
        return {p.name: np.asarray(params[f"{p.name}_auto_loc"]) for p in workloads.parameters(self.model)}


def _widest_activation(model: str) -> int:
    """Floats of the widest activation of one digit through ``model`` (the first conv's output, or 800)."""
    h, w, c, widest = 28, 28, 1, 28 * 28
    for layer in workloads.layers(model):
        if layer.kind == "conv2d":
            h, w, c = h - layer.kernel + 1, w - layer.kernel + 1, layer.size
        elif layer.kind == "max_pool":
            h, w = h // layer.kernel, w // layer.kernel
        else:
            h, w, c = 1, 1, layer.size
        widest = max(widest, h * w * c)
    return widest


def predictor(model: str, images: np.ndarray, n_draws: int, seed: int = workloads.SEED) -> Callable[[], np.ndarray]:
    """A function drawing ``n_draws`` predicted labels of every image, (draw, digit), with ``Predictive``.

    Vectorised over the draws (``parallel=True``) and jitted; the digits go through in chunks that
    keep the widest activation of all draws near 256 MB, the last chunk padded so that it reuses
    the compiled program. The guide is freshly started: prediction costs the same for any values.
    """
    bnn = bnn_model(model, "normal", batch_size=None)
    guide = _guide(bnn, workloads.START_SIGMA)
    chunk = max(1, min(len(images), _PREDICTIVE_BUDGET // (n_draws * _widest_activation(model))))
    x = jnp.asarray(images.reshape(-1, 28, 28, 1))
    key = jax.random.PRNGKey(seed)
    svi = SVI(bnn, guide, numpyro.optim.Adam(1e-3), Trace_ELBO())
    # started with labels observed: unobserved, the labels would be a discrete latent for the guide
    params = svi.get_params(svi.init(key, x[:chunk], jnp.zeros(chunk, dtype=jnp.int32)))
    predictive = Predictive(bnn, guide=guide, params=params, num_samples=n_draws, parallel=True, return_sites=["label"])
    draw = jax.jit(lambda k, xb: predictive(k, xb)["label"])

    def run() -> np.ndarray:
        out = []
        for start in range(0, len(x), chunk):
            xb = x[start : start + chunk]
            n = len(xb)
            if n < chunk:
                xb = jnp.concatenate([xb, jnp.zeros((chunk - n,) + xb.shape[1:], xb.dtype)])
            # the same key for every chunk: one network per draw across all digits, as ours
            out.append(np.asarray(draw(key, xb))[:, :n])
        return np.concatenate(out, axis=1)

    return run
