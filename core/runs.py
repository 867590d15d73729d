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
from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from . import predict, schema, shift, store, uncertainty
from .architecture import LayerSpec, param_specs, spec_from_json, spec_to_json
from .data import MNIST, load_mnist

__all__ = ["checkpoint_path", "evaluate_predictions", "evaluate_run", "evaluate_shift", "machine", "model_key", "prepare_data",
           "run_attributes", "run_name", "train_run"]

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
        shift=evaluation["shift"],
    )


def evaluate_shift(spec: list[LayerSpec], means: dict, sds: dict, images: np.ndarray, labels: np.ndarray,
                   n_draws: int, seed: int) -> dict:
    """The shift suite's groups (:func:`core.shift.evaluate_suite`) under the predictive of ``means``,
    ``sds``: the same draws as the test set's (``seed``), one log line a set."""
    t0 = time.perf_counter()

    def progress(done: int, total: int, name: str) -> None:
        elapsed = time.perf_counter() - t0
        log.info("shift suite %d/%d: %s (%.0f s, about %.0f s to go)", done, total, name, elapsed,
                 elapsed / done * (total - done))

    return shift.evaluate_suite(
        lambda x: predict.sample_probabilities(spec, means, sds, x, n_draws=n_draws, seed=seed), images, labels,
        progress)


def prepare_data(data_dir: str | os.PathLike | None, n_train: int | None = None, n_test: int | None = None) -> MNIST:
    """MNIST's split, cut to the first ``n_train`` training images and ``n_test`` test and validation images."""
    data = load_mnist(data_dir)
    return replace(data, x_train=data.x_train[:n_train], y_train=data.y_train[:n_train], x_val=data.x_val[:n_test],
                   y_val=data.y_val[:n_test], x_test=data.x_test[:n_test], y_test=data.y_test[:n_test])


def model_key(spec: list[LayerSpec], prior_kind: str, prior, n_train: int) -> dict:
    """What identifies the fitted model: a checkpoint or a run file made for another is not continued."""
    return {"architecture": spec_to_json(spec), "prior": prior_kind, "prior_params": asdict(prior), "n_train": n_train}


def _start_state(path: Path, key: dict, config):
    """The state to continue the run stored at ``path``: refused if it was made for another model or
    other fit settings (iterations aside)."""
    from .inference import CheckpointError, StartState, fit_settings

    run = store.load_run(path)
    attrs = store.run_attrs(run, defaults=True)  # files from before lr_floor / lr_hold were made with 0 and 0
    wanted = key | {"architecture": json.loads(key["architecture"])} | fit_settings(config)
    diff = {k: (attrs.get(k), v) for k, v in wanted.items() if attrs.get(k) != v}
    if diff:
        raise CheckpointError(f"{path}: made for other settings {diff} (stored, now); continue it with the same "
                              "model, prior and optimizer, or train under another --name")
    means, sds = store.approximation(run)
    return StartState(means=means, sds=sds, elbo=[float(v) for v in run["optimization"]["elbo"].values],
                      wall_time_s=float(attrs["wall_time_s"]), iterations_per_s=float(attrs["iterations_per_s"]),
                      compile_time_s=float(attrs["compile_time_s"]), backend=str(attrs["backend"]))


def _continuation(run_path: Path, checkpoint: Path, key: dict, config):
    """With --resume: whether the run at ``run_path`` is done already, and the state to continue from
    when there is no checkpoint (another machine, say): the run file's, if there is one."""
    if not run_path.exists():
        return False, None
    stored = _start_state(run_path, key, config)
    if len(stored.elbo) >= config.iterations:
        log.info("%s holds %d iterations already: nothing to train", run_path, len(stored.elbo))
        return True, None
    return False, None if checkpoint.exists() else stored


def _fit(spec: list[LayerSpec], prior, data: MNIST, config, **fit_kwargs):
    """Build the PyMC model of ``spec`` and ``prior`` on the training images and fit it (:func:`core.inference.fit`)."""
    import pytensor

    from .inference import fit
    from .models import build_model

    with pytensor.config.change_flags(floatX=config.float):
        pm_model = build_model(spec, prior, MNIST.scale(data.x_train), data.y_train, batch_size=config.batch_size)
        return fit(pm_model, config, **fit_kwargs)


def _evaluate(spec: list[LayerSpec], means: dict, sds: dict, data: MNIST, n_draws: int, seed: int):
    """The predictive of the test and the validation images, and draws of the hyperpriors."""
    weights = [p.name for p in param_specs(spec)]
    w_means = {k: np.asarray(means[k], dtype=np.float32) for k in weights}
    w_sds = {k: np.asarray(sds[k], dtype=np.float32) for k in weights}
    test = evaluate_predictions(spec, w_means, w_sds, data.x_test, data.y_test, n_draws, seed)
    test["shift"] = evaluate_shift(spec, w_means, w_sds, data.x_test, data.y_test, n_draws, seed)
    # the held-out training images: what a choice between settings may look at (the test set may not)
    validation = evaluate_predictions(spec, w_means, w_sds, data.x_val, data.y_val, n_draws, seed + 1)
    hyper_names = [k for k in means if k not in weights]
    hyper = predict.hyperprior_draws({k: float(means[k]) for k in hyper_names}, {k: float(sds[k]) for k in hyper_names},
                                     N_HYPER_DRAWS, seed)
    return test, validation, hyper


def run_attributes(*, model: str, prior_kind: str, prior, spec: list[LayerSpec], config, result, validation: dict,
                   label: str, n_train: int, n_draws: int, command: str) -> dict:
    """The root attributes ``bnn train`` gives a run (core/schema.py), but for the test accuracies and
    prediction time, which :func:`_assemble` adds."""
    final_elbo, elbo_change = convergence(result.elbo)
    return {
        "model": model,
        "prior": prior_kind,
        "method": "advi",
        "prior_params": asdict(prior),
        "architecture": spec_to_json(spec),
        "label": label,
        "n_train": n_train,
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
    from .models import architecture
    from .priors import make_prior

    spec = architecture(model, sizes)  # bad settings fail before the data is read
    prior = make_prior(prior_kind, **(prior_params or {}))
    data = prepare_data(data_dir, n_train, n_test)
    name = name or run_name(model, prior_kind, config.seed)
    run_path, checkpoint = Path(out_dir) / f"{name}{store.RUN_SUFFIX}", checkpoint_path(out_dir, name)
    key = model_key(spec, prior_kind, prior, len(data.x_train))
    done, start_from = _continuation(run_path, checkpoint, key, config) if resume else (False, None)
    if done:
        return run_path
    result = _fit(spec, prior, data, config, checkpoint=checkpoint, resume=resume, progress=progress, model_key=key,
                  start_from=start_from)
    if result.interrupted:
        return None
    means, sds = result.approximation()
    test, validation, hyper = _evaluate(spec, means, sds, data, n_draws, config.seed)
    attrs = run_attributes(model=model, prior_kind=prior_kind, prior=prior, spec=spec, config=config, result=result,
                           validation=validation, label=label, n_train=len(data.x_train), n_draws=n_draws,
                           command=command)
    path = store.save_run(_assemble(attrs, result.elbo, means, sds, hyper, test, data.x_test, data.y_test), run_path)
    log.info("wrote %s: accuracy %.2f%% (mode of %d draws), final ELBO %.0f",
             path, 100 * test["accuracy_mode"], n_draws, attrs["final_elbo"])
    return path


def evaluate_run(path: str | os.PathLike, n_draws: int = 100, seed: int = 0) -> Path:
    """Recompute a run's predictions on its stored test digits from its stored approximation.

    Every other attribute is kept, those this program does not know (a newer version's) included."""
    run = store.load_run(path)
    spec = spec_from_json(run.attrs["architecture"])
    means, sds = store.approximation(run)
    weights = [p.name for p in param_specs(spec)]
    images = run["predictions_constant_data"]["image"].values
    labels = run["predictions_constant_data"]["true_label"].values
    w_means, w_sds = {k: means[k] for k in weights}, {k: sds[k] for k in weights}
    evaluation = evaluate_predictions(spec, w_means, w_sds, images, labels, n_draws, seed)
    evaluation["shift"] = evaluate_shift(spec, w_means, w_sds, images, labels, n_draws, seed)
    hyper = {k: run["posterior"][k].values[0] for k in run["posterior"].data_vars}
    fields = {f.name: f for f in schema.FIELDS}
    attrs = {k: v for k, v in store.run_attrs(run).items() if k in fields and not fields[k].computed}
    new = _assemble(attrs | {"n_draws": n_draws}, run["optimization"]["elbo"].values, means, sds, hyper, evaluation,
                    images, labels)
    new.attrs.update({k: v for k, v in run.attrs.items() if k not in fields})
    return store.save_run(new, path)
