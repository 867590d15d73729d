"""How long and how much each benchmark measures: full settings, and quick ones for smoke tests.

Quick settings take a few seconds per measurement: enough to see that every script works and to
get rough ratios, not figures to compare across commits. Where a quick setting changes what a goal
is about (fewer test digits, a shorter cap than the goal's time), the goal reads "n/a (quick)".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from benchmarks import workloads

__all__ = ["FULL", "QUICK", "SECTIONS", "Settings"]

SECTIONS = ("training", "time_to_accuracy", "prediction", "app")


@dataclass(frozen=True)
class Settings:
    quick: bool
    data_dir: Path | None = None
    models: tuple[str, ...] = workloads.MODELS
    priors: tuple[str, ...] = workloads.PRIORS
    implementations: tuple[str, ...] = ("ours", "numpyro", "numpyro-heap", "plain", "plain-jax")
    repeats: int = 1  # rounds of every implementation in turn (interleaved: load changes hit all alike)

    # training throughput, per worker process
    train_seconds: float = 20.0  # steady-state stepping measured, after compile and 2 warm-up steps
    compile_cap_s: float = 600.0  # cap on start, build and compile (plain PyMC's Numba compile takes minutes)
    plain_cnn_iterations: int = 1  # plain PyMC's CNN runs at ~0.01 it/s: time one step only
    plain_cnn_cap_s: float = 420.0  # its Numba compile and each of its steps take minutes

    # time to accuracy (ours and NumPyro interleaved in one process)
    accuracy_caps_s: dict[str, float] = field(default_factory=lambda: {"mlp": 600.0, "cnn": 300.0})
    check_every: dict[str, int] = field(default_factory=lambda: {"mlp": 100, "cnn": 50})
    numpyro_learning_rates: tuple[float, ...] = (1e-3, 3e-3, 1e-2)
    # ours replaying a shipped run too, where the goal allows any of our priors (the CNN to 99%): the
    # run's name in cached_traces/ (its prior and fit settings are read from its file) and its cap,
    # the goal's time (45 min)
    accuracy_own_runs: dict[str, tuple[str, float]] = field(default_factory=lambda: {"cnn": ("cnn-mixture", 2700.0)})

    # prediction
    predict_digits: int = 10_000
    predict_draws: int = 100
    predict_cap_s: float = 300.0

    # app
    runs_dir: Path | None = None  # None: cached_traces/, or synthetic runs if it holds none
    app_clicks: int = 30  # digit selections timed in one session
    app_sessions: tuple[int, ...] = (10, 50)
    app_session_seconds: float = 30.0  # how long each concurrency level is driven


FULL = Settings(quick=False)

QUICK = Settings(
    quick=True,
    priors=("normal",),
    train_seconds=3.0,
    compile_cap_s=180.0,
    plain_cnn_cap_s=60.0,
    accuracy_caps_s={"mlp": 30.0, "cnn": 30.0},
    accuracy_own_runs={"cnn": ("cnn-mixture", 30.0)},
    check_every={"mlp": 20, "cnn": 10},
    numpyro_learning_rates=(3e-3,),
    predict_digits=500,
    predict_cap_s=120.0,
    app_clicks=5,
    app_sessions=(5,),
    app_session_seconds=15.0,
)
