"""This project's training and prediction, as the benchmarks drive them.

Training is :class:`core.inference.ADVIStepper`, the stepper that :func:`core.inference.fit` (and so
``bnn train``) loops over, on the same PyMC model (:func:`core.models.build_model`): the same
objective, start values, optimizer, learning-rate schedule and compiled step. The benchmarks step it
in chunks themselves (to interleave implementations under the same load, and to check accuracy
between chunks without counting it); being fit's own stepper, its steps are fit's.
``python benchmarks/ours.py`` is a quick check that it trains: a few steps of a small MLP.

Prediction is :func:`core.predict.sample_probabilities`, as ``bnn train`` and the dashboard call it.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import workloads
from benchmarks.isolation import emit
from core.architecture import LayerSpec, param_specs
from core.inference import ADVIStepper, FitConfig, TrainingDiverged
from core.models import architecture, build_model
from core.predict import sample_probabilities
from core.priors import make_prior

__all__ = ["OursTrainer", "initial_approximation", "predictor", "prior", "quick_check"]


def prior(kind: str):
    """The benchmarks' priors (:mod:`benchmarks.workloads`) as core's prior objects."""
    params = {"normal": {"sd": workloads.PRIOR_SD}, "hierarchical": {"hyper_sd": workloads.HYPER_SD}}
    return make_prior(kind, **params[kind])


class OursTrainer:
    """``fit``'s stepper on ``model``, stepped ``n`` steps at a time (see :class:`benchmarks.workloads.Trainer`).

    ``config`` is what ``bnn train`` would use (FitConfig's defaults: Adam, cosine-decayed step size
    over ``config.iterations``, Glorot start means, start sd 0.01, JAX, float32). ``prior_params``: the
    prior's parameters, else the benchmarks' (:func:`prior`).
    """

    def __init__(self, model: str, prior_kind: str, data: workloads.Data, config: FitConfig | None = None,
                 spec: list[LayerSpec] | None = None, prior_params: dict | None = None) -> None:
        import pytensor

        self.config = config = config or FitConfig()
        self.spec = spec or workloads.layers(model)
        self._weights = [p.name for p in param_specs(self.spec)]
        the_prior = prior(prior_kind) if prior_params is None else make_prior(prior_kind, **prior_params)
        with pytensor.config.change_flags(floatX=config.float):
            self.model = build_model(self.spec, the_prior, data.x_train, data.y_train, batch_size=config.batch_size)
            self.stepper = ADVIStepper(self.model, config)

    @property
    def backend(self) -> str:
        return self.stepper.backend

    @property
    def elbo(self) -> list[float]:
        return list(self.stepper.state().elbo)

    def compile(self) -> None:
        self.stepper.compile()
        self.step(1)

    def step(self, n: int) -> float:
        values = self.stepper.step(n)
        if not math.isfinite(values[-1]):
            raise TrainingDiverged(f"ours: the ELBO became {values[-1]} at iteration {self.stepper.state().iteration}")
        return float(values[-1])

    def means(self) -> dict[str, np.ndarray]:
        means, _ = self.stepper.approximation()
        return {name: means[name] for name in self._weights}


def initial_approximation(model: str, seed: int = workloads.SEED) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Means and sds of a freshly started approximation of ``model``: what prediction costs does not
    depend on the values, so the prediction benchmark needs no training. Means ~ N(0, 0.05), sds 0.01."""
    rng = np.random.default_rng(seed)
    specs = workloads.parameters(model)
    means = {p.name: rng.normal(0.0, 0.05, p.shape).astype(np.float32) for p in specs}
    sds = {p.name: np.full(p.shape, workloads.START_SIGMA, dtype=np.float32) for p in specs}
    return means, sds


def predictor(model: str, images: np.ndarray, n_draws: int, seed: int = workloads.SEED):
    """A function that draws ``n_draws`` predictive probabilities for every image: (draw, digit, class)."""
    means, sds = initial_approximation(model, seed)
    spec = workloads.layers(model)
    return lambda: sample_probabilities(spec, means, sds, images, n_draws=n_draws, seed=seed)


def quick_check(data: workloads.Data, iterations: int = 5, prior_kind: str = "hierarchical") -> dict:
    """A few steps of :class:`OursTrainer` on a small MLP (16 hidden units) and the first 2,000 training
    digits: whether ours builds, compiles and steps, with finite ELBOs."""
    small = workloads.Data(data.x_train[:2000], data.y_train[:2000], data.x_test, data.y_test)
    trainer = OursTrainer("mlp", prior_kind, small, replace(FitConfig(), iterations=iterations),
                          spec=architecture("mlp", (16,)))
    trainer.compile()
    trainer.step(iterations - 1)
    return {"trains": bool(np.isfinite(trainer.elbo).all()) and len(trainer.elbo) == iterations,
            "backend": trainer.backend, "elbo": trainer.elbo}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=None, help="folder of the MNIST files")
    args = parser.parse_args(argv)
    emit(**quick_check(workloads.load(args.data_dir)))


if __name__ == "__main__":
    main()
