"""The implementations measured side by side: ours and the peers, by name.

Each makes a :class:`~benchmarks.workloads.Trainer` for a model and prior, and a predictor (a
function that draws the posterior predictive of some images). Modules are imported on use, so a
worker process loads only the libraries of the implementation it measures.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from benchmarks import workloads

__all__ = ["IMPLEMENTATIONS", "Implementation", "get"]


def _ours_trainer(model, prior, data, learning_rate=None, start_sigma=None, config=None, prior_params=None):
    from dataclasses import replace

    from benchmarks.ours import OursTrainer
    from core.inference import FitConfig

    # ours as `bnn train` runs it: ``config`` (else FitConfig's defaults), but for the settings given
    given = {"learning_rate": learning_rate, "start_sigma": start_sigma}
    return OursTrainer(model, prior, data, replace(config or FitConfig(), **{k: v for k, v in given.items() if v is not None}),
                       prior_params=prior_params)


def _ours_predictor(model, images, n_draws):
    from benchmarks.ours import predictor

    return predictor(model, images, n_draws)


def _numpyro_trainer(model, prior, data, learning_rate=None, start_sigma=None):
    from benchmarks.peers.numpyro_bnn import NumPyroTrainer

    return NumPyroTrainer(model, prior, data, learning_rate=learning_rate or 1e-3,
                          start_sigma=start_sigma or workloads.START_SIGMA)


def _numpyro_predictor(model, images, n_draws):
    from benchmarks.peers.numpyro_bnn import predictor

    return predictor(model, images, n_draws)


def _plain_trainer(floatx: str, backend: str | None):
    def make(model, prior, data, learning_rate=None, start_sigma=None):  # PyMC's defaults: optimizer, step size
        from benchmarks.peers.plain_pymc import PlainTrainer

        return PlainTrainer(model, prior, data, floatx=floatx, backend=backend)

    return make


def _plain_predictor(floatx: str, backend: str | None):
    def make(model, images, n_draws):
        from benchmarks.peers.plain_pymc import predictor

        return predictor(model, images, n_draws, floatx=floatx, backend=backend)

    return make


@dataclass(frozen=True)
class Implementation:
    """``floatx``: the worker process's PyTensor floatX (which also sets JAX's 64-bit mode, see
    :mod:`benchmarks.isolation`); ``predictor``: None for one timed in training only; ``models``: the
    networks it is measured on; ``heap``: whether its worker first keeps large allocations mapped, as
    ``bnn`` does (:mod:`core.heap`)."""

    name: str
    label: str
    floatx: str
    trainer: Callable[..., workloads.Trainer]
    predictor: Callable[[str, np.ndarray, int], Callable] | None
    models: tuple[str, ...] = field(default=workloads.MODELS)
    heap: bool = False

    def prepare_process(self) -> None:
        """What the worker does first, before any thread allocates."""
        if self.heap:
            from core.heap import keep_large_allocations

            keep_large_allocations()


IMPLEMENTATIONS = {
    impl.name: impl
    for impl in (
        Implementation("ours", "ours (core: JAX, float32)", "float32", _ours_trainer, _ours_predictor, heap=True),
        Implementation("numpyro", "NumPyro (SVI, AutoNormal, jit)", "float32", _numpyro_trainer, _numpyro_predictor),
        # NumPyro given ours' heap settings: how much of ours' lead is the allocator's, in training
        Implementation("numpyro-heap", "NumPyro, with ours' heap settings", "float32", _numpyro_trainer, None,
                       heap=True),
        Implementation("plain", "plain PyMC (float64, default backend)", "float64",
                       _plain_trainer("float64", None), _plain_predictor("float64", None)),
        Implementation("plain-jax", "plain PyMC (float32, JAX)", "float32",
                       _plain_trainer("float32", "jax"), _plain_predictor("float32", "jax"), models=("mlp",)),
    )
}


def get(name: str) -> Implementation:
    if name not in IMPLEMENTATIONS:
        raise ValueError(f"unknown implementation {name!r}; choose one of {', '.join(IMPLEMENTATIONS)}")
    return IMPLEMENTATIONS[name]
