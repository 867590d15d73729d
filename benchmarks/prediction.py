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

``floor_s`` is the matrix-product floor, measured in the same worker after the predictions: the
multiply-adds of the draws' matrix products (:func:`multiply_adds`: the MLP's first layer once per
digit, by local reparameterization; every other layer for every digit under every draw) at the
float32 rate NumPy's BLAS reaches here on large products with all its threads (``floor_gflops``).
No exact float32 predictive does much less work; ``x floor`` in the table is the first call's time
over it, whatever the load (the rate is measured under the same load).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import implementations, workloads
from benchmarks.isolation import emit, run_worker
from benchmarks.settings import Settings

__all__ = ["matmul_gflops", "measure", "multiply_adds", "run", "table"]


def multiply_adds(model: str, n_digits: int, n_draws: int) -> int:
    """Multiply-adds of the matrix products ``n_draws`` networks of ``model`` need for ``n_digits``
    digits, each layer drawn the cheaper exact way (:func:`core.predict.local_layers`): a layer drawn
    once per draw multiplies every digit under every draw; one drawn locally needs its mean and its
    variance, once per digit if it is the first layer (its input is the same under every draw; the
    MLP's), else under every draw too. Convolutions count as patches @ W."""
    from core.predict import layer_costs, local_layers

    spec = workloads.layers(model)
    costs, _ = layer_costs(spec)
    local = local_layers(spec, n_digits, n_draws)
    total = 0
    for i, (name, (_, _, macs)) in enumerate(costs.items()):
        if name in local:
            total += 2 * macs * n_digits * (1 if i == 0 else n_draws)
        else:
            total += macs * n_digits * n_draws
    return total


def matmul_gflops(seconds: float = 2.0) -> float:
    """Float32 GFLOP/s of NumPy's matrix product on large operands (4096 x 1024 @ 1024 x 1024), with
    every BLAS thread: the best of repeated products over about ``seconds``."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((4096, 1024), dtype=np.float32)
    b = rng.standard_normal((1024, 1024), dtype=np.float32)
    out = np.empty((4096, 1024), np.float32)
    np.matmul(a, b, out=out)  # warm-up: threads started, pages touched
    best, end = float("inf"), time.perf_counter() + seconds
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        np.matmul(a, b, out=out)
        best = min(best, time.perf_counter() - t0)
    return 2 * a.shape[0] * a.shape[1] * b.shape[1] / best / 1e9


def measure(impl_name: str, model: str, n_digits: int, n_draws: int, data_dir: Path | None) -> None:
    impl = implementations.get(impl_name)
    impl.prepare_process()
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
    gflops = matmul_gflops()
    emit(stage="floor", floor_gflops=gflops, floor_s=2 * multiply_adds(model, n_digits, n_draws) / gflops / 1e9)


def run(settings: Settings) -> dict:
    rows = []
    for repeat in range(settings.repeats):
        for model in settings.models:
            for name in settings.implementations:
                impl = implementations.get(name)
                if model not in impl.models or impl.predictor is None:
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
             "| model | implementation | first s | repeat s | x floor | ours vs it (first) | setup s | peak RSS MiB | note |",
             "|---|---|---|---|---|---|---|---|---|"]
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
        floor = (f"{row['first_s'] / row['floor_s']:.1f}x" if row.get("first_s") is not None and row.get("floor_s")
                 else "—")
        lines.append(f"| {row['model']} | {implementations.get(row['implementation']).label} | {_seconds(row)} | {repeat} "
                     f"| {floor} | {ratio} | {setup} | {rss} | {note} |")
    floors = [r for r in rows if r.get("floor_s")]
    if floors:
        lines += ["", "Matrix-product floor (the draws' float32 multiply-adds, see multiply_adds, at NumPy's "
                      "large-product rate measured in each worker): "
                  + "; ".join(f"{r['model']} {r['floor_s']:.1f} s at {r['floor_gflops']:.0f} GFLOP/s"
                              for r in floors if r["implementation"] == "ours") + "."]
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
