"""Run the benchmarks, print their tables and the goals, and write the results as JSON.

    python benchmarks/run.py [--quick] [--only training,prediction,time_to_accuracy,app]
                             [--out benchmarks/results/latest.json]

Sections run in the order given; within a section the implementations run in turn (interleaved,
``--repeats`` rounds), each measurement in a process of its own. See benchmarks/README.md for what
each number means. The JSON holds the machine (CPU, cores, load averages before and after each
section, versions, git commit, date), the settings and every measurement, so that figures can be
compared across commits.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import app, goals, implementations, machine, prediction, time_to_accuracy, training, workloads
from benchmarks.settings import FULL, QUICK, SECTIONS

MODULES = {"training": training, "time_to_accuracy": time_to_accuracy, "prediction": prediction, "app": app}
TITLES = {"training": "Training throughput", "time_to_accuracy": "Time to accuracy", "prediction": "Prediction",
          "app": "App"}


def _choices(text: str, allowed, what: str) -> tuple[str, ...]:
    values = tuple(v.strip() for v in text.split(",") if v.strip())
    unknown = [v for v in values if v not in allowed]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown {what} {', '.join(unknown)}; choose from {', '.join(allowed)}")
    return values


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a few seconds per measurement (smoke test)")
    parser.add_argument("--only", type=lambda t: _choices(t, SECTIONS, "section"), default=SECTIONS,
                        help=f"comma-separated sections (default all: {','.join(SECTIONS)})")
    parser.add_argument("--out", type=Path, default=workloads.ROOT / "benchmarks" / "results" / "latest.json",
                        help="JSON file to write (default benchmarks/results/latest.json)")
    parser.add_argument("--data-dir", type=Path, default=None, help="folder of the MNIST files "
                        f"(default $BNN_MNIST_DIR, else {workloads.default_data_dir()})")
    parser.add_argument("--models", type=lambda t: _choices(t, workloads.MODELS, "model"), help="e.g. mlp")
    parser.add_argument("--priors", type=lambda t: _choices(t, workloads.PRIORS, "prior"),
                        help="training priors (quick default: normal only)")
    parser.add_argument("--implementations", type=lambda t: _choices(t, tuple(implementations.IMPLEMENTATIONS),
                                                                     "implementation"), help="e.g. ours,numpyro")
    parser.add_argument("--repeats", type=int, help="rounds of every implementation in turn (default 1)")
    parser.add_argument("--seconds", type=float, help="training: seconds of steady-state stepping per measurement")
    parser.add_argument("--runs", type=Path, help="app: folder of runs to serve (default cached_traces/)")
    return parser.parse_args(argv)


def settings_from(args: argparse.Namespace):
    base = QUICK if args.quick else FULL
    overrides = {"data_dir": args.data_dir, "models": args.models, "priors": args.priors,
                 "implementations": args.implementations, "repeats": args.repeats, "train_seconds": args.seconds,
                 "runs_dir": args.runs}
    return dataclasses.replace(base, **{k: v for k, v in overrides.items() if v is not None})


def _jsonable(settings) -> dict:
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(settings).items()}


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    settings = settings_from(args)
    result = {"schema": "bnn-mnist-benchmarks", "schema_version": 1, "machine": machine.describe(),
              "settings": _jsonable(settings), "load_average": {}, "seconds": {}}
    result["gpu"] = result["machine"]["gpu"]
    print(f"benchmarks ({'quick' if settings.quick else 'full'}) on {result['machine']['cpu']}, "
          f"{result['machine']['cores']} cores, load {result['machine']['load_average']}", flush=True)
    for section in args.only:
        print(f"{TITLES[section]}...", flush=True)
        before, t0 = machine.load_average(), time.perf_counter()
        result[section] = MODULES[section].run(settings)
        result["seconds"][section] = time.perf_counter() - t0
        result["load_average"][section] = {"before": before, "after": machine.load_average()}
    result["goals"] = goals.evaluate(result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))

    print(f"\n# Benchmarks ({'QUICK settings: smoke test, not figures' if settings.quick else 'full settings'})")
    m = result["machine"]
    print(f"{m['date']}, commit {m['git_commit']}{' (uncommitted changes)' if m['git_dirty'] else ''}; {m['cpu']}, "
          f"{m['cores']} cores, GPU {m['gpu']}")
    for section in args.only:
        load = result["load_average"][section]
        print(f"\n## {TITLES[section]} (load average {load['before'][0]:.1f} before, {load['after'][0]:.1f} after; "
              f"{result['seconds'][section]:.0f} s)\n")
        print(MODULES[section].table(result[section]))
    print("\n## Goals\n")
    print(goals.table(result["goals"]))
    print(f"\nwritten to {args.out}")
    return result


if __name__ == "__main__":
    main()
