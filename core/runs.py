"""A run end to end: data -> model -> ADVI, or MAP, or a deep ensemble of MAP fits -> predictive on the
test set and the shift suite -> one run file.

Training code lives here and below; the dashboard only ever reads the file this writes.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from . import predict, schema, shift, store, uncertainty
from .architecture import LayerSpec, param_specs, spec_from_json, spec_to_json
from .data import MNIST, load_mnist

__all__ = ["Fitted", "Training", "checkpoint_path", "evaluate_predictions", "evaluate_run", "evaluate_shift", "machine", "member_config", "model_key", "prepare_data",
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


Predictive = Callable[[np.ndarray], np.ndarray]
"""A run's predictive: (digit, 28, 28) images -> (draw, digit, class) probabilities."""


@dataclass
class Fitted:
    """What a fit leaves to evaluate and store: a mean-field approximation's ``means`` and ``sds`` by
    tensor name (hyperpriors too), or a point-estimate run's ``members``: tensor name -> (member, ...)
    values, with ``means`` and ``sds`` empty."""

    means: dict
    sds: dict
    members: dict | None = None

    def predictive(self, spec: list[LayerSpec], n_draws: int, seed: int) -> Predictive:
        """``n_draws`` draws from the approximation (seeded by ``seed``), or each member once."""
        if self.members:
            return functools.partial(predict.member_probabilities, spec, self.members)
        weights = [p.name for p in param_specs(spec)]
        means = {k: np.asarray(self.means[k], dtype=np.float32) for k in weights}
        sds = {k: np.asarray(self.sds[k], dtype=np.float32) for k in weights}
        return lambda x: predict.sample_probabilities(spec, means, sds, x, n_draws=n_draws, seed=seed)

    def hyperprior_draws(self, weights: list[str], seed: int) -> dict:
        names = [k for k in self.means if k not in weights]
        return predict.hyperprior_draws({k: float(self.means[k]) for k in names},
                                        {k: float(self.sds[k]) for k in names}, N_HYPER_DRAWS, seed)


def evaluate_predictions(probabilities: Predictive, images: np.ndarray, labels: np.ndarray) -> dict:
    """The predictive of the test digits and the figures a run reports.

    images : (digit, 28, 28) uint8   labels : (digit,)
    """
    t0 = time.perf_counter()
    drawn, mean_p, expected_entropy = predict.summarize_draws(probabilities(images))
    elapsed = time.perf_counter() - t0
    predicted = uncertainty.mode_label(drawn)
    return {
        "labels": drawn,
        "probability": mean_p,
        "expected_entropy": expected_entropy,
        "accuracy_mode": float((predicted == labels).mean()),
        "accuracy_mean": float((mean_p.argmax(axis=1) == labels).mean()),
        "predict_time_s": elapsed,
    }


def _assemble(attrs: dict, elbo: np.ndarray, fitted: Fitted, hyper: dict, evaluation: dict, data_x, data_y):
    return store.build_run(
        attrs=attrs | {k: evaluation[k] for k in ("accuracy_mode", "accuracy_mean", "predict_time_s")},
        elbo=elbo,
        means=fitted.means,
        sds=fitted.sds,
        members=fitted.members,
        hyper_draws=hyper,
        labels=evaluation["labels"],
        probability=evaluation["probability"],
        expected_entropy=evaluation["expected_entropy"],
        images=data_x,
        true_labels=data_y,
        shift=evaluation["shift"],
    )


def evaluate_shift(probabilities: Predictive, images: np.ndarray, labels: np.ndarray) -> dict:
    """The shift suite's groups (:func:`core.shift.evaluate_suite`) under a run's predictive (the same
    draws as the test set's), one log line a set."""
    t0 = time.perf_counter()

    def progress(done: int, total: int, name: str) -> None:
        elapsed = time.perf_counter() - t0
        log.info("shift suite %d/%d: %s (%.0f s, about %.0f s to go)", done, total, name, elapsed,
                 elapsed / done * (total - done))

    return shift.evaluate_suite(probabilities, images, labels, progress)


def prepare_data(data_dir: str | os.PathLike | None, n_train: int | None = None, n_test: int | None = None) -> MNIST:
    """MNIST's split, cut to the first ``n_train`` training images and ``n_test`` test and validation images."""
    data = load_mnist(data_dir)
    return replace(data, x_train=data.x_train[:n_train], y_train=data.y_train[:n_train], x_val=data.x_val[:n_test],
                   y_val=data.y_val[:n_test], x_test=data.x_test[:n_test], y_test=data.y_test[:n_test])


def model_key(spec: list[LayerSpec], prior_kind: str, prior, n_train: int) -> dict:
    """What identifies the fitted model: a checkpoint or a run file made for another is not continued."""
    return {"architecture": spec_to_json(spec), "prior": prior_kind, "prior_params": asdict(prior), "n_train": n_train}


def _start_state(path: Path, key: dict, config, method: str):
    """The state to continue the run stored at ``path``: refused if it was made for another model or
    other fit settings (iterations aside). A point-estimate run gives its iteration count only (None
    for the state: its members continue from their checkpoints)."""
    from .inference import CheckpointError, StartState, fit_settings

    run = store.load_run(path)
    attrs = store.run_attrs(run, defaults=True)  # files from before lr_floor / lr_hold were made with 0 and 0
    wanted = key | {"architecture": json.loads(key["architecture"])} | fit_settings(config) | {"method": method}
    diff = {k: (attrs.get(k), v) for k, v in wanted.items() if attrs.get(k) != v}
    if diff:
        raise CheckpointError(f"{path}: made for other settings {diff} (stored, now); continue it with the same "
                              "model, prior and optimizer, or train under another --name")
    elbo = [float(v) for v in run["optimization"]["elbo"].values]
    if store.is_point_estimate(run):
        return len(elbo), None
    means, sds = store.approximation(run)
    return len(elbo), StartState(means=means, sds=sds, elbo=elbo, wall_time_s=float(attrs["wall_time_s"]),
                                 iterations_per_s=float(attrs["iterations_per_s"]),
                                 compile_time_s=float(attrs["compile_time_s"]), backend=str(attrs["backend"]))


def _continuation(run_path: Path, checkpoint: Path, key: dict, config, method: str):
    """With --resume: whether the run at ``run_path`` is done already, and the state to continue from
    when there is no checkpoint (another machine, say): the run file's, if there is one."""
    if not run_path.exists():
        return False, None
    iterations, stored = _start_state(run_path, key, config, method)
    if iterations >= config.iterations:
        log.info("%s holds %d iterations already: nothing to train", run_path, iterations)
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


@dataclass
class Training:
    """How a fit went, as a run file records it: the objective's history and the timing (see
    :class:`core.inference.FitResult`); for a deep ensemble, its members' together."""

    elbo: np.ndarray
    wall_time_s: float
    iterations_per_s: float
    compile_time_s: float
    backend: str
    interrupted: bool = False


def _fit_member(spec: list[LayerSpec], prior, data: MNIST, config, **fit_kwargs) -> tuple[dict, Training]:
    """One network of a point-estimate run: its weights by tensor name, and how its fit went."""
    result = _fit(spec, prior, data, config, **fit_kwargs)
    weights, _ = result.approximation()
    return weights, Training(result.elbo, result.wall_time_s, result.iterations_per_s, result.compile_time_s,
                             result.backend, result.interrupted)


def _member_task(model: str, sizes, prior_kind: str, prior_params: dict, config_dict: dict, data_dir, n_train, n_test,
                 **fit_kwargs) -> tuple[dict, Training]:
    """:func:`_fit_member` on a Dask worker: everything it needs as plain values (they pickle)."""
    from .inference import FitConfig
    from .models import architecture
    from .priors import make_prior

    return _fit_member(architecture(model, sizes), make_prior(prior_kind, **prior_params),
                       prepare_data(data_dir, n_train, n_test), FitConfig(**config_dict), **fit_kwargs)


def member_config(config, member: int):
    """The fit settings of member ``member`` of a deep ensemble: a MAP fit seeded ``seed + member`` (its
    start values and mini-batches), so member 0 is the MAP fit of the same seed."""
    return replace(config, method="map", seed=config.seed + member)


def _fit_members(spec, prior, data: MNIST, config, n_members: int, name: str, out_dir, key: dict, *, resume: bool,
                 progress: bool, cluster: dict | None) -> tuple[dict, Training]:
    """``n_members`` MAP fits (:func:`member_config`; one for a MAP run), each with its own checkpoint: one after another
    here, or on Dask when ``cluster`` gives its ``scheduler`` address or ``workers`` (with what a worker
    needs to build the model and read the data: ``model``, ``sizes``, ``prior_kind``,
    ``prior_params``, ``data_dir``, ``n_train``, ``n_test``).

    Returns the members' weights stacked, tensor name -> (member, ...), and their :class:`Training`:
    the mean of their objectives' histories, their stepping times summed, their mean speed."""
    configs = [member_config(config, i) for i in range(n_members)]
    # a MAP run is one member, with the run's own checkpoint
    names = [name] if n_members == 1 else [f"{name}.member{i}" for i in range(n_members)]
    kwargs = [{"checkpoint": checkpoint_path(out_dir, n), "resume": resume, "model_key": key} for n in names]
    if cluster is None:
        results = []
        for i, (c, kw) in enumerate(zip(configs, kwargs)):
            log.info("member %d of %d (seed %d)", i + 1, n_members, c.seed)
            results.append(_fit_member(spec, prior, data, c, progress=progress, **kw))
            if results[-1][1].interrupted:
                break
    else:
        from .sweep import on_dask

        build = {k: cluster[k] for k in ("model", "sizes", "prior_kind", "prior_params", "data_dir", "n_train", "n_test")}
        calls = [(_member_task, {**build, "config_dict": asdict(c), "progress": False, **kw}) for c, kw in zip(configs, kwargs)]
        results = [None] * n_members
        for i, result in on_dask(calls, cluster.get("scheduler"), cluster.get("workers", 1)):
            results[i] = result
            log.info("member %d of %d done", i + 1, n_members)
    trainings = [t for _, t in results]
    if len(results) < n_members or any(t.interrupted for t in trainings):
        return {}, replace(trainings[-1], interrupted=True)
    weights = {k: np.stack([w[k] for w, _ in results]) for k in results[0][0]}
    wall = sum(t.wall_time_s for t in trainings)
    return weights, Training(
        elbo=np.mean([t.elbo for t in trainings], axis=0), wall_time_s=wall,
        iterations_per_s=sum(len(t.elbo) for t in trainings) / wall if wall > 0 else float("nan"),
        compile_time_s=float(np.mean([t.compile_time_s for t in trainings])), backend=trainings[-1].backend,
    )


def _evaluate(spec: list[LayerSpec], fitted: Fitted, data: MNIST, n_draws: int, seed: int):
    """The predictive of the test and the validation images, and draws of the hyperpriors."""
    test_predictive = fitted.predictive(spec, n_draws, seed)
    test = evaluate_predictions(test_predictive, data.x_test, data.y_test)
    test["shift"] = evaluate_shift(test_predictive, data.x_test, data.y_test)
    # the held-out training images: what a choice between settings may look at (the test set may not)
    validation = evaluate_predictions(fitted.predictive(spec, n_draws, seed + 1), data.x_val, data.y_val)
    return test, validation, fitted.hyperprior_draws([p.name for p in param_specs(spec)], seed)


def run_attributes(*, model: str, prior_kind: str, prior, spec: list[LayerSpec], config, result, validation: dict,
                   label: str, n_train: int, n_draws: int, command: str, method: str = "advi",
                   members: int | None = None) -> dict:
    """The root attributes ``bnn train`` gives a run (core/schema.py), but for the test accuracies and
    prediction time, which :func:`_assemble` adds. ``result``: a :class:`Training` or a FitResult."""
    final_elbo, elbo_change = convergence(result.elbo)
    return {
        "model": model,
        "prior": prior_kind,
        "prior_params": asdict(prior),
        "architecture": spec_to_json(spec),
        "label": label,
        "n_train": n_train,
        "iterations": len(result.elbo),
        **{k: v for k, v in asdict(config).items() if k not in ("iterations", "backend")},
        "method": method,
        "members": members,
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
    members: int | None = None,
    scheduler: str | None = None,
    workers: int = 1,
) -> Path | None:
    """Train ``model`` with ``prior_kind`` and write its run file: by mini-batch ADVI, or by MAP
    (``config.method``), or as a deep ensemble of ``members`` MAP fits (:func:`member_config`), trained
    on Dask when a ``scheduler`` address or several ``workers`` are given, else one after another.

    ``n_train`` / ``n_test`` take the first images only (for quick tries and tests); the shipped runs
    use all 50,000 / 10,000. Returns the run file's path, or None when interrupted (the checkpoints
    are kept for ``resume``). ``resume`` without a checkpoint continues an ADVI run from the run file
    of the same name in ``out_dir``, if there is one (its means and sds; the optimizer's state starts
    afresh). A point estimate (MAP, ensemble) of the hierarchical prior is refused: it has no useful
    mode. ``n_draws`` does not apply to a point estimate: its members are its draws.
    """
    from .models import architecture
    from .priors import make_prior

    method = "ensemble" if members else config.method
    if method != "advi" and prior_kind == "hierarchical":
        raise ValueError(f"--method {method}: a hierarchical prior has no useful mode (its scales collapse to zero); "
                         "choose --prior normal or mixture, or --method advi")
    if members:
        config = replace(config, method="map")
    spec = architecture(model, sizes)  # bad settings fail before the data is read
    prior = make_prior(prior_kind, **(prior_params or {}))
    data = prepare_data(data_dir, n_train, n_test)
    name = name or run_name(model, prior_kind, config.seed) + ("" if method == "advi" else f"-{method}")
    run_path, checkpoint = Path(out_dir) / f"{name}{store.RUN_SUFFIX}", checkpoint_path(out_dir, name)
    key = model_key(spec, prior_kind, prior, len(data.x_train))
    done, start_from = _continuation(run_path, checkpoint, key, config, method) if resume else (False, None)
    if done:
        return run_path
    if method == "advi":
        result = _fit(spec, prior, data, config, checkpoint=checkpoint, resume=resume, progress=progress, model_key=key,
                      start_from=start_from)
        fitted = Fitted(*result.approximation())
    else:
        cluster = None if scheduler is None and workers <= 1 else {
            "scheduler": scheduler, "workers": workers, "model": model, "sizes": sizes, "prior_kind": prior_kind,
            "prior_params": asdict(prior), "data_dir": data_dir, "n_train": n_train, "n_test": n_test}
        weights, result = _fit_members(spec, prior, data, config, members or 1, name, out_dir, key, resume=resume,
                                       progress=progress, cluster=cluster)
        fitted = Fitted({}, {}, weights)
    if result.interrupted:
        return None
    n_members = (members or 1) if method != "advi" else None
    n_draws = n_members or n_draws  # a point estimate's draws are its members
    test, validation, hyper = _evaluate(spec, fitted, data, n_draws, config.seed)
    attrs = run_attributes(model=model, prior_kind=prior_kind, prior=prior, spec=spec, config=config, result=result,
                           validation=validation, label=label, n_train=len(data.x_train), n_draws=n_draws,
                           command=command, method=method, members=n_members)
    path = store.save_run(_assemble(attrs, result.elbo, fitted, hyper, test, data.x_test, data.y_test), run_path)
    log.info("wrote %s: accuracy %.2f%% (mode of %d draws), final %s %.0f", path, 100 * test["accuracy_mode"],
             n_draws, "ELBO" if method == "advi" else "log posterior", attrs["final_elbo"])
    return path


def evaluate_run(path: str | os.PathLike, n_draws: int = 100, seed: int = 0) -> Path:
    """Recompute a run's predictions on its stored test digits from its stored approximation (or
    networks: a point estimate's members are its draws, and ``n_draws`` and ``seed`` do not apply).

    Every other attribute is kept, those this program does not know (a newer version's) included."""
    run = store.load_run(path)
    spec = spec_from_json(run.attrs["architecture"])
    if store.is_point_estimate(run):
        members = store.members(run)
        fitted, n_draws = Fitted({}, {}, members), len(next(iter(members.values())))
    else:
        fitted = Fitted(*store.approximation(run))
    images = run["predictions_constant_data"]["image"].values
    labels = run["predictions_constant_data"]["true_label"].values
    predictive = fitted.predictive(spec, n_draws, seed)
    evaluation = evaluate_predictions(predictive, images, labels)
    evaluation["shift"] = evaluate_shift(predictive, images, labels)
    hyper = {k: run["posterior"][k].values[0] for k in run["posterior"].data_vars}
    fields = {f.name: f for f in schema.FIELDS}
    attrs = {k: v for k, v in store.run_attrs(run).items() if k in fields and not fields[k].computed}
    new = _assemble(attrs | {"n_draws": n_draws}, run["optimization"]["elbo"].values, fitted, hyper, evaluation,
                    images, labels)
    new.attrs.update({k: v for k, v in run.attrs.items() if k not in fields})
    return store.save_run(new, path)
