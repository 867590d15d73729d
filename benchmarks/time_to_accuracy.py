"""Time to accuracy: training time until test accuracy first reaches a target (96% MLP, 99% CNN).

Worker (one model per process; ours and NumPyro at each learning rate of the grid, interleaved)::

    python benchmarks/time_to_accuracy.py --model mlp --target 0.96 --cap 600 --check-every 100
    python benchmarks/time_to_accuracy.py --model cnn --cap 300 --check-every 50 --own-run cnn-mixture 2700

Every contender takes ``--check-every`` steps in turn, so that all of them train under the same
load, and its accuracy is then checked on a fixed subset of 2,000 test digits. The check is not
timed: a contender's clock holds its build, compile and step time only. Accuracy is that of the
mean network (every weight at its variational mean), for all contenders alike, computed by the
same code (:func:`benchmarks.workloads.mean_network_accuracy`). A contender stops when it reaches
the target or when its clock passes ``--cap``; "not reached in T" is reported as such.

Every contender starts every weight's sd at :data:`START_SIGMA` (0.001). Ours trains as
``bnn train --start-sigma 0.001 --learning-rate 0.001`` does (Adam, step size 1e-3 cosine-decayed
over FitConfig's 20,000 steps; the shipped ``mlp-normal`` starts so
too); NumPyro with Adam at each constant
learning rate of the grid, and is scored by the best. All of them fit the post's Normal(0, 0.1)
prior. ``--own-run`` adds ours replaying a shipped run, its prior and fit settings read from its
file in ``cached_traces/``, under a cap of its own: the CNN goal allows any of our priors, and the
shipped ``cnn-mixture`` reached 99% where no Normal(0, 0.1) fit did. Why that start: from sds of 0.01 the sds
reach the prior's 0.1 within a few thousand steps, and the mean network of such a noisy fit
stays under 96% for longer than the cap (no contender reached 96% in 10 min in the run of
2026-11-25); from 0.001 the means fit the digits first.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import implementations, workloads
from benchmarks.isolation import emit, run_worker
from benchmarks.settings import Settings

if TYPE_CHECKING:
    from core.inference import FitConfig

__all__ = ["OURS_LEARNING_RATE", "START_SIGMA", "race", "run", "table"]

START_SIGMA = 1e-3
OURS_LEARNING_RATE = 1e-3


@dataclass
class Contender:
    name: str
    implementation: str
    learning_rate: float | None
    cap_s: float
    prior: str = "normal"
    options: dict = field(default_factory=dict)  # the trainer's settings
    trainer: object = None
    clock_s: float = 0.0  # build + compile + steps; checks excluded
    iterations: int = 0
    reached_s: float | None = None
    reached_iteration: int | None = None
    history: list[tuple[int, float, float]] = field(default_factory=list)  # (iteration, clock s, accuracy)
    error: str = ""

    def summary(self) -> dict:
        return {
            "name": self.name, "implementation": self.implementation, "learning_rate": self.learning_rate,
            "prior": self.prior, "cap_s": self.cap_s, "reached_s": self.reached_s,
            "reached_iteration": self.reached_iteration, "clock_s": self.clock_s,
            "iterations": self.iterations, "best_accuracy": max((a for _, _, a in self.history), default=None),
            "history": self.history, "error": self.error,
        }


class OwnRun(NamedTuple):
    """Ours replaying a shipped ADVI run: its name, prior, the prior's parameters, fit settings, cap in s."""

    name: str
    prior: str
    prior_params: dict
    config: FitConfig
    cap_s: float


def shipped_run(name: str, cap_s: float) -> OwnRun:
    """The shipped ADVI run ``name`` (``cached_traces/NAME.nc``) to replay under ``cap_s``; ValueError if
    it is not an ADVI run."""
    from core.inference import FitConfig
    from core.store import load_run, run_attrs

    attrs = run_attrs(load_run(workloads.SHIPPED_RUNS / f"{name}.nc"))
    if attrs["method"] != "advi":
        raise ValueError(f"{name} is a {attrs['method']} run; the race replays ADVI runs")
    config = FitConfig(**{f.name: attrs[f.name] for f in fields(FitConfig) if f.name in attrs})
    return OwnRun(name, attrs["prior"], attrs["prior_params"], config, cap_s)


def race(model: str, target: float, cap_s: float, check_every: int, learning_rates: tuple[float, ...],
         data_dir: Path | None, own_run: OwnRun | None = None) -> None:
    """Race the contenders; ``own_run``: ours replaying a shipped run too, or None."""
    implementations.get("ours").prepare_process()  # the contenders share one process, and so ours' heap
    data = workloads.load(data_dir)
    images, labels = workloads.check_subset(data)
    start = {"start_sigma": START_SIGMA}
    contenders = [Contender(f"ours lr={OURS_LEARNING_RATE:g}", "ours", OURS_LEARNING_RATE, cap_s, options=start)] + [
        Contender(f"numpyro lr={lr:g}", "numpyro", lr, cap_s, options=start) for lr in learning_rates]
    if own_run is not None:
        name, prior, params, config, own_cap_s = own_run
        contenders.append(Contender(f"ours as {name} ({prior} prior, {config.iterations:,} iterations)", "ours",
                                    config.learning_rate, own_cap_s, prior=prior,
                                    options={"config": config, "prior_params": params}))
    for c in contenders:
        t0 = time.perf_counter()
        c.trainer = implementations.get(c.implementation).trainer(model, c.prior, data, learning_rate=c.learning_rate,
                                                                  **c.options)
        c.trainer.compile()
        c.clock_s = time.perf_counter() - t0
        c.iterations = 1
        emit(stage="compiled", contender=c.name, compile_s=c.clock_s)
    active = list(contenders)
    while active:
        for c in list(active):
            t0 = time.perf_counter()
            try:
                c.trainer.step(check_every)
            except (ArithmeticError, RuntimeError) as exc:  # a diverged fit is a result, not a crash
                c.error = f"{type(exc).__name__}: {exc}"[:300]
                active.remove(c)
                continue
            c.clock_s += time.perf_counter() - t0
            c.iterations += check_every
            accuracy = workloads.mean_network_accuracy(model, c.trainer.means(), images, labels)
            c.history.append((c.iterations, c.clock_s, accuracy))
            if accuracy >= target:
                c.reached_s, c.reached_iteration = c.clock_s, c.iterations
            if c.reached_s is not None or c.clock_s >= c.cap_s:
                active.remove(c)
        emit(stage="progress", contenders=[c.summary() | {"history": c.history[-1:]} for c in contenders])
    emit(stage="done", model=model, target=target, cap_s=cap_s, check_every=check_every,
         check_digits=len(labels), contenders=[c.summary() for c in contenders])


def run(settings: Settings) -> dict:
    results = {}
    for model in settings.models:
        target, cap = workloads.TARGET_ACCURACY[model], settings.accuracy_caps_s[model]
        lrs = ",".join(f"{lr:g}" for lr in settings.numpyro_learning_rates)
        args = ["benchmarks/time_to_accuracy.py", "--model", model, "--target", str(target), "--cap", str(cap),
                "--check-every", str(settings.check_every[model]), "--learning-rates", lrs]
        if settings.data_dir:
            args += ["--data-dir", str(settings.data_dir)]
        n = 1 + len(settings.numpyro_learning_rates)
        own = settings.accuracy_own_runs.get(model)
        if own is not None:
            args += ["--own-run", *map(str, own)]
        # every contender's clock runs to its cap at worst, plus starting, compiling and checking
        worker_cap = n * cap + (own[1] if own else 0.0) + (n + (own is not None)) * settings.compile_cap_s
        print(f"  time to accuracy: {model} to {target:.0%}, {n} contenders, cap {cap:.0f} s each"
              + (f"; ours as {own[0]}, cap {own[1]:.0f} s" if own else ""), flush=True)
        result = run_worker(args, worker_cap, floatx="float32")
        final = result.latest("contenders")
        results[model] = {"status": result.status, "error": result.error, "target": target, "cap_s": cap,
                          "check_every": settings.check_every[model], "check_digits": workloads.CHECK_DIGITS,
                          "contenders": final or [], "load_1min": result.latest("load_1min"),
                          "peak_rss_mb": result.latest("peak_rss_mb")}
    return results


def _outcome(c: dict) -> str:
    cap_s = c["cap_s"]
    if c["reached_s"] is not None:
        return f"{c['reached_s']:.0f} s ({c['reached_iteration']:,} it)"
    if c["error"]:
        return f"failed: {c['error'][:80]}"
    best = c["best_accuracy"]
    return f"not reached in {cap_s:.0f} s (best {best:.1%} at {c['iterations']:,} it)" if best is not None else \
        f"not reached in {cap_s:.0f} s"


def best_numpyro(contenders: list[dict]) -> dict | None:
    """NumPyro's best contender: the fastest to the target, else the most accurate."""
    numpyro = [c for c in contenders if c["implementation"] == "numpyro"]
    reached = [c for c in numpyro if c["reached_s"] is not None]
    if reached:
        return min(reached, key=lambda c: c["reached_s"])
    return max(numpyro, key=lambda c: c["best_accuracy"] or 0.0, default=None)


def table(result: dict) -> str:
    lines = [("Training time (build + compile + steps; accuracy checks excluded) until the mean network's accuracy "
              f"on {workloads.CHECK_DIGITS:,} fixed test digits first reaches the target."), "",
             "| model | target | contender | time to target | ours vs it |", "|---|---|---|---|---|"]
    for model, r in result.items():
        if not r["contenders"]:
            lines.append(f"| {model} | {r['target']:.0%} | — | {r['status']}: {r['error'][-120:]} | |")
            continue
        ours = next(c for c in r["contenders"] if c["implementation"] == "ours")
        best = best_numpyro(r["contenders"])
        for c in r["contenders"]:
            ratio = ""
            if c is not ours and ours["reached_s"] and c["reached_s"]:
                ratio = f"{c['reached_s'] / ours['reached_s']:.1f}x"
            name = c["name"] + (" (best of the grid)" if c is best and len(r["contenders"]) > 2 else "")
            lines.append(f"| {model} | {r['target']:.0%} | {name} | {_outcome(c)} | {ratio} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Time to accuracy of ours and NumPyro (a worker of run.py).")
    parser.add_argument("--model", required=True, choices=workloads.MODELS)
    parser.add_argument("--target", type=float, default=None, help="test accuracy to reach (default: 0.96 MLP, 0.99 CNN)")
    parser.add_argument("--cap", type=float, default=600.0, help="seconds of each contender's clock before giving up")
    parser.add_argument("--check-every", type=int, default=100, help="steps between accuracy checks")
    parser.add_argument("--learning-rates", default="0.001,0.003,0.01", help="NumPyro's grid, comma-separated")
    parser.add_argument("--data-dir", type=Path, default=None, help="folder of the MNIST files")
    parser.add_argument("--own-run", nargs=2, metavar=("RUN", "CAP"), default=None,
                        help="ours replaying the shipped run RUN too (cached_traces/RUN.nc), its own cap in s")
    args = parser.parse_args(argv)
    own = None
    if args.own_run:
        name, cap = args.own_run
        shipped = sorted(p.stem for p in workloads.SHIPPED_RUNS.glob("*.nc"))
        if name not in shipped:
            parser.error(f"--own-run: {name!r} is not a shipped run; choose one of {', '.join(shipped)}")
        try:
            own = shipped_run(name, float(cap))
        except ValueError as exc:
            parser.error(f"--own-run: {exc}")
    race(args.model, args.target or workloads.TARGET_ACCURACY[args.model], args.cap, args.check_every,
         tuple(float(v) for v in args.learning_rates.split(",")), args.data_dir, own)


if __name__ == "__main__":
    main()
