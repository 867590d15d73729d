"""Bayesian neural networks on MNIST: data, models, mini-batch ADVI, predictive, run files.

Data flows one way: ``data -> models (layers, priors) -> inference -> predict/uncertainty -> store``.
The facade below is lazy, so that ``import core.store`` (what the dashboard does) does not import
PyMC: a name is imported from its module on first use.
"""

from importlib import import_module

__all__ = [
    "FitConfig",
    "architecture",
    "build_model",
    "evaluate_run",
    "fit",
    "list_runs",
    "load_mnist",
    "load_run",
    "make_prior",
    "sample_probabilities",
    "save_run",
    "train_run",
]

_HOME = {
    "load_mnist": "data",
    "architecture": "models",
    "build_model": "models",
    "make_prior": "priors",
    "FitConfig": "inference",
    "fit": "inference",
    "train_run": "runs",
    "evaluate_run": "runs",
    "sample_probabilities": "predict",
    "save_run": "store",
    "load_run": "store",
    "list_runs": "store",
}


def __getattr__(name: str):
    if name not in _HOME:
        raise AttributeError(f"module 'core' has no attribute {name!r}")
    return getattr(import_module(f".{_HOME[name]}", __name__), name)
