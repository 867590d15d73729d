"""Mini-batch ADVI: the optimization loop, with progress, checkpoints, resume and a NaN guard.

PyMC builds the objective (``pm.ADVI``: mean-field Normal, ELBO by Monte Carlo on a mini-batch
scaled by ``total_size``); this module compiles one step of it on the chosen backend and runs the
loop itself, so that it can checkpoint every N steps, resume, stop cleanly on Ctrl-C, and refuse to
go on once the ELBO is NaN or infinite.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import signal
import threading
import time
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import pymc as pm
import pytensor
from pytensor.compile.sharedvalue import SharedVariable
from pytensor.tensor.random.type import RandomType
from tqdm.auto import tqdm

__all__ = ["BACKENDS", "OPTIMIZERS", "PRESETS", "SETTINGS_BEFORE", "CheckpointError", "FitConfig", "FitResult", "StartState", "TrainingDiverged", "elbo_scale", "fit", "fit_settings"]

log = logging.getLogger(__name__)

BACKENDS = {"jax": "JAX", "numba": "NUMBA", "c": "CVM"}
OPTIMIZERS = ("adam", "adagrad_window")
SCHEDULES = ("cosine", "constant")
STARTS = ("glorot", "post")


@dataclass(frozen=True)
class FitConfig:
    """How the approximation is fitted (never what is fitted: the model and data are fixed).

    Defaults: Adam with a cosine-decayed step size (5e-3 down to 1% of it, then held there for the
    last 15% of steps) and small start sds. Adam adapts per parameter, which the post's windowed
    Adagrad (a 10-step window of squared gradients with eps = 1.0, i.e. a nearly fixed step of
    ~0.01) does not; the decay lets the ELBO settle instead of bouncing at the step size's noise
    floor. The hold is what makes the convergence check mean something: its windows (the last two
    5%) then compare the ELBO at one step size, where a decay to 0 would compare two ever smaller
    steps, at which a fit still rising moves too little to show it. Start sds of 0.01 avoid the
    float32 NaN gradients that PyMC's default start (sd 0.69) gives 800-wide tanh layers.
    """

    iterations: int = 20_000
    batch_size: int = 500
    optimizer: str = "adam"
    learning_rate: float = 5e-3
    epsilon: float | None = None  # optimizer's epsilon; None: the optimizer's own default
    lr_schedule: str = "cosine"
    lr_floor: float = 0.01  # cosine: where the decay ends, as a fraction of learning_rate
    lr_hold: float = 0.15  # cosine: the fraction of iterations, at the end, held at the floor
    start: str = "glorot"
    start_sigma: float = 1e-2
    backend: str = "jax"
    float: str = "float32"
    seed: int = 0
    checkpoint_every: int = 1000

    def __post_init__(self):
        checks = [
            (self.optimizer in OPTIMIZERS, f"optimizer must be one of {OPTIMIZERS}"),
            (self.lr_schedule in SCHEDULES, f"lr_schedule must be one of {SCHEDULES}"),
            (self.start in STARTS, f"start must be one of {STARTS}"),
            (self.backend in BACKENDS, f"backend must be one of {tuple(BACKENDS)}"),
            (self.float in ("float32", "float64"), "float must be float32 or float64"),
            (self.iterations > 0 and self.batch_size > 0, "iterations and batch_size must be positive"),
            (self.learning_rate > 0 and self.start_sigma > 0, "learning_rate and start_sigma must be positive"),
            (self.checkpoint_every > 0, "checkpoint_every must be positive"),
            (0 <= self.lr_floor <= 1, "lr_floor must be between 0 and 1 (a fraction of learning_rate)"),
            (0 <= self.lr_hold < 1, "lr_hold must be at least 0 and under 1 (a fraction of iterations)"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)


# How long a fit took, as checkpoints and FitResult hold it (defaults: nothing measured yet). The wall
# time adds up over the parts of a resumed fit; the others are those of the last part that stepped.
TIMING = {"wall_time_s": 0.0, "iterations_per_s": math.nan, "compile_time_s": math.nan, "backend": ""}

# Settings added after runs were made: a run file without them was fitted as these say (a cosine to 0).
SETTINGS_BEFORE = {"lr_floor": 0.0, "lr_hold": 0.0}

PRESETS = {
    # the post's settings: PyMC3's windowed Adagrad, lr 0.01, eps 1.0, start weights ~ N(0, 1),
    # PyMC's default start sd softplus(0) = 0.69, float64 (as PyMC3 ran by default)
    "blog": {"optimizer": "adagrad_window", "learning_rate": 0.01, "epsilon": 1.0, "lr_schedule": "constant",
             "start": "post", "start_sigma": math.log(2.0), "float": "float64", "iterations": 50_000},
}


class TrainingDiverged(RuntimeError):
    """The ELBO became NaN or infinite; the last good checkpoint is kept."""


class CheckpointError(RuntimeError):
    """A checkpoint cannot be resumed: damaged, or made for another model or settings."""


@dataclass
class FitResult:
    """The fitted approximation and how the fit went.

    elbo : (iteration,) the full-data ELBO (:func:`elbo_scale`) of every step from the first (resumed runs included)
    """

    approx: object
    elbo: np.ndarray
    wall_time_s: float  # stepping time of every part of the fit (a resumed fit has several), compiling excluded
    iterations_per_s: float  # stepping speed of the last part that stepped
    compile_time_s: float  # of that part: PyTensor's compile and the first step (where JAX compiles)
    backend: str  # of that part
    interrupted: bool = False
    extra: dict = field(default_factory=dict)


@dataclass
class StartState:
    """A fit to continue without its checkpoint, e.g. from a run file on another machine: each
    tensor's variational mean and sd by name (hyperpriors by their name without ``_log__``, on the
    log scale), the ELBO history, and the timing so far (as in :class:`FitResult`; NaN where a file
    does not hold it). The optimizer's state starts afresh."""

    means: dict[str, np.ndarray]
    sds: dict[str, np.ndarray]
    elbo: list[float]
    wall_time_s: float
    iterations_per_s: float = math.nan
    compile_time_s: float = math.nan
    backend: str = ""


def _learning_rate(config: FitConfig, step: int) -> float:
    if config.lr_schedule == "constant":
        return config.learning_rate
    floor = config.lr_floor * config.learning_rate
    decay = config.iterations * (1.0 - config.lr_hold)
    return floor + 0.5 * (config.learning_rate - floor) * (1.0 + math.cos(math.pi * min(step / decay, 1.0)))


def _start_means(approx, config: FitConfig, rng: np.random.Generator) -> np.ndarray:
    """Start values of the variational means: Glorot-scaled Normal weights and zero biases, or the
    post's Normal(0, 1) for every tensor. Hyperpriors (log scale) start at log 1 = 0."""
    group = approx.groups[0]
    mu = np.zeros(group.ddim, dtype=approx.params[0].get_value().dtype)
    for name, slc, shape, _ in group.ordering.values():
        if name.endswith("_log__"):
            continue
        if config.start == "post":
            mu[slc] = rng.standard_normal(slc.stop - slc.start)
        elif name.endswith(".W"):
            fan_in = int(np.prod(shape[:-1]))
            fan_out = shape[-1] * (int(np.prod(shape[:2])) if len(shape) == 4 else 1)
            mu[slc] = rng.standard_normal(slc.stop - slc.start) * math.sqrt(2.0 / (fan_in + fan_out))
    return mu


def _set_approximation(approx, means: dict[str, np.ndarray], sds: dict[str, np.ndarray]) -> None:
    """Set the variational means and sds (as softplus^-1) by tensor name: the inverse of
    :func:`approximation_params`."""
    group = approx.groups[0]
    mu, rho = (np.array(group.params_dict[k].get_value()) for k in ("mu", "rho"))
    for value_name, slc, shape, _ in group.ordering.values():
        name = value_name.removesuffix("_log__")
        if name not in means or np.shape(means[name]) != tuple(shape):
            raise CheckpointError(f"no start values of shape {tuple(shape)} for {name!r}")
        mu[slc] = np.ravel(means[name])
        rho[slc] = np.log(np.expm1(np.ravel(sds[name]).astype(np.float64)))
    group.params_dict["mu"].set_value(mu.astype(mu.dtype))
    group.params_dict["rho"].set_value(rho.astype(mu.dtype))


def _optimizer(config: FitConfig, lr):
    kwargs = {"learning_rate": lr} | ({"epsilon": config.epsilon} if config.epsilon is not None else {})
    if config.optimizer == "adam":
        return pm.adam(**kwargs)
    return pm.adagrad_window(**kwargs, n_win=10)


def _compile(loss, updates, seed, backend: str):
    """Compile one ADVI step on ``backend``, falling back to the next backend that works."""
    order = [backend] + [b for b in BACKENDS if b != backend]
    errors = []
    for name in order:
        try:
            with _quiet_jax():
                fn = pm.pytensorf.compile([], loss, updates=updates, random_seed=seed, mode=BACKENDS[name])
            if name != backend:
                log.warning("backend %s is unavailable (%s); training on %s instead", backend, errors[0], name)
            return fn, name
        except Exception as exc:  # noqa: BLE001 - a missing jax, a missing conversion, a compiler error...
            errors.append(f"{type(exc).__name__}: {exc}"[:300])
    raise RuntimeError("no backend could compile the model:\n  " + "\n  ".join(errors))


@contextlib.contextmanager
def _quiet_jax():
    """JAX copies the shared RNGs and truncates int64 indices to int32: both expected, not news."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*RandomType SharedVariables.*", category=UserWarning)
        warnings.filterwarnings("ignore", message=".*Explicitly requested dtype.*", category=UserWarning)
        yield


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """Treat SIGTERM (``kill``, a job scheduler's stop) like Ctrl-C: save a checkpoint, then stop.

    Background jobs started by a shell ignore SIGINT, so SIGTERM is how they are stopped.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _state_variables(updates) -> list[SharedVariable]:
    """Shared variables the step updates, RNGs aside: variational parameters and optimizer state."""
    return [v for v in updates if isinstance(v, SharedVariable) and not isinstance(v.type, RandomType)]


def _save_checkpoint(path: Path, state: list[SharedVariable], elbo: list[float], timing: dict, key: dict) -> None:
    """``timing``: the :data:`TIMING` figures so far."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    arrays = {f"state_{i}": np.asarray(v.get_value()) for i, v in enumerate(state)}
    with open(tmp, "wb") as fh:
        np.savez(fh, elbo=np.asarray(elbo, dtype=np.float64), key=json.dumps(key), **timing, **arrays)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _load_checkpoint(path: Path, state: list[SharedVariable], key: dict) -> tuple[list[float], dict]:
    """The ELBO history and the :data:`TIMING` figures of a checkpoint; its state goes into ``state``."""
    try:
        with np.load(path) as data:
            saved_key = json.loads(str(data["key"]))
            if saved_key != key:
                diff = {k: (saved_key.get(k), v) for k, v in key.items() if saved_key.get(k) != v}
                raise CheckpointError(
                    f"{path}: made for other settings {diff} (saved, now); resume with the same "
                    f"model, prior and optimizer, or start afresh without --resume"
                )
            values = [data[f"state_{i}"] for i in range(len(state))]
            elbo = list(data["elbo"])
            timing = {k: type(default)(data[k]) for k, default in TIMING.items() if k in data.files}
            if "iterations_per_s" not in timing and timing["wall_time_s"] > 0:
                # a checkpoint written before the speed was saved: the mean speed of all its steps
                timing["iterations_per_s"] = len(elbo) / timing["wall_time_s"]
    except CheckpointError:
        raise
    except Exception as exc:
        raise CheckpointError(f"{path}: damaged checkpoint ({type(exc).__name__}: {exc}); delete it and start afresh") from exc
    for var, value in zip(state, values):
        if var.get_value().shape != value.shape:
            raise CheckpointError(f"{path}: {var.name} has shape {value.shape}, the model needs {var.get_value().shape}")
        var.set_value(value)
    return elbo, timing


def elbo_scale(approx) -> float:
    """What turns PyMC's loss into the full-data ELBO: PyMC divides the mini-batch ELBO, already scaled
    to ``total_size``, by ``total_size / batch_size`` (``scale_cost_to_minibatch``). The post's
    PyMC3 ``advi_minibatch`` reported the full-data ELBO, and so does every ELBO this project records."""
    return float(approx.symbolic_normalizing_constant.eval())


def fit_settings(config: FitConfig) -> dict:
    """The settings a run must keep to be continued: all of ``config`` but how long and where it runs
    (iterations, backend, checkpoint interval), which may change between a run and its continuation."""
    return {k: v for k, v in asdict(config).items() if k not in ("iterations", "backend", "checkpoint_every")}


def fit(
    model: pm.Model,
    config: FitConfig,
    checkpoint: str | os.PathLike | None = None,
    resume: bool = False,
    progress: bool = True,
    model_key: dict | None = None,
    start_from: StartState | None = None,
) -> FitResult:
    """Fit a mean-field approximation to ``model`` by mini-batch ADVI.

    Parameters
    ----------
    checkpoint
        File for the variational parameters, the optimizer state and the ELBO history, written every
        ``config.checkpoint_every`` steps, on Ctrl-C, and at the end.
    resume
        Continue from ``checkpoint`` if it exists (its settings must match).
    model_key
        What identifies the model (architecture, prior...): a checkpoint of another model is refused.
    start_from
        Where to continue from when there is no checkpoint to resume (see :class:`StartState`).

    Raises
    ------
    TrainingDiverged
        The ELBO became NaN or infinite. The checkpoint keeps the last good state.
    CheckpointError
        ``resume`` with a damaged checkpoint or one of another model or settings.
    """
    checkpoint = Path(checkpoint) if checkpoint else None
    # "elbo": checkpoints from before the ELBO was recorded on the full-data scale are refused
    key = {"model": model_key or {}, **fit_settings(config), "elbo": "full data"}
    rng = np.random.default_rng(config.seed)
    with model:
        advi = pm.ADVI(random_seed=int(rng.integers(2**31)))
    approx = advi.approx
    scale = elbo_scale(approx)
    sigma_rho = math.log(math.expm1(config.start_sigma))
    approx.params[0].set_value(_start_means(approx, config, rng))
    approx.params[1].set_value(np.full(approx.groups[0].ddim, sigma_rho, dtype=approx.params[1].get_value().dtype))

    lr = pytensor.shared(np.asarray(config.learning_rate, dtype=config.float), name="learning_rate")
    updates = advi.objective.updates(obj_optimizer=_optimizer(config, lr))
    state = _state_variables(updates)

    elbo: list[float] = []
    timing = TIMING | {"backend": config.backend}
    if resume and checkpoint and checkpoint.exists():
        elbo, saved = _load_checkpoint(checkpoint, state, key)
        timing |= saved
        log.info("resuming from %s at iteration %d", checkpoint, len(elbo))
    elif start_from is not None:
        _set_approximation(approx, start_from.means, start_from.sds)
        elbo = list(start_from.elbo)
        timing |= {k: getattr(start_from, k) for k in TIMING} | {"backend": start_from.backend or config.backend}
        log.info("continuing from stored means and sds at iteration %d (the optimizer's state starts afresh)",
                 len(elbo))
    start = len(elbo)
    interrupted = False
    last_good = start
    t_first = None  # when this part's first step ended: JAX compiles in it, so stepping is timed from there
    bar = None

    def measured() -> dict:
        """``timing`` with this part's steps added."""
        stepping = time.perf_counter() - t_first if t_first else 0.0
        steps = len(elbo) - start - 1
        now = timing | {"wall_time_s": timing["wall_time_s"] + stepping}
        if steps > 0:  # this part's speed replaces the last part's once there is one to measure
            now |= {"iterations_per_s": steps / stepping, "compile_time_s": compile_time, "backend": backend}
        return now

    if start < config.iterations:  # a checkpoint holding every iteration needs no compile
        log.info("compiling the ADVI step (%s backend)", config.backend)
        t0 = time.perf_counter()
        # a resumed run draws fresh mini-batches and noise, reproducibly from (seed, start)
        step, backend = _compile(updates.loss, updates, [config.seed, start], config.backend)
        try:
            with _quiet_jax(), _sigterm_as_interrupt():
                for i in range(start, config.iterations):
                    lr.set_value(np.asarray(_learning_rate(config, i), dtype=config.float))
                    value = -float(step()) * scale
                    if not math.isfinite(value):
                        raise TrainingDiverged(
                            f"the ELBO became {value} at iteration {i + 1}; stopped. "
                            + (f"The last good checkpoint (iteration {last_good}) is kept in {checkpoint}. "
                               if checkpoint and last_good else "")
                            + "Lower --learning-rate or --start-sigma, then resume with --resume."
                        )
                    elbo.append(value)
                    if bar is None:  # the bar starts after the compiling first step, so its it/s is stepping only
                        t_first = time.perf_counter()
                        compile_time = t_first - t0
                        bar = tqdm(total=config.iterations, initial=i + 1, unit="it", disable=not progress,
                                   dynamic_ncols=True, mininterval=0.5 if progress and os.isatty(2) else 30,
                                   smoothing=0, desc="ADVI")  # smoothing 0: the mean speed, as recorded
                    else:
                        bar.update()
                    if (i + 1) % 50 == 0:
                        bar.set_postfix_str(f"ELBO {np.mean(elbo[-50:]):,.0f}", refresh=False)
                    if checkpoint and (i + 1) % config.checkpoint_every == 0:
                        _save_checkpoint(checkpoint, state, elbo, measured(), key)
                        last_good = i + 1
        except KeyboardInterrupt:
            interrupted = True
            log.warning("interrupted at iteration %d", len(elbo))
        finally:
            if bar is not None:
                bar.close()
    final = measured()  # before the last checkpoint's write, which is not stepping
    if checkpoint and (interrupted or len(elbo) > last_good):
        _save_checkpoint(checkpoint, state, elbo, final, key)
    return FitResult(approx=approx, elbo=np.asarray(elbo), **final, interrupted=interrupted)


def approximation_params(approx, param_dims: dict[str, tuple[str, ...]]) -> tuple[dict, dict]:
    """Mean and sd of every tensor of a mean-field approximation, by parameter name.

    Weights come back in their own shape with ``param_dims`` as dims; a log-transformed hyperprior
    ``x_log__`` comes back as ``x`` (a scalar on the log scale, attribute ``transform = "log"``).
    returns (means, sds): name -> (values, dims, attrs)
    """
    group = approx.groups[0]
    # under JAX, shared values come back as JAX arrays
    mu = np.asarray(group.params_dict["mu"].get_value())
    sd = np.logaddexp(0.0, np.asarray(group.params_dict["rho"].get_value())).astype(mu.dtype)  # softplus
    means, sds = {}, {}
    for value_name, slc, shape, _ in group.ordering.values():
        if value_name.endswith("_log__"):
            name, dims, attrs = value_name[: -len("_log__")], (), {"transform": "log"}
        else:
            name, dims, attrs = value_name, param_dims[value_name], {}
        means[name] = (mu[slc].reshape(shape), dims, attrs)
        sds[name] = (sd[slc].reshape(shape), dims, attrs)
    return means, sds


def with_preset(config: FitConfig, preset: str | None) -> FitConfig:
    """``config`` with the settings of a named preset (see :data:`PRESETS`) applied."""
    if preset is None:
        return config
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    return replace(config, **PRESETS[preset])
