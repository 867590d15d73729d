"""A run end to end: data -> model -> ADVI -> predictive on the test set -> one run file.

Training code lives here and below; the dashboard only ever reads the file this writes.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import sys
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import xarray as xr

from . import predict, store, uncertainty
from .architecture import LayerSpec, param_specs, spec_to_json
from .data import MNIST, load_mnist

__all__ = ["checkpoint_path", "evaluate_predictions", "evaluate_run", "machine", "run_name", "train_run"]

log = logging.getLogger(__name__)

N_HYPER_DRAWS = 500


def run_name(model: str, prior: str, seed: int) -> str:
    return f"{model}-{prior}-seed{seed}"


def checkpoint_path(out_dir: Path, name: str) -> Path:
    """Checkpoints sit in a hidden folder beside the runs: never read as runs, never committed."""
    return Path(out_dir) / ".checkpoints" / f"{name}.npz"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} cores"


def versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for pkg in ("pymc", "pytensor", "jax", "numpy", "xarray"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return out


def convergence(elbo: np.ndarray, tail: float = 0.05) -> tuple[float, float]:
    """Mean ELBO over the last ``tail`` of iterations, and its relative change from the ``tail`` before."""
    n = max(1, int(len(elbo) * tail))
    last, before = elbo[-n:].mean(), elbo[-2 * n : -n].mean() if len(elbo) >= 2 * n else np.nan
    return float(last), float(abs(last - before) / abs(before))


def evaluate_predictions(
    spec: list[LayerSpec], means: dict, sds: dict, images: np.ndarray, labels: np.ndarray, n_draws: int, seed: int
) -> dict:
    """Posterior predictive of the test digits and the figures a run reports.

    images : (digit, 28, 28) uint8   labels : (digit,)
    """
    t0 = time.perf_counter()
    probabilities = predict.sample_probabilities(spec, means, sds, images, n_draws=n_draws, seed=seed)
    elapsed = time.perf_counter() - t0
    drawn, mean_p, expected_entropy = predict.summarize_draws(probabilities)
    predicted = uncertainty.mode_label(drawn)
    return {
        "labels": drawn,
        "probability": mean_p,
        "expected_entropy": expected_entropy,
        "accuracy_mode": float((predicted == labels).mean()),
        "accuracy_mean": float((mean_p.argmax(axis=1) == labels).mean()),
        "predict_time_s": elapsed,
    }


def _assemble(attrs: dict, elbo: np.ndarray, means: dict, sds: dict, hyper: dict, evaluation: dict, data_x, data_y):
    return store.build_run(
        attrs=attrs | {k: evaluation[k] for k in ("accuracy_mode", "accuracy_mean", "predict_time_s")},
        elbo=elbo,
        means=means,
        sds=sds,
        hyper_draws=hyper,
        labels=evaluation["labels"],
        probability=evaluation["probability"],
        expected_entropy=evaluation["expected_entropy"],
        images=data_x,
        true_labels=data_y,
    )


def _start_state(path: Path, model_key: dict, config):
    """The state to continue the run stored at ``path``: refused if it was made for another model or
    other fit settings (iterations aside)."""
    from .inference import SETTINGS_BEFORE, CheckpointError, StartState, fit_settings

    run = store.load_run(path)
    attrs = SETTINGS_BEFORE | store.run_attrs(run)
    wanted = model_key | {"architecture": json.loads(model_key["architecture"])} | fit_settings(config)
    diff = {k: (attrs.get(k), v) for k, v in wanted.items() if attrs.get(k) != v}
    if diff:
        raise CheckpointError(f"{path}: made for other settings {diff} (stored, now); continue it with the same "
                              "model, prior and optimizer, or train under another --name")
    mean_ds, sd_ds = run["variational_mean"].to_dataset(), run["variational_sd"].to_dataset()
    return StartState(means={k: mean_ds[k].values for k in mean_ds.data_vars},
                      sds={k: sd_ds[k].values for k in sd_ds.data_vars},
                      elbo=[float(v) for v in run["optimization"]["elbo"].values],
                      wall_time_s=float(attrs["wall_time_s"]),
                      iterations_per_s=float(attrs.get("iterations_per_s", np.nan)),
                      compile_time_s=float(attrs.get("compile_time_s", np.nan)),  # files made before it was stored
                      backend=str(attrs.get("backend", "")))


def train_run(
    model: str,
    prior_kind: str,
    config,
    *,
    prior_params: dict | None = None,
    sizes: tuple[int, ...] | None = None,
    data_dir: str | os.PathLike | None = None,
    out_dir: str | os.PathLike = "cached_traces",
    name: str | None = None,
    label: str = "",
    n_draws: int = 100,
    resume: bool = False,
    progress: bool = True,
    n_train: int | None = None,
    n_test: int | None = None,
    command: str = "",
) -> Path | None:
    """Train ``model`` with ``prior_kind`` by mini-batch ADVI and write its run file.

    ``n_train`` / ``n_test`` take the first images only (for quick tries and tests); the shipped runs
    use all 50,000 / 10,000. Returns the run file's path, or None when interrupted (the checkpoint
    is kept for ``resume``). ``resume`` without a checkpoint continues from the run file of the same
    name in ``out_dir``, if there is one (its means and sds; the optimizer's state starts afresh).
    """
    import pytensor

    from .inference import approximation_params, fit
    from .models import architecture, build_model
    from .priors import make_prior

    spec = architecture(model, sizes)  # bad settings fail before the data is read
    prior = make_prior(prior_kind, **(prior_params or {}))
    data = load_mnist(data_dir)
    x_train, y_train = data.x_train[:n_train], data.y_train[:n_train]
    x_test, y_test = data.x_test[:n_test], data.y_test[:n_test]
    name = name or run_name(model, prior_kind, config.seed)
    out_dir = Path(out_dir)
    dims = {p.name: p.dims for p in param_specs(spec)}
    model_key = {"architecture": spec_to_json(spec), "prior": prior_kind, "prior_params": asdict(prior),
                 "n_train": len(x_train)}
    checkpoint = checkpoint_path(out_dir, name)
    run_path = out_dir / f"{name}{store.RUN_SUFFIX}"
    start_from = None
    if resume and run_path.exists():
        stored = _start_state(run_path, model_key, config)
        if len(stored.elbo) >= config.iterations:
            log.info("%s holds %d iterations already: nothing to train", run_path, len(stored.elbo))
            return run_path
        # without its checkpoint (another machine, say), a run continues from its run file
        start_from = None if checkpoint.exists() else stored
    with pytensor.config.change_flags(floatX=config.float):
        pm_model = build_model(spec, prior, MNIST.scale(x_train), y_train, batch_size=config.batch_size)
        result = fit(pm_model, config, checkpoint=checkpoint, resume=resume, progress=progress, model_key=model_key,
                     start_from=start_from)
    if result.interrupted:
        return None
    raw_means, raw_sds = approximation_params(result.approx, dims)
    as_array = lambda d: {k: xr.DataArray(v, dims=dm, attrs=a) for k, (v, dm, a) in d.items()}
    weights = [p.name for p in param_specs(spec)]
    np_means = {k: raw_means[k][0].astype(np.float32) for k in weights}
    np_sds = {k: raw_sds[k][0].astype(np.float32) for k in weights}
    evaluation = evaluate_predictions(spec, np_means, np_sds, x_test, y_test, n_draws, config.seed)
    # the held-out training images: what a choice between settings may look at (the test set may not)
    validation = evaluate_predictions(spec, np_means, np_sds, data.x_val[:n_test], data.y_val[:n_test], n_draws,
                                      config.seed + 1)
    hyper_names = [k for k in raw_means if k not in weights]
    hyper = predict.hyperprior_draws({k: float(raw_means[k][0]) for k in hyper_names},
                                     {k: float(raw_sds[k][0]) for k in hyper_names}, N_HYPER_DRAWS, config.seed)
    final_elbo, elbo_change = convergence(result.elbo)
    attrs = {
        "model": model,
        "prior": prior_kind,
        "prior_params": asdict(prior),
        "architecture": spec_to_json(spec),
        "label": label,
        "n_train": len(x_train),
        "iterations": len(result.elbo),
        **{k: v for k, v in asdict(config).items() if k not in ("iterations", "backend")},
        "backend": result.backend,
        "versions": versions(),
        "machine": machine(),
        "wall_time_s": result.wall_time_s,
        "iterations_per_s": result.iterations_per_s,
        "compile_time_s": result.compile_time_s,
        "n_draws": n_draws,
        "final_elbo": final_elbo,
        "elbo_change": elbo_change,
        "val_accuracy_mode": validation["accuracy_mode"],
        "val_accuracy_mean": validation["accuracy_mean"],
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": command or " ".join(sys.argv),
    }
    run = _assemble(attrs, result.elbo, as_array(raw_means), as_array(raw_sds), hyper, evaluation, x_test, y_test)
    path = store.save_run(run, out_dir / f"{name}{store.RUN_SUFFIX}")
    log.info("wrote %s: accuracy %.2f%% (mode of %d draws), final ELBO %.0f",
             path, 100 * evaluation["accuracy_mode"], n_draws, final_elbo)
    return path


def evaluate_run(path: str | os.PathLike, n_draws: int = 100, seed: int = 0) -> Path:
    """Recompute a run's predictions on its stored test digits from its stored approximation."""
    run = store.load_run(path)
    spec, means, sds = predict.network_params(run)
    images = run["predictions_constant_data"]["image"].values
    labels = run["predictions_constant_data"]["true_label"].values
    evaluation = evaluate_predictions(spec, means, sds, images, labels, n_draws, seed)
    hyper = {k: run["posterior"][k].values[0] for k in run["posterior"].data_vars}
    mean_ds, sd_ds = run["variational_mean"].to_dataset(), run["variational_sd"].to_dataset()
    new = _assemble(
        dict(run.attrs) | {"n_draws": n_draws},
        run["optimization"]["elbo"].values,
        {k: mean_ds[k] for k in mean_ds.data_vars},
        {k: sd_ds[k] for k in sd_ds.data_vars},
        hyper,
        evaluation,
        images,
        labels,
    )
    return store.save_run(new, path)
