"""This project's training and prediction, as the benchmarks drive them.

Training takes :func:`core.inference.fit`'s steps: the same PyMC model (:func:`core.models.build_model`),
the same ``pm.ADVI`` objective, start values, optimizer, learning-rate schedule and compiled function,
made with fit's own helpers. The benchmarks need steps in chunks (to interleave implementations
under the same load, and to check accuracy between chunks without counting it), which fit's loop
has no hook for. ``python benchmarks/ours.py`` checks that these steps are fit's steps: the same
ELBOs, bit for bit, from the same seed.

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
from core import inference
from core.architecture import LayerSpec, param_specs
from core.inference import FitConfig, TrainingDiverged, approximation_params, fit
from core.models import architecture, build_model
from core.predict import sample_probabilities
from core.priors import make_prior

__all__ = ["OursTrainer", "check_matches_fit", "initial_approximation", "predictor", "prior"]


def prior(kind: str):
    """The benchmarks' priors (:mod:`benchmarks.workloads`) as core's prior objects."""
    return make_prior(kind, **({"sd": workloads.PRIOR_SD} if kind == "normal" else {"hyper_sd": workloads.HYPER_SD}))


class OursTrainer:
    """``fit``'s ADVI steps on ``model``, taken ``n`` at a time (see :class:`benchmarks.workloads.Trainer`).

    ``config`` is what ``bnn train`` would use (FitConfig's defaults: Adam, cosine-decayed step size
    over ``config.iterations``, Glorot start means, start sd 0.01, JAX, float32).
    """

    def __init__(self, model: str, prior_kind: str, data: workloads.Data, config: FitConfig | None = None,
                 spec: list[LayerSpec] | None = None) -> None:
        import pymc as pm
        import pytensor

        self.config = config = config or FitConfig()
        self.spec = spec or workloads.layers(model)
        self._dims = {p.name: p.dims for p in param_specs(self.spec)}
        with pytensor.config.change_flags(floatX=config.float):
            self.model = build_model(self.spec, prior(prior_kind), data.x_train, data.y_train, batch_size=config.batch_size)
            # from here to the loop, as fit() does
            rng = np.random.default_rng(config.seed)
            with self.model:
                advi = pm.ADVI(random_seed=int(rng.integers(2**31)))
            self.approx = advi.approx
            self._elbo_scale = inference.elbo_scale(self.approx)
            self.approx.params[0].set_value(inference._start_means(self.approx, config, rng))
            rho = math.log(math.expm1(config.start_sigma))
            self.approx.params[1].set_value(
                np.full(self.approx.groups[0].ddim, rho, dtype=self.approx.params[1].get_value().dtype))
            self._lr = pytensor.shared(np.asarray(config.learning_rate, dtype=config.float), name="learning_rate")
            self._updates = advi.objective.updates(obj_optimizer=inference._optimizer(config, self._lr))
        self._step = None
        self.backend = config.backend
        self.elbo: list[float] = []

    def compile(self) -> None:
        import pytensor

        with pytensor.config.change_flags(floatX=self.config.float):
            self._step, self.backend = inference._compile(self._updates.loss, self._updates, [self.config.seed, 0],
                                                          self.config.backend)
        self.step(1)

    def step(self, n: int) -> float:
        value = math.nan
        with inference._quiet_jax():
            for _ in range(n):
                self._lr.set_value(np.asarray(inference._learning_rate(self.config, len(self.elbo)), dtype=self.config.float))
                value = -float(self._step()) * self._elbo_scale
                if not math.isfinite(value):
                    raise TrainingDiverged(f"ours: the ELBO became {value} at iteration {len(self.elbo) + 1}")
                self.elbo.append(value)
        return value

    def means(self) -> dict[str, np.ndarray]:
        means, _ = approximation_params(self.approx, self._dims)
        return {name: means[name][0] for name in self._dims}


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


def check_matches_fit(data: workloads.Data, iterations: int = 5, prior_kind: str = "hierarchical") -> dict:
    """Whether :class:`OursTrainer` takes the same steps as :func:`core.inference.fit`: same ELBOs, same seed.

    On a small MLP (16 hidden units) and the first 2,000 training digits: the question is whether
    the code paths agree, which does not depend on the network's size.
    """
    import pytensor

    small = workloads.Data(data.x_train[:2000], data.y_train[:2000], data.x_test, data.y_test)
    spec = architecture("mlp", (16,))
    config = replace(FitConfig(), iterations=iterations)
    trainer = OursTrainer("mlp", prior_kind, small, config, spec=spec)
    trainer.compile()
    trainer.step(iterations - 1)
    with pytensor.config.change_flags(floatX=config.float):
        model = build_model(spec, prior(prior_kind), small.x_train, small.y_train, batch_size=config.batch_size)
        reference = fit(model, config, progress=False)
    return {
        "matches_fit": bool(np.array_equal(np.asarray(trainer.elbo), reference.elbo)),
        "elbo_benchmark": trainer.elbo,
        "elbo_fit": reference.elbo.tolist(),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=None, help="folder of the MNIST files")
    args = parser.parse_args(argv)
    emit(**check_matches_fit(workloads.load(args.data_dir)))


if __name__ == "__main__":
    main()
