"""Training throughput: ADVI iterations per second, build and compile time, peak memory.

Worker (one implementation, model and prior per process, see :mod:`benchmarks.isolation`)::

    python benchmarks/training.py --impl numpyro --model mlp --prior normal --seconds 20

It loads MNIST, builds the model (``build_s``), compiles the step and takes the first one
(``compile_s``: JAX compiles on the first call), takes 2 warm-up steps, then steps for
``--seconds`` in chunks of about a second and reports iterations per second over those steps.
:func:`run` (called by ``benchmarks/run.py``) runs every implementation in turn for each model
and prior, and :func:`table` prints the results with ours' speed-up over each peer.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import implementations, workloads
from benchmarks.isolation import emit, run_worker
from benchmarks.settings import Settings

__all__ = ["measure", "run", "table"]

WARMUP_STEPS = 2
CHUNK_S = 1.0  # seconds per chunk of steps between reports


def measure(impl_name: str, model: str, prior: str, seconds: float, max_iterations: int | None,
            data_dir: Path | None) -> None:
    """Measure one implementation and report each stage with :func:`~benchmarks.isolation.emit`."""
    impl = implementations.get(impl_name)
    impl.prepare_process()
    data = workloads.load(data_dir)
    t0 = time.perf_counter()
    trainer = impl.trainer(model, prior, data)
    emit(stage="built", build_s=time.perf_counter() - t0)
    t0 = time.perf_counter()
    trainer.compile()
    emit(stage="compiled", compile_s=time.perf_counter() - t0, backend=trainer.backend)
    if max_iterations is None:  # slow implementations are timed over a few steps only: none to spare
        trainer.step(WARMUP_STEPS)
    done, elapsed, chunk = 0, 0.0, 1
    while elapsed < seconds and (max_iterations is None or done < max_iterations):
        n = chunk if max_iterations is None else min(chunk, max_iterations - done)
        t0 = time.perf_counter()
        trainer.step(n)
        elapsed += time.perf_counter() - t0
        done += n
        emit(stage="training", iterations=done, seconds=elapsed, iterations_per_s=done / elapsed)
        chunk = max(1, int(done / elapsed * CHUNK_S))
    emit(stage="done", iterations=done, seconds=elapsed, iterations_per_s=done / elapsed)


def _worker_args(impl: str, model: str, prior: str, settings: Settings) -> tuple[list[str], float, int | None]:
    slow = impl == "plain" and model == "cnn"
    max_iterations = settings.plain_cnn_iterations if slow else None
    args = ["benchmarks/training.py", "--impl", impl, "--model", model, "--prior", prior,
            "--seconds", str(settings.train_seconds)]
    if max_iterations:
        args += ["--max-iterations", str(max_iterations)]
    if settings.data_dir:
        args += ["--data-dir", str(settings.data_dir)]
    cap = settings.plain_cnn_cap_s if slow else settings.compile_cap_s + settings.train_seconds + 30.0
    return args, cap, max_iterations


def run(settings: Settings) -> dict:
    """Every implementation on every model and prior, in turn, ``settings.repeats`` times."""
    measurements = []
    for repeat in range(settings.repeats):
        for model in settings.models:
            for prior in settings.priors:
                for name in settings.implementations:
                    impl = implementations.get(name)
                    if model not in impl.models:
                        continue
                    args, cap, max_iterations = _worker_args(name, model, prior, settings)
                    print(f"  training: {name} {model} {prior} (repeat {repeat + 1}, cap {cap:.0f} s)", flush=True)
                    result = run_worker(args, cap, impl.floatx)
                    measurements.append({
                        "implementation": name, "model": model, "prior": prior, "repeat": repeat,
                        "status": result.status, "max_iterations": max_iterations, "cap_s": cap,
                        "wall_s": result.wall_s, "error": result.error,
                        "build_s": result.latest("build_s"), "compile_s": result.latest("compile_s"),
                        "backend": result.latest("backend"), "iterations": result.latest("iterations"),
                        "seconds": result.latest("seconds"), "iterations_per_s": result.latest("iterations_per_s"),
                        "peak_rss_mb": result.latest("peak_rss_mb"), "load_1min": result.latest("load_1min"),
                    })
    return {
        "measurements": measurements,
        "summary": _summarize(measurements),
    }


def _median(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def _summarize(measurements: list[dict]) -> list[dict]:
    """Per model, prior and implementation: medians over the repeats, and ours' speed-up over it."""
    keys = list(dict.fromkeys((m["model"], m["prior"], m["implementation"]) for m in measurements))
    rows = []
    for model, prior, impl in keys:
        group = [m for m in measurements if (m["model"], m["prior"], m["implementation"]) == (model, prior, impl)]
        rows.append({
            "model": model, "prior": prior, "implementation": impl,
            "iterations_per_s": _median([m["iterations_per_s"] for m in group]),
            "iterations": sum(m["iterations"] or 0 for m in group),
            "build_s": _median([m["build_s"] for m in group]),
            "compile_s": _median([m["compile_s"] for m in group]),
            "peak_rss_mb": max((m["peak_rss_mb"] or 0 for m in group), default=None),
            "status": ", ".join(sorted({m["status"] for m in group})),
            "note": _note(group),
        })
    for row in rows:
        ours = next((r for r in rows if (r["model"], r["prior"], r["implementation"]) == (row["model"], row["prior"], "ours")), None)
        if ours and row["implementation"] != "ours" and ours["iterations_per_s"] and row["iterations_per_s"]:
            row["ours_speedup"] = ours["iterations_per_s"] / row["iterations_per_s"]
    return rows


def _note(group: list[dict]) -> str:
    first = group[0]
    if first["status"] == "capped" and first["compile_s"] is None:
        return f"not compiled within the {first['cap_s']:.0f} s cap"
    if first["status"] == "failed":
        return "failed: " + first["error"].strip().splitlines()[-1][:200] if first["error"].strip() else "failed"
    if first["max_iterations"]:
        return f"timed over {first['iterations'] or 0} step(s) only (cap {first['cap_s']:.0f} s)"
    return ""


def _fmt(value, spec: str = ".1f", empty: str = "—") -> str:
    return empty if value is None else format(value, spec)


def table(result: dict) -> str:
    lines = [
        "| model | prior | implementation | it/s | ours vs it | build s | compile s | peak RSS MiB | note |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in result["summary"]:
        speedup = f"{row['ours_speedup']:.1f}x" if row.get("ours_speedup") else ""
        label = implementations.get(row["implementation"]).label
        lines.append(f"| {row['model']} | {row['prior']} | {label} | {_fmt(row['iterations_per_s'], '.2f')} | {speedup} "
                     f"| {_fmt(row['build_s'])} | {_fmt(row['compile_s'])} | {_fmt(row['peak_rss_mb'], '.0f')} "
                     f"| {row['note']} |")
    lines.append("\nours steps core.inference.ADVIStepper, the stepper that core.inference.fit (bnn train) loops over")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Training throughput of one implementation (a worker of run.py).")
    parser.add_argument("--impl", required=True, choices=list(implementations.IMPLEMENTATIONS))
    parser.add_argument("--model", required=True, choices=workloads.MODELS)
    parser.add_argument("--prior", required=True, choices=workloads.PRIORS)
    parser.add_argument("--seconds", type=float, default=20.0, help="stepping time measured after warm-up")
    parser.add_argument("--max-iterations", type=int, default=None, help="stop after this many measured steps")
    parser.add_argument("--data-dir", type=Path, default=None, help="folder of the MNIST files")
    args = parser.parse_args(argv)
    logging.getLogger("pymc").setLevel(logging.WARNING)  # PyMC logs a line at the end of every fit call
    measure(args.impl, args.model, args.prior, args.seconds, args.max_iterations, args.data_dir)


if __name__ == "__main__":
    main()
