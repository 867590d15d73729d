"""Mini-batch ADVI in two levels, as PyMC has them: a stepper, and the loop around it.

:class:`ADVIStepper` holds one fit's state. PyMC builds the objective (``pm.ADVI``: mean-field
Normal, ELBO by Monte Carlo on a mini-batch scaled by ``total_size``); the stepper sets the start
values and the optimizer, compiles one step on the chosen backend (falling back to another that
works), and takes ``step(n)`` steps on the learning-rate schedule. It exposes its state (iteration,
ELBO history, the schedule's position) and its approximation (means and sds by tensor name), and
loads a start state: a checkpoint's, or a :class:`StartState` (a run file's).

:func:`fit` is the loop around any :class:`Stepper`: it resumes, steps to ``config.iterations``
with a progress bar, checkpoints every N steps, stops cleanly on Ctrl-C or SIGTERM, refuses to go on
once the ELBO is NaN or infinite, and times compiling apart from stepping. The loop knows nothing of
ADVI, so that another stepper (a MAP fit, a member of a deep ensemble) can reuse it. The benchmarks
step an :class:`ADVIStepper` in chunks themselves (benchmarks/ours.py).
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import math
import os
import signal
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Protocol

import numpy as np
import pymc as pm
import pytensor
from pytensor.compile.sharedvalue import SharedVariable
from pytensor.tensor.random.type import RandomType
from tqdm.auto import tqdm

from . import jax_cpu

__all__ = ["BACKENDS", "METHODS", "OPTIMIZERS", "PRESETS", "ADVIStepper", "Checkpoint", "CheckpointError", "FitConfig",
           "FitResult", "MAPStepper", "StartState", "StepState", "Stepper", "TrainingDiverged", "approximation_params", "elbo_scale",
           "fit", "fit_settings", "load_checkpoint", "save_checkpoint", "with_preset"]

log = logging.getLogger(__name__)

BACKENDS = {"jax": "JAX", "numba": "NUMBA", "c": "CVM"}
METHODS = ("advi", "map")  # a deep ensemble is several MAP fits (core.runs)
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

    method: str = "advi"  # advi: mean-field ADVI (ADVIStepper); map: the posterior's mode (MAPStepper)
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
            (self.method in METHODS, f"method must be one of {METHODS}"),
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


@dataclass
class Checkpoint:
    """A fit's whole state, as a checkpoint file holds it: the stepper's arrays (for ADVI the variational
    parameters and the optimizer's moments, in the stepper's order), the ELBO history, and the
    :data:`TIMING` figures so far."""

    arrays: list[np.ndarray]
    elbo: list[float]
    timing: dict = field(default_factory=dict)


@dataclass(frozen=True)
class StepState:
    """Where a stepper is: ``iteration`` steps taken (a resumed fit's earlier parts included) and the
    ELBO of each; ``learning_rate`` is the step size of the next step, the schedule (step size by
    iteration) at that position."""

    iteration: int
    elbo: tuple[float, ...]
    schedule: Callable[[int], float] = field(repr=False, compare=False)

    @property
    def learning_rate(self) -> float:
        return self.schedule(self.iteration)


class Stepper(Protocol):
    """What :func:`fit`'s loop drives: one fit's state, stepped ``n`` steps at a time.

    ``backend`` is what :meth:`compile` compiled for; ``kind`` names the fit (``ADVI``, ``MAP``) and
    ``objective`` what it records (``ELBO``, ``log posterior``). ``step`` returns the objective
    (full-data scale) of each step taken, and stops after a step whose objective is not finite. ``approximation`` gives (means,
    sds) by tensor name. ``load`` takes a :class:`Checkpoint` or a :class:`StartState`, before
    compiling; ``checkpoint`` gives the state to save (its ``timing`` left to the loop).
    """

    backend: str
    kind: str
    objective: str

    def compile(self) -> None: ...

    def step(self, n: int) -> np.ndarray: ...

    def state(self) -> StepState: ...

    def approximation(self) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]: ...

    def load(self, start: Checkpoint | StartState) -> None: ...

    def checkpoint(self) -> Checkpoint: ...


@dataclass
class FitResult:
    """The fitted stepper and how the fit went.

    elbo : (iteration,) the full-data ELBO (:func:`elbo_scale`) of every step from the first (resumed runs included)
    """

    stepper: Stepper
    elbo: np.ndarray
    wall_time_s: float  # stepping time of every part of the fit (a resumed fit has several), compiling excluded
    iterations_per_s: float  # stepping speed of the last part that stepped
    compile_time_s: float  # of that part: PyTensor's compile and the first step (where JAX compiles)
    backend: str  # of that part
    interrupted: bool = False
    extra: dict = field(default_factory=dict)

    @property
    def approx(self):
        """The PyMC approximation of an :class:`ADVIStepper`'s fit."""
        return self.stepper.approx

    def approximation(self) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """(means, sds) by tensor name, as :meth:`Stepper.approximation`."""
        return self.stepper.approximation()


def _learning_rate(config: FitConfig, step: int) -> float:
    if config.lr_schedule == "constant":
        return config.learning_rate
    floor = config.lr_floor * config.learning_rate
    decay = config.iterations * (1.0 - config.lr_hold)
    return floor + 0.5 * (config.learning_rate - floor) * (1.0 + math.cos(math.pi * min(step / decay, 1.0)))


def _start_value(name: str, shape: tuple[int, ...], config: FitConfig, rng: np.random.Generator) -> np.ndarray | None:
    """The start of tensor ``name``: Glorot-scaled Normal weights (``.W``) and zero biases, or the post's
    Normal(0, 1) for every tensor; None (keep the default, 0) for a log-scale hyperprior (``_log__``)."""
    if name.endswith("_log__"):
        return None
    size = int(np.prod(shape))
    if config.start == "post":
        return rng.standard_normal(size)
    if name.endswith(".W"):
        fan_in = int(np.prod(shape[:-1]))
        fan_out = shape[-1] * (int(np.prod(shape[:2])) if len(shape) == 4 else 1)
        return rng.standard_normal(size) * math.sqrt(2.0 / (fan_in + fan_out))
    return np.zeros(size)


def _start_means(approx, config: FitConfig, rng: np.random.Generator) -> np.ndarray:
    """Start values of the variational means (:func:`_start_value`); hyperpriors (log scale) start at log 1 = 0."""
    group = approx.groups[0]
    mu = np.zeros(group.ddim, dtype=approx.params[0].get_value().dtype)
    for name, slc, shape, _ in group.ordering.values():
        value = _start_value(name, tuple(shape), config, rng)
        if value is not None:
            mu[slc] = value
    return mu


def _optimizer(config: FitConfig, lr):
    kwargs = {"learning_rate": lr} | ({"epsilon": config.epsilon} if config.epsilon is not None else {})
    if config.optimizer == "adam":
        return pm.adam(**kwargs)
    return pm.adagrad_window(**kwargs, n_win=10)


def _compile(loss, updates, seed, backend: str):
    """Compile one step on ``backend``, falling back to the next backend that works. On JAX, the
    step draws its noise once, hashed unrolled (:mod:`core.jax_cpu`)."""
    order = [backend] + [b for b in BACKENDS if b != backend]
    errors = []
    for name in order:
        try:
            with _quiet_jax():
                outputs, step_updates = loss, updates
                if name == "jax":
                    outputs, *values = jax_cpu.isolate_noise([loss, *updates.values()])
                    step_updates = dict(zip(updates.keys(), values))
                fn = pm.pytensorf.compile([], outputs, updates=step_updates, random_seed=seed, mode=BACKENDS[name])
                if name == "jax":
                    jax_cpu.unroll_step_keys(fn)
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


def _read_approximation(approx) -> tuple[dict, dict, dict]:
    """Each tensor's mean and sd of a mean-field approximation by name (``x_log__`` as ``x``), and
    whether it is on the log scale."""
    group = approx.groups[0]
    # under JAX, shared values come back as JAX arrays
    mu = np.asarray(group.params_dict["mu"].get_value())
    sd = np.logaddexp(0.0, np.asarray(group.params_dict["rho"].get_value())).astype(mu.dtype)  # softplus
    means, sds, log_scale = {}, {}, {}
    for value_name, slc, shape, _ in group.ordering.values():
        name = value_name.removesuffix("_log__")
        means[name], sds[name], log_scale[name] = mu[slc].reshape(shape), sd[slc].reshape(shape), name != value_name
    return means, sds, log_scale


def elbo_scale(approx) -> float:
    """What turns PyMC's loss into the full-data ELBO: PyMC divides the mini-batch ELBO, already scaled
    to ``total_size``, by ``total_size / batch_size`` (``scale_cost_to_minibatch``). The post's
    PyMC3 ``advi_minibatch`` reported the full-data ELBO, and so does every ELBO this project records."""
    return float(approx.symbolic_normalizing_constant.eval())


class _ScheduledStepper:
    """What an ADVI and a MAP fit share: the compiled step on the step-size schedule, its state, checkpoints.

    A subclass builds ``_loss`` (to minimize), ``_updates`` (the optimizer's, from ``_optimizer``),
    ``_lr`` (the step size, a shared scalar) and ``_scale`` (what turns ``-loss`` into the recorded
    objective), then calls :meth:`_track`.
    """

    kind = ""  # what the progress bar and log call the fit
    objective = ""  # what the recorded values are

    def __init__(self, config: FitConfig) -> None:
        self.config = config
        self.backend = config.backend
        self._elbo: list[float] = []
        self._fn = None

    def _track(self) -> None:
        # the shared variables the step updates, RNGs aside: the parameters and the optimizer's state
        self._state = [v for v in self._updates if isinstance(v, SharedVariable) and not isinstance(v.type, RandomType)]

    def compile(self) -> None:
        """Compile the step (once; later calls do nothing). JAX compiles on the first step, not here."""
        if self._fn is None:
            log.info("compiling the %s step (%s backend)", self.kind, self.config.backend)
            with pytensor.config.change_flags(floatX=self.config.float):
                self._fn, self.backend = _compile(self._loss, self._updates, [self.config.seed, len(self._elbo)],
                                                  self.config.backend)

    def step(self, n: int = 1) -> np.ndarray:
        """Take ``n`` steps (compiling first if need be); returns the objective of each. Stops after a step
        whose objective is NaN or infinite: the parameters are no longer usable, and that value ends the result."""
        self.compile()
        start = len(self._elbo)
        with _quiet_jax():
            for _ in range(n):
                self._lr.set_value(np.asarray(_learning_rate(self.config, len(self._elbo)), dtype=self.config.float))
                value = -float(self._fn()) * self._scale
                self._elbo.append(value)
                if not math.isfinite(value):
                    break
        return np.asarray(self._elbo[start:])

    def state(self) -> StepState:
        return StepState(iteration=len(self._elbo), elbo=tuple(self._elbo),
                         schedule=lambda i: _learning_rate(self.config, i))

    def load(self, start: Checkpoint | StartState) -> None:
        """Continue from a checkpoint (every array of the state) or a :class:`StartState` (the means and
        sds; the optimizer's state starts afresh). Raises :class:`CheckpointError` when it does not fit."""
        if self._fn is not None:
            raise RuntimeError("load a start state before compiling: the compiled step draws from the start iteration")
        if isinstance(start, Checkpoint):
            if len(start.arrays) != len(self._state):
                raise CheckpointError(f"{len(start.arrays)} arrays of state, the model needs {len(self._state)}")
            for var, value in zip(self._state, start.arrays):
                if var.get_value().shape != value.shape:
                    raise CheckpointError(f"{var.name} has shape {value.shape}, the model needs {var.get_value().shape}")
            for var, value in zip(self._state, start.arrays):
                var.set_value(value)
        else:
            self._set_approximation(start.means, start.sds)
        self._elbo = [float(v) for v in start.elbo]

    def checkpoint(self) -> Checkpoint:
        return Checkpoint(arrays=[np.asarray(v.get_value()) for v in self._state], elbo=list(self._elbo))

    def _set_approximation(self, means: dict[str, np.ndarray], sds: dict[str, np.ndarray]) -> None:
        raise NotImplementedError


class ADVIStepper(_ScheduledStepper):
    """Mean-field ADVI of ``model`` as ``config`` says, stepped ``n`` steps at a time (see :class:`Stepper`).

    Made, it holds the start values (``config.start``, ``config.start_sigma``, from ``config.seed``) and
    the symbolic step; :meth:`compile` compiles it (once) on ``config.backend`` or the next backend
    that works, with mini-batches and noise drawn reproducibly from (seed, iteration at compile), so a
    resumed fit draws fresh ones. :meth:`load` a start state before compiling. The step size follows
    ``config``'s schedule over ``config.iterations`` by the iteration count, resumed steps included.
    PyTensor's floatX is ``config.float`` while it builds and compiles.
    """

    kind, objective = "ADVI", "ELBO"

    def __init__(self, model: pm.Model, config: FitConfig) -> None:
        super().__init__(config)
        rng = np.random.default_rng(config.seed)
        with pytensor.config.change_flags(floatX=config.float):
            with model:
                advi = pm.ADVI(random_seed=int(rng.integers(2**31)))
            self.approx = approx = advi.approx
            self._scale = elbo_scale(approx)
            sigma_rho = math.log(math.expm1(config.start_sigma))
            approx.params[0].set_value(_start_means(approx, config, rng))
            approx.params[1].set_value(np.full(approx.groups[0].ddim, sigma_rho, dtype=approx.params[1].get_value().dtype))
            self._lr = pytensor.shared(np.asarray(config.learning_rate, dtype=config.float), name="learning_rate")
            self._updates = advi.objective.updates(obj_optimizer=_optimizer(config, self._lr))
        self._loss = self._updates.loss
        self._track()

    def approximation(self) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """(means, sds) by tensor name; a hyperprior fitted on the log scale (``x_log__``) as ``x``, on that scale."""
        means, sds, _ = _read_approximation(self.approx)
        return means, sds

    def _set_approximation(self, means: dict[str, np.ndarray], sds: dict[str, np.ndarray]) -> None:
        """Set the variational means and sds (as softplus^-1) by tensor name: the inverse of :meth:`approximation`."""
        group = self.approx.groups[0]
        mu, rho = (np.array(group.params_dict[k].get_value()) for k in ("mu", "rho"))
        for value_name, slc, shape, _ in group.ordering.values():
            name = value_name.removesuffix("_log__")
            if name not in means or np.shape(means[name]) != tuple(shape):
                raise CheckpointError(f"no start values of shape {tuple(shape)} for {name!r}")
            mu[slc] = np.ravel(means[name])
            rho[slc] = np.log(np.expm1(np.ravel(sds[name]).astype(np.float64)))
        group.params_dict["mu"].set_value(mu.astype(mu.dtype))
        group.params_dict["rho"].set_value(rho.astype(mu.dtype))


class MAPStepper(_ScheduledStepper):
    """The maximum a posteriori fit of ``model``, on the same mini-batches, optimizer and schedule as
    :class:`ADVIStepper` (see :class:`Stepper`).

    Each step ascends the model's log density at a point: the prior's log density plus the
    mini-batch's log likelihood scaled to ``total_size``, the same full-data scale as the ELBO. It is
    that log density that the stepper records in place of the ELBO (PyMC's ``model.logp`` without the
    Jacobian of any transform: the mode of the density itself). Under a Normal(0, s) prior the
    prior's term is the L2 penalty ``|w|^2 / (2 s^2)``. The tensors start where ADVI's means do.
    A model with a transformed (positive) variable, a hierarchical prior's scale, is refused: its
    density is unbounded as every scale goes to zero, so it has no useful mode.
    """

    kind, objective = "MAP", "log posterior"

    def __init__(self, model: pm.Model, config: FitConfig) -> None:
        super().__init__(config)
        transformed = [v.name for v in model.value_vars if v.name.endswith("__")]
        if transformed:
            raise ValueError(f"a MAP fit of a model with hyperpriors ({', '.join(transformed[:3])}...) has no useful "
                             "mode: their scales collapse to zero. Fit it by ADVI, or choose a fixed or mixture prior")
        rng = np.random.default_rng(config.seed)
        with pytensor.config.change_flags(floatX=config.float):
            self._params = {}
            for var in model.value_vars:
                shape = tuple(model.initial_point()[var.name].shape)
                start = _start_value(var.name, shape, config, rng)
                self._params[var.name] = pytensor.shared(np.asarray(start, dtype=config.float).reshape(shape),
                                                         name=var.name)
            logp = pytensor.graph.clone_replace(model.logp(jacobian=False),
                                                {var: self._params[var.name] for var in model.value_vars})
            self._loss = -logp
            self._scale = 1.0
            self._lr = pytensor.shared(np.asarray(config.learning_rate, dtype=config.float), name="learning_rate")
            self._updates = _optimizer(config, self._lr)(self._loss, list(self._params.values()))
        self._track()

    def approximation(self) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """(values, zeros) by tensor name: a point estimate, as a mean-field approximation of zero spread."""
        values = {name: np.asarray(p.get_value()) for name, p in self._params.items()}
        return values, {name: np.zeros_like(v) for name, v in values.items()}

    def _set_approximation(self, means: dict[str, np.ndarray], sds: dict[str, np.ndarray]) -> None:
        for name, param in self._params.items():
            if name not in means or np.shape(means[name]) != param.get_value().shape:
                raise CheckpointError(f"no start values of shape {param.get_value().shape} for {name!r}")
            param.set_value(np.asarray(means[name], dtype=param.get_value().dtype))


def approximation_params(approx, param_dims: dict[str, tuple[str, ...]]) -> tuple[dict, dict]:
    """Mean and sd of every tensor of a mean-field approximation, by parameter name.

    Weights come back in their own shape with ``param_dims`` as dims; a log-transformed hyperprior
    ``x_log__`` comes back as ``x`` (a scalar on the log scale, attribute ``transform = "log"``).
    returns (means, sds): name -> (values, dims, attrs)
    """
    means, sds, log_scale = _read_approximation(approx)
    info = {name: ((), {"transform": "log"}) if log_scale[name] else (param_dims[name], {}) for name in means}
    return ({k: (v, *info[k]) for k, v in means.items()}, {k: (v, *info[k]) for k, v in sds.items()})


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


def save_checkpoint(path: Path, checkpoint: Checkpoint, key: dict) -> None:
    """Write ``checkpoint`` atomically, with ``key`` (what it was made for, see :func:`load_checkpoint`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    arrays = {f"state_{i}": value for i, value in enumerate(checkpoint.arrays)}
    with open(tmp, "wb") as fh:
        np.savez(fh, elbo=np.asarray(checkpoint.elbo, dtype=np.float64), key=json.dumps(key), **checkpoint.timing,
                 **arrays)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def load_checkpoint(path: Path, key: dict) -> Checkpoint:
    """A checkpoint written by :func:`save_checkpoint` for the same ``key``.

    Raises :class:`CheckpointError` when it was made for another key, or is damaged."""
    try:
        with np.load(path) as data:
            saved_key = json.loads(str(data["key"]))
            if saved_key != key:
                diff = {k: (saved_key.get(k), v) for k, v in key.items() if saved_key.get(k) != v}
                raise CheckpointError(
                    f"{path}: made for other settings {diff} (saved, now); resume with the same "
                    f"model, prior and optimizer, or start afresh without --resume"
                )
            arrays = [data[f"state_{i}"] for i in range(sum(k.startswith("state_") for k in data.files))]
            elbo = list(data["elbo"])
            timing = {k: type(default)(data[k]) for k, default in TIMING.items() if k in data.files}
            if "iterations_per_s" not in timing and timing["wall_time_s"] > 0:
                # a checkpoint written before the speed was saved: the mean speed of all its steps
                timing["iterations_per_s"] = len(elbo) / timing["wall_time_s"]
    except CheckpointError:
        raise
    except Exception as exc:
        raise CheckpointError(f"{path}: damaged checkpoint ({type(exc).__name__}: {exc}); delete it and start afresh") from exc
    return Checkpoint(arrays=arrays, elbo=elbo, timing=timing)


def fit_settings(config: FitConfig) -> dict:
    """The settings a run must keep to be continued: all of ``config`` but how long and where it runs
    (iterations, backend, checkpoint interval), which may change between a run and its continuation."""
    return {k: v for k, v in asdict(config).items() if k not in ("iterations", "backend", "checkpoint_every")}


def fit(
    model: pm.Model | Stepper,
    config: FitConfig,
    checkpoint: str | os.PathLike | None = None,
    resume: bool = False,
    progress: bool = True,
    model_key: dict | None = None,
    start_from: StartState | None = None,
) -> FitResult:
    """Fit ``model`` to ``config.iterations`` steps: for a PyMC model by mini-batch ADVI (an
    :class:`ADVIStepper`) or its mode (a :class:`MAPStepper`, ``config.method == "map"``), or with any
    :class:`Stepper` given instead.

    Parameters
    ----------
    checkpoint
        File for the stepper's state and the ELBO history, written every ``config.checkpoint_every``
        steps, on Ctrl-C, and at the end.
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
    if isinstance(model, pm.Model):
        stepper = (MAPStepper if config.method == "map" else ADVIStepper)(model, config)
    else:
        stepper = model
    checkpoint = Path(checkpoint) if checkpoint else None
    # "elbo": checkpoints from before the ELBO was recorded on the full-data scale are refused
    key = {"model": model_key or {}, **fit_settings(config), "elbo": "full data"}
    timing = TIMING | {"backend": config.backend}
    if resume and checkpoint and checkpoint.exists():
        saved = load_checkpoint(checkpoint, key)
        try:
            stepper.load(saved)
        except CheckpointError as exc:
            raise CheckpointError(f"{checkpoint}: {exc}") from exc
        timing |= saved.timing
        log.info("resuming from %s at iteration %d", checkpoint, len(saved.elbo))
    elif start_from is not None:
        stepper.load(start_from)
        timing |= {k: getattr(start_from, k) for k in TIMING} | {"backend": start_from.backend or config.backend}
        log.info("continuing from stored means and sds at iteration %d (the optimizer's state starts afresh)",
                 len(start_from.elbo))
    return _loop(stepper, config, checkpoint, key, timing, progress)


def _loop(stepper: Stepper, config: FitConfig, checkpoint: Path | None, key: dict, timing: dict,
          progress: bool) -> FitResult:
    """Step ``stepper`` to ``config.iterations``: progress, checkpoints, the NaN guard, signals, timing.

    ``timing``: the :data:`TIMING` figures of the parts before this one."""
    start = done = stepper.state().iteration
    interrupted = False
    last_good = start
    t_first = None  # when this part's first step ended: JAX compiles in it, so stepping is timed from there
    compile_time = math.nan
    recent = collections.deque(maxlen=50)  # the progress bar's ELBO: the mean of the last 50
    bar = None

    def measured() -> dict:
        """``timing`` with this part's steps added."""
        stepping = time.perf_counter() - t_first if t_first else 0.0
        steps = done - start - 1
        now = timing | {"wall_time_s": timing["wall_time_s"] + stepping}
        if steps > 0:  # this part's speed replaces the last part's once there is one to measure
            now |= {"iterations_per_s": steps / stepping, "compile_time_s": compile_time, "backend": stepper.backend}
        return now

    def save() -> None:
        save_checkpoint(checkpoint, replace(stepper.checkpoint(), timing=measured()), key)

    if start < config.iterations:  # a checkpoint holding every iteration needs no compile
        t0 = time.perf_counter()
        stepper.compile()
        try:
            with _sigterm_as_interrupt():
                for i in range(start, config.iterations):
                    (value,) = stepper.step(1)
                    if not math.isfinite(value):
                        raise TrainingDiverged(
                            f"the ELBO became {value} at iteration {i + 1}; stopped. "
                            + (f"The last good checkpoint (iteration {last_good}) is kept in {checkpoint}. "
                               if checkpoint and last_good else "")
                            + "Lower --learning-rate or --start-sigma, then resume with --resume."
                        )
                    done = i + 1
                    recent.append(value)
                    if bar is None:  # the bar starts after the compiling first step, so its it/s is stepping only
                        t_first = time.perf_counter()
                        compile_time = t_first - t0
                        bar = tqdm(total=config.iterations, initial=done, unit="it", disable=not progress,
                                   dynamic_ncols=True, mininterval=0.5 if progress and os.isatty(2) else 30,
                                   smoothing=0, desc=stepper.kind)  # smoothing 0: the mean speed
                    else:
                        bar.update()
                    if done % 50 == 0:
                        bar.set_postfix_str(f"{stepper.objective} {np.mean(recent):,.0f}",
                                            refresh=False)
                    if checkpoint and done % config.checkpoint_every == 0:
                        save()
                        last_good = done
        except KeyboardInterrupt:
            interrupted = True
            done = stepper.state().iteration  # a step interrupted after its update was recorded counts
            log.warning("interrupted at iteration %d", done)
        finally:
            if bar is not None:
                bar.close()
    final = measured()  # before the last checkpoint's write, which is not stepping
    if checkpoint and (interrupted or done > last_good):
        save_checkpoint(checkpoint, replace(stepper.checkpoint(), timing=final), key)
    return FitResult(stepper=stepper, elbo=np.asarray(stepper.state().elbo), **final, interrupted=interrupted)


def with_preset(config: FitConfig, preset: str | None) -> FitConfig:
    """``config`` with the settings of a named preset (see :data:`PRESETS`) applied."""
    if preset is None:
        return config
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    return replace(config, **PRESETS[preset])
