"""Sweeps of training runs (models x priors x settings) on Dask.

Each point of a grid is one ``train_run`` on a Dask worker: a ``LocalCluster`` by default, or a real
cluster given by its scheduler address. The sweep writes one run file per point and a JSON summary,
and picks the best point by *validation* accuracy (the 10,000 held-out training images), never the
test set.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import logging
import math
import sys
from pathlib import Path

__all__ = ["folder_summary", "mixture_grid", "run_sweep", "main"]

log = logging.getLogger(__name__)


def mixture_grid(pis=(0.25, 0.5, 0.75), log_s1=(0.0, -1.0, -2.0), log_s2=(-6.0, -7.0, -8.0)) -> list[dict]:
    """Blundell et al. (2015)'s grid for the scale-mixture prior: -log s1 in {0, 1, 2}, -log s2 in {6, 7, 8}."""
    return [{"pi": pi, "sigma1": math.exp(a), "sigma2": math.exp(b)} for pi, a, b in itertools.product(pis, log_s1, log_s2)]


def _point_name(model: str, params: dict) -> str:
    return f"{model}-mixture-pi{params['pi']:g}-s1e{math.log(params['sigma1']):+g}-s2e{math.log(params['sigma2']):+g}"


def _train_point(model: str, params: dict, config_dict: dict, data_dir: str | None, out_dir: str, **train_kwargs) -> dict:
    """One grid point, run on a worker; returns its summary (everything here must pickle)."""
    from . import store
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


def run_sweep(model: str, grid: list[dict], config, data_dir: str | None, out_dir: Path,
              scheduler: str | None = None, workers: int = 1, **train_kwargs) -> list[dict]:
    """Train every grid point on Dask; returns the summaries sorted by validation accuracy, best first.

    ``train_kwargs`` go to :func:`core.runs.train_run` (``sizes``, ``n_train``, ``n_test``...).
    """
    from dask.distributed import Client, LocalCluster, as_completed

    cluster = None if scheduler else LocalCluster(n_workers=workers, threads_per_worker=1, processes=True)
    with Client(scheduler or cluster) as client:
        futures = [client.submit(_train_point, model, params, dataclasses.asdict(config), data_dir, str(out_dir),
                                 pure=False, **train_kwargs) for params in grid]
        results = []
        for future in as_completed(futures):
            results.append(future.result())
            log.info("%s: validation accuracy %.2f%%", results[-1]["name"], 100 * results[-1]["val_accuracy"])
    if cluster:
        cluster.close()
    return sorted(results, key=lambda r: -r["val_accuracy"])


def main(argv: list[str] | None = None) -> int:
    from .inference import FitConfig

    parser = argparse.ArgumentParser(prog="python -m core.sweep", description="Choose the scale-mixture prior's "
                                     "(pi, sigma1, sigma2) on Blundell et al.'s grid by validation accuracy.")
    parser.add_argument("--model", choices=("mlp", "cnn"), default="mlp")
    parser.add_argument("--iterations", type=int, default=3000, help="ADVI steps per grid point")
    parser.add_argument("--data-dir")
    parser.add_argument("--out", type=Path, default=Path("sweeps/mixture"), help="folder for the grid's runs")
    parser.add_argument("--scheduler", help="address of a Dask scheduler (default: a LocalCluster)")
    parser.add_argument("--workers", type=int, default=1, help="LocalCluster workers")
    parser.add_argument("--draws", type=int, default=100, help="posterior predictive draws per evaluation")
    grid = parser.add_argument_group("grid (default Blundell et al.'s 27 points; give fewer values to search part of it)")
    grid.add_argument("--pi", type=float, nargs="+", default=(0.25, 0.5, 0.75), help="mixture weights of the wide component")
    grid.add_argument("--log-s1", type=float, nargs="+", default=(0.0, -1.0, -2.0), help="log sd of the wide component")
    grid.add_argument("--log-s2", type=float, nargs="+", default=(-6.0, -7.0, -8.0), help="log sd of the narrow component")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    results = run_sweep(args.model, mixture_grid(args.pi, args.log_s1, args.log_s2), FitConfig(iterations=args.iterations),
                        args.data_dir, args.out,
                        args.scheduler, args.workers, n_draws=args.draws)
    log.info("trained %d grid points", len(results))
    summary = folder_summary(args.out)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1))
    for r in summary:
        print(f"{r['name']:45} validation {100 * r['val_accuracy']:6.2f}%   ELBO {r['final_elbo']:12,.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
