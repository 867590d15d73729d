"""Bayesian neural networks on MNIST: data, models, mini-batch ADVI, predictive, run files.

Data flows one way: ``data -> architecture -> priors -> models -> inference -> predict -> store``.
The package's front door is this facade, the names a user needs for that flow, in its order:

============================  =========================================================================
``load_mnist``                the post's 50,000 / 10,000 / 10,000 split, uint8 images (core.data)
``mlp_spec``, ``cnn_spec``    the post's networks as layer specs (core.architecture)
``make_prior``                a prior for every weight tensor, by kind (core.priors)
``build_model``               a spec and a prior as a PyMC model of mini-batches (core.models)
``FitConfig``, ``fit``        mini-batch ADVI of that model (core.inference)
``sample_probabilities``      predictive of images under a spec's variational means, sds (core.predict)
``run_probabilities``         the same for a loaded run: what to call for new images (core.predict)
``train_run``                 all of the above, written to a run file (core.runs; ``bnn train``)
``evaluate_run``              a run's test predictions again (core.runs; ``bnn evaluate``)
``save_run``, ``load_run``    one run file (core.store)
``list_runs``                 summaries of a folder of run files (core.store)
============================  =========================================================================

Everything else is imported from its submodule, e.g. ``from core.store import RunFileError``.

A program that trains on a CPU calls ``core.heap.keep_large_allocations()`` first, before it uses JAX,
as ``bnn`` does: the CNN's steps then run about 1.6x as fast (see :mod:`core.heap`).

The facade is lazy: a name is imported from its module on first use. ``import core`` is run by
every ``import core.<submodule>``, and the dashboard's ``import core.store`` must not pay for
importing PyMC (seconds) that only training needs.

A facade name is never a submodule's name: ``core.architecture`` is the module of layer specs, and
``core.models.architecture`` (a spec by model name) is not in the facade. A facade name equal to a
submodule would mean one thing before that submodule is imported and the other after it.
"""

from importlib import import_module as _import_module

__all__ = [
    "FitConfig",
    "build_model",
    "cnn_spec",
    "evaluate_run",
    "fit",
    "list_runs",
    "load_mnist",
    "load_run",
    "make_prior",
    "mlp_spec",
    "run_probabilities",
    "sample_probabilities",
    "save_run",
    "train_run",
]

# facade name -> the submodule that defines it
_HOME = {
    "load_mnist": "data",
    "mlp_spec": "architecture",
    "cnn_spec": "architecture",
    "make_prior": "priors",
    "build_model": "models",
    "FitConfig": "inference",
    "fit": "inference",
    "sample_probabilities": "predict",
    "run_probabilities": "predict",
    "train_run": "runs",
    "evaluate_run": "runs",
    "save_run": "store",
    "load_run": "store",
    "list_runs": "store",
}


def __getattr__(name: str) -> object:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(
            f"module 'core' has no attribute {name!r}; its facade is core.__all__, and other names are imported "
            f"from their submodule, e.g. `from core.store import RunFileError`"
        )
    value = getattr(_import_module(f".{home}", __name__), name)
    globals()[name] = value  # later look-ups are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
