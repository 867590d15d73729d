"""What every implementation is measured on: the data, the networks' sizes, the priors, batch size and seed.

Ours and both peers read the layer list from here (:func:`core.models.architecture`, the post's
sizes: MLP 784-800-800-10, CNN conv 32x5x5, pool, conv 32x5x5, pool, dense 256, dense 10), so that
every implementation fits the same number of parameters with the same mini-batch size. Each peer
writes its own forward pass.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHIPPED_RUNS = ROOT / "cached_traces"  # the runs this repository ships
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from core.architecture import LayerSpec, ParamSpec, param_specs
from core.data import DATA_ENV, MNIST, load_mnist
from core.models import architecture

__all__ = [
    "BATCH_SIZE",
    "HYPER_SD",
    "MODELS",
    "PRIORS",
    "PRIOR_SD",
    "ROOT",
    "SEED",
    "SHIPPED_RUNS",
    "START_SIGMA",
    "TARGET_ACCURACY",
    "Data",
    "Trainer",
    "check_subset",
    "default_data_dir",
    "layers",
    "load",
    "mean_network_accuracy",
    "n_parameters",
    "parameters",
]

MODELS = ("mlp", "cnn")
PRIORS = ("normal", "hierarchical")
BATCH_SIZE = 500
PRIOR_SD = 0.1  # every tensor ~ Normal(0, 0.1), the post's fixed prior
HYPER_SD = 1.0  # hierarchical: one HalfNormal(1) hyperprior per tensor, the tensor ~ Normal(0, it)
# start sd of every weight's approximation, where a workaround needs one (DESIGN.md: float32 ADVI
# with PyMC's start sd 0.69 gives NaN gradients for 800-wide tanh layers); ours starts there too
START_SIGMA = 0.01
SEED = 0
TARGET_ACCURACY = {"mlp": 0.96, "cnn": 0.99}
CHECK_DIGITS = 2_000  # the fixed test subset accuracy is checked on during time-to-accuracy runs


class Trainer(Protocol):
    """One implementation's mini-batch ADVI fit of one network, stepped by the benchmarks.

    Making it builds the model (not compiled yet); every implementation draws its mini-batches of
    :data:`BATCH_SIZE` from the 50,000 training digits with seed :data:`SEED`.
    """

    def compile(self) -> None:
        """Compile the step and take the first one (JAX compiles on the first call, not before)."""

    def step(self, n: int) -> float:
        """Take ``n`` steps; return the last loss, waiting for the computation to finish."""

    def means(self) -> dict[str, np.ndarray]:
        """The variational means of the weights, by core's tensor names and in core's layouts.

        Needed by the time-to-accuracy race only, which runs ours and NumPyro (not plain PyMC)."""


def layers(model: str) -> list[LayerSpec]:
    """The post's network ``model`` (``mlp`` or ``cnn``) as a layer list."""
    return architecture(model)


def parameters(model: str) -> list[ParamSpec]:
    """Every weight tensor of ``model``: name (``dense_1.W``...), shape (conv: kh, kw, c_in, c_out)."""
    return param_specs(layers(model))


def n_parameters(model: str) -> int:
    return int(sum(np.prod(p.shape) for p in parameters(model)))


def default_data_dir() -> Path:
    """``$BNN_MNIST_DIR``, else ``../shared/data/mnist`` beside the repository (as the tests do)."""
    return Path(os.environ.get(DATA_ENV) or ROOT.parent / "shared" / "data" / "mnist")


@dataclass(frozen=True)
class Data:
    """MNIST as every implementation sees it (the post's split and scaling).

    x_* : (n, 28, 28) float32, pixels / 256   y_* : (n,) int64   n = 50,000 train, 10,000 test
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def load(data_dir: str | os.PathLike | None = None) -> Data:
    mnist = load_mnist(data_dir or default_data_dir())
    return Data(
        x_train=MNIST.scale(mnist.x_train),
        y_train=mnist.y_train.astype(np.int64),
        x_test=MNIST.scale(mnist.x_test),
        y_test=mnist.y_test.astype(np.int64),
    )


def check_subset(data: Data, n: int = CHECK_DIGITS, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """A fixed random subset of ``n`` test digits (same seed, same digits for every implementation)."""
    index = np.sort(np.random.default_rng(seed).choice(len(data.x_test), size=n, replace=False))
    return data.x_test[index], data.y_test[index]


def mean_network_accuracy(model: str, means: dict[str, np.ndarray], images: np.ndarray, labels: np.ndarray) -> float:
    """Test accuracy of the network at the variational means (the "mean network").

    means : tensor name -> mean, in core's layout (see :func:`parameters`). Computed by
    :func:`core.predict.sample_probabilities` with every sd set to 0, so that every implementation
    is scored by the same code.
    """
    from core.predict import sample_probabilities

    means = {k: np.asarray(v, dtype=np.float32) for k, v in means.items()}
    zeros = {k: np.zeros_like(v) for k, v in means.items()}
    probabilities = sample_probabilities(layers(model), means, zeros, images, n_draws=1)
    return float((probabilities[0].argmax(axis=1) == labels).mean())
