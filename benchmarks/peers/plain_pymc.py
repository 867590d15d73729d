"""The post's networks written the obvious way in PyMC 6, at PyMC's and PyTensor's defaults.

``pm.Minibatch`` for the mini-batches, ``pm.ADVI`` (what ``pm.fit(method="advi")`` runs) with its
default optimizer, float64 and PyTensor's default backend; dense layers as ``pt.tanh(x @ W + b)``;
the CNN's convolutions with ``pytensor.tensor.signal.convolve2d`` (images and filters channels
first, as Theano and Lasagne had them) and 2x2 max-pool as reshape + max (PyTensor 3.3 has no
``pool_2d``). Same sizes, priors, batch size and seed as ours (:mod:`benchmarks.workloads`).

Two workarounds, both documented in DESIGN.md ("Pitfalls measured here"):

* labels are passed already in PyMC's ``intX``: integer labels of another type through
  ``pm.Minibatch`` are refused as observed data;
* in float32 only, the approximation starts with sds of 0.01 instead of PyMC's 0.69, which gives
  NaN gradients at the second step for 800-wide tanh layers.

The float32 variant (``floatx="float32", backend="jax"``) is the same code compiled with JAX.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import pymc as pm
import pytensor
import pytensor.tensor as pt
from pytensor.tensor.signal import convolve2d

from benchmarks import workloads

__all__ = ["PlainTrainer", "bnn_model", "network", "predictor"]


def _shape(core_shape: tuple[int, ...]) -> tuple[int, ...]:
    """Conv filters channels first, (c_out, c_in, k, k), as convolve2d takes them; other tensors as core's."""
    if len(core_shape) == 4:
        k, _, c_in, c_out = core_shape
        return (c_out, c_in, k, k)
    return core_shape


def network(model: str, x, params: dict):
    """Logits of ``model``. x : (batch, 784) for the MLP, (batch, 1, 28, 28) for the CNN."""
    h = x
    for layer in workloads.layers(model):
        if layer.kind == "max_pool":
            k = layer.kernel
            n, c, height, width = h.shape
            h = h.reshape((n, c, height // k, k, width // k, k)).max(axis=(3, 5))
            continue
        W, b = params[f"{layer.name}.W"], params[f"{layer.name}.b"]
        if layer.kind == "conv2d":
            # every (image, filter, input channel) pair convolved, then summed over input channels
            h = convolve2d(h[:, None, :, :, :], W[None, :, :, :, :], mode="valid").sum(axis=2) + b[None, :, None, None]
        else:
            h = h.reshape((h.shape[0], -1)) @ W + b
        if layer.nonlinearity == "tanh":
            h = pt.tanh(h)
    return h


def _images(model: str, images: np.ndarray) -> np.ndarray:
    shape = (-1, 784) if model == "mlp" else (-1, 1, 28, 28)
    return pm.floatX(images.reshape(shape))


def bnn_model(model: str, prior_kind: str, images: np.ndarray, labels: np.ndarray, minibatch: bool = True) -> pm.Model:
    """The PyMC model; ``minibatch`` False observes every image (for the posterior predictive)."""
    x = _images(model, images)
    y = pm.intX(labels)  # workaround: labels in intX (see the module's docstring)
    with pm.Model() as bnn:
        if minibatch:
            x, y = pm.Minibatch(x, y, batch_size=workloads.BATCH_SIZE)
        params = {}
        for p in workloads.parameters(model):
            sd = (pm.HalfNormal(f"{p.name}_sd", sigma=workloads.HYPER_SD) if prior_kind == "hierarchical"
                  else workloads.PRIOR_SD)
            params[p.name] = pm.Normal(p.name, 0.0, sd, shape=_shape(p.shape))
        pm.Categorical("label", logit_p=network(model, x, params), observed=y,
                       total_size=len(labels) if minibatch else None)
    return bnn


def _start_sigma(bnn: pm.Model, floatx: str) -> dict[str, float] | None:
    """PyMC's default start sds in float64; sds of 0.01 in float32 (workaround, see the module's docstring)."""
    if floatx == "float64":
        return None
    return {v.name: workloads.START_SIGMA for v in bnn.value_vars}


class PlainTrainer:
    """``pm.ADVI(...).fit`` then ``.refine``: PyMC's own loop (see :class:`benchmarks.workloads.Trainer`).

    ``backend`` None is PyTensor's default; ``"jax"`` compiles the step with JAX.
    """

    def __init__(self, model: str, prior_kind: str, data: workloads.Data, floatx: str = "float64",
                 backend: str | None = None) -> None:
        self.floatx = floatx
        self.backend = backend or f"default ({pytensor.config.linker}, {pytensor.config.mode})"
        self._backend = backend
        with pytensor.config.change_flags(floatX=floatx):
            self.model = bnn_model(model, prior_kind, data.x_train, data.y_train)
            self.advi = pm.ADVI(model=self.model, random_seed=workloads.SEED,
                                start_sigma=_start_sigma(self.model, floatx))

    def compile(self) -> None:
        # fit compiles the step function, then takes the step
        with pytensor.config.change_flags(floatX=self.floatx):
            self.advi.fit(1, progressbar=False, backend=self._backend)

    def step(self, n: int) -> float:
        self.advi.refine(n, progressbar=False)
        return -float(self.advi.hist[-1])


def predictor(model: str, images: np.ndarray, n_draws: int, floatx: str = "float64",
              backend: str | None = None) -> Callable[[], dict[str, float]]:
    """A function that runs ``approx.sample(n_draws)`` and ``pm.sample_posterior_predictive`` on ``images``.

    The approximation is PyMC's fresh one (prediction costs the same for any values), of a model
    that observes the given images; the function returns the seconds each of the two calls took.
    """
    with pytensor.config.change_flags(floatX=floatx):
        # the observed labels are drawn afresh by the posterior predictive: their values are not used
        bnn = bnn_model(model, "normal", images, np.zeros(len(images), dtype=np.int64), minibatch=False)
        approx = pm.ADVI(model=bnn, random_seed=workloads.SEED, start_sigma=_start_sigma(bnn, floatx)).approx

    def run() -> dict[str, float]:
        with pytensor.config.change_flags(floatX=floatx):
            t0 = time.perf_counter()
            trace = approx.sample(n_draws, random_seed=workloads.SEED)
            t1 = time.perf_counter()
            pm.sample_posterior_predictive(trace, model=bnn, var_names=["label"], random_seed=workloads.SEED,
                                           progressbar=False, backend=backend)
            t2 = time.perf_counter()
        return {"approx_sample_s": t1 - t0, "posterior_predictive_s": t2 - t1}

    return run
