"""Sweeps of training runs (models x priors x settings) on Dask.

Each point of a grid is one ``train_run`` on a Dask worker: a ``LocalCluster`` by default, or a real
cluster given by its scheduler address. The sweep writes one run file per point and a JSON summary,
and picks the best point by *validation* accuracy (the 10,000 held-out training images), never the
test set.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import logging
import math
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

__all__ = ["BLUNDELL_LOG_S1", "BLUNDELL_LOG_S2", "BLUNDELL_PIS", "folder_summary", "mixture_grid", "on_dask", "run_sweep"]

log = logging.getLogger(__name__)


# Blundell et al. (2015)'s grid for the scale-mixture prior: pi in {1/4, 1/2, 3/4}, -log s1 in {0, 1, 2}, -log s2 in {6, 7, 8}
BLUNDELL_PIS = (0.25, 0.5, 0.75)
BLUNDELL_LOG_S1 = (0.0, -1.0, -2.0)
BLUNDELL_LOG_S2 = (-6.0, -7.0, -8.0)


def mixture_grid(pis: Sequence[float] = BLUNDELL_PIS, log_s1: Sequence[float] = BLUNDELL_LOG_S1,
                 log_s2: Sequence[float] = BLUNDELL_LOG_S2) -> list[dict]:
    """Every (pi, sigma1, sigma2) of the given values (sigmas as their logs); by default Blundell et al.'s 27 points."""
    return [{"pi": pi, "sigma1": math.exp(a), "sigma2": math.exp(b)} for pi, a, b in itertools.product(pis, log_s1, log_s2)]


def _point_name(model: str, params: dict) -> str:
    return f"{model}-mixture-pi{params['pi']:g}-s1e{math.log(params['sigma1']):+g}-s2e{math.log(params['sigma2']):+g}"


def _train_point(model: str, params: dict, config_dict: dict, data_dir: str | None, out_dir: str, **train_kwargs) -> dict:
    """One grid point, run on a worker; returns its summary (everything here must pickle)."""
    from .inference import FitConfig
    from .runs import train_run

    name = _point_name(model, params)
    path = train_run(model, "mixture", FitConfig(**config_dict), prior_params=params, data_dir=data_dir,
                     out_dir=out_dir, name=name, label=f"grid point {name}", resume=True, progress=False,
                     **train_kwargs)
    return _point_summary(path)


def _point_summary(path: Path) -> dict:
    from . import store

    attrs = store.run_attrs(store.load_run(path))
    params = {k: attrs["prior_params"][k] for k in ("pi", "sigma1", "sigma2")}
    return {"name": Path(path).stem, "path": str(path), **params, "iterations": attrs["iterations"],
            "val_accuracy": attrs["val_accuracy_mean"], "final_elbo": attrs["final_elbo"]}


def folder_summary(out_dir: Path) -> list[dict]:
    """Every grid point trained in ``out_dir``, by this sweep or an earlier one over part of the grid,
    best validation accuracy first."""
    from . import store

    return sorted((_point_summary(p) for p in Path(out_dir).glob(f"[!.]*{store.RUN_SUFFIX}")),
                  key=lambda r: -r["val_accuracy"])


def on_dask(calls: list[tuple[Callable, dict]], scheduler: str | None = None, workers: int = 1) -> Iterator[tuple[int, object]]:
    """Run each ``(function, kwargs)`` of ``calls`` on Dask: the cluster at ``scheduler``, else a
    ``LocalCluster`` of ``workers`` single-threaded processes (stopped on an error or Ctrl-C too).
    Yields ``(index in calls, result)`` as each finishes. Functions and arguments must pickle."""
    from dask.distributed import Client, LocalCluster, as_completed

    cluster = (contextlib.nullcontext(scheduler) if scheduler
               else LocalCluster(n_workers=workers, threads_per_worker=1, processes=True))
    with cluster as address, Client(address) as client:
        futures = {client.submit(fn, pure=False, **kwargs): i for i, (fn, kwargs) in enumerate(calls)}
        for future in as_completed(futures):
            yield futures[future], future.result()


def run_sweep(model: str, grid: list[dict], config, data_dir: str | None, out_dir: Path,
              scheduler: str | None = None, workers: int = 1, **train_kwargs) -> list[dict]:
    """Train every grid point on Dask; returns the summaries sorted by validation accuracy, best first.

    ``train_kwargs`` go to :func:`core.runs.train_run` (``sizes``, ``n_train``, ``n_test``...).
    """
    config_dict = dataclasses.asdict(config)
    calls = [(_train_point, {"model": model, "params": params, "config_dict": config_dict, "data_dir": data_dir,
                             "out_dir": str(out_dir), **train_kwargs}) for params in grid]
    results = []
    for _, result in on_dask(calls, scheduler, workers):
        results.append(result)
        log.info("%s: validation accuracy %.2f%%", result["name"], 100 * result["val_accuracy"])
    return sorted(results, key=lambda r: -r["val_accuracy"])


if __name__ == "__main__":  # the command's first name: `python -m core.sweep ARGS` is `bnn sweep ARGS`
    from .cli import main

    sys.exit(main(["sweep", *sys.argv[1:]]))
