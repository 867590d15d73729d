"""Prediction: the posterior predictive of the test digits (100 draws over 10,000 digits at full settings).

Worker (one implementation and model per process, see :mod:`benchmarks.isolation`)::

    python benchmarks/prediction.py --impl ours --model mlp --digits 10000 --draws 100

Each implementation predicts from a freshly started approximation of the full-size network (what
prediction costs does not depend on the values):

* ours: :func:`core.predict.sample_probabilities` from the variational means and sds (NumPy);
* plain PyMC: ``approx.sample(100)`` then ``pm.sample_posterior_predictive`` (the post's route);
* NumPyro: ``Predictive`` with the guide, 100 samples vectorised, jitted, in chunks of digits.

``setup_s`` is the time to get ready (build the model, start the approximation; not counted),
``first_s`` the first prediction (what a user waits for: it includes any compilation), and
``repeat_s`` a second one with everything compiled.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import implementations, workloads
from benchmarks.isolation import emit, run_worker
from benchmarks.settings import Settings

__all__ = ["measure", "run", "table"]


def measure(impl_name: str, model: str, n_digits: int, n_draws: int, data_dir: Path | None) -> None:
    impl = implementations.get(impl_name)
    images = workloads.load(data_dir).x_test[:n_digits]
    t0 = time.perf_counter()
    predict = impl.predictor(model, images, n_draws)
    emit(stage="ready", setup_s=time.perf_counter() - t0)
    for stage in ("first", "repeat"):
        t0 = time.perf_counter()
        out = predict()
        elapsed = time.perf_counter() - t0
        # plain PyMC's predictor says how long each of its two calls took
        parts = out if isinstance(out, dict) else {"output_shape": list(out.shape)}
        emit(stage=stage, **{f"{stage}_s": elapsed}, **{f"{stage}_{k}": v for k, v in parts.items()})


def run(settings: Settings) -> dict:
    rows = []
    for repeat in range(settings.repeats):
        for model in settings.models:
            for name in settings.implementations:
                impl = implementations.get(name)
                if model not in impl.models:
                    continue
                args = ["benchmarks/prediction.py", "--impl", name, "--model", model,
                        "--digits", str(settings.predict_digits), "--draws", str(settings.predict_draws)]
                if settings.data_dir:
                    args += ["--data-dir", str(settings.data_dir)]
                print(f"  prediction: {name} {model} (repeat {repeat + 1}, cap {settings.predict_cap_s:.0f} s)", flush=True)
                result = run_worker(args, settings.predict_cap_s, impl.floatx)
                row = {"implementation": name, "model": model, "repeat": repeat, "status": result.status,
                       "error": result.error, "cap_s": settings.predict_cap_s,
                       "digits": settings.predict_digits, "draws": settings.predict_draws}
                for event in result.events:
                    row |= {k: v for k, v in event.items() if k not in ("stage",)}
                rows.append(row)
    return {"digits": settings.predict_digits, "draws": settings.predict_draws, "measurements": rows}


def _seconds(row: dict) -> str:
    if row.get("first_s") is not None:
        return f"{row['first_s']:.1f}"
    if row["status"] == "capped":
        return f"> {row['cap_s']:.0f} (capped)"
    return row["status"]


def table(result: dict) -> str:
    lines = [(f"{result['draws']} draws over {result['digits']:,} test digits; seconds (first call, with any "
              "compile; then a repeat)."),
             "",
             "| model | implementation | first s | repeat s | ours vs it (first) | setup s | peak RSS MiB | note |",
             "|---|---|---|---|---|---|---|---|"]
    rows = result["measurements"]
    for row in rows:
        ours = next((r for r in rows if r["implementation"] == "ours" and r["model"] == row["model"]
                     and r["repeat"] == row["repeat"]), None)
        ratio = ""
        if row["implementation"] != "ours" and ours and ours.get("first_s"):
            if row.get("first_s"):
                ratio = f"{row['first_s'] / ours['first_s']:.1f}x"
            elif row["status"] == "capped":
                ratio = f"> {row['cap_s'] / ours['first_s']:.0f}x"
        note = ""
        if row.get("first_approx_sample_s") is not None:
            note = (f"approx.sample {row['first_approx_sample_s']:.1f} s + sample_posterior_predictive "
                    f"{row['first_posterior_predictive_s']:.1f} s")
        if row["status"] == "failed":
            note = "failed: " + (row["error"].strip().splitlines() or [""])[-1][:200]
        repeat = f"{row['repeat_s']:.1f}" if row.get("repeat_s") is not None else "—"
        setup = f"{row['setup_s']:.1f}" if row.get("setup_s") is not None else "—"
        rss = f"{row['peak_rss_mb']:.0f}" if row.get("peak_rss_mb") is not None else "—"
        lines.append(f"| {row['model']} | {implementations.get(row['implementation']).label} | {_seconds(row)} | {repeat} "
                     f"| {ratio} | {setup} | {rss} | {note} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Posterior predictive time of one implementation (a worker of run.py).")
    parser.add_argument("--impl", required=True, choices=list(implementations.IMPLEMENTATIONS))
    parser.add_argument("--model", required=True, choices=workloads.MODELS)
    parser.add_argument("--digits", type=int, default=10_000, help="first N test digits")
    parser.add_argument("--draws", type=int, default=100, help="posterior draws")
    parser.add_argument("--data-dir", type=Path, default=None, help="folder of the MNIST files")
    args = parser.parse_args(argv)
    logging.getLogger("pymc").setLevel(logging.WARNING)
    measure(args.impl, args.model, args.digits, args.draws, args.data_dir)


if __name__ == "__main__":
    main()
